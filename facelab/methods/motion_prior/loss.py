"""The HuMoR-Face training loss (HuMoR Sec. 3 and its training defaults; NeuFace App. A).

For a transition x_t -> x_{t+1} with z ~ q(z | x_t, x_{t+1}) and x̂_{t+1} = x_t + Δ_θ(z, x_t)::

    L = Σ_b w_b L_rec,b  +  w_KL(step) KL( q(z | x_t, x_{t+1}) || p(z | x_t) )  +  w_vel L_vel

* L_rec,b — for each state block b (φ, φ̇, θ, J, J̇) the mean over its dimensions and the batch
  of ((x̂_{t+1} - x_{t+1}) / σ_Δ)², σ_Δ the training std of the one-step change (HuMoR's
  per-block regression losses, each weighted 1.0 by default);
* KL — the closed form between diagonal Gaussians, summed over latent dimensions, mean over
  the batch; its weight 4e-4 rises linearly from 0 over the first quarter of training
  (HuMoR's defaults: ``--kl-loss 0.0004``, annealed over epochs 0-50 of 200);
* L_vel — consistency of the predicted velocities with the predicted positions:
  ((Ĵ̇_{t+1} - (Ĵ_{t+1} - J_t) fps) / σ_J̇)² and ((ω̂_{t+1} - log(R̂_{t+1} R_tᵀ) fps) / σ_φ̇)²,
  means over dimensions and batch, log in its small-angle form
  (:func:`.state.relative_rotation_vector` with exact=False). HuMoR's own regulariser
  makes the predicted joints agree with the body model's joints of the predicted pose; a face
  state has no expression code, so its landmarks cannot be re-derived from (φ, θ) and this
  velocity/position consistency stands in for it (weight 1.0, HuMoR's consistency weight).
  It is facelab's choice: NeuFace states no regulariser.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelab._checks import check_positive
from facelab.methods.motion_prior.state import STATE, relative_rotation_vector
from facelab.rotations import rotation_6d_to_matrix

__all__ = ["LossWeights", "gaussian_kl", "transition_loss"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (module docs; HuMoR's defaults where it has one).

    rec: per-block reconstruction weights (phi, phi_dot, theta, J, J_dot).
    kl: the KL weight after annealing; kl_anneal: the fraction of training it takes to reach
        it (0: from the start). velocity: the velocity consistency weight.
    """

    rec: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0)
    kl: float = 4e-4
    kl_anneal: float = 0.25
    velocity: float = 1.0

    def __post_init__(self):
        if len(self.rec) != len(STATE.sizes):
            raise ValueError(f"rec: expected {len(STATE.sizes)} weights, got {len(self.rec)}")
        for name in ("kl", "kl_anneal", "velocity"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected a value >= 0, got {getattr(self, name)!r}")
        if any(not w >= 0 for w in self.rec):
            raise ValueError(f"rec: expected weights >= 0, got {self.rec!r}")

    def kl_weight(self, progress: float) -> float:
        """The KL weight at ``progress`` (fraction of training done, 0..1)."""
        if self.kl_anneal <= 0:
            return self.kl
        return self.kl * min(1.0, progress / self.kl_anneal)


def gaussian_kl(mu_q, log_var_q, mu_p, log_var_p) -> torch.Tensor:
    """KL(N(mu_q, e^{log_var_q}) || N(mu_p, e^{log_var_p})), (B, K) each -> (B,), summed over
    K: ½ Σ [log_var_p - log_var_q + (e^{log_var_q} + (mu_q - mu_p)²) / e^{log_var_p} - 1]."""
    return 0.5 * (log_var_p - log_var_q + (log_var_q.exp() + (mu_q - mu_p) ** 2)
                  / log_var_p.exp() - 1.0).sum(-1)


def transition_loss(net, out: dict, x: torch.Tensor, x_next: torch.Tensor, *,
                    weights: LossWeights, progress: float, fps: float = 30.0) -> dict:
    """The module's loss for one batch of transitions.

    net: the :class:`MotionPriorCVAE` (for its normalisation). out: ``net(x, x_next)``.
    x, x_next: (B, 420) input and true next states. progress: fraction of training done.
    Returns {"total", "rec", "kl", "velocity"} scalar tensors ("kl" unweighted).
    """
    fps = check_positive(fps, name="fps")
    x_hat = out["x_hat"]
    err = ((x_hat - x_next) / net.d_std) ** 2  # (B, D)
    rec = x_hat.new_zeros(())
    for w, sl in zip(weights.rec, STATE.slices.values(), strict=True):
        rec = rec + w * err[:, sl].mean()
    kl = gaussian_kl(out["mu_q"], out["log_var_q"], out["mu_p"], out["log_var_p"]).mean()
    b_hat, b_in = STATE.split(x_hat), STATE.split(x)
    sl = STATE.slices
    vel_j = (b_hat["J_dot"] - (b_hat["J"] - b_in["J"]) * fps) / net.x_std[sl["J_dot"]]
    omega = relative_rotation_vector(rotation_6d_to_matrix(b_hat["phi"]),
                                     rotation_6d_to_matrix(b_in["phi"]), exact=False) * fps
    vel_r = (b_hat["phi_dot"] - omega) / net.x_std[sl["phi_dot"]]
    velocity = (vel_j ** 2).mean() + (vel_r ** 2).mean()
    total = rec + weights.kl_weight(progress) * kl + weights.velocity * velocity
    return {"total": total, "rec": rec, "kl": kl, "velocity": velocity}
