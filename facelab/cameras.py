"""The three cameras of the seed papers: scaled-orthographic, weak-perspective, pinhole.

Coordinate frames (DESIGN.md):

- Model space: millimetres; the face looks toward +z, y is up and x points to the
  right of a viewer standing in front of the face.
- Camera space (perspective only): OpenCV, x right, y down, z forward (z > 0 in
  front of the camera). :func:`model_to_camera` applies the flip diag(1, -1, -1)
  that turns model space into camera space.
- Screen space: pixels, x right, y down; pixel (i, j) covers [j, j+1) x [i, i+1)
  and is sampled at (j + 0.5, i + 0.5). The rasterizer consumes (B, V, 3) screen
  vertices ``(x_pix, y_pix, depth)`` where depth grows away from the camera and the
  nearest surface wins: for the pinhole camera depth is the camera z
  (:func:`screen_from_camera`); for the two affine cameras any monotone depth
  works, and :func:`screen_from_scaled_orthographic` and
  :func:`screen_from_weak_perspective` use minus the toward-viewer z.

All functions take torch tensors (CPU or CUDA, float32 or float64; camera
parameters must share the vertices' dtype) and also accept NumPy arrays, returning
NumPy when the vertices were NumPy. Camera parameters have a leading batch size B
equal to the vertices' B, or 1 to share one camera across the batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_int,
    check_positive,
    check_shape,
    like_input,
)

__all__ = [
    "CAMERA_TYPES",
    "Pinhole",
    "ScaledOrthographic",
    "WeakPerspective",
    "decompose_scaled_orthographic",
    "flip_y",
    "intrinsics_from_fov",
    "model_to_camera",
    "perspective_depth_valid",
    "project_perspective",
    "project_scaled_orthographic",
    "project_weak_perspective",
    "scaled_orthographic_matrix",
    "scaled_orthographic_transform",
    "screen_from_camera",
    "screen_from_scaled_orthographic",
    "screen_from_weak_perspective",
    "weak_perspective_to_screen",
]

# Model space (y up, face toward +z) -> OpenCV camera space (y down, z forward).
_MODEL_TO_OPENCV = (1.0, -1.0, -1.0)


def _points(x, spec: str, name: str) -> tuple[torch.Tensor, bool]:
    """Validate the (B, V, k) point argument; return ``(tensor, was_numpy)``."""
    t, was_numpy = as_tensor(x, name=name)
    check_shape(t, spec, name=name)
    check_floating(t, name=name)
    check_finite(t, name=name)
    return t, was_numpy


def _param(x, tail: str, name: str, like: torch.Tensor, like_name: str) -> torch.Tensor:
    """Validate a per-batch camera parameter of shape (B, *tail) or (1, *tail).

    B is ``like.shape[0]``; the dtype must match ``like``'s. Returns the tensor on
    ``like``'s device.
    """
    t, _ = as_tensor(x, name=name)
    batch = like.shape[0]
    spec = ("B " + tail).strip()
    check_shape(t, spec, name=name)
    if t.shape[0] not in (batch, 1):
        got = "(" + ", ".join(str(d) for d in t.shape) + ("," if t.ndim == 1 else "") + ")"
        want = "(" + ", ".join(["B", *tail.split()]) + ("," if not tail else "") + ")"
        raise ValueError(f"{name}: expected {want} with B={batch} or 1, got {got}")
    check_floating(t, name=name)
    if t.dtype != like.dtype:
        raise TypeError(f"{name}: expected dtype {like.dtype} (that of {like_name}), got {t.dtype}")
    check_finite(t, name=name)
    return t.to(like.device)


# ----------------------------------------------------------------------------------------
# The arithmetic of each camera, on validated tensors. The public functions below validate and
# call these; the camera objects and facelab.form (which validate once at their own boundary)
# call them directly, so a formed face is not re-validated at every step of the chain.
# ----------------------------------------------------------------------------------------


def _affine(v: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """``M [v; 1]``: (B, V, 3), (B or 1, 3, 4) -> (B, V, 3)."""
    return v @ M[:, :, :3].transpose(-1, -2) + M[:, None, :, 3]


def _rigid(v: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Model -> OpenCV camera ``F (R v) + t``: (B, V, 3), (B|1, 3, 3), (B|1, 3) -> (B, V, 3)."""
    flip = torch.tensor(_MODEL_TO_OPENCV, dtype=v.dtype, device=v.device)
    return (v @ R.transpose(-1, -2)) * flip + t[:, None, :]


def _pinhole_uv(v: torch.Tensor, f: torch.Tensor, c: torch.Tensor, eps: float) -> torch.Tensor:
    """``f xy / max(z, eps) + c``: (B, V, 3), (B|1, 2), (B|1, 2) -> (B, V, 2) pixels."""
    z = v[..., 2:].clamp(min=eps)  # (B, V, 1)
    return f[:, None, :] * v[..., :2] / z + c[:, None, :]


def _pinhole_screen(v: torch.Tensor, f: torch.Tensor, c: torch.Tensor, eps: float = 1e-6):
    """(u, v, z): :func:`_pinhole_uv` and the unclamped camera depth, (B, V, 3)."""
    return torch.cat([_pinhole_uv(v, f, c, eps), v[..., 2:]], dim=-1)


def _weak_xy(v: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``s (x, y) + t`` in normalised image units (y up): (B, V, 2)."""
    return s[:, None, None] * v[..., :2] + t[:, None, :]


def _normalised_to_pixels(p: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(y-up, [-1, 1]) normalised points -> facelab pixels (y down): (B, V, 2)."""
    return torch.stack([(p[..., 0] + 1.0) * (0.5 * width), (1.0 - p[..., 1]) * (0.5 * height)],
                       dim=-1)


def _weak_screen(v: torch.Tensor, s: torch.Tensor, t: torch.Tensor, height: int, width: int):
    """(x_pix, y_pix, -s z H / 2) for model-axis (y up) points: (B, V, 3)."""
    xy = _normalised_to_pixels(_weak_xy(v, s, t), height, width)
    depth = -s[:, None] * v[..., 2] * (0.5 * height)  # (B, V)
    return torch.cat([xy, depth[..., None]], dim=-1)


# ----------------------------------------------------------------------------------------
# Scaled orthographic: 3DDFA_V2 (Guo et al. ECCV 2020) Sec. 2.1
# ----------------------------------------------------------------------------------------


def scaled_orthographic_transform(verts, T):
    """All three rows of 3DDFA's similarity transform: ``T @ [v; 1]`` (3DDFA_V2 Eq. (3)).

    verts: (B, V, 3) float32/float64, model space (mm, y up, face toward +z).
    T: (B, 3, 4) (or (1, 3, 4)), ``T = [f R | t]``: scale f, rotation R, translation t.
        3DDFA_V2 writes ``T = f [R; t3d]`` with ``t3d = (t2d, 0)``; its Eq. (2) and
        released code add an unscaled translation, which is the form used here (any
        regressed 3x4 matrix is accepted as is).

    Returns (B, V, 3): x and y in 3DDFA's image frame (x right, **y up**, origin at
    the bottom-left of the crop; see :func:`flip_y`), and z pointing toward the
    viewer (larger z = closer), usable as a depth after negation.
    """
    v, was_numpy = _points(verts, "B V 3", "verts")
    M = _param(T, "3 4", "T", v, "verts")
    return like_input(_affine(v, M), was_numpy)  # (B, V, 3)


def project_scaled_orthographic(verts, T):
    """Scaled orthographic projection ``V2d = Pr T [v; 1]`` (3DDFA_V2 Eq. (3)).

    verts: (B, V, 3) float32/float64, model space (mm).
    T: (B, 3, 4), ``[f R | t]`` as in :func:`scaled_orthographic_transform`;
        ``Pr = [[1, 0, 0], [0, 1, 0]]`` keeps its first two rows.

    Returns (B, V, 2) in 3DDFA's y-up image frame (for a 120 x 120 crop in
    3DDFA_V2). Use ``flip_y(points, height)`` for facelab's y-down screen space.
    """
    v, was_numpy = _points(verts, "B V 3", "verts")
    M = _param(T, "3 4", "T", v, "verts")
    out = v @ M[:, :2, :3].transpose(-1, -2) + M[:, None, :2, 3]  # (B, V, 2)
    return like_input(out, was_numpy)


def scaled_orthographic_matrix(scale, rotation, translation):
    """Compose ``T = [scale R | t]``: (B, 3, 4) (3DDFA_V2 Sec. 2.1).

    scale: (B,) float32/float64, f (pixels per mm).
    rotation: (B, 3, 3) rotation matrices R.
    translation: (B, 3) t; 3DDFA_V2 uses ``t = (t2d, 0)``; its z only offsets depth.

    Returns T: (B, 3, 4).
    """
    R, was_numpy = _points(rotation, "B 3 3", "rotation")
    s = _param(scale, "", "scale", R, "rotation")
    t = _param(translation, "3", "translation", R, "rotation")
    batch = R.shape[0]
    T = torch.cat(
        [s.expand(batch)[:, None, None] * R, t.expand(batch, 3)[:, :, None]], dim=-1
    )  # (B, 3, 4)
    return like_input(T, was_numpy)


def decompose_scaled_orthographic(T, rows: int = 3):
    """Split ``T ~ [f R | t]`` into scale, nearest rotation and translation.

    T: (B, 3, 4) float32/float64, possibly not exactly scaled-orthonormal (e.g.
        regressed by a network).
    rows: 3 (default) fits ``f R`` to the whole 3x3 block M by the polar
        decomposition: with ``M = U S V^T`` (SVD), ``R = U diag(1, 1, d) V^T``,
        ``d = det(U V^T)`` (so det R = +1), and ``f = (s1 + s2 + d s3) / 3`` is the
        least-squares scale. 2 uses only the first two rows (the ones
        :func:`project_scaled_orthographic` sees), as 3DDFA_V2's ``P2sRt`` does,
        but orthonormalises them by SVD (``r1, r2`` from ``U V^T`` of the 2 x 3
        block, ``r3 = r1 x r2``, ``f = (s1 + s2) / 2``) instead of normalising each
        row separately.

    Returns ``(scale (B,), R (B, 3, 3), t (B, 3))``; for ``T`` made by
    :func:`scaled_orthographic_matrix` with f > 0 they are the inputs again.
    Uses an SVD, whose gradient is undefined when singular values repeat (exactly
    the scaled-rotation case): do not backpropagate through it.
    """
    M, was_numpy = _points(T, "B 3 4", "T")
    if isinstance(rows, bool) or rows not in (2, 3):
        raise ValueError(f"rows: expected 2 or 3, got {rows!r}")
    A = M[:, :, :3]  # (B, 3, 3)
    if rows == 3:
        U, S, Vh = torch.linalg.svd(A)  # (B, 3, 3), (B, 3), (B, 3, 3)
        d = torch.sign(torch.linalg.det(U @ Vh))  # (B,)
        d = torch.where(d == 0, torch.ones_like(d), d)
        D = torch.ones_like(S)
        D[:, 2] = d
        R = (U * D[:, None, :]) @ Vh  # U diag(D) V^T, (B, 3, 3)
        scale = (S * D).sum(-1) / 3.0
    else:
        U, S, Vh = torch.linalg.svd(A[:, :2, :], full_matrices=False)  # (B,2,2), (B,2), (B,2,3)
        R2 = U @ Vh  # (B, 2, 3), orthonormal rows
        r3 = torch.linalg.cross(R2[:, 0], R2[:, 1], dim=-1)  # (B, 3)
        R = torch.cat([R2, r3[:, None, :]], dim=1)  # (B, 3, 3)
        scale = S.mean(-1)
    t = M[:, :, 3]  # (B, 3)
    return like_input(scale, was_numpy), like_input(R, was_numpy), like_input(t, was_numpy)


def flip_y(points, height: float):
    """Reflect y about the image's horizontal mid-line: ``y -> height - y``.

    points: (..., D) float32/float64 with D >= 2; only ``points[..., 1]`` changes.
    height: image height in pixels (> 0).

    Maps 3DDFA's y-up image frame (projected points of
    :func:`project_scaled_orthographic`, origin at the bottom-left) to facelab's
    y-down screen space, and back (it is its own inverse). It reflects the
    continuous frame [0, height], so pixel row i's area maps exactly onto row
    ``height - 1 - i``. (3DDFA_V2's released code also subtracts 1 from x and z for
    1-based indexing; facelab does not.)
    """
    p, was_numpy = _points(points, "... *", "points")
    if p.shape[-1] < 2:
        raise ValueError(f"points: expected (..., D) with D >= 2, got {tuple(p.shape)}")
    h = check_positive(height, name="height")
    out = torch.cat([p[..., :1], h - p[..., 1:2], p[..., 2:]], dim=-1)
    return like_input(out, was_numpy)


def screen_from_scaled_orthographic(verts, T, height: float):
    """Screen vertices for the rasterizer under 3DDFA's camera: (B, V, 3).

    verts: (B, V, 3) float32/float64, model space (mm).
    T: (B, 3, 4), ``[f R | t]`` (3DDFA_V2 Eq. (3)), mapping into a y-up image of
        ``height`` pixels (3DDFA_V2: the 120 x 120 crop).
    height: image height in pixels.

    Returns ``(x, height - y, -z)`` of :func:`scaled_orthographic_transform`: x right,
    y down (:func:`flip_y`), and depth = minus the toward-viewer z, so depth grows
    away from the camera. Negating both y and z keeps the frame right-handed.
    """
    p = scaled_orthographic_transform(verts, T)
    was_numpy = not isinstance(p, torch.Tensor)
    p = torch.as_tensor(p)
    h = check_positive(height, name="height")
    out = torch.stack([p[..., 0], h - p[..., 1], -p[..., 2]], dim=-1)  # (B, V, 3)
    return like_input(out, was_numpy)


# ----------------------------------------------------------------------------------------
# Weak perspective: DECA / NeuFace (s, tx, ty)
# ----------------------------------------------------------------------------------------


def project_weak_perspective(verts, scale, trans):
    """Weak-perspective projection ``s (x, y) + t`` into normalised image coordinates.

    verts: (B, V, 3) float32/float64, model space.
    scale: (B,) s, normalised units per model unit.
    trans: (B, 2) t = (tx, ty), normalised units.

    Returns (B, V, 2) in normalised image coordinates, x right and **y up** (model
    space's orientation), with [-1, 1] spanning the image; map to pixels with
    :func:`weak_perspective_to_screen`. The camera of NeuFace Eq. (2) (pi(J, p),
    p = (s, tx, ty), inherited from DECA). DECA's released code computes
    ``s ((x, y) + t)``; convert its camera with ``trans = s * (tx, ty)``.
    """
    v, was_numpy = _points(verts, "B V 3", "verts")
    s = _param(scale, "", "scale", v, "verts")
    t = _param(trans, "2", "trans", v, "verts")
    return like_input(_weak_xy(v, s, t), was_numpy)  # (B, V, 2)


def weak_perspective_to_screen(points, height: int, width: int):
    """Normalised image coordinates (y up, [-1, 1]) -> facelab pixels (y down).

    points: (B, V, 2) float32/float64, output of :func:`project_weak_perspective`.
    height, width: image size in pixels.

    Returns (B, V, 2): ``x_pix = (x + 1) / 2 * width``, ``y_pix = (1 - y) / 2 *
    height``. So (-1, 1) is the top-left image corner, (1, -1) the bottom-right
    corner, (0, 0) the image centre, and pixel (i, j)'s centre (j + 0.5, i + 0.5)
    is at ``x = (2 j + 1) / width - 1`` (the ``align_corners=False`` convention of
    ``torch.nn.functional.grid_sample``, whose y however points down). x and y are
    scaled separately, so use a square image to avoid stretching.
    """
    p, was_numpy = _points(points, "B V 2", "points")
    h = check_int(height, name="height", minimum=1)
    w = check_int(width, name="width", minimum=1)
    return like_input(_normalised_to_pixels(p, h, w), was_numpy)


def screen_from_weak_perspective(verts, scale, trans, height: int, width: int):
    """Screen vertices for the rasterizer under the weak-perspective camera: (B, V, 3).

    verts: (B, V, 3) float32/float64, model space (y up, face toward +z).
    scale: (B,), trans: (B, 2): as in :func:`project_weak_perspective`.
    height, width: image size in pixels.

    Returns ``(x_pix, y_pix, depth)`` with (x_pix, y_pix) from
    :func:`weak_perspective_to_screen` and ``depth = -s z height / 2`` (minus the
    toward-viewer z, in the same pixel units as y), which grows away from the camera.
    """
    v, was_numpy = _points(verts, "B V 3", "verts")
    s = _param(scale, "", "scale", v, "verts")
    t = _param(trans, "2", "trans", v, "verts")
    h = check_int(height, name="height", minimum=1)
    w = check_int(width, name="width", minimum=1)
    return like_input(_weak_screen(v, s, t, h, w), was_numpy)


# ----------------------------------------------------------------------------------------
# Pinhole perspective: MoFA (Tewari et al. ICCV 2017) Sec. 5 "Perspective Camera"
# ----------------------------------------------------------------------------------------


def model_to_camera(verts, rotation, translation):
    """Rigid model -> OpenCV camera transform ``X_cam = F (R X) + t``, ``F = diag(1, -1, -1)``.

    verts: (B, V, 3) float32/float64, model space (mm, y up, face toward +z).
    rotation: (B, 3, 3) R, the head rotation, applied in model space (so Euler
        pitch/yaw/roll are about the model's x, y (up) and z axes).
    translation: (B, 3) t, in camera space (OpenCV, mm): t = (0, 0, d) puts the
        model origin d mm in front of the camera.

    Returns verts_cam: (B, V, 3), OpenCV camera space. The flip F is applied here,
    after the rotation and before the translation: it turns model y-up into camera
    y-down and model +z (toward the viewer) into camera -z (toward the camera).
    So with R = I and t = (0, 0, d) the face looks *at* the camera and appears
    upright: the nose tip (largest model z) gets the smallest camera z, and points
    higher on the face (larger model y) get smaller v. MoFA Sec. 5 writes the same
    rigid map as ``T^-1 (v - t_w)`` for a camera with pose (T, t_w) in world space;
    with a y-up, -z-looking camera frame that is ``rotation = T^T``,
    ``translation = -F T^T t_w`` here.
    """
    v, was_numpy = _points(verts, "B V 3", "verts")
    R = _param(rotation, "3 3", "rotation", v, "verts")
    t = _param(translation, "3", "translation", v, "verts")
    return like_input(_rigid(v, R, t), was_numpy)  # (B, V, 3)


def _focal_xy(focal, like: torch.Tensor) -> torch.Tensor:
    """Validate focal (B,) or (B, 2), finite and > 0, and return it as (B or 1, 2).

    A focal length <= 0 would mirror the image (negative) or collapse it to the principal
    point (zero), so it is refused here, for every caller of the perspective camera.
    """
    f, _ = as_tensor(focal, name="focal")
    if f.ndim == 1:
        f = _param(f, "", "focal", like, "verts_cam")
        f = torch.stack([f, f], dim=-1)
    elif f.ndim != 2:
        raise ValueError(f"focal: expected (B,) or (B, 2), got {tuple(f.shape)}")
    else:
        f = _param(f, "2", "focal", like, "verts_cam")
    check_finite(f, name="focal")
    if f.numel() and not bool((f.detach() > 0).all()):
        raise ValueError(f"focal: expected focal lengths > 0 (pixels), got values down to "
                         f"{float(f.detach().min()):.4g}")
    return f


def project_perspective(verts_cam, focal, principal, eps: float = 1e-6):
    """Pinhole projection ``u = fx x / z + cx``, ``v = fy y / z + cy`` (MoFA Sec. 5, Pi).

    verts_cam: (B, V, 3) float32/float64, OpenCV camera space (x right, y down,
        z forward), e.g. from :func:`model_to_camera`.
    focal: (B,) (fx = fy) or (B, 2) (fx, fy), in pixels, finite and > 0 (ValueError
        otherwise: a negative focal would mirror the image, zero would collapse it).
    principal: (B, 2) (cx, cy), in pixels (the image centre is (W/2, H/2)).
    eps: smallest divisor: z is replaced by ``max(z, eps)``.

    Returns (B, V, 2) pixel coordinates (facelab screen space). Never NaN: points
    at or behind the camera (z <= eps) are divided by eps, giving huge but finite
    coordinates with zero gradient in z. Mask them with
    :func:`perspective_depth_valid`; the rasterizer culls triangles at or behind the
    near plane on its own.
    """
    v, was_numpy = _points(verts_cam, "B V 3", "verts_cam")
    f = _focal_xy(focal, v)  # (B, 2)
    c = _param(principal, "2", "principal", v, "verts_cam")
    eps = check_positive(eps, name="eps")
    return like_input(_pinhole_uv(v, f, c, eps), was_numpy)  # (B, V, 2)


def screen_from_camera(verts_cam, focal, principal, eps: float = 1e-6):
    """Screen vertices for the rasterizer under the pinhole camera: (B, V, 3) = (u, v, z).

    verts_cam, focal, principal, eps: as in :func:`project_perspective`.

    Returns ``(u, v, z)``: the pixel position of :func:`project_perspective` and the
    camera depth z itself (unclamped), which grows away from the camera. The
    rasterizer uses z for the depth test and for perspective-correct interpolation.
    """
    v, was_numpy = _points(verts_cam, "B V 3", "verts_cam")
    f = _focal_xy(focal, v)  # (B, 2)
    c = _param(principal, "2", "principal", v, "verts_cam")
    eps = check_positive(eps, name="eps")
    return like_input(_pinhole_screen(v, f, c, eps), was_numpy)


def perspective_depth_valid(verts_cam, near: float):
    """Which points lie beyond the near plane: ``z > near``, (B, V) bool.

    verts_cam: (B, V, 3) float32/float64, OpenCV camera space.
    near: near-plane distance (> 0), in the units of verts_cam (mm).
    """
    v, was_numpy = _points(verts_cam, "B V 3", "verts_cam")
    n = check_positive(near, name="near")
    return like_input(v[..., 2] > n, was_numpy)


def intrinsics_from_fov(
    fov_deg, height: int, width: int, *, dtype: torch.dtype = torch.float32, device=None
):
    """Pinhole intrinsics for a vertical field of view: ``(focal (B, 2), principal (B, 2))``.

    fov_deg: vertical field of view in degrees, in (0, 180): a float (B = 1) or a
        (B,) float32/float64 tensor or NumPy array (then NumPy comes back).
    height, width: image size in pixels.
    dtype, device: of the result when fov_deg is a float (a tensor's own are kept).

    Returns ``fx = fy = (height / 2) / tan(fov / 2)`` (square pixels) and the
    principal point at the image centre ``(width / 2, height / 2)``: in facelab's
    pixel-centre convention the centre of the image, not of a pixel.
    """
    h = check_int(height, name="height", minimum=1)
    w = check_int(width, name="width", minimum=1)
    was_numpy = False
    if isinstance(fov_deg, (torch.Tensor, np.ndarray)):
        fov, was_numpy = as_tensor(fov_deg, name="fov_deg")
        check_shape(fov, "B", name="fov_deg")
        check_floating(fov, name="fov_deg")
        check_finite(fov, name="fov_deg")
    else:
        fov = torch.tensor([check_positive(fov_deg, name="fov_deg")], dtype=dtype, device=device)
    if bool(((fov <= 0) | (fov >= 180)).any()):
        raise ValueError(f"fov_deg: expected degrees in (0, 180), got {fov.tolist()}")
    f = (0.5 * h) / torch.tan(fov * (math.pi / 360.0))  # (B,)
    focal = torch.stack([f, f], dim=-1)  # (B, 2)
    principal = torch.tensor([0.5 * w, 0.5 * h], dtype=f.dtype, device=f.device).expand_as(focal)
    return like_input(focal, was_numpy), like_input(principal.clone(), was_numpy)


# The camera objects (Pinhole, ScaledOrthographic, WeakPerspective) call the functional forms
# above; they live in their own module and are re-exported here as ``facelab.cameras.<Name>``.
from facelab.camera_objects import (  # noqa: E402
    CAMERA_TYPES,
    Pinhole,
    ScaledOrthographic,
    WeakPerspective,
)
