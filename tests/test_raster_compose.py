"""render_mesh: rasterize + interpolate + background."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_raster_reference import sphere_mesh, to_screen

from facelab.raster.compose import render_mesh as render


def _sphere(dtype=torch.float32, size=32):
    v, f = sphere_mesh(10)
    screen = torch.tensor(to_screen(v, size)[None], dtype=dtype)
    colors = torch.tensor((v * 0.5 + 0.5)[None], dtype=dtype)
    return screen, torch.tensor(f), colors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_render_shapes_and_values(dtype):
    screen, faces, colors = _sphere(dtype)
    images, mask = render(screen, faces, colors, 32, 32)
    assert images.shape == (1, 32, 32, 3) and images.dtype == dtype
    assert mask.shape == (1, 32, 32) and mask.dtype == torch.bool
    assert 0.3 < mask.float().mean() < 0.7 and mask[0, 16, 16]
    assert (images[~mask] == 0).all()
    assert images[mask].min() >= 0 and images[mask].max() <= 1
    # the centre of the image sees the sphere's front pole: colour ~ (0.5, 0.5, 1.0)
    torch.testing.assert_close(images[0, 16, 16], torch.tensor([0.5, 0.5, 1.0], dtype=dtype),
                               atol=0.1, rtol=0)


def test_render_backgrounds():
    screen, faces, colors = _sphere()
    img_c, mask = render(screen, faces, colors, 32, 32, background=torch.tensor([0.0, 0, 1]))
    assert (img_c[~mask] == torch.tensor([0.0, 0, 1])).all()
    bg = torch.rand(1, 32, 32, 3)
    img_i, _ = render(screen, faces, colors, 32, 32, background=bg)
    assert torch.equal(img_i[~mask], bg[~mask]) and torch.equal(img_i[mask], img_c[mask])
    with pytest.raises(ValueError, match="background"):
        render(screen, faces, colors, 32, 32, background=torch.rand(1, 16, 16, 3))
    with pytest.raises(ValueError, match="background"):
        render(screen, faces, colors, 32, 32, background=torch.rand(4))


def test_render_gradients_flow_to_colours_and_positions():
    screen, faces, colors = _sphere(torch.float64)
    screen.requires_grad_()
    colors.requires_grad_()
    images, _mask = render(screen, faces, colors, 32, 32, background=torch.zeros(3))
    images.square().sum().backward()
    assert colors.grad.abs().sum() > 0 and screen.grad.abs().sum() > 0
    assert torch.isfinite(screen.grad).all()


def test_render_gradcheck_colours():
    screen, faces, colors = _sphere(torch.float64, size=12)
    colors.requires_grad_()
    assert torch.autograd.gradcheck(lambda c: render(screen, faces, c, 12, 12)[0], (colors,))


def test_render_bad_colours():
    screen, faces, colors = _sphere()
    with pytest.raises(ValueError, match="colors"):
        render(screen, faces, colors[:, :5], 32, 32)
    with pytest.raises(TypeError, match="colors"):
        render(screen, faces, colors.long(), 32, 32)
    with pytest.raises(ValueError, match="screen_verts"):
        render(screen * np.nan, faces, colors, 32, 32)
