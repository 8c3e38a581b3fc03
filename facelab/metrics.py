"""Evaluation metrics of the seed papers.

* :func:`nme` — normalised mean error of 2D landmarks (3DDFA_V2 Tables 1-2: normalised by
  the bounding-box size sqrt(w h) of the ground truth; also the inter-ocular convention).
* :func:`aligned_vertex_error` — mean point-to-point 3D distance after compensating translation
  and isotropic scale (and optionally rotation): MoFA Sec. 7 "Quantitative Evaluation".
* :func:`mpve` — mean per-vertex Euclidean error, no alignment.
* :func:`stability` — 3DDFA_V2 Sec. 3.1: NME between the predicted and the true offsets of
  adjacent video frames.

All accept torch tensors or NumPy arrays (NumPy in, NumPy out) in float32/float64.
"""

from __future__ import annotations

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_shape, like_input

__all__ = ["aligned_vertex_error", "mpve", "nme", "similarity_align", "stability"]

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


def similarity_align(source, target, rotation: bool = False):
    """Least-squares similarity that maps ``source`` onto ``target`` (Umeyama 1991).

    source, target: (B, V, 3) point sets in correspondence.
    rotation: also estimate a rotation (full Procrustes). Without it only translation and
        isotropic scale are compensated (MoFA's protocol: the estimated rotation is part of
        what is evaluated).
    Returns the aligned source, (B, V, 3).
    """
    s, was_numpy, dims = _points(source, "B V 3", "source")
    t, _, _ = _points(target, "B V 3", "target", dims=dims)
    t = t.to(s)
    mu_s, mu_t = s.mean(dim=1, keepdim=True), t.mean(dim=1, keepdim=True)  # (B, 1, 3)
    xs, xt = s - mu_s, t - mu_t
    var_s = (xs * xs).sum(dim=(1, 2))  # (B,)
    if rotation:
        cov = torch.einsum("bvi,bvj->bij", xt, xs)  # (B, 3, 3) target x source
        u, sig, vh = torch.linalg.svd(cov)
        d = torch.sign(torch.linalg.det(u @ vh))  # reflection guard
        fix = torch.ones_like(sig)
        fix[:, 2] = d
        rot = u @ torch.diag_embed(fix) @ vh  # (B, 3, 3)
        scale = (sig * fix).sum(dim=1) / var_s.clamp_min(1e-30)
        xs = torch.einsum("bij,bvj->bvi", rot, xs)
    else:
        scale = (xs * xt).sum(dim=(1, 2)) / var_s.clamp_min(1e-30)
    aligned = scale[:, None, None] * xs + mu_t
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
