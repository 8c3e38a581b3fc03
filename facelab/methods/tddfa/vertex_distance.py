"""Parameter-regression losses measured on reconstructed vertices (3DDFA_V2 Sec. 2.2).

* :func:`vdc` — Vertex Distance Cost, 3DDFA_V2 Eq. (4): squared distance between the dense
  faces reconstructed from the predicted and the true 62-d parameters.
* :func:`wpdc` / :func:`wpdc_weights` — Weighted Parameter Distance Cost, Eqs. (6)-(7), the
  naive way: one dense reconstruction per parameter (62 of them) to weigh each parameter by
  how far its error alone moves the face.
* :func:`fwpdc` / :func:`fwpdc_weights` — fast WPDC, Algorithm 2: the same weights from one
  reconstruction, because the error of T's column c moves every vertex by that column times
  the c-th coordinate row of S (translation: by the column itself), and the error of alpha_i
  moves it by ``f R A_i``, whose norm is ``f ||A_i||``.
* :func:`vertex_loss_3d` — mean per-vertex Euclidean distance between two meshes.

Parameter vectors are ``p = [T (12, row-major), alpha_id (40), alpha_exp (10)]``
(:mod:`facelab.methods.tddfa.params`). When ``stats`` is given, ``pred`` and ``target`` are
the Z-scored vectors a network predicts (Sec. 2.1); the weights and reconstructions use the
de-normalised p, and the WPDC distance ``w * (p - p^g)`` is taken on the Z-scores, as in
3DDFA_V2 (its p *is* the normalised vector once Sec. 2.1 redefines it).

Every loss returns one value per image (``reduction="none"``, (B,)) or their mean / sum.
"""

from __future__ import annotations

import math
import weakref

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape, like_input
from facelab.methods.tddfa.params import (
    TDDFA_LAYOUT,
    ParamLayout,
    ParamStats,
    denormalize_params,
    split_params,
)
from facelab.methods.tddfa.reconstruct import apply_T, basis_matrix, check_model, shape_from_basis

__all__ = ["fwpdc", "fwpdc_weights", "vdc", "vertex_loss_3d", "wpdc", "wpdc_weights"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    return per_image


def _pair(pred, target, model, layout: ParamLayout, stats: ParamStats | None):
    """Validate (B, P) pred/target; return (z_pred, z_target, p_pred, p_target, was_numpy)."""
    zp, was_numpy = as_tensor(pred, name="pred")
    zt, _ = as_tensor(target, name="target")
    d = check_shape(zp, f"B {layout.size}", name="pred")
    check_shape(zt, f"B {layout.size}", name="target", dims=d)
    for t, n in ((zp, "pred"), (zt, "target")):
        check_floating(t, name=n)
        check_finite(t, name=n)
    if zt.dtype != zp.dtype:
        raise TypeError(f"target: expected dtype {zp.dtype} (that of pred), got {zt.dtype}")
    check_model(model, layout)
    zt = zt.to(zp.device)
    if stats is None:
        return zp, zt, zp, zt, was_numpy
    return zp, zt, denormalize_params(zp, stats), denormalize_params(zt, stats), was_numpy


def _dense(p: torch.Tensor, mean, A, layout) -> torch.Tensor:
    T, a_id, a_exp = split_params(p, layout)  # (B, 3, 4), (B, Kid), (B, Kexp)
    return apply_T(shape_from_basis(mean, A, torch.cat([a_id, a_exp], dim=1)), T)  # (B, V, 3)


def vdc(pred, target, model, *, stats: ParamStats | None = None,
        layout: ParamLayout = TDDFA_LAYOUT, reduction: str = "mean"):
    """Vertex Distance Cost, 3DDFA_V2 Eq. (4): ``||V3d(p) - V3d(p^g)||^2``, per vertex.

    pred, target: (B, 62) float32/float64 parameters (Z-scores when ``stats`` is given).
    model: MorphableModel with >= 40 identity / 10 expression modes.
    stats: :class:`ParamStats` to de-normalise with, or None for raw p.
    Returns the squared vertex distance (pixels^2) summed over x, y, z and **averaged over
    the V vertices** (Eq. 4 sums them; the mean keeps the scale independent of V), then
    reduced over the batch. Differentiable in pred. NumPy in, NumPy out.
    """
    _, _, p, pg, was_numpy = _pair(pred, target, model, layout, stats)
    mean, A = basis_matrix(model, layout, dtype=p.dtype, device=p.device)
    diff = _dense(p, mean, A, layout) - _dense(pg, mean, A, layout)  # (B, V, 3)
    return like_input(_reduce(diff.pow(2).sum(-1).mean(-1), reduction), was_numpy)


def _normalise_weights(w: torch.Tensor) -> torch.Tensor:
    """Divide each row by its maximum Z (Eq. 7); an all-zero row stays zero."""
    z = w.amax(dim=1, keepdim=True)  # (B, 1)
    return w / torch.where(z > 0, z, torch.ones_like(z))


def wpdc_weights(pred, target, model, *, stats: ParamStats | None = None,
                 layout: ParamLayout = TDDFA_LAYOUT):
    """Naive WPDC importance weights, 3DDFA_V2 Eq. (7): (B, 62), each row's maximum is 1.

    ``w_i = ||V3d(p^{de,i}) - V3d(p^g)|| / Z`` where ``p^{de,i}`` is p^g with its i-th entry
    taken from the prediction: 62 dense reconstructions (the slow reference for
    :func:`fwpdc_weights`). Arguments as in :func:`vdc`. Not differentiated (no graph).
    """
    _, _, p, pg, was_numpy = _pair(pred, target, model, layout, stats)
    p, pg = p.detach(), pg.detach()
    mean, A = basis_matrix(model, layout, dtype=p.dtype, device=p.device)
    ref = _dense(pg, mean, A, layout)  # (B, V, 3)
    w = torch.empty_like(p)  # (B, P)
    for i in range(layout.size):
        degraded = pg.clone()
        degraded[:, i] = p[:, i]
        w[:, i] = (_dense(degraded, mean, A, layout) - ref).flatten(1).norm(dim=1)
    return like_input(_normalise_weights(w), was_numpy)


# Images per reconstruction in fwpdc_weights. Forming S for all 128 images of a 38k-vertex
# model at once allocated 58 MB (plus einsum's temporary) per call, above glibc's largest
# mmap threshold (32 MB): mapped and page-faulted afresh every call (28k faults, ~half of
# fWPDC's time at batch 128, more under load). 16 at a time into one reused 7 MB buffer:
# no faults after the first call, and the same values (the same products, bit for bit).
_ROWS_PER_CHUNK = 16
_COLUMN_NORMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shape_row_norms(mean, A, alpha_g):
    """||S_b(c, :)|| of S_b = mean + A alpha_g[b] (Algorithm 2's one reconstruction), formed
    _ROWS_PER_CHUNK images at a time in one buffer: (B, 3). mean (V, 3), A (V, 3, K)."""
    n_img, n_vert = alpha_g.shape[0], mean.shape[0]
    A_flat = A.reshape(n_vert * 3, -1)  # (3V, K)
    buf = mean.new_empty((min(_ROWS_PER_CHUNK, n_img), n_vert, 3))  # reused per chunk
    parts = []
    for i in range(0, n_img, _ROWS_PER_CHUNK):
        a = alpha_g[i:i + _ROWS_PER_CHUNK]  # (b, K)
        S = buf[: a.shape[0]]  # (b, V, 3)
        torch.matmul(a, A_flat.T, out=S.view(a.shape[0], n_vert * 3))
        S += mean
        parts.append(S.norm(dim=1))  # (b, 3)
    return torch.cat(parts) if parts else alpha_g.new_zeros((0, 3))


def _basis_column_norms(model, layout, A):
    """||A(:, i)|| (K,), computed once per model, layout, dtype and device (a function of the
    model's bases only: 50 ms per call at 38k vertices)."""
    key = (layout, A.dtype, A.device, model.id_basis._version, model.exp_basis._version)
    per_model = _COLUMN_NORMS.setdefault(model, {})
    if key not in per_model:
        per_model.clear()
        per_model[key] = A.flatten(0, 1).norm(dim=0)
    return per_model[key]


def fwpdc_weights(pred, target, model, *, stats: ParamStats | None = None,
                  layout: ParamLayout = TDDFA_LAYOUT):
    """Fast WPDC weights, 3DDFA_V2 Algorithm 2: (B, 62), each row's maximum is 1.

    With ``S = S_mean + A alpha^g`` (V, 3) reconstructed once:
    ``w_T[r, c] = |T[r, c] - T^g[r, c]| ||S[:, c]||`` for c < 3,
    ``w_T[r, 3] = |T[r, 3] - T^g[r, 3]| sqrt(V)`` (Algorithm 2 writes sqrt(N/3) with N the
    number of coordinates, 3V), and ``w_alpha[i] = f |alpha_i - alpha^g_i| ||A[:, i]||`` with
    f the scale of T^g (its 3x3 block's Frobenius norm / sqrt(3)). These equal
    :func:`wpdc_weights` exactly when T^g's 3x3 block is a scaled rotation f R (then
    ``||f R A_i|| = f ||A_i||``), the case of every ground truth. Arguments as in :func:`vdc`.
    """
    _, _, p, pg, was_numpy = _pair(pred, target, model, layout, stats)
    p, pg = p.detach(), pg.detach()
    mean, A = basis_matrix(model, layout, dtype=p.dtype, device=p.device)
    T, a_id, a_exp = split_params(p, layout)
    Tg, g_id, g_exp = split_params(pg, layout)
    alpha, alpha_g = torch.cat([a_id, a_exp], 1), torch.cat([g_id, g_exp], 1)  # (B, K)
    row_norm = _shape_row_norms(mean, A, alpha_g)  # (B, 3): ||S(c, :)|| for c = x, y, z
    col = torch.cat([row_norm, row_norm.new_full((row_norm.shape[0], 1),
                                                 math.sqrt(mean.shape[0]))], dim=1)  # (B, 4)
    w_T = (T - Tg).abs() * col[:, None, :]  # (B, 3, 4)
    f = Tg[:, :, :3].flatten(1).norm(dim=1) / math.sqrt(3.0)  # (B,)
    a_norm = _basis_column_norms(model, layout, A)  # (K,): ||A(:, i)||
    w_a = f[:, None] * (alpha - alpha_g).abs() * a_norm  # (B, K)
    w = torch.cat([w_T.reshape(-1, 12), w_a], dim=1)  # (B, P)
    return like_input(_normalise_weights(w), was_numpy)


def _weighted(zp, zt, w, reduction):
    return _reduce((w * (zp - zt)).pow(2).sum(dim=1), reduction)


def _given_weights(weights, zp):
    w, _ = as_tensor(weights, name="weights")
    check_shape(w, f"B {zp.shape[1]}", name="weights", dims={"B": zp.shape[0]})
    check_floating(w, name="weights")
    check_finite(w, name="weights")
    return w.to(zp)


def wpdc(pred, target, model, *, stats: ParamStats | None = None, weights=None,
         layout: ParamLayout = TDDFA_LAYOUT, reduction: str = "mean"):
    """Weighted Parameter Distance Cost, 3DDFA_V2 Eq. (6): ``||w . (p - p^g)||^2`` per image.

    pred, target, model, stats, layout, reduction: as in :func:`vdc`.
    weights: (B, 62) fixed weights, or None to compute :func:`wpdc_weights` (the naive Eq. 7,
        62 reconstructions) from the detached prediction; gradients never flow through w.
    Differentiable in pred.
    """
    zp, zt, *_, was_numpy = _pair(pred, target, model, layout, stats)
    w = (wpdc_weights(zp.detach(), zt, model, stats=stats, layout=layout) if weights is None
         else _given_weights(weights, zp))
    return like_input(_weighted(zp, zt, w, reduction), was_numpy)


def fwpdc(pred, target, model, *, stats: ParamStats | None = None, weights=None,
          layout: ParamLayout = TDDFA_LAYOUT, reduction: str = "mean"):
    """Fast WPDC, 3DDFA_V2 Algorithm 2 line 11: ``||w_T . dT||^2 + ||w_alpha . d alpha||^2``.

    Same value as :func:`wpdc` (the weights agree to rounding when T^g is a scaled
    rotation) from a single reconstruction. Arguments as in :func:`wpdc`;
    ``weights=None`` computes :func:`fwpdc_weights` from the detached prediction.
    """
    zp, zt, *_, was_numpy = _pair(pred, target, model, layout, stats)
    w = (fwpdc_weights(zp.detach(), zt, model, stats=stats, layout=layout) if weights is None
         else _given_weights(weights, zp))
    return like_input(_weighted(zp, zt, w, reduction), was_numpy)


def vertex_loss_3d(verts, target, *, reduction: str = "mean"):
    """Mean per-vertex Euclidean distance ``(1/V) sum_v ||v - v^g||`` per mesh.

    verts, target: (B, V, 3) float32/float64 in the same space and units (torch or NumPy).
    Returns (B,) or its batch reduction, in those units. Differentiable in verts (the
    gradient at an exactly zero distance is taken as 0).
    """
    v, was_numpy = as_tensor(verts, name="verts")
    g, _ = as_tensor(target, name="target")
    d = check_shape(v, "B V 3", name="verts")
    check_shape(g, "B V 3", name="target", dims=d)
    for t, n in ((v, "verts"), (g, "target")):
        check_floating(t, name=n)
        check_finite(t, name=n)
    sq = (v - g.to(v)).pow(2).sum(-1)  # (B, V)
    dist = torch.where(sq > 0, sq.clamp_min(1e-300 if v.dtype == torch.float64 else 1e-30).sqrt(),
                       torch.zeros_like(sq))
    return like_input(_reduce(dist.mean(-1), reduction), was_numpy)
