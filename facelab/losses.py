"""Training losses, the public layer over the compiled ops (MoFA Sec. 6, Eqs. 7-10).

* :func:`photometric_loss` — dense photometric alignment, MoFA Eq. (8), robust l2,1 over the
  visible vertices with bilinear image sampling (compiled: :mod:`facelab.vertex_losses`);
* :func:`shaded_photometric_loss` — the same on the SH-shaded colours of MoFA Eq. (4), shading
  and loss fused into one compiled op per direction (:mod:`facelab.shaded_photometric`);
* :func:`landmark_loss` — sparse landmark alignment with confidences, MoFA Eq. (9) (plain
  torch: for 68 points the op dispatch, not the arithmetic, is the cost, so a kernel cannot
  pay off; see :mod:`facelab.vertex_losses`);
* :func:`statistical_prior` — statistical regularisation of the coefficients, MoFA Eq. (10);
* :func:`landmark_l1_loss`, :func:`temporal_quaternion_loss`, :func:`multiview_loss` — NeuFace
  Eqs. (2)-(4) on (frames, views) stacks, and the non-EM :func:`temporal_quaternion_naive_loss`,
  :func:`multiview_naive_loss` of its App. B (Table S3);

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
from facelab.shaded_photometric.autograd import shaded_photometric
from facelab.vertex_losses import photometric_per_image

__all__ = [
    "PriorWeights",
    "landmark_l1_loss",
    "landmark_loss",
    "multiview_loss",
    "multiview_naive_loss",
    "photometric_loss",
    "shaded_photometric_loss",
    "statistical_prior",
    "temporal_quaternion_loss",
    "temporal_quaternion_naive_loss",
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
    return shaded_photometric(image, positions, albedo, normals, gamma, visibility, eps=eps,
                              reduction=reduction)


def landmark_loss(landmarks, targets, confidence=None, *, reduction: str = "mean"):
    """Sparse landmark alignment, MoFA Eq. (9): E_land = Σ_j c_j ||u_j − s_j||², per image.

    Args:
        landmarks: (B, L, 2) float32/float64, predicted 2D landmarks u_j (e.g. projected model
            landmarks ``form(...).landmarks_2d``), pixels.
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


# ---------------------------------------------------------------------------------------
# NeuFace (Kim et al., TMLR 2024) Eqs. (2)-(4) and App. B: video losses on (T, N, ...) stacks
# ---------------------------------------------------------------------------------------


def _float_input(x, spec: str, name: str, dims: dict) -> torch.Tensor:
    check_shape(x, spec, name=name, dims=dims)
    check_floating(x, name=name)
    check_finite(x, name=name)
    t, _ = as_tensor(x, name=name)
    return t


def landmark_l1_loss(landmarks, targets, weights=None):
    """2D landmark re-projection loss, NeuFace Eq. (2) (ℓ1, every frame and view):

        L_2D = (1 / Σ w) Σ_{b, j} w_{b,j} ||π(J_{b,j}) − j_{b,j}||_1

    Args:
        landmarks: (B, L, 2) float, projected model landmarks π(J) in pixels (B = frames x
            views, flattened).
        targets: (B, L, 2) same dtype, detected landmarks j (constant).
        weights: (B, L) non-negative float, 0 for a missing detection (constant), or None for
            all ones.

    The paper averages the whole-set ℓ1 norm over the N_F N_V images; facelab averages over
    the (weighted) landmarks too, so the value is in pixels per landmark (the paper's value
    divided by L) and does not depend on how many detections are missing.
    Returns a scalar tensor (0 when every weight is 0).
    """
    d: dict = {}
    u = _float_input(landmarks, "B L 2", "landmarks", d)
    s = _float_input(targets, "B L 2", "targets", d).to(u)
    per = (u - s).abs().sum(-1)  # ||.||_1 per landmark: (B, L)
    if weights is None:
        return per.mean() if per.numel() else per.sum()
    w = _float_input(weights, "B L", "weights", d).to(u)
    if bool((w < 0).any()):
        raise ValueError("weights: expected values >= 0, got negative entries")
    return (w * per).sum() / w.sum().clamp_min(1e-12)


def _quaternion_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """min(||a − b||, ||a + b||) over the last axis: q and −q are one rotation."""
    return torch.minimum((a - b).norm(dim=-1), (a + b).norm(dim=-1))


def temporal_quaternion_loss(quaternions, targets):
    """Temporal consistency, NeuFace Eq. (3) (EM style, App. B):

        L_temporal = (1 / (N_F N_V)) Σ_{f,v} ||q_{f,v} − q̂_{f,v}||_2

    Args:
        quaternions: (T, N, 4) float unit quaternions (w, x, y, z) of the head orientation r
            of every frame f and view v (differentiable).
        targets: (T, N, 4) the E-step's latent targets q̂ (temporally smoothed, constant).

    q and −q are the same rotation, so each term is min(||q − q̂||, ||q + q̂||) (the sign
    alignment the moving average also uses). Returns a scalar tensor.
    """
    d: dict = {}
    q = _float_input(quaternions, "T N 4", "quaternions", d)
    t = _float_input(targets, "T N 4", "targets", d).to(q)
    return _quaternion_distance(q, t).mean()


def temporal_quaternion_naive_loss(quaternions):
    """Non-EM temporal loss, NeuFace App. B (Table S3, "Markov chain style"):

        L_temporal,naive = (1 / (N_V (N_F − 1))) Σ_v Σ_{f<N_F} ||q_{f,v} − q_{f+1,v}||_2

    quaternions: (T, N, 4) float, T >= 2 (sign-aligned as in :func:`temporal_quaternion_loss`).
    The paper writes the sum; facelab divides by the number of terms so the weights compare
    with the EM loss. Returns a scalar tensor.
    """
    q = _float_input(quaternions, "T N 4", "quaternions", {})
    if q.shape[0] < 2:
        raise ValueError(f"quaternions: expected T >= 2 frames, got {tuple(q.shape)}")
    return _quaternion_distance(q[1:], q[:-1]).mean()


def multiview_loss(meshes, targets):
    """Multi-view consistency, NeuFace Eq. (4) (EM style, App. B):

        L_multiview = (1 / (N_F N_V)) Σ_{f,v} (1 / V) ||M_{f,v} − M̂_f||_1

    Args:
        meshes: (T, N, V, 3) float vertices of every frame and view in the canonical (model)
            frame, mm (differentiable).
        targets: (T, V, 3) the E-step's bootstrapped meshes M̂_f (constant).

    The paper's ℓ1 norm runs over all vertices; facelab also divides by V (mm per vertex).
    Returns a scalar tensor.
    """
    d: dict = {}
    m = _float_input(meshes, "T N V 3", "meshes", d)
    t = _float_input(targets, "T V 3", "targets", d).to(m)
    return (m - t[:, None]).abs().sum(-1).mean()


def multiview_naive_loss(meshes):
    """Non-EM multi-view loss, NeuFace App. B (Table S3): every pair of views, per frame,

        L_multiview,naive = mean_f mean_{i<j} (1 / V) ||M_{f,i} − M_{f,j}||_1

    meshes: (T, N, V, 3) float, N >= 2 (canonical frame, mm). The paper writes the sum;
    facelab averages over frames, pairs and vertices. Returns a scalar tensor.
    """
    m = _float_input(meshes, "T N V 3", "meshes", {})
    n = m.shape[1]
    if n < 2:
        raise ValueError(f"meshes: expected N >= 2 views, got {tuple(m.shape)}")
    i, j = torch.triu_indices(n, n, offset=1, device=m.device)
    return (m[:, i] - m[:, j]).abs().sum(-1).mean()
