"""Render a textured mesh into images: ``rasterize`` + ``interpolate`` (UVs, shading) +
``sample_texture`` + background.

The textured mesh-level step under :func:`facelab.render` (the per-vertex one is
:func:`facelab.raster.compose.render_mesh`). A UV layout may have seams — a vertex can carry
several texture coordinates, one per triangle corner (``uv_faces``) — so the UVs are
interpolated over the *corner* mesh: 3F vertices, triangle f's corners at rows 3f, 3f+1,
3f+2, positions gathered from the screen vertices (so barycentrics, and through them the
UVs, stay differentiable in the geometry at interior pixels).
"""

from __future__ import annotations

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape
from facelab.raster import interpolate, rasterize
from facelab.texture.autograd import sample_texture

__all__ = ["render_textured_mesh"]

_CORNER_FACES: dict = {}  # (F, device) -> (F, 3) int64 arange(3F): the corner mesh's faces


def _corner_faces(n_faces: int, device) -> torch.Tensor:
    key = (n_faces, str(device))
    if key not in _CORNER_FACES:
        if len(_CORNER_FACES) > 8:
            _CORNER_FACES.clear()
        _CORNER_FACES[key] = torch.arange(3 * n_faces, device=device).reshape(n_faces, 3)
    return _CORNER_FACES[key]


def render_textured_mesh(screen_verts, faces, uv, uv_faces, texture, shading, height: int,
                         width: int, *, albedo_offsets=None, background=None,
                         perspective_correct: bool = False, cull_backfaces: bool = False):
    """Render a textured, shaded mesh: images (B, H, W, 3) and the coverage mask (B, H, W).

    Per covered pixel p (MoFA Eq. 4 with the reflectance looked up in texture space)::

        image[p] = (T(uv(p)) + o(p)) * s(p)

    with uv(p), o(p), s(p) the UVs, albedo offsets and shading interpolated with the pixel's
    barycentrics (perspective-correct when asked) and T the bilinear texture lookup
    (:func:`facelab.sample_texture`).

    screen_verts: (B, V, 3) float tensor, (x, y, depth) in pixels (as for ``rasterize``).
    faces: (F, 3) int64 vertex indices; uv: (Vt, 2) texture coordinates (OBJ: v up);
    uv_faces: (F, 3) int64 indices into uv, one per triangle corner.
    texture: (B, Ht, Wt, 3) reflectance maps, row 0 at the top (v = 1).
    shading: (B, V, 3) per-vertex shading multiplied into the texture (e.g. the SH
        irradiance, MoFA Eq. 4 with unit albedo).
    albedo_offsets: optional (B, V, 3) per-vertex reflectance added to the looked-up texture.
    background: None (black), a (3,) colour, or a (B, H, W, 3) image.
    perspective_correct, cull_backfaces: passed to ``rasterize``.

    All float inputs share screen_verts' dtype and device (the caller casts). Differentiable
    in texture, shading, offsets, background and (interior pixels) screen_verts.
    """
    frags = rasterize(screen_verts, faces, height, width, perspective_correct, cull_backfaces)
    verts, _ = as_tensor(screen_verts, name="screen_verts")
    dims = check_shape(verts, "B V 3", name="screen_verts")
    faces_t, _ = as_tensor(faces, name="faces")
    check_shape(faces_t, "F 3", name="faces", dims=dims)
    check_shape(uv_faces, "F 3", name="uv_faces", dims=dims)
    check_shape(uv, "Vt 2", name="uv")
    check_shape(shading, "B V 3", name="shading", dims=dims)
    check_shape(texture, "B Ht Wt 3", name="texture", dims=dims)
    n_img, n_faces = dims["B"], dims["F"]
    corners = faces_t.to(verts.device).reshape(-1)  # (3F,) vertex of each corner
    screen_c = verts[:, corners]  # (B, 3F, 3) corner positions
    attrs = [uv[uv_faces.reshape(-1)].to(verts.dtype)[None].expand(n_img, -1, -1),  # (B, 3F, 2)
             shading[:, corners]]  # (B, 3F, 3)
    if albedo_offsets is not None:
        check_shape(albedo_offsets, "B V 3", name="albedo_offsets", dims=dims)
        attrs.append(albedo_offsets[:, corners])  # (B, 3F, 3)
    pix = interpolate(torch.cat(attrs, dim=-1), frags, _corner_faces(n_faces, verts.device),
                      screen_verts=screen_c)  # (B, H, W, 5 or 8)
    mask = torch.as_tensor(frags.face_index) >= 0  # (B, H, W)
    albedo = sample_texture(texture, pix[..., :2], mask)  # (B, H, W, 3), 0 where empty
    if albedo_offsets is not None:
        albedo = albedo + pix[..., 5:8]
    images = albedo * pix[..., 2:5]  # (B, H, W, 3); 0 where empty
    if background is None:
        return images, mask
    bg, _ = as_tensor(background, name="background")
    check_floating(bg, name="background")
    check_finite(bg, name="background")
    if bg.ndim == 1:
        check_shape(bg, "3", name="background")
        bg = bg.reshape(1, 1, 1, 3)  # (1, 1, 1, 3)
    else:
        check_shape(bg, "B H W 3", name="background", dims={"B": n_img, "H": height, "W": width})
    bg = bg.to(device=images.device, dtype=images.dtype)
    return torch.where(mask[..., None], images, bg), mask
