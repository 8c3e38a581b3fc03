"""Training HuMoR-Face on state sequences (HuMoR Sec. 3 and its scheduled sampling).

Each step draws ``batch`` windows of ``window + 1`` consecutive states from the training
sequences and rolls the CVAE through the window: step k predicts x̂_{t+k+1} from its input
and z ~ q(z | input, x_{t+k+1}); the next input is the truth (teacher forcing) or, with
probability p(progress), the model's own prediction (φ re-orthonormalised). p rises linearly
from 0 to 1 between ``rollout_start`` and ``rollout_end`` (fractions of training), HuMoR's
scheduled sampling, so the model learns to recover from its own errors, which long
autoregressive sampling needs. Adam, fixed seeds; one thread is enough for these MLPs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch

from facelab._checks import check_int, check_positive
from facelab.methods.motion_prior.loss import LossWeights, transition_loss
from facelab.methods.motion_prior.model import MotionPriorCVAE
from facelab.methods.motion_prior.state import STATE, orthonormalize_states

__all__ = ["TrainSettings", "TrainResult", "train_prior"]


@dataclass(frozen=True)
class TrainSettings:
    """steps: Adam steps; batch: windows per step; window: transitions per window (HuMoR
    trains on 10-frame windows); lr: Adam learning rate; latent, hidden: network sizes;
    rollout_start / rollout_end: scheduled-sampling ramp (module docs); fps: frame rate;
    weights: :class:`LossWeights`; seed: fixes initialisation, batches and noise."""

    steps: int = 800
    batch: int = 64
    window: int = 4
    lr: float = 1e-3
    latent: int = 16
    hidden: int = 64
    rollout_start: float = 0.2
    rollout_end: float = 0.5
    fps: float = 30.0
    weights: LossWeights = field(default_factory=LossWeights)
    seed: int = 0

    def __post_init__(self):
        check_int(self.steps, name="steps", minimum=1)
        check_int(self.batch, name="batch", minimum=1)
        check_int(self.window, name="window", minimum=1)
        check_positive(self.lr, name="lr")
        check_int(self.seed, name="seed", minimum=0)
        if not 0 <= self.rollout_start <= self.rollout_end <= 1:
            raise ValueError(f"rollout_start, rollout_end: expected 0 <= start <= end <= 1, "
                             f"got {self.rollout_start!r}, {self.rollout_end!r}")

    def record(self) -> dict:
        out = asdict(self)
        out["weights"] = asdict(self.weights)
        return out


@dataclass
class TrainResult:
    """net: the trained model (eval mode); history: per-step floats of the loss terms;
    seconds: wall time."""

    net: MotionPriorCVAE
    history: list
    seconds: float


def _windows(sequences, window: int) -> torch.Tensor:
    """All (window + 1)-state windows of every sequence: (M, window + 1, 420)."""
    out = [s.unfold(0, window + 1, 1).permute(0, 2, 1) for s in sequences
           if s.shape[0] > window]  # (n, window + 1, D)
    if not out:
        raise ValueError(f"sequences: none has more than window={window} states")
    return torch.cat(out).contiguous()


def train_prior(sequences, settings: TrainSettings | None = None, *, callback=None,
                net: MotionPriorCVAE | None = None) -> TrainResult:
    """Train HuMoR-Face on ``sequences`` (list of (T, 420) float32 states).

    settings: :class:`TrainSettings`. callback: optional callable(step, terms dict) after
        each step (e.g. ``ConvergencePlot.on_step``). net: start from this model (its
        normalisation is kept) instead of a fresh one.
    Returns a :class:`TrainResult`.
    """
    s = TrainSettings() if settings is None else settings
    if not isinstance(s, TrainSettings):
        raise TypeError(f"settings: expected TrainSettings, got {type(s).__name__}")
    seqs = list(sequences)
    for i, q in enumerate(seqs):
        if not isinstance(q, torch.Tensor) or q.ndim != 2 or q.shape[1] != STATE.size:
            raise ValueError(f"sequences[{i}]: expected a (T, {STATE.size}) tensor, got "
                             f"{getattr(q, 'shape', type(q).__name__)}")
    t0 = time.perf_counter()
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    if net is None:
        net = MotionPriorCVAE(latent=s.latent, hidden=s.hidden)
        net.set_normalization(seqs)
    data = _windows([q.float() for q in seqs], s.window)  # (M, W + 1, D)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    net.train()
    history = []
    for step in range(s.steps):
        progress = step / s.steps
        if s.rollout_end > s.rollout_start:
            p_roll = min(1.0, max(0.0, (progress - s.rollout_start)
                                  / (s.rollout_end - s.rollout_start)))
        else:
            p_roll = float(progress >= s.rollout_start)
        idx = torch.randint(0, data.shape[0], (s.batch,), generator=gen)
        win = data[idx]  # (batch, W + 1, D)
        x = win[:, 0]
        terms = None
        for k in range(s.window):
            out = net(x, win[:, k + 1], generator=gen)
            t = transition_loss(net, out, x, win[:, k + 1], weights=s.weights,
                                progress=progress, fps=s.fps)
            terms = t if terms is None else {n: terms[n] + t[n] for n in t}
            own = torch.rand((), generator=gen) < p_roll
            x = orthonormalize_states(out["x_hat"]) if own else win[:, k + 1]
        terms = {n: v / s.window for n, v in terms.items()}
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        row = {n: float(v.detach()) for n, v in terms.items()}
        history.append(row)
        if callback is not None:
            callback(step, row)
    net.eval()
    return TrainResult(net, history, time.perf_counter() - t0)
