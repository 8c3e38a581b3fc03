"""Evaluation metrics of the seed papers.

* :func:`nme` — normalised mean error of 2D landmarks (3DDFA_V2 Tables 1-2: normalised by
  the bounding-box size sqrt(w h) of the ground truth; also the inter-ocular convention).
* :func:`aligned_vertex_error` — mean point-to-point 3D distance after compensating translation
  and isotropic scale (and optionally rotation): MoFA Sec. 7 "Quantitative Evaluation".
* :func:`mpve` — mean per-vertex Euclidean error, no alignment.
* :func:`scan_to_mesh_error` — the NoW benchmark's protocol (Sanyal et al., CVPR 2019, Sec. 5):
  landmark similarity alignment, rigid + scale ICP, then the distance from every scan point to
  the closest point on the predicted *surface*; median / mean / std in mm.
* :func:`stability` — 3DDFA_V2 Sec. 3.1: NME between the predicted and the true offsets of
  adjacent video frames.
* :func:`msi3d`, :func:`cvd`, :func:`beta_norm_reject` (with :func:`beta_norm_threshold`) —
  NeuFace Sec. 4.1 and App. A: 3D motion stability, cross-view vertex distance and the
  out-of-distribution shape filter (NeuFace's MPVE of Fig. 4 is :func:`mpve`, its NME
  :func:`nme`).
* :func:`motion_fd` (with :func:`motion_features`, :func:`gaussian_frechet_distance`) and
  :func:`motion_apd` — NeuFace Sec. 5.1 / Table 4 (after HuMoR): the naturalness and the
  diversity of generated long-term facial motion.

All accept torch tensors or NumPy arrays (NumPy in, NumPy out) in float32/float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_indices,
    check_int,
    check_positive,
    check_shape,
    like_input,
)
from facelab.mesh import closest_points

__all__ = ["ScanError", "aligned_vertex_error", "beta_norm_reject", "beta_norm_threshold", "cvd",
           "gaussian_frechet_distance", "motion_apd", "motion_fd", "motion_features", "mpve",
           "msi3d", "nme", "scan_to_mesh_error", "similarity_align", "similarity_transform",
           "stability"]

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


@dataclass(frozen=True, eq=False)
class ScanError:
    """What :func:`scan_to_mesh_error` measured (NumPy float64, mm for facelab models).

    median, mean, std: statistics of ``distances`` (the NoW benchmark's three numbers).
    distances: (N,) each scan point's distance to the aligned predicted surface.
    closest: (N, 3) the closest surface points, in the scan's frame.
    aligned_verts: (V, 3) the predicted mesh after alignment, in the scan's frame.
    scale, rotation (3, 3), translation (3,): the similarity ``x -> scale R x + t`` that maps
        the predicted mesh into the scan's frame (landmarks, then ICP).
    landmark_rms: RMS landmark distance (mm) after the landmark alignment alone.
    iterations: ICP iterations run.
    """

    median: float
    mean: float
    std: float
    distances: np.ndarray
    closest: np.ndarray
    aligned_verts: np.ndarray
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    landmark_rms: float
    iterations: int

    def __repr__(self) -> str:
        return (f"ScanError(median={self.median:.3f}, mean={self.mean:.3f}, std={self.std:.3f}, "
                f"points={len(self.distances)}, icp_iterations={self.iterations})")


def _np_points(x, spec: str, name: str, dims: dict | None = None):
    t, _, dims = _points(x, spec, name, dims)
    return t.detach().cpu().double().numpy(), dims


def _apply(scale: float, rot: np.ndarray, shift: np.ndarray, x: np.ndarray) -> np.ndarray:
    return scale * x @ rot.T + shift  # (N, 3)


def _fit_similarity(source: np.ndarray, target: np.ndarray, with_scale: bool):
    """(scale, R (3, 3), t (3,)) mapping source (N, 3) onto target (N, 3), float64."""
    scale, rot, shift = similarity_transform(torch.from_numpy(source)[None],
                                             torch.from_numpy(target)[None], rotation=True)
    scale = float(scale[0]) if with_scale else 1.0
    rot = rot[0].numpy()
    if not with_scale:  # rigid: t = mean(target) - R mean(source)
        return 1.0, rot, target.mean(0) - rot @ source.mean(0)
    return scale, rot, shift[0].numpy()


def scan_to_mesh_error(scan, scan_landmarks, verts, faces, mesh_landmarks, *,
                       icp_iterations: int = 50, scale: bool = True, tol: float = 1e-4):
    """Scan-to-mesh distance of a predicted face, the NoW benchmark's protocol.

    Sanyal et al., "Learning to regress 3D face shape and expression from an image without 3D
    supervision" (CVPR 2019), Sec. 5 (the NoW evaluation, used by NeuFace Sec. 5.2, Table 5):

    1. the predicted mesh is mapped into the scan's frame by the least-squares similarity
       (rotation, translation, isotropic scale) between its landmarks and the scan's
       (:func:`similarity_transform`, Umeyama 1991);
    2. ICP refines it: each scan point's closest point on the predicted surface
       (:func:`facelab.mesh.closest_points`), then the similarity (or rigid transform) that
       maps those surface points onto the scan points, repeated until the mean distance
       falls by less than ``tol`` (relative, or ``tol`` x 1e-3 of the scan's extent absolute),
       rises, or ``icp_iterations`` are done;
    3. the error of every scan point is its distance to the closest point on the aligned
       surface (triangle interiors and edges, not only vertices).

    scan: (N, 3) float points of the ground truth's face region (mm).
    scan_landmarks: (L, 3) float landmarks on the scan, L >= 3 and not collinear (NoW: 7 —
        eye corners, nose tip, mouth corners).
    verts: (V, 3) float predicted mesh, any frame. faces: (F, 3) int64 its triangles (a
        subset is allowed, e.g. the face region).
    mesh_landmarks: (L, 3) float the same landmarks on the prediction (e.g.
        ``verts[model.landmarks[idx]]``).
    icp_iterations: int >= 0 (0: landmark alignment only). scale: let ICP change the scale
        (False: rigid ICP after the landmark similarity).
    tol: relative decrease of the mean distance that stops ICP.

    Returns a :class:`ScanError` (median, mean, std in the scan's units, and the per-point
    distances). Inputs may be torch or NumPy; everything returned is NumPy float64.
    """
    sc, _ = _np_points(scan, "N 3", "scan")
    lm_s, dims = _np_points(scan_landmarks, "L 3", "scan_landmarks")
    v, _ = _np_points(verts, "V 3", "verts")
    lm_m, _ = _np_points(mesh_landmarks, "L 3", "mesh_landmarks", dims={"L": dims["L"]})
    f, _ = as_tensor(faces, name="faces")
    check_shape(f, "F 3", name="faces")
    check_indices(f, v.shape[0], name="faces")
    icp_iterations = check_int(icp_iterations, name="icp_iterations", minimum=0)
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")
    if sc.shape[0] < 1 or f.shape[0] < 1:
        raise ValueError(f"scan, faces: expected at least one point and one face, got "
                         f"{sc.shape} and {tuple(f.shape)}")
    for name, lm in (("scan_landmarks", lm_s), ("mesh_landmarks", lm_m)):
        sv = np.linalg.svd(lm - lm.mean(0), compute_uv=False)  # (3,) spread along 3 axes
        if lm.shape[0] < 3 or sv[1] <= 1e-9 * max(sv[0], 1e-300):
            raise ValueError(f"{name}: expected >= 3 non-collinear points, got "
                             f"{lm.shape[0]} points spanning rank {int((sv > 1e-9 * sv[0]).sum())}")
    fn = f.detach().cpu().numpy().astype(np.int64)
    # 1. landmark similarity
    s_tot, r_tot, t_tot = _fit_similarity(lm_m, lm_s, with_scale=True)
    landmark_rms = float(np.sqrt(((_apply(s_tot, r_tot, t_tot, lm_m) - lm_s) ** 2)
                                 .sum(1).mean()))
    # 2. ICP on the surface
    aligned = _apply(s_tot, r_tot, t_tot, v)
    closest, dist, _ = closest_points(sc, aligned, fn)
    iterations = 0
    floor = tol * 1e-3 * float(np.linalg.norm(sc.max(0) - sc.min(0)))  # absolute, scan units
    for _ in range(icp_iterations):
        ds, dr, dt = _fit_similarity(closest, sc, with_scale=scale)
        moved = _apply(ds, dr, dt, aligned)
        c_new, d_new, _ = closest_points(sc, moved, fn)
        if d_new.mean() > dist.mean():  # a step that does not help ends ICP
            break
        iterations += 1
        s_tot, r_tot, t_tot = ds * s_tot, dr @ r_tot, ds * dr @ t_tot + dt
        drop = dist.mean() - d_new.mean()
        aligned, closest, dist = moved, c_new, d_new
        if drop < tol * (dist.mean() + drop) or drop < floor:
            break
    return ScanError(median=float(np.median(dist)), mean=float(dist.mean()),
                     std=float(dist.std()), distances=dist, closest=closest,
                     aligned_verts=aligned, scale=float(s_tot), rotation=r_tot,
                     translation=t_tot, landmark_rms=landmark_rms, iterations=iterations)


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


# ---------------------------------------------------------------------------------------
# NeuFace Sec. 5.1 / Table 4 (after HuMoR, Rempe et al. 2021): generated facial motion
# ---------------------------------------------------------------------------------------

MOTION_FEATURES = ("speed_mean", "speed_sd", "accel_mean", "mouth_mean", "mouth_sd",
                   "eyes_mean", "eyes_sd", "nose_x_mean", "nose_y_mean", "nose_z_mean",
                   "nose_x_sd", "nose_y_sd", "nose_z_sd")
"""Names of the 13 columns of :func:`motion_features`, in order."""

# iBUG-68 (0-based): inner-lip centres, eyelid pairs (upper, lower), nose tip
_INNER_LIPS = (62, 66)
_EYELIDS = ((37, 41), (38, 40), (43, 47), (44, 46))
_NOSE_TIP = 30


def _landmark_motion(x, name: str, min_frames: int = 1):
    """(S, T, 68, 3) float -> float64 tensor (NumPy accepted)."""
    t, _ = as_tensor(x, name=name)
    check_shape(t, "S T 68 3", name=name)
    check_floating(t, name=name)
    check_finite(t, name=name)
    if t.shape[1] < min_frames:
        raise ValueError(f"{name}: expected at least T={min_frames} frames, got "
                         f"{tuple(t.shape)}")
    return t.detach().to(torch.float64).cpu()


def motion_features(landmarks, *, fps: float = 30.0, window: int = 30, stride: int = 15):
    """Hand-made motion features of landmark sequences, one row per window (for :func:`motion_fd`).

    landmarks: (S, T, 68, 3) float, S sequences of T frames of the iBUG-68 3D landmarks with
        the head's rotation applied (facelab's motion prior: centimetres, about the head's
        pivot). fps: frame rate. window: frames per window (>= 3). stride: frames between
        window starts; windows never cross sequences; every sequence needs T >= window.

    For each window W of frames t = a .. a+window-1 of one sequence (velocities
    v_t = (J_t - J_{t-1}) fps and accelerations a_t = (J_{t+1} - 2 J_t + J_{t-1}) fps² taken
    inside the window; means over landmarks written <.>; mean / sd over the window's frames,
    population sd)::

        speed_mean = mean_t <|v_t|>          speed_sd = sd_t <|v_t|>
        accel_mean = mean_t <|a_t|>
        mouth_mean, mouth_sd = mean_t, sd_t of |J_t[62] - J_t[66]|     (inner-lip opening)
        eyes_mean, eyes_sd   = mean_t, sd_t of the mean of |J_t[u] - J_t[l]| over the
                               eyelid pairs (37, 41), (38, 40), (43, 47), (44, 46)
        nose_{x,y,z}_mean, nose_{x,y,z}_sd = mean_t, sd_t of J_t[30] - <J_t>
                               (nose tip about the landmarks' centroid: head direction)

    (column order :data:`MOTION_FEATURES`). NeuFace's FD uses learned features (Ng et al.
    2022) that facelab does not have; these measure the same things by hand: how fast and how
    smoothly the face moves, how the mouth and eyes open, where the head points and how much
    it turns.

    Returns (M, 13) float64 (M = S * (1 + (T - window) // stride)), NumPy in, NumPy out.
    """
    _, was_numpy = as_tensor(landmarks, name="landmarks")
    window = check_int(window, name="window", minimum=3)
    stride = check_int(stride, name="stride", minimum=1)
    fps = check_positive(fps, name="fps")
    x = _landmark_motion(landmarks, "landmarks", min_frames=window)
    T = x.shape[1]
    starts = torch.arange(0, T - window + 1, stride)
    idx = starts[:, None] + torch.arange(window)[None]  # (M_s, window)
    w = x[:, idx]  # (S, M_s, window, 68, 3)
    vel = (w[:, :, 1:] - w[:, :, :-1]) * fps  # (S, M_s, window-1, 68, 3)
    acc = (w[:, :, 2:] - 2 * w[:, :, 1:-1] + w[:, :, :-2]) * fps * fps
    speed = vel.norm(dim=-1).mean(-1)  # (S, M_s, window-1)
    mouth = (w[..., _INNER_LIPS[0], :] - w[..., _INNER_LIPS[1], :]).norm(dim=-1)  # (S, M_s, win)
    eyes = torch.stack([(w[..., u, :] - w[..., lo, :]).norm(dim=-1) for u, lo in _EYELIDS],
                       -1).mean(-1)  # (S, M_s, window)
    nose = w[..., _NOSE_TIP, :] - w.mean(-2)  # (S, M_s, window, 3)

    def sd(v, dim):
        return v.var(dim=dim, unbiased=False).sqrt()

    feats = torch.cat([
        speed.mean(-1, keepdim=True), sd(speed, -1)[..., None],
        acc.norm(dim=-1).mean(dim=(-1, -2))[..., None],
        mouth.mean(-1, keepdim=True), sd(mouth, -1)[..., None],
        eyes.mean(-1, keepdim=True), sd(eyes, -1)[..., None],
        nose.mean(-2), sd(nose, -2)], dim=-1)  # (S, M_s, 13)
    return like_input(feats.reshape(-1, len(MOTION_FEATURES)), was_numpy)


def gaussian_frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (FID, Heusel et al. 2017).

    mu1, mu2: (D,) float; cov1, cov2: (D, D) symmetric positive semi-definite.
    Computed exactly as ``|mu1 - mu2|² + tr(cov1 + cov2 - 2 (cov1^½ cov2 cov1^½)^½)``
    (the trace of (cov1 cov2)^½ equals that of the symmetric (cov1^½ cov2 cov1^½)^½, taken
    from its eigenvalues, clamped at 0), in float64. Returns a float >= 0 (up to rounding).
    """
    m1, _ = as_tensor(mu1, name="mu1")
    D = check_shape(m1, "D", name="mu1")["D"]
    c1, _ = as_tensor(cov1, name="cov1")
    m2, _ = as_tensor(mu2, name="mu2")
    c2, _ = as_tensor(cov2, name="cov2")
    dims = {"D": D}
    check_shape(c1, "D D", name="cov1", dims=dims)
    check_shape(m2, "D", name="mu2", dims=dims)
    check_shape(c2, "D D", name="cov2", dims=dims)
    for t, n in ((m1, "mu1"), (c1, "cov1"), (m2, "mu2"), (c2, "cov2")):
        check_floating(t, name=n)
        check_finite(t, name=n)
    m1, m2, c1, c2 = (t.detach().to(torch.float64).cpu() for t in (m1, m2, c1, c2))
    c1, c2 = 0.5 * (c1 + c1.T), 0.5 * (c2 + c2.T)
    e1, u1 = torch.linalg.eigh(c1)
    root1 = (u1 * e1.clamp_min(0).sqrt()) @ u1.T  # cov1^½
    middle = root1 @ c2 @ root1
    tr_root = torch.linalg.eigvalsh(0.5 * (middle + middle.T)).clamp_min(0).sqrt().sum()
    return float(((m1 - m2) ** 2).sum() + torch.trace(c1) + torch.trace(c2) - 2 * tr_root)


def motion_fd(generated, real, *, fps: float = 30.0, window: int = 30, stride: int = 15,
              standardize: bool = True) -> float:
    """Motion Fréchet distance (NeuFace Table 4 "FD", after Ng et al. 2022): naturalness.

    generated: (S, T, 68, 3) float landmark sequences sampled from a motion model.
    real: (S', T', 68, 3) float held-out real (here: annotated) sequences, same units.
    fps, window, stride: as in :func:`motion_features` (both sets use the same windows).
    standardize: divide every feature column of both sets by the real set's standard
        deviation of that column first (the features mix cm, cm/s and cm/s²; without this the
        acceleration column, ~100x the others, decides the distance alone). False: raw units.

    ``FD = gaussian_frechet_distance(mean(F_g), cov(F_g), mean(F_r), cov(F_r))`` with
    F = :func:`motion_features` (one row per window), optionally divided column-wise by
    sd(F_r) (sample std), and cov the unbiased sample covariance (rows - 1); both sets need
    at least 2 windows. Identical sets give 0; lower is closer to real motion; standardised,
    a feature whose mean is off by one real standard deviation adds 1.
    """
    fg = torch.as_tensor(motion_features(generated, fps=fps, window=window, stride=stride))
    fr = torch.as_tensor(motion_features(real, fps=fps, window=window, stride=stride))
    for f, n in ((fg, "generated"), (fr, "real")):
        if f.shape[0] < 2:
            raise ValueError(f"{n}: expected at least 2 windows of {window} frames, got "
                             f"{f.shape[0]}")
    if standardize:
        scale = fr.std(0).clamp_min(1e-12)  # (13,)
        fg, fr = fg / scale, fr / scale
    return gaussian_frechet_distance(fg.mean(0), torch.cov(fg.T), fr.mean(0), torch.cov(fr.T))


def motion_apd(samples) -> float:
    """Average pairwise distance (NeuFace Table 4 "APD", HuMoR Sec. 5; Aliakbarian et al.):
    diversity of S motions sampled from the same initial state.

    samples: (S, T, 68, 3) float, S >= 2 landmark sequences of equal length (cm in facelab's
        motion prior, so APD is in cm like the paper's).

    Computed exactly as::

        APD = (2 / (S (S-1))) Σ_{i<j} (1 / (T L)) Σ_t Σ_l ||J^i_{t,l} - J^j_{t,l}||_2

    the mean landmark distance between all pairs of samples (NeuFace Sec. 5.1), averaged over
    frames and landmarks. Returns a float (0 for identical samples).
    """
    x = _landmark_motion(samples, "samples")
    S = x.shape[0]
    if S < 2:
        raise ValueError(f"samples: expected at least S=2 sequences, got {tuple(x.shape)}")
    i, j = torch.triu_indices(S, S, offset=1)  # the S (S-1) / 2 pairs
    total = x.new_zeros(())
    for a, b in zip(i.tolist(), j.tolist(), strict=True):  # pair by pair: S up to ~100
        total = total + (x[a] - x[b]).norm(dim=-1).mean()
    return float(total / len(i))
