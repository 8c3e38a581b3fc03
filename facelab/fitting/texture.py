"""Bake a photo's colours into the model's UV layout: the fitted head carries the photo.

For every texel of the layout (a point on the mesh surface), :func:`bake_texture`

1. finds its triangle and barycentrics by rasterizing the layout itself
   (:func:`facelab.rasterize` on ``(u W, (1 - v) H)``: texel (i, j) covers pixel (i, j));
   where a layout is not one-to-one (the cylindrical fallback folds the lips and nostrils
   onto themselves) the surface farthest from the head's vertical axis wins;
2. lifts it onto the fitted mesh, ``X = sum_k b_k X_k`` in camera space (the layout is
   affine per triangle, so the texel's barycentrics are those of the surface point);
3. projects ``X`` with the fit's camera and samples the photo there bilinearly
   (pixel (i, j) sampled at its centre, as everywhere in facelab);
4. weights the sample by ``visibility x max(0, cos(n, -ray))``: visible when ``X`` is no
   deeper than the z-buffer of the image-space rasterization at its pixel (plus a small
   tolerance, as :func:`facelab.vertex_visibility`; the farthest of the pixel's 3 x 3
   neighbourhood, so texels on steep slopes between pixel centres pass), ``n`` the
   interpolated vertex normal and
   ``ray`` the unit direction from the camera centre to ``X`` (the optical axis for the
   orthographic cameras). Foreshortened texels (small cos) are the least reliable, as in
   every texture-fusion pipeline (e.g. Thies et al., Face2Face, the colour term; the
   MoFA photometric term Eq. (8) likewise uses only visible vertices);
5. fills texels the photo does not show: from the **mirror texel** ``(1 - u, v)`` when the
   layout is mirror-symmetric (faces are nearly symmetric; :func:`mirror_symmetric` checks
   the layout), then from the model's reflectance (the fitted albedo: texture maps when the
   model has them, else its per-vertex albedo interpolated over the layout) multiplied by a
   per-channel gain that matches it to the photo's observed texels (the photo carries the
   scene's light, the reflectance does not);
6. spreads the result a few texels past the layout's charts (dilation), so bilinear lookups
   on chart borders never blend in the empty background.

Blending is soft: a texel seen with weight ``w`` keeps ``a = min(1, w / full_weight)`` of its
photo colour and takes ``1 - a`` from the fill (``full_weight`` = 0.3 by default: a surface
seen within ~73° of head-on counts as fully seen), so seams between photo and fill fade.

Models without a UV layout (v1 synthetic, BFM) get :func:`cylindrical_uv`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from facelab import cameras
from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_indices,
    check_int,
    check_shape,
)
from facelab.formation import Formation
from facelab.image_io import as_rgb_image
from facelab.model.morphable import MorphableModel
from facelab.raster import rasterize

__all__ = ["SOURCE_MIRROR", "SOURCE_MODEL", "SOURCE_NONE", "SOURCE_PHOTO", "ExtractedTexture",
           "bake_texture", "cylindrical_uv", "extract_texture", "mirror_symmetric",
           "texture_vertex_colors", "uv_layout"]

#: Values of :attr:`ExtractedTexture.source`: where each texel's colour mostly came from.
SOURCE_NONE, SOURCE_PHOTO, SOURCE_MIRROR, SOURCE_MODEL = 0, 1, 2, 3
MAX_TEXTURE_SIZE = 4096
DEFAULT_TEXTURE_SIZE = 512


class ExtractedTexture(NamedTuple):
    """What :func:`extract_texture` / :func:`bake_texture` return.

    texture: (Ht, Wt, 3) float32 in [0, 1], row 0 at the top (OBJ convention: texel row
        = (1 - v) Ht, column = u Wt); the photo's colours as seen (reflectance x the photo's
        light), filled where unseen.
    weight: (Ht, Wt) float32 in [0, 1], visibility x max(0, cos) of each texel in the photo
        (0 outside the layout and where hidden).
    source: (Ht, Wt) int8: :data:`SOURCE_PHOTO` (a >= 0.5), :data:`SOURCE_MIRROR`,
        :data:`SOURCE_MODEL` or :data:`SOURCE_NONE` (outside the layout's charts).
    uv: (Vt, 2) float32 and uv_faces: (F, 3) int64, the layout the texture is in.
    symmetric: whether the mirror fill was used.
    """

    texture: torch.Tensor
    weight: torch.Tensor
    source: torch.Tensor
    uv: torch.Tensor
    uv_faces: torch.Tensor
    symmetric: bool


# ------------------------------------------------------------------------------ layouts
def cylindrical_uv(model: MorphableModel, *, margin: float = 0.02):
    """A UV layout for models without one: a cylinder around the vertical axis.

    ``u = 1/2 + (1/2 - margin) theta / theta_max`` with ``theta = atan2(x - cx, z - cz)``
    (0 at the front, +z; positive toward +x), ``theta_max`` the largest |theta| of the mean
    shape (at most pi), and ``v = margin + (1 - 2 margin)(y - y_min) / (y_max - y_min)``
    (v up). (cx, cz) is the centre of the mean shape's bounding box, so a mirror-symmetric
    model (x -> -x) gets a mirror-symmetric layout: the mirror of texel (u, v) is (1 - u, v).

    Seams and distortion: a full head's layout is cut down the back (theta = +-pi, the
    texture's left and right edges); triangles crossing that cut get duplicated texture
    coordinates clamped to the edge (Vt > V), so their texels are squeezed into the edge
    column. The crown and the underside of the chin, nearly perpendicular to the axis, are
    stretched. A face mask (theta within +-theta_max < pi) has no seam.

    model: a :class:`MorphableModel` (its ``mean_shape`` (V, 3) and ``faces`` (F, 3)).
    margin: empty border of the layout, in [0, 0.25).
    Returns ``(uv (Vt, 2) float32, uv_faces (F, 3) int64)``.
    """
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    if not (isinstance(margin, (int, float)) and 0.0 <= float(margin) < 0.25):
        raise ValueError(f"margin: expected a number in [0, 0.25), got {margin!r}")
    v = model.mean_shape.detach().cpu().to(torch.float64)  # (V, 3)
    lo, hi = v.amin(0), v.amax(0)
    cx, cz = 0.5 * (lo[0] + hi[0]), 0.5 * (lo[2] + hi[2])
    theta = torch.atan2(v[:, 0] - cx, v[:, 2] - cz)  # (V,) in (-pi, pi]
    theta_max = float(theta.abs().max().clamp(min=1e-6, max=math.pi))
    half = 0.5 - float(margin)
    y_span = float(hi[1] - lo[1]) or 1.0
    vv = float(margin) + (1 - 2 * float(margin)) * (v[:, 1] - lo[1]) / y_span  # (V,)
    faces = model.faces.detach().cpu().long()
    uv_faces = faces.clone()
    t_corner = theta[faces]  # (F, 3)
    cross = (t_corner.amax(1) - t_corner.amin(1)) > math.pi  # (F,) triangles over the back
    thetas, vs = [theta], [vv]
    if bool(cross.any()):
        f_idx, k_idx = torch.nonzero(cross[:, None] & (t_corner < 0), as_tuple=True)
        corner_v = faces[f_idx, k_idx]  # vertices on the -pi side of a seam triangle
        uv_faces[f_idx, k_idx] = v.shape[0] + torch.arange(f_idx.numel())
        thetas.append(theta[corner_v] + 2 * math.pi)  # continued past +pi, clamped below
        vs.append(vv[corner_v])
    th = torch.cat(thetas).clamp(-theta_max, theta_max)
    uv = torch.stack([0.5 + half * th / theta_max, torch.cat(vs)], dim=1)
    return uv.to(torch.float32), uv_faces


def uv_layout(model: MorphableModel):
    """The model's own UV layout, or :func:`cylindrical_uv` for models without one:
    ``(uv (Vt, 2) float32, uv_faces (F, 3) int64, kind)`` with kind "model" or "cylindrical"."""
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    if model.uv is not None:
        return (model.uv.detach().cpu().to(torch.float32), model.uv_faces.detach().cpu().long(),
                "model")
    uv, uv_faces = cylindrical_uv(model)
    return uv, uv_faces, "cylindrical"


def mirror_symmetric(model: MorphableModel, uv=None, uv_faces=None, *,
                     tolerance: float = 0.02) -> bool:
    """Whether texel (1 - u, v) shows the mirror image (x -> -x) of the surface at (u, v).

    Geometry: the mean shape mirrored about its bounding box's centre plane must lie on
    the mesh's vertices (95th percentile of the nearest-vertex distance <= ``tolerance`` x
    the bounding box diagonal). Layout (when ``uv`` is given, e.g. the model's own): for
    at least 90 % of the vertex pairs that mirror onto each other, the vertex's texture
    coordinate must mirror too, ``|uv[j] - (1 - u_i, v_i)| <= tolerance``. Without ``uv``
    the layout is taken as symmetric by construction (:func:`cylindrical_uv`).
    """
    from scipy.spatial import cKDTree

    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    v = model.mean_shape.detach().cpu().double().numpy()  # (V, 3)
    lo, hi = v.min(0), v.max(0)
    diag = float(np.linalg.norm(hi - lo)) or 1.0
    mirrored = v.copy()
    mirrored[:, 0] = (lo[0] + hi[0]) - v[:, 0]
    dist, pair = cKDTree(v).query(mirrored)  # (V,), (V,)
    if float(np.percentile(dist, 95)) > tolerance * diag:
        return False
    if uv is None:
        return True
    uvt, _ = as_tensor(uv, name="uv")
    uvf, _ = as_tensor(uv_faces, name="uv_faces")
    faces = model.faces.detach().cpu().long().reshape(-1).numpy()
    vert_uv = np.zeros((v.shape[0], 2))
    vert_uv[faces] = uvt.detach().cpu().double().numpy()[uvf.reshape(-1).long().numpy()]
    close = dist <= 1e-3 * diag
    if not close.any():
        return False
    want = np.stack([1.0 - vert_uv[:, 0], vert_uv[:, 1]], 1)[close]  # (P, 2)
    got = vert_uv[pair[close]]
    return bool(np.mean(np.abs(got - want).max(1) <= tolerance) >= 0.9)


# ------------------------------------------------------------------------------- checks
def _check_layout(uv, uv_faces, num_faces: int):
    uvt, _ = as_tensor(uv, name="uv")
    check_shape(uvt, "Vt 2", name="uv")
    check_floating(uvt, name="uv")
    check_finite(uvt, name="uv")
    uvf, _ = as_tensor(uv_faces, name="uv_faces")
    check_shape(uvf, "F 3", name="uv_faces", dims={"F": num_faces})
    check_indices(uvf, uvt.shape[0], name="uv_faces")
    return uvt.detach().cpu().to(torch.float32), uvf.detach().cpu().long()


def _check_size(size) -> int:
    size = check_int(size, name="size", minimum=8)
    if size > MAX_TEXTURE_SIZE:
        raise ValueError(f"size: expected a texture side in [8, {MAX_TEXTURE_SIZE}], got {size}")
    return size


def _check_formation(formation, camera) -> None:
    if not isinstance(formation, Formation):
        raise TypeError(f"formation: expected a Formation, got {type(formation).__name__}")
    if formation.faces is None or formation.normals is None:
        raise ValueError("formation: formed on a vertex_subset; form the whole mesh")
    if formation.verts_cam.shape[0] != 1:
        raise ValueError(f"formation: expected batch size 1, got {formation.verts_cam.shape[0]}")
    if not isinstance(camera, cameras.CAMERA_TYPES):
        names = ", ".join(c.__name__ for c in cameras.CAMERA_TYPES)
        raise TypeError(f"camera: expected one of {names}, got {type(camera).__name__}")
    if camera.batch != 1:
        raise ValueError(f"camera: expected batch size 1, got {camera.batch}")


# ------------------------------------------------------------------------------- baking
def _layout_fragments(uv: torch.Tensor, uv_faces: torch.Tensor, size: int, depth=None):
    """Rasterize the layout: texel (i, j) -> (face (Ht, Wt), bary (Ht, Wt, 3)), OBJ v up.

    depth: optional (Vt,) per texture coordinate; where charts overlap (a layout that is not
    one-to-one, e.g. the folded lips in a cylindrical one) the smallest depth wins.
    """
    z = torch.ones_like(uv[:, 0]) if depth is None else depth.to(uv.dtype)
    screen = torch.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size, z], dim=1)  # (Vt, 3)
    frags = rasterize(screen[None].to(torch.float32), uv_faces, size, size)  # the usual kernel
    return frags.face_index[0], frags.bary[0]  # (Ht, Wt), (Ht, Wt, 3)


def _outer_depth(verts: torch.Tensor, faces: torch.Tensor, uv_faces: torch.Tensor,
                 num_uv: int) -> torch.Tensor:
    """(Vt,) layout depth that lets the outermost surface win: ``1 + r_max - r`` with ``r``
    the distance of the texture coordinate's vertex from the vertical axis through the
    centre of the mesh's bounding box (model space). verts (V, 3); faces, uv_faces (F, 3)."""
    lo, hi = verts.amin(0), verts.amax(0)
    c = 0.5 * (lo + hi)
    r = torch.hypot(verts[:, 0] - c[0], verts[:, 2] - c[2])  # (V,)
    vertex_of = torch.zeros(num_uv, dtype=torch.int64)
    vertex_of[uv_faces.reshape(-1)] = faces.reshape(-1)  # the vertex of each texture corner
    return 1.0 + float(r.max()) - r[vertex_of]


def _layout_interpolate(values: torch.Tensor, face, bary, corners) -> torch.Tensor:
    """Per-corner values over the covered texels: values (N?, 3 corners per face) ->
    (N, C) with ``corners`` (F, 3) the index of each corner into ``values`` (Vc, C)."""
    c = corners[face]  # (N, 3)
    return (bary[..., None] * values[c]).sum(1)  # (N, C)


def _dilate(texture: torch.Tensor, valid: torch.Tensor, steps: int) -> torch.Tensor:
    """Spread valid texels into invalid neighbours, ``steps`` rings (3 x 3 mean of valid)."""
    tex = texture.permute(2, 0, 1)[None] * valid[None, None]  # (1, 3, H, W)
    val = valid[None, None].to(texture.dtype)  # (1, 1, H, W)
    kernel = torch.ones(1, 1, 3, 3, dtype=texture.dtype)
    for _ in range(steps):
        s = F.conv2d(tex, kernel.expand(3, 1, 3, 3), padding=1, groups=3)
        n = F.conv2d(val, kernel, padding=1)
        grow = (val == 0) & (n > 0)
        tex = torch.where(grow, s / n.clamp(min=1), tex)
        val = torch.where(grow, torch.ones_like(val), val)
    out = tex[0].permute(1, 2, 0)
    if bool((val == 0).any()):  # far from every chart: the mean colour
        mean = (texture * valid[..., None]).sum((0, 1)) / valid.sum().clamp(min=1)
        out = torch.where(val[0, 0, ..., None] > 0, out, mean)
    return out


def bake_texture(image, formation: Formation, camera, uv, uv_faces, *, size: int = 512,
                 prior=None, symmetric: bool = True, full_weight: float = 0.3,
                 tolerance: float = 0.01, edge: int = 2, dilate: int = 8) -> ExtractedTexture:
    """Bake the photo's colours into a UV layout for one formed face (module docs, steps 1-6).

    image: (H, W, 3) photo, uint8 or float in [0, 1] (:func:`facelab.fitting.as_rgb_image`).
    formation: a :class:`Formation` of batch 1 (whole mesh) formed with ``camera`` in the
        photo's pixels; its ``verts_cam`` (1, V, 3), ``normals``, ``screen_verts`` are used.
    camera: the :class:`~facelab.cameras.Pinhole` (or orthographic camera) of the photo.
    uv: (Vt, 2) texture coordinates (OBJ convention, v up); uv_faces: (F, 3) indices into
        ``uv``, one per corner of ``formation.faces``.
    size: texture side Ht = Wt in texels (8 to 4096).
    prior: optional fill for texels neither the photo nor the mirror shows: a (Ht, Wt, 3)
        texture, or (V, 3) per-vertex colours interpolated over the layout; colour-matched
        to the photo by a per-channel gain (module docs, step 5). None: mid grey, matched.
    symmetric: use the mirror texel (1 - u, v) (only for a mirror-symmetric layout).
    full_weight: weight from which a texel counts as fully seen, in (0, 1].
    tolerance: depth slack of the visibility test, as a fraction of the mesh's depth range.
    edge: pixels to erode the rendered face's silhouette by before sampling (>= 0): a sample
        whose bilinear footprint reaches past it is weighted down by the covered fraction,
        so the background beside the silhouette does not bleed into the texture.
    dilate: texels to grow the charts by (>= 0).
    Returns an :class:`ExtractedTexture`. Not differentiable (no gradients are tracked).
    """
    _check_formation(formation, camera)
    photo = as_rgb_image(image).detach().cpu()  # (H, W, 3) float32
    H, W = photo.shape[:2]
    faces = formation.faces.detach().cpu().long()
    uv_t, uvf = _check_layout(uv, uv_faces, faces.shape[0])
    size = _check_size(size)
    dilate = check_int(dilate, name="dilate", minimum=0)
    edge = check_int(edge, name="edge", minimum=0)
    if not (isinstance(full_weight, (int, float)) and 0.0 < float(full_weight) <= 1.0):
        raise ValueError(f"full_weight: expected a number in (0, 1], got {full_weight!r}")
    if not (isinstance(tolerance, (int, float)) and 0.0 <= float(tolerance) < 1.0):
        raise ValueError(f"tolerance: expected a number in [0, 1), got {tolerance!r}")
    V = formation.verts_cam.shape[1]
    prior_t = None
    if prior is not None:
        prior_t, _ = as_tensor(prior, name="prior")
        check_floating(prior_t, name="prior")
        check_finite(prior_t, name="prior")
        if prior_t.ndim == 2:
            check_shape(prior_t, "V 3", name="prior", dims={"V": V})
        else:
            check_shape(prior_t, "Ht Wt 3", name="prior", dims={"Ht": size, "Wt": size})
        prior_t = prior_t.detach().cpu().to(torch.float32)

    with torch.no_grad():
        dt = torch.float64
        verts_cam = formation.verts_cam[0].detach().cpu().to(dt)  # (V, 3)
        normals = formation.normals[0].detach().cpu().to(dt)  # (V, 3)
        screen = formation.screen_verts.detach().cpu().to(dt)  # (1, V, 3)
        cam = camera.to(dtype=dt, device="cpu")

        outer = _outer_depth(formation.verts[0].detach().cpu().to(dt), faces, uvf,
                             uv_t.shape[0])  # (Vt,)
        face, bary = _layout_fragments(uv_t, uvf, size, outer)  # (Ht, Wt), (Ht, Wt, 3)
        covered = face >= 0  # (Ht, Wt)
        fi, b = face[covered], bary[covered].to(dt)  # (N,), (N, 3)
        b = b / b.sum(1, keepdim=True)  # float32 barycentrics, renormalised in float64
        X = _layout_interpolate(verts_cam, fi, b, faces)  # (N, 3) camera space
        n = F.normalize(_layout_interpolate(normals, fi, b, faces), dim=1)  # (N, 3)
        proj = cam.project(X[None])[0]  # (N, 3) (u, v, depth) photo pixels
        if camera.perspective_correct:
            ray = F.normalize(X, dim=1)  # from the camera centre (origin) to X
        else:
            ray = torch.tensor([0.0, 0.0, 1.0], dtype=dt).expand_as(X)  # the optical axis
        cos = (-(n * ray).sum(1)).clamp(0.0, 1.0)  # (N,)

        zbuf = rasterize(screen.to(torch.float32), faces, H, W,  # float32: the usual kernel
                         perspective_correct=camera.perspective_correct)
        x, y, z = proj[:, 0], proj[:, 1], proj[:, 2]
        inside = (x >= 0) & (x < W) & (y >= 0) & (y < H)
        i = y.floor().clamp(0, H - 1).long()
        j = x.floor().clamp(0, W - 1).long()
        # the z-buffer's farthest surface among the pixel and its 8 neighbours: a texel on a
        # steep slope lies between pixel centres' depths, an occluded one far behind them
        depth = torch.where(zbuf.face_index[0] >= 0, zbuf.depth[0].to(dt),
                            torch.tensor(-torch.inf, dtype=dt))
        depth = F.max_pool2d(depth[None, None], 3, stride=1, padding=1)[0, 0]  # (H, W)
        fid, zmax = zbuf.face_index[0][i, j], depth[i, j]  # (N,)
        zs = screen[0, :, 2]
        slack = float(tolerance) * float((zs.amax() - zs.amin()).clamp(min=1e-9))
        visible = inside & (fid >= 0) & ((fid == fi) | (z <= zmax + slack))
        grid = torch.stack([2 * x / W - 1, 2 * y / H - 1], dim=1)  # (N, 2) align_corners=False
        sampled = F.grid_sample(photo.permute(2, 0, 1)[None].to(dt), grid[None, None],
                                mode="bilinear", padding_mode="border",
                                align_corners=False)[0, :, 0].T  # (N, 3)
        mask = (zbuf.face_index >= 0).to(dt)[None]  # (1, 1, H, W) the rendered face
        if edge:
            mask = -F.max_pool2d(-mask, 2 * edge + 1, stride=1, padding=edge)  # eroded
        inner = F.grid_sample(mask, grid[None, None], mode="bilinear", padding_mode="zeros",
                              align_corners=False)[0, 0, 0]  # (N,) covered fraction
        w = cos * visible.to(dt) * inner.clamp(0.0, 1.0)  # (N,) in [0, 1]

        tex = torch.zeros(size, size, 3, dtype=dt)
        weight = torch.zeros(size, size, dtype=dt)
        tex[covered] = sampled
        weight[covered] = w

        # the fill: reflectance prior, colour-matched to what the photo shows
        if prior_t is None:
            prior_map = torch.full((size, size, 3), 0.5, dtype=dt)
        elif prior_t.ndim == 2:
            prior_map = torch.zeros(size, size, 3, dtype=dt)
            prior_map[covered] = _layout_interpolate(prior_t.to(dt), fi, b, faces)
        else:
            prior_map = prior_t.to(dt)
        a = (weight / float(full_weight)).clamp(0.0, 1.0)  # (Ht, Wt)
        seen = a >= 0.5
        if bool(seen.any()):
            num = (a[..., None] * tex)[seen].sum(0)
            den = (a[..., None] * prior_map)[seen].sum(0).clamp(min=1e-6)
            prior_map = (prior_map * (num / den).clamp(0.25, 4.0)).clamp(0.0, 1.0)
        if symmetric:
            a_m = torch.flip(a * covered, dims=[1])  # (Ht, Wt), the mirror texel (1 - u, v)
            tex_m = torch.flip(tex, dims=[1])
        else:
            a_m, tex_m = torch.zeros_like(a), tex
        fill = a_m[..., None] * tex_m + (1 - a_m[..., None]) * prior_map
        out = a[..., None] * tex + (1 - a[..., None]) * fill
        source = torch.full((size, size), SOURCE_MODEL, dtype=torch.int8)
        source[a_m >= 0.5] = SOURCE_MIRROR
        source[seen] = SOURCE_PHOTO
        source[~covered] = SOURCE_NONE
        out = _dilate(out, covered, dilate) if dilate else out * covered[..., None]
    return ExtractedTexture(out.clamp(0.0, 1.0).to(torch.float32), weight.to(torch.float32),
                            source, uv_t, uvf, bool(symmetric))


def extract_texture(image, fit, *, size: int | None = None, symmetric: bool | None = None,
                    full_weight: float = 0.3) -> ExtractedTexture:
    """The photo's texture on the fitted head (:func:`bake_texture` with the fit's pieces).

    image: the photo the fit was made on, (H, W, 3) uint8 or float in [0, 1].
    fit: a :class:`facelab.fitting.FitResult` of that photo (its model, camera, formation).
    size: texture side; default the larger of 512 and the model's albedo texture side (a
        photo carries more detail than the model's 256^2 reflectance maps).
    symmetric: mirror fill; default :func:`mirror_symmetric` of the model and its layout.
    full_weight: see :func:`bake_texture`.
    Layout: the model's UV layout, or :func:`cylindrical_uv` when it has none. The fill
    prior is the fit's reflectance (MoFA Eq. 3 with the fitted coefficients): the model's
    albedo texture maps when it has them in its own layout, else its per-vertex albedo.
    Returns an :class:`ExtractedTexture`.
    """
    from facelab.fitting.fit_image import FitResult

    if not isinstance(fit, FitResult):
        raise TypeError(f"fit: expected a FitResult, got {type(fit).__name__}")
    photo = as_rgb_image(image)
    if tuple(photo.shape[:2]) != tuple(fit.image_size):
        raise ValueError(f"image: expected {tuple(fit.image_size)} (the fitted photo's size), "
                         f"got {tuple(photo.shape[:2])}")
    model = fit.model
    uv, uv_faces, kind = uv_layout(model)
    if size is None:
        size = max(int(model.albedo_texture.shape[0]) if model.has_texture else 0,
                   DEFAULT_TEXTURE_SIZE)
    size = _check_size(size)
    if symmetric is None:
        symmetric = mirror_symmetric(model, uv if kind == "model" else None, uv_faces)
    if model.has_texture and kind == "model":
        with torch.no_grad():
            prior = model.albedo_map(fit.params.albedo.to(model.dtype))[0].float()
        if prior.shape[0] != size or prior.shape[1] != size:
            prior = F.interpolate(prior.permute(2, 0, 1)[None], size=(size, size),
                                  mode="bilinear", align_corners=False,
                                  antialias=True)[0].permute(1, 2, 0)
        prior = prior.clamp(0.0, 1.0)
    else:
        prior = fit.albedo.detach().clamp(0.0, 1.0)  # (V, 3)
    return bake_texture(photo, fit.formation, fit.camera, uv, uv_faces, size=size, prior=prior,
                        symmetric=bool(symmetric), full_weight=full_weight)


def texture_vertex_colors(texture, uv, uv_faces, faces, num_vertices: int) -> torch.Tensor:
    """Per-vertex colours sampled from a texture: (V, 3) float32.

    Each triangle corner samples the texture bilinearly at its texture coordinate; a vertex
    takes the mean over its corners (they differ only across seams of the layout).
    texture: (Ht, Wt, 3) float; uv: (Vt, 2); uv_faces, faces: (F, 3); num_vertices: V.
    """
    tex, _ = as_tensor(texture, name="texture")
    check_shape(tex, "Ht Wt 3", name="texture")
    check_floating(tex, name="texture")
    check_finite(tex, name="texture")
    f, _ = as_tensor(faces, name="faces")
    check_shape(f, "F 3", name="faces")
    V = check_int(num_vertices, name="num_vertices", minimum=1)
    check_indices(f, V, name="faces")
    uv_t, uvf = _check_layout(uv, uv_faces, f.shape[0])
    with torch.no_grad():
        corner_uv = uv_t[uvf.reshape(-1)]  # (3F, 2)
        grid = torch.stack([2 * corner_uv[:, 0] - 1, 1 - 2 * corner_uv[:, 1]], 1)  # v up
        t = tex.detach().cpu().to(torch.float32).permute(2, 0, 1)[None]  # (1, 3, Ht, Wt)
        samples = F.grid_sample(t, grid[None, None], mode="bilinear", padding_mode="border",
                                align_corners=False)[0, :, 0].T  # (3F, 3)
        idx = f.detach().cpu().long().reshape(-1)
        total = torch.zeros(V, 3).index_add_(0, idx, samples)
        count = torch.zeros(V).index_add_(0, idx, torch.ones(idx.numel()))
    return (total / count.clamp(min=1)[:, None]).clamp(0.0, 1.0)
