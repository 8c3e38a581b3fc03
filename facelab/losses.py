"""Training losses, the public layer over the compiled ops (MoFA Sec. 6, Eqs. 7-10).

* :func:`photometric_loss` — dense photometric alignment, MoFA Eq. (8), robust l2,1 over the
  visible vertices with bilinear image sampling (compiled: :mod:`facelab.vertex_losses`);
* :func:`shaded_photometric_loss` — the same on the SH-shaded colours of MoFA Eq. (4), shading
  and loss fused into one compiled op per direction (:mod:`facelab.shaded_photometric`);
* :func:`landmark_loss` — sparse landmark alignment with confidences, MoFA Eq. (9) (plain
  torch: for 68 points the op dispatch, not the arithmetic, is the cost, so a kernel cannot
  pay off; see :mod:`facelab.vertex_losses`);
* :func:`statistical_prior` — statistical regularisation of the coefficients, MoFA Eq. (10);

3DDFA_V2's VDC, WPDC and fWPDC are functions of its 62-d parameter layout, so they live beside
it in :mod:`facelab.methods.tddfa.vertex_distance` (a method's losses sit with its adapter).

MoFA combines them as E = w_land E_land + w_photo E_photo + w_reg E_reg (Eq. 7) with
w_photo = 1.92, w_reg = 2.9e-5 and w_land ∈ {0, 1}.

Every loss returns one value per image (``reduction="none"``, shape (B,)) or their mean /
sum over the batch (``"mean"``, the default, / ``"sum"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape, like_input
from facelab.shaded_photometric import shaded_photometric_per_image
from facelab.vertex_losses import photometric_per_image

__all__ = [
    "PriorWeights",
    "landmark_loss",
    "photometric_loss",
    "shaded_photometric_loss",
    "statistical_prior",
]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean() if per_image.numel() else per_image.sum()
    if reduction == "sum":
        return per_image.sum()
    return per_image


def _check_reduction(reduction) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def photometric_loss(image, positions, colors, visibility, *, eps: float = 1e-6,
                     reduction: str = "mean"):
    """Dense photometric alignment, MoFA Eq. (8), per image:

        E_photo = (1 / Σ_i w_i) Σ_i w_i (sqrt(||I(u_i) − c_i||² + eps²) − eps)

    I(u_i) is the image sampled bilinearly at the projected vertex u_i (facelab's screen
    convention: pixel (i, j) covers [j, j+1) × [i, i+1) with its centre at (j + 0.5, i + 0.5);
    neighbours are clamped to the image border). w_i = visibility_i, set to 0 for vertices
    outside [0, W) × [0, H) (they count as invisible). The norm is the per-vertex l2 norm, not
    squared (MoFA's robust l2,1); eps makes its gradient finite at a zero residual, where the
    cost is exactly 0. MoFA writes 1/N; facelab divides by the number (or total weight) of the
    visible vertices, and an image without any gives 0 with zero gradients.

    Args:
        image: (B, H, W, 3) float32/float64 target image in [0, 1].
        positions: (B, V, 2) float, projected vertex positions u_i in pixels (x right, y down);
            e.g. ``screen_verts[..., :2]``.
        colors: (B, V, 3) float, predicted vertex colours c_i (e.g. ``sh_shade(...)``).
        visibility: (B, V) bool from ``vertex_visibility`` (or non-negative float weights,
            e.g. visibility × face mask); treated as a constant.
        eps: positive float, l2-norm smoothing (default 1e-6).
        reduction: "mean" (default) | "sum" over the batch, or "none" for (B,).

    NumPy arrays are accepted (NumPy comes back). Mixed float dtypes are computed in the
    widest. Compiled forward/backward (Numba on CPU, CUDA on GPU); differentiable in image,
    positions (through the bilinear weights; not on pixel-centre grid lines, where the
    one-sided derivatives differ) and colors.

    Returns:
        scalar, or (B,) for ``reduction="none"``.
    """
    _check_reduction(reduction)
    per_image = photometric_per_image(image, positions, colors, visibility, eps=eps)
    if isinstance(per_image, torch.Tensor):
        return _reduce(per_image, reduction)
    return _reduce(torch.from_numpy(per_image), reduction).numpy()


def shaded_photometric_loss(image, positions, albedo, normals, gamma, visibility, *,
                            eps: float = 1e-6, reduction: str = "mean"):
    """Dense photometric alignment of SH-shaded vertex colours, MoFA Eqs. (4) + (8), fused.

    The value of ``photometric_loss(image, positions, sh_shade(albedo, normals, gamma),
    visibility)``, computed by one compiled op per direction: no colour buffer, one autograd
    Function, one pass over the vertices forward and one backward (what MoFA's training and
    the fitter's colour stage evaluate every step).

    Args:
        image: (B, H, W, 3) float32/float64 target image in [0, 1]; a constant (no gradient).
        positions: (B, V, 2) same dtype, projected vertex positions u_i in pixels.
        albedo: (B, V, 3) same dtype, reflectance r_i (MoFA Eq. 3; ``Formation.albedo``).
        normals: (B, V, 3) same dtype, unit camera-space normals (``Formation.normals``).
        gamma: (B, 9, 3) same dtype, SH lighting (``FaceParams.gamma``).
        visibility: (B, V) bool or non-negative float weights (a constant).
        eps: positive float, l2-norm smoothing (default 1e-6).
        reduction: "mean" (default) | "sum" over the batch, or "none" for (B,).

    NumPy arrays are accepted (NumPy comes back). Differentiable (first order) in positions,
    albedo, normals and gamma.

    Returns:
        scalar, or (B,) for ``reduction="none"``.
    """
    _check_reduction(reduction)
    per_image = shaded_photometric_per_image(image, positions, albedo, normals, gamma,
                                             visibility, eps=eps)
    if isinstance(per_image, torch.Tensor):
        return _reduce(per_image, reduction)
    return _reduce(torch.from_numpy(per_image), reduction).numpy()


def landmark_loss(landmarks, targets, confidence=None, *, reduction: str = "mean"):
    """Sparse landmark alignment, MoFA Eq. (9): E_land = Σ_j c_j ||u_j − s_j||², per image.

    Args:
        landmarks: (B, L, 2) float32/float64, predicted 2D landmarks u_j (e.g. projected model
            vertices ``screen[:, model.landmarks, :2]``), pixels.
        targets: (B, L, 2) same dtype, detected landmarks s_j.
        confidence: (B, L) same dtype, c_j ≥ 0 (1 = confident), or None for all ones.
        reduction: "mean" (default) | "sum" over the batch, or "none" for (B,).

    A sum over landmarks as in the paper (not a mean), in squared pixels. NumPy in, NumPy out.
    Differentiable in landmarks, targets and confidence.

    Returns:
        scalar, or (B,) for ``reduction="none"``.
    """
    _check_reduction(reduction)
    d: dict = {}
    check_shape(landmarks, "B L 2", name="landmarks", dims=d)
    check_shape(targets, "B L 2", name="targets", dims=d)
    tensors, was_numpy = [], False
    items = [(landmarks, "landmarks"), (targets, "targets")]
    if confidence is not None:
        check_shape(confidence, "B L", name="confidence", dims=d)
        items.append((confidence, "confidence"))
    for x, name in items:
        check_floating(x, name=name)
        check_finite(x, name=name)
        t, was_np = as_tensor(x, name=name)
        was_numpy = was_numpy or was_np
        tensors.append(t)
    u = tensors[0]
    for t, (_, name) in zip(tensors[1:], items[1:], strict=True):
        if t.dtype != u.dtype or t.device != u.device:
            raise TypeError(f"{name}: expected {u.dtype} on {u.device} (as landmarks), got "
                            f"{t.dtype} on {t.device}")
    sq = ((u - tensors[1]) ** 2).sum(-1)  # ||u_j − s_j||²: (B, L)
    if confidence is not None:
        c = tensors[2]
        if c.numel() and bool((c.detach() < 0).any()):
            raise ValueError("confidence: expected values >= 0, got negative entries")
        sq = c * sq
    return like_input(_reduce(sq.sum(-1), reduction), was_numpy)


@dataclass(frozen=True)
class PriorWeights:
    """Weights of the statistical prior, MoFA Eq. (10) and Sec. 6: identity α unweighted,
    reflectance β with w_β = 1.7e-3, expression δ with w_δ = 0.8."""

    id: float = 1.0
    exp: float = 0.8
    albedo: float = 1.7e-3


_PRIOR_NAMES = ("id", "exp", "albedo")


def statistical_prior(coeffs_by_name: Mapping, weights: PriorWeights | None = None, *,
                      reduction: str = "mean"):
    """Statistical regularisation, MoFA Eq. (10), per image:

        E_reg = w_id Σ_k α_k² + w_exp Σ_k δ_k² + w_albedo Σ_k β_k²

    The morphable bases are pre-scaled by their standard deviations (coefficients ~ N(0, 1)),
    so this is the negative log of the Gaussian prior up to constants. Pose and illumination
    are not regularised (as in MoFA).

    Args:
        coeffs_by_name: mapping with any of the keys "id" (B, Kid), "exp" (B, Kexp),
            "albedo" (B, Kalb) — float tensors (or NumPy arrays) with the same B; missing
            keys contribute nothing.
        weights: :class:`PriorWeights` (default: MoFA's w_id = 1, w_exp = 0.8,
            w_albedo = 1.7e-3).
        reduction: "mean" (default) | "sum" over the batch, or "none" for (B,).

    Returns:
        scalar, or (B,) for ``reduction="none"``; dtype of the first coefficients given.
    """
    _check_reduction(reduction)
    if weights is None:
        weights = PriorWeights()
    if not isinstance(weights, PriorWeights):
        raise TypeError(f"weights: expected PriorWeights, got {type(weights).__name__}")
    if not isinstance(coeffs_by_name, Mapping) or not coeffs_by_name:
        raise ValueError(f"coeffs_by_name: expected a non-empty mapping with keys in "
                         f"{_PRIOR_NAMES}, got {coeffs_by_name!r}")
    unknown = sorted(set(coeffs_by_name) - set(_PRIOR_NAMES))
    if unknown:
        raise ValueError(f"coeffs_by_name: expected keys in {_PRIOR_NAMES}, got {unknown}")
    d: dict = {}
    total, was_numpy = None, False
    for name in _PRIOR_NAMES:
        if name not in coeffs_by_name:
            continue
        x = coeffs_by_name[name]
        check_shape(x, "B *", name=f"coeffs_by_name[{name!r}]", dims=d)
        check_floating(x, name=f"coeffs_by_name[{name!r}]")
        check_finite(x, name=f"coeffs_by_name[{name!r}]")
        t, was_np = as_tensor(x, name=f"coeffs_by_name[{name!r}]")
        was_numpy = was_numpy or was_np
        term = getattr(weights, name) * (t**2).sum(-1)  # w Σ_k x_k²: (B,)
        total = term if total is None else total + term.to(total)
    return like_input(_reduce(total, reduction), was_numpy)
