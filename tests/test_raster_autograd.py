"""interpolate: the autograd Function (Numba on CPU) — gradcheck and reference backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_raster_reference import random_mesh

import facelab.raster as R
from facelab.raster.reference import interpolate_backward_reference, interpolate_reference


def _two_triangles(dtype, pc):
    # a quad split in two, vertices well off the pixel grid; depths differ (perspective)
    verts = torch.tensor([[[1.3, 1.7, 2.0], [1.1, 10.6, 3.0], [10.4, 1.2, 2.5],
                           [10.8, 10.3, 4.0]]], dtype=dtype)
    faces = torch.tensor([[0, 1, 2], [2, 1, 3]])
    frags = R.rasterize(verts, faces, 12, 12, perspective_correct=pc)
    return verts, faces, frags


@pytest.mark.parametrize("pc", [False, True])
def test_gradcheck_attrs_and_positions(pc):
    verts, faces, frags = _two_triangles(torch.float64, pc)
    assert (frags.face_index == 0).any() and (frags.face_index == 1).any()
    attrs = torch.randn(1, 4, 3, dtype=torch.float64, requires_grad=True)
    v = verts.clone().requires_grad_()

    def fn(a, sv):
        return R.interpolate(a, frags, faces, screen_verts=sv)

    assert torch.autograd.gradcheck(fn, (attrs, v), eps=1e-6, atol=1e-6)


def test_gradcheck_attrs_only():
    _verts, faces, frags = _two_triangles(torch.float64, False)
    attrs = torch.randn(1, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: R.interpolate(a, frags, faces), (attrs,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pc", [False, True])
def test_backward_matches_reference(dtype, pc):
    rng = np.random.default_rng(8)
    verts_np, faces = random_mesh(rng, 2, 25, 35, 15, 14, dtype=np.float64)
    verts = torch.tensor(verts_np, dtype=dtype, requires_grad=True)
    frags = R.rasterize(verts, torch.tensor(faces), 15, 14, perspective_correct=pc)
    attrs = torch.randn(2, 25, 3, dtype=dtype, requires_grad=True)
    out = R.interpolate(attrs, frags, faces, screen_verts=verts)
    assert out.shape == (2, 15, 14, 3) and out.dtype == dtype
    ref = interpolate_reference(attrs.detach().numpy(), frags.face_index.numpy(),
                                frags.bary.numpy(), faces)
    np.testing.assert_array_equal(out.detach().numpy(), ref)
    grad = torch.randn_like(out)
    out.backward(grad)
    ra, rv = interpolate_backward_reference(grad.numpy(), attrs.detach().numpy(),
                                            frags.face_index.numpy(), frags.bary.numpy(),
                                            faces, verts.detach().numpy(), pc)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else {}
    torch.testing.assert_close(attrs.grad, torch.from_numpy(ra), **tol)
    torch.testing.assert_close(verts.grad, torch.from_numpy(rv), **tol)
    assert not (frags.face_index < 0).all() and (out.detach()[frags.face_index < 0] == 0).all()


def test_positional_gradient_paths_cancel_for_own_coordinates():
    """Interpolating the vertices' own x gives the pixel centre whatever the vertices are:
    the attribute path and the barycentric path must cancel exactly."""
    verts, faces, frags = _two_triangles(torch.float64, False)
    v = verts.clone().requires_grad_()
    out = R.interpolate(v[..., :1], frags, faces, screen_verts=v)  # colour = own x
    out.sum().backward()
    assert v.grad.abs().max() < 1e-9
    v.grad = None
    R.interpolate(v[..., :1].detach(), frags, faces, screen_verts=v).sum().backward()
    assert v.grad[..., 0].abs().max() > 1  # the barycentric path alone is not zero
    hit = frags.face_index >= 0
    centres = (torch.arange(12, dtype=torch.float64) + 0.5).expand(1, 12, 12)
    torch.testing.assert_close(out[..., 0][hit], centres[hit].detach())


def test_no_grad_needed_and_numpy():
    _verts, faces, frags = _two_triangles(torch.float32, False)
    out = R.interpolate(np.ones((1, 4, 2), np.float32), frags, faces)
    assert isinstance(out, np.ndarray) and out.shape == (1, 12, 12, 2)


@pytest.mark.parametrize("bad, err, match", [
    (lambda a, f, fr, v: (a[0], fr, f), ValueError, r"attrs: expected \(B, V, C\)"),
    (lambda a, f, fr, v: (a.long(), fr, f), TypeError, "attrs: expected float32 or float64"),
    (lambda a, f, fr, v: (a * float("nan"), fr, f), ValueError, "attrs: expected finite"),
    (lambda a, f, fr, v: (a, fr._replace(bary=fr.bary[..., :2]), f), ValueError, "bary"),
    (lambda a, f, fr, v: (a, fr.face_index, f), TypeError, "fragments"),
    (lambda a, f, fr, v: (a, fr, f + 4), ValueError, "faces"),
    (lambda a, f, fr, v: (a, fr, f[:1]), ValueError, "fragments.face_index"),
    (lambda a, f, fr, v: (torch.cat([a, a]), fr, f), ValueError, "fragments.face_index"),
    (lambda a, f, fr, v: (a, fr, f, v.float()), TypeError, "screen_verts"),
    (lambda a, f, fr, v: (a, fr, f, v[..., :2]), ValueError, "screen_verts"),
])
def test_bad_input(bad, err, match):
    verts, faces, frags = _two_triangles(torch.float64, False)
    attrs = torch.randn(1, 4, 3, dtype=torch.float64)
    with pytest.raises(err, match=match):
        R.interpolate(*bad(attrs, faces, frags, verts))
