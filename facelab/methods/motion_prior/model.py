"""HuMoR-Face: a conditional VAE of the facial state transition (NeuFace Sec. 5.1, HuMoR Sec. 3).

HuMoR (Rempe et al., ICCV 2021) models a motion as a Markov chain of states whose transition
p(x_t | x_{t-1}) is a conditional VAE (Sohn et al. 2015) with a *learned* conditional prior:

    p_θ(z | x_t)            = N(μ_p(x_t), diag σ_p²(x_t))          prior MLP (HuMoR Sec. 3)
    q_φ(z | x_t, x_{t+1})   = N(μ_q(x_t, x_{t+1}), diag σ_q²)       encoder MLP
    x̂_{t+1} = x_t + Δ_θ(z, x_t)                                     decoder MLP: the change
                                                                    of state (HuMoR Sec. 3)

NeuFace keeps this with the face state of :mod:`.state`. Inputs and outputs are normalised
with statistics of the training states, stored with the weights (buffers ``x_mean``,
``x_std``, ``d_mean``, ``d_std``): the networks see ``(x - x_mean) / x_std`` and the decoder
outputs ``(Δ - d_mean) / d_std``. facelab's MLPs are small (two hidden layers of
``hidden`` units, ReLU; HuMoR's are 1024 wide) so they train on a CPU in seconds.
"""

from __future__ import annotations

import torch
from torch import nn

from facelab._checks import check_finite, check_floating, check_int
from facelab.methods.motion_prior.state import STATE

__all__ = ["STD_FLOOR", "MotionPriorCVAE"]

STD_FLOOR = 1e-2
"""Smallest normalising standard deviation (in each block's unit: 6D, rad/s, rad, cm, cm/s),
so a block that barely moves in the training set (the narrow set's head) is not blown up."""


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, n_out))


class MotionPriorCVAE(nn.Module):
    """The three MLPs of HuMoR (module docs) with the data's normalisation.

    latent: size of z (HuMoR: 48). hidden: units of each hidden layer.
    Call :meth:`set_normalization` with training states before training.
    """

    def __init__(self, latent: int = 16, hidden: int = 64):
        super().__init__()
        D = STATE.size
        self.latent = check_int(latent, name="latent", minimum=1)
        self.hidden = check_int(hidden, name="hidden", minimum=1)
        self.prior_net = _mlp(D, hidden, 2 * latent)
        self.encoder_net = _mlp(2 * D, hidden, 2 * latent)
        self.decoder_net = _mlp(D + latent, hidden, D)
        for name in ("x_mean", "d_mean"):
            self.register_buffer(name, torch.zeros(D))
        for name in ("x_std", "d_std"):
            self.register_buffer(name, torch.ones(D))

    def config(self) -> dict:
        """Constructor arguments (saved with the weights)."""
        return {"latent": self.latent, "hidden": self.hidden}

    def set_normalization(self, sequences) -> None:
        """Mean / std of the states and of their one-step changes over ``sequences``
        (a list of (T, 420) tensors), std floored at :data:`STD_FLOOR`."""
        xs = torch.cat([s for s in sequences]).double()  # (N, D)
        ds = torch.cat([s[1:] - s[:-1] for s in sequences]).double()
        self.x_mean.copy_(xs.mean(0))
        self.x_std.copy_(xs.std(0).clamp_min(STD_FLOOR))
        self.d_mean.copy_(ds.mean(0))
        self.d_std.copy_(ds.std(0).clamp_min(STD_FLOOR))

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.x_mean) / self.x_std

    @staticmethod
    def _gaussian(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = out.chunk(2, dim=-1)
        return mu, log_var.clamp(-12.0, 8.0)

    def prior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z | x_t): x (B, 420) -> (mu (B, latent), log_var (B, latent)), the learned
        conditional prior of HuMoR Sec. 3."""
        return self._gaussian(self.prior_net(self._norm(x)))

    def posterior(self, x: torch.Tensor, x_next: torch.Tensor):
        """q(z | x_t, x_{t+1}): (B, 420) x2 -> (mu, log_var), each (B, latent)."""
        return self._gaussian(self.encoder_net(torch.cat([self._norm(x), self._norm(x_next)],
                                                         dim=-1)))

    def decode_delta(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Δ_θ(z, x_t) normalised: (B, latent), (B, 420) -> (B, 420) = (Δ - d_mean) / d_std."""
        return self.decoder_net(torch.cat([z, self._norm(x)], dim=-1))

    def step(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """x̂_{t+1} = x_t + d_mean + d_std Δ_θ(z, x_t): (B, 420); HuMoR's decoder predicts the
        change of state (Sec. 3)."""
        return x + self.d_mean + self.d_std * self.decode_delta(z, x)

    def forward(self, x: torch.Tensor, x_next: torch.Tensor, generator=None) -> dict:
        """One training transition: sample z ~ q(z | x_t, x_{t+1}) (reparameterised),
        decode. Returns {"x_hat": (B, 420), "delta_hat": normalised Δ, "mu_q", "log_var_q",
        "mu_p", "log_var_p"}."""
        for t, n in ((x, "x"), (x_next, "x_next")):
            check_floating(t, name=n)
            if t.ndim != 2 or t.shape[1] != STATE.size:
                raise ValueError(f"{n}: expected (B, {STATE.size}), got {tuple(t.shape)}")
        check_finite(x, name="x")
        mu_q, lv_q = self.posterior(x, x_next)
        mu_p, lv_p = self.prior(x)
        eps = torch.randn(mu_q.shape, generator=generator, dtype=mu_q.dtype)
        z = mu_q + torch.exp(0.5 * lv_q) * eps
        d = self.decode_delta(z, x)
        return {"x_hat": x + self.d_mean + self.d_std * d, "delta_hat": d, "mu_q": mu_q,
                "log_var_q": lv_q, "mu_p": mu_p, "log_var_p": lv_p}
