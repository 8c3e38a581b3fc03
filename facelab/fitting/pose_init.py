"""Closed-form head pose from 2D landmarks: an affine camera fit, then its nearest rotation.

Coarse-to-fine fitting starts here. Far from the camera (face depth ≪ distance) the pinhole
camera of :func:`facelab.cameras.model_to_camera` + :func:`facelab.cameras.project_perspective`
is close to a scaled-orthographic one (3DDFA_V2 Eq. 3's ``T = [f R | t]``):

    u ≈ s (R X)_x + b_u,        v ≈ −s (R X)_y + b_v,       s = f / z̄,

(the minus sign is the model → OpenCV flip diag(1, −1, −1)). A weighted linear least-squares
fit of the 2 × 4 affine map [A | b] from the model's 3D landmarks X to the 2D targets gives
A ≈ s [R_0; −R_1]; the rows are projected to the nearest pair of orthonormal rows (SVD, the
orthogonal Procrustes solution) and completed with R_2 = R_0 × R_1. Then z̄ = f / s and the
translation follows from b. Landmark optimisation refines this (fit_image's first stage).
"""

from __future__ import annotations

import torch

__all__ = ["pose_from_landmarks"]


def pose_from_landmarks(points_3d, points_2d, focal, principal, weights=None):
    """Initial head rotation and translation from 3D–2D landmark pairs (one face).

    points_3d: (L, 3) float64/float32, model-space landmarks (mm), e.g. the mean shape's.
    points_2d: (L, 2) same dtype, target pixels.
    focal: (2,) (fx, fy) pixels. principal: (2,) (cx, cy) pixels.
    weights: (L,) non-negative confidences, or None.

    Returns ``(rotation (3, 3), translation (3,))`` for :func:`facelab.cameras.model_to_camera`.
    Needs at least 4 non-coplanar points with positive weight (68 iBUG points are plenty).
    """
    X = points_3d.to(torch.float64)
    x = points_2d.to(torch.float64)
    L = X.shape[0]
    w = torch.ones(L, dtype=torch.float64) if weights is None else weights.to(torch.float64)
    f = focal.to(torch.float64)
    c = principal.to(torch.float64)
    # u = f_x/z̄ (R X)_x + ..., v = f_y/z̄ (..): divide by focal to fit one isotropic scale
    xn = (x - c) / f  # (L, 2) normalised image coordinates
    design = torch.cat([X, torch.ones(L, 1, dtype=torch.float64)], dim=1)  # (L, 4)
    sw = w.sqrt()[:, None]
    M = torch.linalg.lstsq(design * sw, xn * sw).solution  # (4, 2)
    A = M[:3].T  # (2, 3): rows ≈ (1/z̄) R_0 and −(1/z̄) R_1
    b = M[3]  # (2,)
    rows = torch.stack([A[0], -A[1]])  # (2, 3) ≈ (1/z̄) [R_0; R_1]
    scale = rows.norm(dim=1).mean()
    U, _, Vh = torch.linalg.svd(rows, full_matrices=False)  # (2, 2), (2,), (2, 3)
    R01 = U @ Vh  # (2, 3) nearest orthonormal rows
    R = torch.cat([R01, torch.linalg.cross(R01[0], R01[1])[None]], dim=0)  # (3, 3)
    # depth of the landmarks' centroid is 1/scale (normalised units); the model origin lies
    # (R X̄)_z further *towards* the camera in model z, i.e. −(R X̄)_z in camera z
    centroid_z = -(R @ (design[:, :3] * w[:, None]).sum(0) / w.sum())[2]
    tz = 1.0 / scale - centroid_z
    # b = (t_x, t_y) / z̄ in normalised coordinates (the model origin's image position)
    txy = b / scale
    t = torch.stack([txy[0], txy[1], tz])
    return R.to(points_3d.dtype), t.to(points_3d.dtype)
