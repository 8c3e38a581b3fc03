"""The E-step of NeuFace's EM-style optimisation (Sec. 3.2, App. B): latent targets.

* temporal: the head orientations of every view, as unit quaternions, sign-aligned along
  time and averaged over a sliding window (:func:`smooth_quaternions`, ``mode="mean"``; the
  median variant of Table S1 with ``mode="median"``);
* multi-view: per-vertex confidences from the angle between the vertex normal and the
  camera ray (τ_a) and the depth (τ_z) (:func:`vertex_confidence`), and the confidence-
  weighted average of the per-view meshes aligned to the canonical view
  (:func:`bootstrap_mesh`; facelab's model space is that canonical frame: each view's
  head rotation and camera are removed).

Everything here works on detached tensors: targets are constants of the M-step.
"""

from __future__ import annotations

import math

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_int, check_shape

__all__ = ["DEFAULT_TAU_A_DEG", "DEFAULT_TAU_Z", "DEFAULT_WINDOW", "align_quaternion_signs",
           "bootstrap_mesh", "smooth_quaternions", "vertex_confidence"]

DEFAULT_TAU_A_DEG = 72.0
"""τ_a: a vertex whose normal is more than 72° from the ray toward the camera is invisible
(Sec. 3.2, "we empirically choose τ_a = 72°")."""
DEFAULT_TAU_Z = -0.08
"""τ_z: a vertex deeper than −0.08 (normalised weak-perspective units, toward the viewer
positive, relative to the head origin) is invisible (Sec. 3.2)."""
DEFAULT_WINDOW = 5
"""Frames in the moving window (the paper does not state it; 5 frames = 0.17 s at 30 fps)."""


def _tensor(x, spec: str, name: str) -> torch.Tensor:
    t, _ = as_tensor(x, name=name)
    check_shape(t, spec, name=name)
    check_floating(t, name=name)
    check_finite(t, name=name)
    return t.detach()


def align_quaternion_signs(quaternions) -> torch.Tensor:
    """q and −q are one rotation: flip signs so consecutive frames lie in one hemisphere.

    quaternions: (T, N, 4) unit quaternions (w, x, y, z) of N views over T frames.
    Frame 0 keeps its sign; frame t is negated when ⟨q_t, q_{t−1}⟩ < 0 (after t−1's flip).
    Returns (T, N, 4).
    """
    q = _tensor(quaternions, "T N 4", "quaternions").clone()
    for t in range(1, q.shape[0]):
        flip = (q[t] * q[t - 1]).sum(-1, keepdim=True) < 0  # (N, 1)
        q[t] = torch.where(flip, -q[t], q[t])
    return q


def smooth_quaternions(quaternions, window: int = DEFAULT_WINDOW, mode: str = "mean"):
    """Temporal latent targets q̂, NeuFace Sec. 3.2 (E-step) and Table S1.

    quaternions: (T, N, 4) unit quaternions of the head orientation per frame and view.
    window: odd number of frames centred on each frame (truncated at the clip's ends).
    mode: "mean" — the moving average of the sign-aligned quaternions, renormalised;
        "median" — the per-component median over the window, renormalised.
    Returns (T, N, 4) unit quaternions (no gradient).
    """
    window = check_int(window, name="window", minimum=1)
    if window % 2 == 0:
        raise ValueError(f"window: expected an odd number of frames, got {window}")
    if mode not in ("mean", "median"):
        raise ValueError(f"mode: expected 'mean' or 'median', got {mode!r}")
    q = align_quaternion_signs(quaternions)
    T, h = q.shape[0], window // 2
    out = torch.empty_like(q)
    for t in range(T):
        block = q[max(0, t - h): t + h + 1]  # (w, N, 4)
        out[t] = block.mean(0) if mode == "mean" else block.median(0).values
    return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def vertex_confidence(normals, depth, tau_a_deg: float = DEFAULT_TAU_A_DEG,
                      tau_z: float = DEFAULT_TAU_Z) -> torch.Tensor:
    """Per-vertex confidence of one view's mesh, NeuFace Sec. 3.2 (Fig. 2).

    normals: (B, V, 3) unit vertex normals in OpenCV camera space (``Formation.normals``);
        under a weak-perspective camera every ray runs along +z, so the angle a between the
        normal and the ray toward the camera has cos a = −n_z.
    depth: (B, V) vertex depth toward the viewer in normalised image units, relative to the
        head origin (``s (R X)_z``; NeuFace's z).
    tau_a_deg, tau_z: thresholds (paper: 72°, −0.08).

    Returns (B, V) in [0, 1]: ``cos a`` where the vertex is visible (a <= τ_a and z >= τ_z),
    0 where either test marks it invisible.
    """
    d: dict = {}
    n = _tensor(normals, "B V 3", "normals")
    check_shape(n, "B V 3", name="normals", dims=d)
    z = _tensor(depth, "B V", "depth")
    check_shape(z, "B V", name="depth", dims=d)
    cos_a = -n[..., 2]  # (B, V)
    visible = (cos_a >= math.cos(math.radians(float(tau_a_deg)))) & (z.to(n) >= tau_z)
    return torch.where(visible, cos_a, torch.zeros_like(cos_a))


def bootstrap_mesh(meshes, confidence) -> torch.Tensor:
    """Multi-view latent targets M̂_f, NeuFace Sec. 3.2 (E-step, Fig. 2).

    meshes: (T, N, V, 3) per-view meshes of each frame in the canonical (model) frame.
    confidence: (T, N, V) non-negative weights (:func:`vertex_confidence`).
    Returns (T, V, 3): ``Σ_v c_{f,v,k} M_{f,v,k} / Σ_v c_{f,v,k}``, the plain mean over views
    where no view is confident about a vertex (no gradient).
    """
    d: dict = {}
    m = _tensor(meshes, "T N V 3", "meshes")
    check_shape(m, "T N V 3", name="meshes", dims=d)
    c = _tensor(confidence, "T N V", "confidence")
    check_shape(c, "T N V", name="confidence", dims=d)
    if bool((c < 0).any()):
        raise ValueError("confidence: expected values >= 0, got negative entries")
    c = c.to(m)
    total = c.sum(1)  # (T, V)
    weighted = (c[..., None] * m).sum(1) / total.clamp_min(1e-12)[..., None]
    return torch.where((total > 0)[..., None], weighted, m.mean(1))
