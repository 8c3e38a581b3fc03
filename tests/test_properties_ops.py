"""Property-based tests (Hypothesis) of the compiled ops on random and adversarial inputs.

Contract, for every op: a clear ``ValueError``/``TypeError`` whose message starts with the
argument's name, or a finite result equal to the op's reference definition. Inputs mix
ordinary values with NaN, +-Inf, huge (1e13 .. 3e38), tiny (1e-30, subnormal), zero-area
and repeated-vertex triangles and out-of-range face indices. Example counts come from the
Hypothesis profile (tests/conftest.py: ``ci`` by default, ``nightly`` for long runs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import event, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

import facelab as fl  # noqa: E402
from facelab.normals.reference import face_cross, vertex_normals_forward  # noqa: E402
from facelab.raster import MAX_SCREEN_COORD, interpolate, rasterize  # noqa: E402
from facelab.raster.reference import interpolate_reference, rasterize_reference  # noqa: E402
from facelab.shading.autograd import MAX_NORMAL_LENGTH  # noqa: E402
from facelab.shading.torch_ref import sh_shade_torch  # noqa: E402

ADVERSARIAL = [float("nan"), float("inf"), -float("inf"), 1e13, -3e38, 3e38, 1e-30, -1e-30,
               0.0, 5e-324, 1e12, -1e12]
ARG_NAMES = ("screen_verts", "faces", "near", "height", "width", "attrs", "fragments",
             "verts", "albedo", "normals", "gamma")


def _coords(lo: float, hi: float):
    """Mostly ordinary coordinates, sometimes adversarial ones."""
    return st.one_of(st.floats(lo, hi, allow_nan=False, width=32),
                     st.sampled_from(ADVERSARIAL))


def _clear(err: Exception) -> None:
    """The error is a clear one: ValueError/TypeError naming an argument."""
    event(f"clear {type(err).__name__}")
    assert isinstance(err, (ValueError, TypeError)), repr(err)
    assert str(err).split(":")[0].split(",")[0].split(".")[0].strip() in ARG_NAMES, str(err)


@st.composite
def meshes(draw, lo=-4.0, hi=20.0, bad_faces=True):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    b = draw(st.integers(1, 2))
    v = draw(st.integers(3, 7))
    f = draw(st.integers(1, 6))
    verts = draw(arrays(dtype, (b, v, 3), elements=_coords(lo, hi)))
    top = v + 1 if bad_faces else v - 1
    faces = draw(arrays(np.int64, (f, 3), elements=st.integers(-1 if bad_faces else 0, top)))
    return verts, faces


def _valid(verts, faces, near, perspective):
    return (np.isfinite(verts).all() and np.abs(verts).max() <= MAX_SCREEN_COORD
            and faces.min() >= 0 and faces.max() < verts.shape[1]
            and not (perspective and near is not None and near < 0))


@given(mesh_=meshes(), size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
       perspective=st.booleans(), cull=st.booleans(),
       near=st.one_of(st.none(), st.floats(-2.0, 3.0)))
def test_rasterize_is_an_error_or_the_reference(mesh_, size, perspective, cull, near):
    verts, faces = mesh_
    h, w = size
    try:
        frags = rasterize(torch.from_numpy(verts), torch.from_numpy(faces), h, w,
                          perspective_correct=perspective, cull_backfaces=cull, near=near)
    except Exception as err:  # any type: _clear() checks it is a clear one
        _clear(err)
        if _valid(verts, faces, near, perspective):  # only degenerate-triangle NaN remains
            assert "non-finite barycentrics" in str(err), str(err)
        return
    assert _valid(verts, faces, near, perspective)
    event("result")
    fi, bary, depth = frags.face_index.numpy(), frags.bary.numpy(), frags.depth.numpy()
    assert fi.shape == (verts.shape[0], h, w) and fi.min() >= -1 and fi.max() < len(faces)
    assert np.isfinite(bary).all() and np.isfinite(depth).all()
    eff_near = near
    if perspective:  # the boundary counts depths below a tiny floor as at the camera
        floor = 1e-30 if verts.dtype == np.float32 else 1e-300
        eff_near = max(0.0 if near is None else near, floor)
    ref_fi, ref_bary, ref_depth = rasterize_reference(verts, faces, h, w, perspective, cull,
                                                      eff_near)
    np.testing.assert_array_equal(fi, ref_fi)
    np.testing.assert_allclose(bary, ref_bary, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(depth, ref_depth, rtol=1e-4, atol=1e-4)


@given(mesh_=meshes(lo=-2.0, hi=14.0, bad_faces=False), perspective=st.booleans(),
       attrs_scale=st.sampled_from([1.0, 1e-30, 1e20]), channels=st.integers(1, 4),
       recompute=st.booleans())
def test_interpolate_is_an_error_or_the_reference_with_finite_gradients(
        mesh_, perspective, attrs_scale, channels, recompute):
    verts, faces = mesh_
    if not np.isfinite(verts).all() or np.abs(verts).max() > 1e6:
        return  # covered by the rasterize property
    if perspective:
        verts = verts.copy()
        verts[..., 2] = np.abs(verts[..., 2]) + 0.5
    v = torch.from_numpy(verts)
    try:
        frags = rasterize(v, torch.from_numpy(faces), 10, 10, perspective_correct=perspective)
    except ValueError as err:
        _clear(err)
        return
    rng = np.random.default_rng(0)
    attrs = torch.from_numpy((rng.standard_normal((*verts.shape[:2], channels))
                              * attrs_scale).astype(verts.dtype)).requires_grad_()
    sv = v.clone().requires_grad_() if recompute else None
    try:
        out = interpolate(attrs, frags, torch.from_numpy(faces), screen_verts=sv)
    except ValueError as err:
        _clear(err)
        assert recompute and "degenerate" in str(err)
        return
    assert torch.isfinite(out).all()
    event("result")
    want = interpolate_reference(attrs.detach().numpy(), frags.face_index.numpy(),
                                 frags.bary.numpy(), faces)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-4,
                               atol=1e-5 * attrs_scale)
    out.sum().backward()
    assert torch.isfinite(attrs.grad).all()
    if recompute:
        assert torch.isfinite(sv.grad).all()


@given(mesh_=meshes(lo=-50.0, hi=50.0, bad_faces=False),
       scale=st.sampled_from([1.0, 1e-12, 1e12, 1e30, 1e37]))
def test_vertex_normals_finite_bounded_and_like_the_definition(mesh_, scale):
    verts, faces = mesh_
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = verts * np.asarray(scale, verts.dtype)
    try:
        n = fl.vertex_normals(torch.from_numpy(scaled), torch.from_numpy(faces))
    except ValueError as err:
        _clear(err)
        assert not np.isfinite(scaled).all()
        return
    assert torch.isfinite(n).all()
    event("result")
    assert float(n.norm(dim=-1).max()) <= 1.0 + 1e-4
    # the definition (normals.reference, float64) wherever it is well conditioned: vertices
    # whose summed cross product is not pure rounding noise (e.g. of zero-area faces)
    v64 = verts.astype(np.float64)
    want, _ = vertex_normals_forward(v64, faces)
    summed = np.zeros_like(v64)
    for k in range(3):
        np.add.at(summed, (slice(None), faces[:, k]), face_cross(v64, faces))
    size = max(float(np.abs(v64).max()), 1e-300) ** 2
    ok = np.linalg.norm(summed, axis=-1) > 1e-3 * size
    np.testing.assert_allclose(n.double().numpy()[ok], want[ok], rtol=1e-3, atol=1e-3)


@given(normals=arrays(np.float32, (1, 4, 3), elements=_coords(-1.0, 1.0)),
       gamma=arrays(np.float32, (1, 9, 3), elements=_coords(-1.0, 1.0)),
       albedo=arrays(np.float32, (1, 4, 3), elements=st.floats(0, 1, width=32)),
       unit=st.booleans())
def test_sh_shade_is_an_error_or_the_definition(normals, gamma, albedo, unit):
    n = torch.from_numpy(normals)
    if unit:  # the documented input: unit normals (adversarial NaN/Inf stay adversarial)
        with np.errstate(all="ignore"):
            n = torch.nn.functional.normalize(n, dim=-1)
    a, g = torch.from_numpy(albedo), torch.from_numpy(gamma)
    try:
        out = fl.sh_shade(a, n, g)
    except (ValueError, TypeError) as err:
        _clear(err)
        too_long = float(n.abs().nan_to_num(0.0).amax()) > MAX_NORMAL_LENGTH
        assert too_long or not (torch.isfinite(n).all() and np.isfinite(gamma).all())
        return
    event("result")
    assert float(n.abs().amax()) <= MAX_NORMAL_LENGTH  # longer normals are refused
    want = sh_shade_torch(a, n, g)
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4, equal_nan=True)
    if unit and float(np.abs(gamma).max()) <= 1e30:
        assert torch.isfinite(out).all()  # unit normals, finite gamma: a finite image
