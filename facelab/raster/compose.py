"""Render a coloured mesh into images: ``rasterize`` + ``interpolate`` + background.

The mesh-level step under :func:`facelab.render` (which renders a :class:`facelab.Formation`).
"""

from __future__ import annotations

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape
from facelab.raster import interpolate, rasterize

__all__ = ["render_mesh"]


def render_mesh(screen_verts, faces, colors, height: int, width: int, background=None,
           perspective_correct: bool = False, cull_backfaces: bool = False):
    """Render a coloured mesh: images (B, H, W, 3) and the coverage mask (B, H, W).

    screen_verts: (B, V, 3) float32/float64 torch tensor, (x, y, depth) in pixels, y down,
        as for :func:`facelab.raster.rasterize` (depth = camera z when perspective_correct).
    faces: (F, 3) int vertex indices, counter-clockwise seen from the front.
    colors: (B, V, 3) per-vertex colours, same dtype/device as screen_verts (e.g. shaded
        albedo from ``sh_shade``).
    background: None (black), a (3,) colour, or a (B, H, W, 3) image.
    perspective_correct, cull_backfaces: passed to ``rasterize``.

    Returns ``(images (B, H, W, 3), mask (B, H, W) bool)``; pixels outside the mesh take the
    background. Differentiable in colors, background and (interior pixels only; silhouettes
    are not differentiable) screen_verts.
    """
    frags = rasterize(screen_verts, faces, height, width, perspective_correct, cull_backfaces)
    verts, _ = as_tensor(screen_verts, name="screen_verts")
    colors_t, _ = as_tensor(colors, name="colors")
    check_floating(colors_t, name="colors")
    dims = check_shape(verts, "B V 3", name="screen_verts")
    check_shape(colors_t, "B V 3", name="colors", dims=dims)
    colors_t = colors_t.to(verts.dtype)
    face_index = torch.as_tensor(frags.face_index)
    mask = face_index >= 0  # (B, H, W)
    images = interpolate(colors_t, frags, faces, screen_verts=verts)  # (B, H, W, 3)
    if background is None:
        return images, mask
    bg, _ = as_tensor(background, name="background")
    check_floating(bg, name="background")
    check_finite(bg, name="background")
    if bg.ndim == 1:
        check_shape(bg, "3", name="background")
        bg = bg.reshape(1, 1, 1, 3)  # (1, 1, 1, 3)
    else:
        check_shape(bg, "B H W 3", name="background",
                    dims={"B": dims["B"], "H": height, "W": width})
    bg = bg.to(device=images.device, dtype=images.dtype)
    return torch.where(mask[..., None], images, bg), mask
