"""Long-term motion from HuMoR-Face: autoregressive sampling (NeuFace Sec. 5.1, Fig. 9).

From one initial state x_0, each step draws z ~ p(z | x_t) from the learned prior and sets
x_{t+1} = x_t + Δ_θ(z, x_t) with φ re-orthonormalised (HuMoR's rollout); S samples
advance together as one batch. :func:`meshes_from_states` turns states into meshes for
viewing.
"""

from __future__ import annotations

import torch

from facelab._checks import as_tensor, check_finite, check_floating, check_int
from facelab.methods.motion_prior.model import MotionPriorCVAE
from facelab.methods.motion_prior.state import MM_PER_CM, STATE, orthonormalize_states
from facelab.model.morphable import MorphableModel
from facelab.rotations import rotation_6d_to_matrix

__all__ = ["FaceProjection", "meshes_from_states", "sample_motion"]


class FaceProjection:
    """Keeps sampled states on the face model: HuMoR-Face's stand-in for HuMoR's body-model
    consistency (facelab's choice; NeuFace does not describe its sampler beyond HuMoR).

    HuMoR keeps the body shape fixed through a rollout and ties the joints to the body model;
    a state of free landmarks has nothing that ties it, and without it every trained model's
    300-frame rollouts drifted off any face (measured: the largest landmark distance from the
    pivot reached 1.3-32 m for diverse-trained models, 90 km for a narrow-trained one).
    After each step, with R = R(φ) and the identity fixed at the start state's:

        Y   = R_tᵀ J_t                                    (head frame, mm)
        Y'  = m + B_id c_id + P_exp (Y - m - B_id c_id)   (P_exp: ridge projection onto the
                                                           expression basis at the landmarks)
        J'  = R_t Y';   J̇' = (J' - J_{t-1}) fps;   φ̇' = log(R_t R_{t-1}ᵀ) fps

    so positions are a face of the start's identity and the velocities are exactly the
    differences of positions (the consistency the training loss asks for).
    model: version 1 (68 landmarks). ridge: the coefficients' prior (they are ~N(0, 1)).
    """

    def __init__(self, model: MorphableModel, ridge: float = 1.0, fps: float = 30.0):
        m = model.to(dtype=torch.float32)
        self.fps = float(fps)
        self.mean = m.landmark_rows(m.mean_shape).reshape(-1)  # (204,) mm
        self.B_id = m.landmark_rows(m.id_basis).reshape(-1, m.n_id)  # (204, Kid)
        B_exp = m.landmark_rows(m.exp_basis).reshape(-1, m.n_exp)  # (204, Kexp)
        eye = torch.eye(B_exp.shape[1])
        self.P_exp = B_exp @ torch.linalg.solve(B_exp.T @ B_exp + ridge * eye, B_exp.T)
        B = torch.cat([self.B_id, B_exp], dim=1)
        self._fit = torch.linalg.solve(B.T @ B + ridge * torch.eye(B.shape[1]), B.T)
        self.ridge = float(ridge)

    def identity_offset(self, x: torch.Tensor) -> torch.Tensor:
        """(S, 420) states -> (S, 204) B_id c_id of their ridge fit (mm, head frame)."""
        R = rotation_6d_to_matrix(STATE.split(x)["phi"])
        Y = ((STATE.landmarks_of(x) * MM_PER_CM) @ R).reshape(x.shape[0], -1)  # (S, 204)
        c = (Y - self.mean) @ self._fit.T  # (S, Kid + Kexp)
        return c[:, :self.B_id.shape[1]] @ self.B_id.T

    def project(self, x: torch.Tensor, x_prev: torch.Tensor, id_offset: torch.Tensor):
        """x, x_prev: (S, 420); id_offset: (S, 204) -> (S, 420) (class docs)."""
        from facelab.methods.motion_prior.state import relative_rotation_vector

        S = x.shape[0]
        b = STATE.split(x)
        R = rotation_6d_to_matrix(b["phi"])  # (S, 3, 3)
        R_prev = rotation_6d_to_matrix(STATE.split(x_prev)["phi"])
        Y = ((STATE.landmarks_of(x) * MM_PER_CM) @ R).reshape(S, -1)  # (S, 204)
        base = self.mean + id_offset
        Y = base + (Y - base) @ self.P_exp.T
        J = Y.reshape(S, -1, 3) @ R.transpose(1, 2) / MM_PER_CM  # (S, 68, 3) cm
        J_dot = (J - STATE.landmarks_of(x_prev)) * self.fps
        omega = relative_rotation_vector(R, R_prev) * self.fps
        return STATE.pack({"phi": b["phi"], "phi_dot": omega, "theta": b["theta"],
                           "J": J.flatten(1), "J_dot": J_dot.flatten(1)})


def sample_motion(net: MotionPriorCVAE, x0, steps: int, *, samples: int = 1,
                  generator: torch.Generator | None = None, z=None,
                  projection: FaceProjection | None = None) -> torch.Tensor:
    """S motions of ``steps`` steps from one start state (module docs).

    net: a trained :class:`MotionPriorCVAE`. x0: (420,) start state, or (S, 420) one per
        sample. steps: transitions to take (300 = 10 s at 30 fps). samples: S when x0 is
        (420,). generator: torch.Generator for z (fixed seeds). z: optional (S, steps, latent)
        latents to decode instead of prior draws, as offsets in units of the prior's std:
        z_t = μ_p(x_t) + σ_p(x_t) ⊙ z[:, t] (the latent explorer sets one dimension).
    projection: a :class:`FaceProjection` applied after every step (None: the raw rollout).
    Returns (S, steps + 1, 420) float32 states, x0 first.
    """
    if not isinstance(net, MotionPriorCVAE):
        raise TypeError(f"net: expected a MotionPriorCVAE, got {type(net).__name__}")
    x, _ = as_tensor(x0, name="x0")
    check_floating(x, name="x0")
    check_finite(x, name="x0")
    steps = check_int(steps, name="steps", minimum=1)
    samples = check_int(samples, name="samples", minimum=1)
    if x.ndim == 1:
        if x.shape[0] != STATE.size:
            raise ValueError(f"x0: expected ({STATE.size},) or (S, {STATE.size}), got "
                             f"{tuple(x.shape)}")
        x = x[None].expand(samples, -1)
    elif x.ndim != 2 or x.shape[1] != STATE.size:
        raise ValueError(f"x0: expected ({STATE.size},) or (S, {STATE.size}), got "
                         f"{tuple(x.shape)}")
    S = x.shape[0]
    if z is not None:
        z, _ = as_tensor(z, name="z")
        if tuple(z.shape) != (S, steps, net.latent):
            raise ValueError(f"z: expected ({S}, {steps}, {net.latent}), got "
                             f"{tuple(z.shape)}")
    x = x.float()
    out = [x]
    net.eval()
    with torch.no_grad():
        id_offset = None if projection is None else projection.identity_offset(x)
        for t in range(steps):
            mu, log_var = net.prior(x)
            eps = (torch.randn(mu.shape, generator=generator) if z is None
                   else z[:, t].to(mu))
            x_new = orthonormalize_states(net.step(mu + torch.exp(0.5 * log_var) * eps, x))
            if projection is not None:
                x_new = projection.project(x_new, x, id_offset)
            x = x_new
            out.append(x)
    seq = torch.stack(out, dim=1)  # (S, steps + 1, D)
    check_finite(seq, name="sampled states")
    return seq


def meshes_from_states(model: MorphableModel, states, *, ridge: float = 1.0) -> torch.Tensor:
    """Meshes that carry the states' landmarks, for viewing: (T, 420) -> (T, V, 3) mm.

    The state holds landmarks, not the mesh. Per frame: un-rotate J (R_tᵀ J_t, mm), remove the
    jaw's landmark displacement on the mean face for θ_t, solve the identity and expression
    coefficients c by ridge regression on the model's landmark rows,
    ``c = (BᵀB + ridge I)⁻¹ Bᵀ (X - mean)`` (coefficients ~N(0, 1), so ``ridge`` = 1 is
    their prior), then pose: jaw θ_t, rotation R_t. model: the version the states were made
    with (it needs a jaw joint and 68 landmarks).
    """
    from facelab.data.talking import has_joint

    x, _ = as_tensor(states, name="states")
    check_floating(x, name="states")
    if x.ndim != 2 or x.shape[1] != STATE.size:
        raise ValueError(f"states: expected (T, {STATE.size}), got {tuple(x.shape)}")
    check_finite(x, name="states")
    if not has_joint(model, "jaw") or model.landmarks is None:
        raise ValueError("model: expected a model with a jaw joint and landmarks (version 1)")
    m = model.to(dtype=torch.float32)
    b = STATE.split(x.float())
    R = rotation_6d_to_matrix(b["phi"])  # (T, 3, 3)
    T = x.shape[0]
    Y = (STATE.landmarks_of(x.float()) * MM_PER_CM) @ R  # (T, 68, 3) R^T J, mm
    mean = m.mean_shape[None].expand(T, -1, -1)
    jaw_shift = m.landmark_points(m.pose_joints(mean, {"jaw": b["theta"]}) - mean)  # (T, 68, 3)
    target = (Y - jaw_shift - m.landmark_rows(m.mean_shape)).reshape(T, -1)  # (T, 204)
    B = torch.cat([m.landmark_rows(m.id_basis).reshape(-1, m.n_id),
                   m.landmark_rows(m.exp_basis).reshape(-1, m.n_exp)], dim=1)  # (204, K)
    A = B.T @ B + ridge * torch.eye(B.shape[1])
    c = torch.linalg.solve(A, B.T @ target.T).T  # (T, Kid + Kexp)
    verts = m.shape(c[:, :m.n_id], c[:, m.n_id:])  # (T, V, 3)
    verts = m.pose_joints(verts, {"jaw": b["theta"]})
    return verts @ R.transpose(1, 2)
