"""Dense and sparse reconstruction from 3DDFA_V2's 62-d parameters (Guo et al. 2020, Eqs. 3, 5).

    V3d(p) = T [S_mean + A alpha; 1]            (3DDFA_V2 Eq. 5)
    V2d(p) = Pr T [S_mean + A alpha; 1]         (3DDFA_V2 Eq. 3, Pr keeps rows 1-2)

with ``A = [A_id, A_exp]`` the leading 40 identity / 10 expression columns of the model
(bases pre-scaled by their std, so alpha ~ N(0, 1); :class:`facelab.MorphableModel`).

Frames. ``T`` maps model space (mm, y up, face toward +z) into 3DDFA's image frame of an
``H x H`` crop: x right, **y up** (origin at the bottom-left), z toward the viewer. facelab's
screen space is y down with depth growing away from the camera, so
:func:`image_to_screen` applies ``(x, y, z) -> (x, H - y, -z)`` (``facelab.cameras.flip_y``
plus the depth negation that keeps the frame right-handed), exactly as
:func:`facelab.cameras.screen_from_scaled_orthographic` does.

Sparse reconstruction gathers the 68 landmark rows of the bases first, so it costs 68 / V
of the dense one (the paper's "0.01 ms" for landmarks).
"""

from __future__ import annotations

import torch

from facelab._checks import as_tensor, check_positive, check_shape, like_input
from facelab.methods.tddfa.params import TDDFA_LAYOUT, ParamLayout, split_params
from facelab.model.morphable import MorphableModel

__all__ = [
    "apply_T",
    "basis_matrix",
    "check_model",
    "image_to_screen",
    "landmarks_screen",
    "reconstruct_dense",
    "reconstruct_shape",
    "reconstruct_sparse",
    "shape_from_basis",
]


def check_model(model, layout: ParamLayout) -> None:
    """Raise unless ``model`` is a MorphableModel with at least the layout's id/exp modes."""
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    if model.n_id < layout.id or model.n_exp < layout.exp:
        raise ValueError(f"model: expected at least {layout.id} identity and {layout.exp} "
                         f"expression modes, got {model.n_id} and {model.n_exp}")


def basis_matrix(model: MorphableModel, layout: ParamLayout = TDDFA_LAYOUT, *, rows=None,
                 dtype=None, device=None):
    """``A = [A_id[:, :Kid], A_exp[:, :Kexp]]``: (V, 3, Kid + Kexp) (3DDFA_V2 Eq. 3).

    rows: optional (L,) int64 vertex indices to keep: (L, 3, K); or ``"landmarks"``, the
        model's landmark rows (:meth:`MorphableModel.landmark_rows`: the vertices
        ``model.landmarks``, or the affine combinations of a landmark embedding).
    Returns ``(mean (V or L, 3), A (V or L, 3, K))`` in ``dtype``/``device`` (default: the model's).
    """
    check_model(model, layout)
    mean, id_b, exp_b = model.mean_shape, model.id_basis, model.exp_basis
    id_b, exp_b = id_b[..., :layout.id], exp_b[..., :layout.exp]
    if isinstance(rows, str):
        if rows != "landmarks":
            raise ValueError(f"rows: expected (L,) vertex indices or 'landmarks', got {rows!r}")
        if model.landmarks is None:
            raise ValueError(f"rows: model {model.name!r} has no landmarks")
        mean, id_b, exp_b = (model.landmark_rows(a) for a in (mean, id_b, exp_b))
    elif rows is not None:
        mean, id_b, exp_b = mean[rows], id_b[rows], exp_b[rows]  # (L, 3), (L, 3, K) ...
    A = torch.cat([id_b, exp_b], dim=-1)  # (V, 3, K)
    return mean.to(device=device, dtype=dtype), A.to(device=device, dtype=dtype)


def shape_from_basis(mean: torch.Tensor, A: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """S = mean + A alpha for a batch: (V, 3), (V, 3, K), (B, K) -> (B, V, 3)."""
    return mean.unsqueeze(0) + torch.einsum("vdk,bk->bvd", A, alpha)


def apply_T(S: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """T [S; 1]: (B, V, 3), (B, 3, 4) -> (B, V, 3)."""
    return S @ T[:, :, :3].transpose(-1, -2) + T[:, None, :, 3]


def _params(params, model, layout):
    p, was_numpy = as_tensor(params, name="params")
    check_model(model, layout)
    T, a_id, a_exp = split_params(p, layout)  # (B, 3, 4), (B, Kid), (B, Kexp)
    return T, torch.cat([a_id, a_exp], dim=1), p, was_numpy


def reconstruct_shape(model: MorphableModel, params, layout: ParamLayout = TDDFA_LAYOUT):
    """The unposed shape ``S = S_mean + A alpha`` (3DDFA_V2 Eq. 1 with 40/10 modes).

    model: a MorphableModel with at least layout.id / layout.exp modes.
    params: (B, 62) float32/float64 raw (unnormalised) p; only alpha is used.
    Returns (B, V, 3) model space (mm); NumPy in, NumPy out.
    """
    _, alpha, p, was_numpy = _params(params, model, layout)
    mean, A = basis_matrix(model, layout, dtype=p.dtype, device=p.device)
    return like_input(shape_from_basis(mean, A, alpha), was_numpy)


def reconstruct_dense(model: MorphableModel, params, layout: ParamLayout = TDDFA_LAYOUT):
    """Dense 3D face ``V3d(p) = T [S_mean + A alpha; 1]`` (3DDFA_V2 Eq. 5).

    model: a MorphableModel with at least layout.id / layout.exp modes.
    params: (B, 62) float32/float64 raw (unnormalised) p, torch or NumPy.
    Returns (B, V, 3) in 3DDFA's image frame (x right, y up, z toward the viewer; pixels);
    the first two columns are V2d(p) of Eq. 3. Differentiable in params.
    """
    T, alpha, p, was_numpy = _params(params, model, layout)
    mean, A = basis_matrix(model, layout, dtype=p.dtype, device=p.device)
    return like_input(apply_T(shape_from_basis(mean, A, alpha), T), was_numpy)


def reconstruct_sparse(model: MorphableModel, params, layout: ParamLayout = TDDFA_LAYOUT,
                       indices=None):
    """The 68 landmarks (or any vertex subset) of V3d(p), gathering basis rows first.

    params: (B, 62) float32/float64 raw p.
    indices: (L,) int64 vertex indices; default the model's iBUG-68 landmark points
        (:meth:`MorphableModel.landmark_rows`).
    Returns (B, L, 3) in 3DDFA's image frame (y up), equal to
    ``reconstruct_dense(model, params)[:, indices]`` (by default
    ``model.landmark_points(reconstruct_dense(model, params))``) at L / V of its cost.
    """
    T, alpha, p, was_numpy = _params(params, model, layout)
    if indices is None and model.landmarks is None:
        raise ValueError(f"indices: model {model.name!r} has no landmarks; pass indices")
    rows = "landmarks" if indices is None else torch.as_tensor(indices).long()
    mean, A = basis_matrix(model, layout, rows=rows, dtype=p.dtype, device=p.device)
    return like_input(apply_T(shape_from_basis(mean, A, alpha), T), was_numpy)


def image_to_screen(points, height: float):
    """3DDFA's y-up image frame -> facelab screen space: ``(x, y, z) -> (x, H - y, -z)``.

    points: (B, N, 2) or (B, N, 3) float32/float64 (torch or NumPy).
    height: H, the crop height in pixels.
    Returns the same shape: y down (``facelab.cameras.flip_y``), depth growing away from
    the camera (when z is given). It is its own inverse.
    """
    x, was_numpy = as_tensor(points, name="points")
    check_shape(x, "B N *", name="points")
    if x.shape[-1] not in (2, 3):
        raise ValueError(f"points: expected (B, N, 2) or (B, N, 3), got {tuple(x.shape)}")
    h = check_positive(height, name="height")
    cols = [x[..., 0], h - x[..., 1]] + ([-x[..., 2]] if x.shape[-1] == 3 else [])
    return like_input(torch.stack(cols, dim=-1), was_numpy)


def landmarks_screen(model: MorphableModel, params, height: float,
                     layout: ParamLayout = TDDFA_LAYOUT):
    """2D landmarks in facelab pixels (y down): (B, 68, 2), for NME against image annotations.

    params: (B, 62) raw p; height: crop height H in pixels.
    """
    lm = reconstruct_sparse(model, params, layout)
    return image_to_screen(lm, height)[..., :2]
