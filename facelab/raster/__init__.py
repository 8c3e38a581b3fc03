"""Rasterization: ``rasterize`` -> ``Fragments`` -> ``interpolate``; ``vertex_visibility``.

The nvdiffrast split: :func:`rasterize` finds, per pixel, the nearest triangle and its
barycentrics (not differentiable); :func:`interpolate` blends per-vertex attributes with
them and is differentiable in the attributes and, given ``screen_verts``, in the positions.
The definitions (edge functions, top-left fill rule, winding, depth test, near plane) are
written out in :mod:`facelab.raster.reference`, the NumPy implementation every compiled
variant matches: Numba on CPU tensors (:mod:`facelab.raster.cpu`), CUDA through CuPy on
CUDA tensors (:mod:`facelab.raster.cuda`, sources in ``kernels/``).

Validation happens here, before any result is returned: shapes, dtypes, devices, finite
values, coordinates within ``MAX_SCREEN_COORD`` (beyond it edge functions lose all
precision or overflow), face indices in range, ``near >= 0`` for perspective-correct
interpolation, and the raster size against ``MAX_RASTER_PIXELS``. On CPU the vertex values
and face indices are checked by the Numba kernels in the passes that read them (no extra
pass; out-of-range faces are skipped, never dereferenced). Barycentrics that still come out
non-finite (degenerate triangles) raise ``ValueError`` instead of spreading NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from facelab._checks import (
    as_tensor,
    check_bounded,
    check_finite,
    check_floating,
    check_indices,
    check_int,
    check_shape,
    like_input,
)
from facelab.numba_cache import repair_numba_cache
from facelab.raster import cpu
from facelab.raster.autograd import InterpolateFunction
from facelab.raster.fragments import Fragments
from facelab.raster.reference import resolve_near

repair_numba_cache()  # a truncated cache file would break the kernels: rebuild them

__all__ = ["MAX_RASTER_PIXELS", "MAX_SCREEN_COORD", "Fragments", "rasterize", "interpolate",
           "vertex_visibility"]

#: Largest batch x height x width one call may rasterize (2**26, e.g. 8192 x 8192 or
#: 64 x 1024 x 1024; ~1.6 GB of fragments in float32). Render bigger jobs in batches.
MAX_RASTER_PIXELS = 1 << 26
#: Largest |x|, |y|, |depth| of a screen vertex (pixels / camera units). Far beyond any
#: image; past it float32 edge functions cannot place pixels and eventually overflow.
MAX_SCREEN_COORD = 1e12
# Perspective-correct interpolation divides by depth: vertices closer to the camera than
# this (in the working dtype) count as at the camera and their triangles are culled.
_MIN_PERSPECTIVE_DEPTH = {torch.float32: 1e-30, torch.float64: 1e-300}


def _check_vertex_values(verts) -> None:
    """Raise ValueError for NaN/Inf vertices or coordinates beyond ``MAX_SCREEN_COORD``."""
    check_finite(verts, name="screen_verts")
    check_bounded(verts, MAX_SCREEN_COORD, name="screen_verts", what="coordinates")


def _check_mesh(screen_verts, faces):
    """Validate (B, V, 3) float vertices and (F, 3) in-range faces; return tensors.

    The vertex *values* (finite, bounded) and face indices of CUDA tensors are checked here;
    those of CPU tensors by the Numba kernels in ``_rasterize_tensors`` (same errors, raised
    before any output is returned; no separate pass and no torch intra-op threads, which
    stalled the 2-thread path for milliseconds on a loaded machine). The face indices are
    checked on every call: a check cached per faces tensor and its ``_version`` missed edits
    made through NumPy (``torch.from_numpy``) or ``.data``, and the kernel then read out of
    bounds (a segfault); in the kernel the check is one unsigned compare per index.
    """
    verts, was_numpy = as_tensor(screen_verts, name="screen_verts")
    check_floating(verts, name="screen_verts")
    dims = check_shape(verts, "B V 3", name="screen_verts")
    if verts.is_cuda:
        _check_vertex_values(verts)
    faces_t, _ = as_tensor(faces, name="faces")
    check_shape(faces_t, "F 3", name="faces")
    if verts.is_cuda or faces_t.is_floating_point() or faces_t.is_complex() \
            or faces_t.dtype == torch.bool:
        check_indices(faces_t, dims["V"], name="faces")  # CPU integers: the kernel checks
    return verts, faces_t.to(device=verts.device, dtype=torch.int64).contiguous(), was_numpy


def _check_near(near, perspective_correct: bool):
    if near is None:
        return None
    if isinstance(near, bool) or not isinstance(near, (int, float, np.integer, np.floating)):
        raise TypeError(f"near: expected a number or None, got {type(near).__name__}")
    if not math.isfinite(near):
        raise ValueError(f"near: expected a finite number, got {near}")
    if perspective_correct and near < 0:
        raise ValueError(f"near: expected a number >= 0 with perspective_correct=True "
                         f"(interpolating 1/z needs every vertex in front of the camera), "
                         f"got {near}")
    return float(near)


def _check_raster_size(batch: int, height: int, width: int) -> None:
    pixels = batch * height * width
    if pixels > MAX_RASTER_PIXELS:
        raise ValueError(
            f"height, width: {batch} x {height} x {width} = {pixels:,} pixels exceeds "
            f"facelab.raster.MAX_RASTER_PIXELS = {MAX_RASTER_PIXELS:,}; render a smaller "
            "image or fewer items per call")


def _rasterize_tensors(verts, faces, height, width, perspective_correct, cull_backfaces,
                       near):
    """Backend dispatch on validated tensors -> (face_index, bary, depth) tensors."""
    _check_raster_size(verts.shape[0], height, width)
    near_z = resolve_near(near, perspective_correct)
    if perspective_correct:
        near_z = max(near_z, _MIN_PERSPECTIVE_DEPTH[verts.dtype])
    verts = verts.detach().contiguous()
    if verts.is_cuda:
        from facelab.raster import cuda

        out = cuda.rasterize_cuda(verts, faces, height, width, perspective_correct,
                                  cull_backfaces, near_z)
        nonfinite = True
    else:
        *out, bad, nonfinite, bad_faces = cpu.rasterize_numba_counts(
            verts.numpy(), faces.cpu().numpy(), height, width, perspective_correct,
            cull_backfaces, near_z, MAX_SCREEN_COORD)
        if bad_faces:
            check_indices(faces, verts.shape[1], name="faces")
            raise ValueError(f"faces: expected indices in [0, {verts.shape[1]})")  # not reached
        if bad:
            _check_vertex_values(verts)
            raise ValueError(f"screen_verts: {bad} vertices have NaN/Inf coordinates or ones "
                             f"beyond {MAX_SCREEN_COORD:g}")  # not reached: the line above raises
        out = tuple(torch.from_numpy(a) for a in out)
    face_index, bary, depth = out
    if nonfinite and not (bool(torch.isfinite(bary).all()) and bool(torch.isfinite(depth).all())):
        bad = int((~torch.isfinite(bary).all(-1) | ~torch.isfinite(depth)).sum())
        raise ValueError(f"screen_verts: {bad} pixels got non-finite barycentrics or depth "
                         "from nearly degenerate triangles; scale the coordinates to "
                         "pixels or drop the degenerate triangles")
    return face_index, bary, depth


def rasterize(screen_verts, faces, height: int, width: int, perspective_correct: bool = False,
              cull_backfaces: bool = False, near: float | None = None) -> Fragments:
    """Find the nearest triangle under each pixel centre, with barycentrics and depth.

    screen_verts: (B, V, 3) float32/float64, (x, y, depth): x right, y down in pixels,
        pixel (i, j) sampled at (j + 0.5, i + 0.5); depth grows away from the camera
        (camera z for a perspective camera). torch (CPU or CUDA) or NumPy.
    faces: (F, 3) int, vertex indices; model faces are counter-clockwise seen from the
        front, which is counter-clockwise on screen after the camera's y-flip: front-facing
        triangles have positive doubled area E(v1, v2, v0) in y-down pixel coordinates.
    height, width: image size in pixels.
    perspective_correct: interpolate as 1/z (x, y must already be projected, depth the
        camera z); bary and depth of the result are then perspective-correct.
    cull_backfaces: drop triangles with negative (back-facing) screen area.
    near: cull triangles with any vertex depth <= near. None: 0 when perspective_correct
        (triangles at or behind the camera are culled), no culling otherwise. Must be
        >= 0 with perspective_correct (ValueError); depths below 1e-30 (float32) count as
        at the camera there.

    Returns ``Fragments(face_index (B, H, W) int64 (-1 empty), bary (B, H, W, 3),
    depth (B, H, W) (0 where empty), perspective_correct)`` in the dtype/device of
    ``screen_verts``; NumPy arrays when ``screen_verts`` is NumPy.
    Nearest wins; equal float32 depths go to the smaller face id. The top-left fill rule
    makes shared edges watertight. Degenerate (zero-area) triangles never hit. Not
    differentiable: gradients flow through :func:`interpolate`.
    Raises ValueError/TypeError for bad shapes, dtypes, devices, NaN/Inf vertices,
    coordinates beyond ``MAX_SCREEN_COORD``, out-of-range faces (checked on every call) or
    more than ``MAX_RASTER_PIXELS`` pixels; nothing is returned then.
    """
    verts, faces_t, was_numpy = _check_mesh(screen_verts, faces)
    height = check_int(height, name="height", minimum=1)
    width = check_int(width, name="width", minimum=1)
    near = _check_near(near, bool(perspective_correct))
    face_index, bary, depth = _rasterize_tensors(verts, faces_t, height, width,
                                                 bool(perspective_correct),
                                                 bool(cull_backfaces), near)
    return Fragments(like_input(face_index, was_numpy), like_input(bary, was_numpy),
                     like_input(depth, was_numpy), bool(perspective_correct))


def interpolate(attrs, fragments: Fragments, faces, screen_verts=None):
    """Blend per-vertex attributes over the image with the fragments' barycentrics.

    out[b, i, j] = sum_k bary[b, i, j, k] * attrs[b, faces[face_index[b, i, j], k]].

    attrs: (B, V, C) float32/float64 torch tensor (NumPy accepted, NumPy returned, no grad),
        finite.
    fragments: from :func:`rasterize` for the same B and faces.
    faces: (F, 3) int vertex indices.
    screen_verts: optional (B, V, 3), the vertices ``fragments`` were rasterized from, same
        dtype as attrs. When given, the barycentrics are recomputed from it (perspective-
        correct if the fragments are) so the result is differentiable in the positions:
        d bary / d verts is analytic for the pixel's triangle, the face assignment held
        fixed. Silhouettes are NOT differentiable: moving an edge across a pixel centre
        changes which triangle covers it, and that contributes no gradient.
    Returns (B, H, W, C) in attrs' dtype/device; 0 on empty pixels. Differentiable in
    attrs (and screen_verts when given). Raises ValueError for NaN/Inf barycentrics or
    attributes, and when a pixel's triangle is degenerate in ``screen_verts`` (its
    barycentrics cannot be recomputed), instead of returning NaN.
    """
    attrs_t, was_numpy = as_tensor(attrs, name="attrs")
    check_floating(attrs_t, name="attrs")
    dims = check_shape(attrs_t, "B V C", name="attrs")
    check_finite(attrs_t, name="attrs")
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments: expected Fragments, got {type(fragments).__name__}")
    face_index, _ = as_tensor(fragments.face_index, name="fragments.face_index")
    bary, _ = as_tensor(fragments.bary, name="fragments.bary")
    check_shape(face_index, "B H W", name="fragments.face_index", dims=dims)
    check_shape(bary, "B H W 3", name="fragments.bary", dims=dims)
    check_floating(bary, name="fragments.bary")
    check_finite(bary, name="fragments.bary")
    if face_index.is_floating_point() or face_index.dtype == torch.bool:
        raise TypeError(f"fragments.face_index: expected an integer dtype, got "
                        f"{face_index.dtype}")
    if face_index.numel() and int(face_index.min()) < -1:
        raise ValueError(f"fragments.face_index: expected values >= -1 (-1 = empty), got "
                         f"min {int(face_index.min())}")
    faces_t, _ = as_tensor(faces, name="faces")
    check_shape(faces_t, "F 3", name="faces", dims=dims)
    check_indices(faces_t, dims["V"], name="faces")
    if face_index.numel() and int(face_index.max()) >= faces_t.shape[0]:
        raise ValueError(f"fragments.face_index: expected values in [-1, {faces_t.shape[0]}), "
                         f"got max {int(face_index.max())}")
    device, dtype = attrs_t.device, attrs_t.dtype
    verts = None
    if screen_verts is not None:
        verts, _ = as_tensor(screen_verts, name="screen_verts")
        check_shape(verts, "B V 3", name="screen_verts", dims=dims)
        check_finite(verts, name="screen_verts")
        check_bounded(verts, MAX_SCREEN_COORD, name="screen_verts", what="coordinates")
        if verts.dtype != dtype or verts.device != device:
            raise TypeError(f"screen_verts: expected {dtype} on {device} like attrs, "
                            f"got {verts.dtype} on {verts.device}")
        verts = verts.contiguous()
    return like_input(InterpolateFunction.apply(
        attrs_t.contiguous(), verts,
        face_index.to(device=device, dtype=torch.int64).contiguous(),
        bary.to(device=device, dtype=dtype).contiguous(),
        faces_t.to(device=device, dtype=torch.int64).contiguous(),
        bool(fragments.perspective_correct)), was_numpy)


def vertex_visibility(screen_verts, faces, height: int, width: int, tolerance: float = 0.02,
                      perspective_correct: bool = False, near: float | None = None):
    """(B, V) bool: which vertices are visible (MoFA Eq. (8)'s set of visible vertices).

    A vertex is visible when (1) it lies in the image, 0 <= x < width and 0 <= y < height;
    (2) it belongs to at least one front-facing, non-degenerate, non-near-culled triangle;
    (3) it is not occluded: its depth <= z-buffer at its pixel (floor(y), floor(x)) +
    ``tolerance * extent``, where the z-buffer is rasterized with back faces culled and
    extent is the item's vertex depth range (its largest |depth| when the range is 0).
    An empty pixel under a vertex occludes nothing.

    screen_verts: (B, V, 3) float32/float64 (torch or NumPy), as for :func:`rasterize`.
    faces: (F, 3) int. tolerance: >= 0, a fraction of the depth extent (default 2 %: the
    z-buffer is sampled at the pixel centre, not at the vertex, so steep surfaces need
    slack; 2 % suits meshes of ~1 px triangles up to ~70° incidence).
    perspective_correct, near: as for :func:`rasterize`.
    Returns a bool tensor (NumPy when screen_verts is NumPy). Not differentiable.
    """
    verts, faces_t, was_numpy = _check_mesh(screen_verts, faces)
    height = check_int(height, name="height", minimum=1)
    width = check_int(width, name="width", minimum=1)
    near = _check_near(near, bool(perspective_correct))
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.floating)) \
            or not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance: expected a finite number >= 0, got {tolerance!r}")
    verts = verts.detach()
    face_index, _, depth = _rasterize_tensors(verts, faces_t, height, width,
                                              bool(perspective_correct), True, near)
    B, V = verts.shape[:2]
    tri = verts[:, faces_t]  # (B, F, 3, 3)
    v0, v1, v2 = tri[:, :, 0], tri[:, :, 1], tri[:, :, 2]  # (B, F, 3) each
    area = _edge_function_torch(v1, v2, v0)  # (B, F) doubled signed area, > 0 front-facing
    near_value = resolve_near(near, perspective_correct)
    if perspective_correct:
        near_value = max(near_value, _MIN_PERSPECTIVE_DEPTH[verts.dtype])
    near_z = torch.tensor(near_value, dtype=verts.dtype)
    front_face = (area > 0) & (tri[..., 2].amin(dim=2) > near_z.to(verts.device))  # (B, F)
    hits = torch.zeros(B, V, dtype=torch.int64, device=verts.device)
    hits.scatter_add_(1, faces_t.reshape(1, -1).expand(B, -1),
                      front_face.repeat_interleave(3, dim=1).long())  # (B, V)
    x, y, z = verts[..., 0], verts[..., 1], verts[..., 2]  # (B, V)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    i = y.floor().clamp(0, height - 1).long()
    j = x.floor().clamp(0, width - 1).long()
    batch = torch.arange(B, device=verts.device)[:, None]  # (B, 1)
    fid, zbuf = face_index[batch, i, j], depth[batch, i, j]  # (B, V)
    if V == 0:
        return like_input(torch.zeros(B, 0, dtype=torch.bool, device=verts.device), was_numpy)
    extent = z.amax(dim=1) - z.amin(dim=1)  # (B,)
    extent = torch.where(extent == 0, z.abs().amax(dim=1), extent)
    unoccluded = (fid < 0) | (z <= zbuf + tolerance * extent[:, None])
    return like_input(inside & (hits > 0) & unoccluded, was_numpy)


def _edge_function_torch(a, b, p):
    """reference.edge_function on tensors (..., >=2): evaluated from the (y, x)-smaller end."""
    ax, ay, bx, by, px, py = a[..., 0], a[..., 1], b[..., 0], b[..., 1], p[..., 0], p[..., 1]
    swap = (ay > by) | ((ay == by) & (ax > bx))
    forward = (px - ax) * (by - ay) - (py - ay) * (bx - ax)
    backward = -((px - bx) * (ay - by) - (py - by) * (ax - bx))
    return torch.where(swap, backward, forward)
