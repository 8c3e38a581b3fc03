"""Generated facial motion: NeuFace Sec. 5.1 / Table 4 (after HuMoR, Rempe et al. 2021).

Re-exported by :mod:`facelab.metrics`; see :func:`motion_fd` and :func:`motion_apd`.
"""

from __future__ import annotations

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

__all__ = ["MOTION_FEATURES", "gaussian_frechet_distance", "motion_apd", "motion_fd",
           "motion_features"]


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
