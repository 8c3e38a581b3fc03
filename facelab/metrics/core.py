"""Landmark, vertex, video-stability and multi-view metrics.

Re-exported by :mod:`facelab.metrics`.
"""

from __future__ import annotations

import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_shape,
    like_input,
)

__all__ = ["aligned_vertex_error", "beta_norm_reject", "beta_norm_threshold", "cvd", "mpve",
           "msi3d", "nme", "similarity_align", "similarity_transform", "stability"]

# iBUG-68 outer eye corners (subject's right eye 36, left eye 45)
_OUTER_EYE_CORNERS = (36, 45)

def _points(x, spec: str, name: str, dims: dict | None = None):
    t, was_numpy = as_tensor(x, name=name)
    dims = check_shape(t, spec, name=name, dims=dims)
    check_floating(t, name=name)
    check_finite(t, name=name)
    return t, was_numpy, dims


def _normalizer(gt: torch.Tensor, normalize) -> torch.Tensor:
    """(B,) normalisation length for 2D landmarks gt (B, L, 2)."""
    if isinstance(normalize, str):
        if normalize == "bbox":
            size = gt.amax(dim=1) - gt.amin(dim=1)  # (B, 2)
            return torch.sqrt(size[:, 0] * size[:, 1])
        if normalize == "interocular":
            if gt.shape[1] != 68:
                raise ValueError(
                    f"gt: expected (B, 68, 2) for interocular normalisation, got {tuple(gt.shape)}")
            a, b = _OUTER_EYE_CORNERS
            return (gt[:, a] - gt[:, b]).norm(dim=-1)
        raise ValueError(f"normalize: expected 'bbox', 'interocular' or a (B,) tensor, "
                         f"got {normalize!r}")
    n, _ = as_tensor(normalize, name="normalize")
    check_shape(n, "B", name="normalize", dims={"B": gt.shape[0]})
    return n.to(gt)


def nme(pred, gt, normalize="bbox"):
    """Normalised mean error of 2D landmarks (3DDFA_V2 Sec. 3.1, Tables 1-2).

    pred, gt: (B, L, 2) landmark positions in pixels.
    normalize: ``"bbox"`` — sqrt(w h) of the ground-truth landmarks' bounding box (AFLW2000-3D
        protocol used by 3DDFA_V2); ``"interocular"`` — outer-eye-corner distance (68 points);
        or a (B,) tensor of lengths.
    Returns (B,): mean over landmarks of ||pred - gt|| / normalizer (multiply by 100 for %).
    Degenerate normalisers (zero size) raise ``ValueError`` instead of returning inf.
    """
    p, was_numpy, dims = _points(pred, "B L 2", "pred")
    g, _, _ = _points(gt, "B L 2", "gt", dims=dims)
    g = g.to(p)
    norm = _normalizer(g, normalize)
    if (norm <= 0).any():
        raise ValueError("gt: landmark bounding box / eye distance is zero for some items")
    err = (p - g).norm(dim=-1).mean(dim=1) / norm  # (B,)
    return like_input(err, was_numpy)


def mpve(pred, gt):
    """Mean per-vertex error: mean_i ||pred_i - gt_i|| without alignment.

    pred, gt: (B, V, 3) (or (B, V, D)) in the same units (mm for facelab models).
    Returns (B,).
    """
    p, was_numpy, dims = _points(pred, "B V D", "pred")
    g, _, _ = _points(gt, "B V D", "gt", dims=dims)
    return like_input((p - g.to(p)).norm(dim=-1).mean(dim=1), was_numpy)


def similarity_transform(source, target, rotation: bool = False, weights=None):
    """Least-squares similarity ``target ≈ scale · R · source + t`` (Umeyama 1991, Eqs. 40-42).

    source, target: (B, V, 3) point sets in correspondence.
    rotation: also estimate a rotation (full Procrustes; never a reflection). Without it R = I
        and only translation and isotropic scale are estimated.
    weights: optional (B, V) non-negative weights of the pairs (None: all 1).
    Returns ``(scale (B,), R (B, 3, 3), t (B, 3))``, torch tensors in ``source``'s dtype.
    """
    s, _, dims = _points(source, "B V 3", "source")
    t, _, _ = _points(target, "B V 3", "target", dims=dims)
    t = t.to(s)
    if weights is None:
        w = torch.ones(s.shape[:2], dtype=s.dtype, device=s.device)
    else:
        w, _, _ = _points(weights, "B V", "weights", dims=dims)
        w = w.to(s)
        if bool((w < 0).any()) or bool((w.sum(1) <= 0).any()):
            raise ValueError("weights: expected values >= 0 with a positive sum per item")
    w = (w / w.sum(1, keepdim=True))[..., None]  # (B, V, 1), sums to 1
    mu_s, mu_t = (w * s).sum(1, keepdim=True), (w * t).sum(1, keepdim=True)  # (B, 1, 3)
    xs, xt = s - mu_s, t - mu_t
    var_s = (w * xs * xs).sum(dim=(1, 2))  # (B,)
    if rotation:
        cov = torch.einsum("bvi,bvj->bij", w * xt, xs)  # (B, 3, 3) target x source
        u, sig, vh = torch.linalg.svd(cov)
        d = torch.sign(torch.linalg.det(u @ vh))  # reflection guard
        fix = torch.ones_like(sig)
        fix[:, 2] = d
        rot = u @ torch.diag_embed(fix) @ vh  # (B, 3, 3)
        scale = (sig * fix).sum(dim=1) / var_s.clamp_min(1e-30)
    else:
        rot = torch.eye(3, dtype=s.dtype, device=s.device).expand(s.shape[0], 3, 3)
        scale = (w * xs * xt).sum(dim=(1, 2)) / var_s.clamp_min(1e-30)
    shift = mu_t[:, 0] - scale[:, None] * torch.einsum("bij,bj->bi", rot, mu_s[:, 0])  # (B, 3)
    return scale, rot, shift


def similarity_align(source, target, rotation: bool = False):
    """Least-squares similarity that maps ``source`` onto ``target`` (Umeyama 1991).

    source, target: (B, V, 3) point sets in correspondence.
    rotation: also estimate a rotation (full Procrustes). Without it only translation and
        isotropic scale are compensated (MoFA's protocol: the estimated rotation is part of
        what is evaluated).
    Returns the aligned source, (B, V, 3) (:func:`similarity_transform` applied to it).
    """
    s, was_numpy, _ = _points(source, "B V 3", "source")
    scale, rot, shift = similarity_transform(s, target, rotation=rotation)
    aligned = scale[:, None, None] * torch.einsum("bij,bvj->bvi", rot, s) + shift[:, None]
    return like_input(aligned, was_numpy)


def aligned_vertex_error(pred, gt, rotation: bool = False):
    """Point-to-point 3D error after similarity alignment (MoFA Sec. 7, "Quantitative Evaluation").

    pred, gt: (B, V, 3) vertices in correspondence (mm).
    rotation: False (MoFA: compensate translation and isotropic scale only) or True (full
        Procrustes, when the rotation is not part of what is evaluated).
    Returns (B,): mean over vertices of ||align(pred) - gt|| in the units of ``gt``.
    """
    aligned = similarity_align(pred, gt, rotation=rotation)
    return mpve(aligned, gt)



def stability(pred, gt, normalize="bbox"):
    """Video stability, 3DDFA_V2 Sec. 3.1 (Table 4): NME of adjacent-frame offsets.

    pred, gt: (T, L, 2) landmarks of consecutive frames (T >= 2).
    The offsets d_t = x_{t+1} - x_t of prediction and ground truth are compared,
    ||d_pred - d_gt|| averaged over landmarks, normalised like :func:`nme` by the ground-truth
    frame t's size, then averaged over the T - 1 pairs.
    Returns a Python float (NME, multiply by 100 for %).
    """
    p, _, dims = _points(pred, "T L 2", "pred")
    g, _, _ = _points(gt, "T L 2", "gt", dims=dims)
    if dims["T"] < 2:
        raise ValueError(f"pred: expected (T, L, 2) with T >= 2, got {tuple(p.shape)}")
    g = g.to(p)
    dp, dg = p[1:] - p[:-1], g[1:] - g[:-1]  # (T-1, L, 2)
    if isinstance(normalize, str):
        norm = _normalizer(g[:-1], normalize)  # (T-1,)
    else:
        norm = _normalizer(g, normalize)[:-1]  # a (T,) tensor of lengths
    return float(((dp - dg).norm(dim=-1).mean(dim=1) / norm).mean())


# ---------------------------------------------------------------------------------------
# NeuFace (Kim et al., TMLR 2024) Sec. 4.1 and App. A: spatio-temporal consistency metrics
# ---------------------------------------------------------------------------------------


def _series(x, name: str):
    """(T, K, D) or (B, T, K, D) float points -> ((B, T, K, D) tensor, batched?, was_numpy)."""
    t, was_numpy = as_tensor(x, name=name)
    if t.ndim == 3:
        check_shape(t, "T K D", name=name)
        t, batched = t[None], False
    else:
        check_shape(t, "B T K D", name=name)
        batched = True
    check_floating(t, name=name)
    check_finite(t, name=name)
    return t, batched, was_numpy


def msi3d(points, *, eps: float = 1e-12):
    """3D motion stability index, NeuFace Sec. 4.1 (MSI of Ling et al. 2022 lifted to 3D).

    points: (T, K, D) or (B, T, K, D) float, the K 3D landmarks (MSI_3D^L) or mesh vertices
        (MSI_3D^V) of T consecutive frames, D = 3 (any D works), in one unit (mm in facelab).
    eps: floor of the variance (units² / frame⁴), so a sequence without jitter gives 1 / eps
        instead of inf.

    Computed exactly as::

        a_t^i  = x_{t+1}^i - 2 x_t^i + x_{t-1}^i,   t = 1 .. T-2   (acceleration, per frame²)
        σ(a^i) = (1 / (T-2)) Σ_t ||a_t^i - mean_t a_t^i||²         (temporal variance; the
                 population variance summed over the D coordinates)
        MSI_3D = (1 / K) Σ_i 1 / max(σ(a^i), eps)

    i.e. the paper's ``(1/K) Σ_i 1/σ(a^i)``. Time is in frames, so the value depends on the
    frame rate and on the length unit (the paper's FLAME meshes are in metres; facelab's in mm).
    Higher is steadier. Requires T >= 4 (two acceleration samples).

    Returns a float for (T, K, D) input, (B,) for (B, T, K, D) (NumPy in, NumPy out).
    """
    x, batched, was_numpy = _series(points, "points")
    if x.shape[1] < 4:
        raise ValueError(f"points: expected at least T=4 frames, got {tuple(x.shape[-3:])}")
    if not eps > 0:
        raise ValueError(f"eps: expected a positive float, got {eps!r}")
    acc = x[:, 2:] - 2.0 * x[:, 1:-1] + x[:, :-2]  # (B, T-2, K, D)
    var = ((acc - acc.mean(dim=1, keepdim=True)) ** 2).sum(-1).mean(dim=1)  # (B, K)
    msi = (1.0 / var.clamp_min(eps)).mean(dim=1)  # (B,)
    return like_input(msi, was_numpy) if batched else float(msi[0])


def cvd(meshes, *, align: str = "none"):
    """Cross-view vertex distance, NeuFace Sec. 4.1 (Table 2, Fig. 7): ℓ1, mean over view pairs.

    meshes: (T, N, V, 3) or (B, T, N, V, 3) float, the mesh of every frame f and view v,
        N >= 2 views of the same instants. With ``align="none"`` they must already be in the
        canonical frame, as the paper aligns each view's mesh to the canonical view before
        comparing; in facelab that is the model space (``Formation.verts``: the pose-free
        blendshape + jaw geometry, each view's head rotation and camera removed).
    align: "none" or "procrustes" — first map every view's mesh onto view 0's of the same
        frame with :func:`similarity_align` (rotation, translation and isotropic scale),
        for meshes given in each view's camera frame.

    Computed exactly as::

        CVD = (1 / T) Σ_f (2 / (N (N-1))) Σ_{i<j} (1 / V) Σ_k ||M_{f,i,k} - M_{f,j,k}||_1

    (ℓ1 over the three coordinates of a vertex, averaged over vertices, view pairs and frames;
    in the meshes' unit, mm for facelab models).

    Returns a float for (T, N, V, 3), (B,) for (B, T, N, V, 3) (NumPy in, NumPy out).
    """
    if align not in ("none", "procrustes"):
        raise ValueError(f"align: expected 'none' or 'procrustes', got {align!r}")
    m, was_numpy = as_tensor(meshes, name="meshes")
    batched = m.ndim == 5
    if not batched:
        check_shape(m, "T N V 3", name="meshes")
        m = m[None]
    else:
        check_shape(m, "B T N V 3", name="meshes")
    check_floating(m, name="meshes")
    check_finite(m, name="meshes")
    B, T, N, V, _ = m.shape
    if N < 2:
        raise ValueError(f"meshes: expected N >= 2 views, got {tuple(m.shape)}")
    if align == "procrustes":
        flat = m.reshape(B * T * N, V, 3)
        ref = m[:, :, :1].expand(B, T, N, V, 3).reshape(B * T * N, V, 3)
        m = similarity_align(flat, ref, rotation=True).reshape(B, T, N, V, 3)
    i, j = torch.triu_indices(N, N, offset=1, device=m.device)  # the N (N-1) / 2 pairs
    dist = (m[:, :, i] - m[:, :, j]).abs().sum(-1).mean(-1)  # (B, T, pairs)
    out = dist.mean(dim=(1, 2))  # (B,)
    return like_input(out, was_numpy) if batched else float(out[0])


def beta_norm_threshold(k: int, quantile: float = 0.999) -> float:
    """The ‖β‖₂ above which a β of k independent N(0, 1) coefficients is out of distribution.

    sqrt of the chi-square quantile with k degrees of freedom: ``P(‖β‖₂ <= thr) = quantile``
    for β ~ N(0, I_k). facelab's bases are scaled by their standard deviations, so a plausible
    k = 80 identity has ‖β‖₂ ≈ 9; the paper's FLAME threshold of 1.0 (App. A) refers to FLAME's
    own scaling and would reject nearly every facelab face.
    """
    from scipy.stats import chi2

    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected an int >= 1, got {k!r}")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile: expected a float in (0, 1), got {quantile!r}")
    return float(chi2.ppf(quantile, k) ** 0.5)


def beta_norm_reject(beta, threshold: float = 1.0):
    """NeuFace App. A filtering rule: discard a sequence whose shape code is out of distribution.

    beta: (B, K) float identity (shape) coefficients, one row per sequence (for per-frame
        codes, pass the clip's mean code; NeuFace shares β per subject).
    threshold: ‖β‖₂ above which a row is discarded; 1.0 is the paper's value for FLAME's
        coefficients (see :func:`beta_norm_threshold` for facelab's unit-variance bases).

    Computed exactly as ``reject_b = ||beta_b||_2 > threshold``.
    Returns (B,) bool, True = discard (NumPy in, NumPy out).
    """
    b, was_numpy = as_tensor(beta, name="beta")
    check_shape(b, "B K", name="beta")
    check_floating(b, name="beta")
    check_finite(b, name="beta")
    if not threshold > 0:
        raise ValueError(f"threshold: expected a positive float, got {threshold!r}")
    return like_input(b.norm(dim=1) > threshold, was_numpy)
