"""Training 3DDFA_V2's regressor: VDC, fWPDC, their joint options and meta-joint (Sec. 2.2-2.4).

Options of ``TrainConfig.loss`` (the rows of Table 3):

* ``"vdc"`` — Eq. (4) alone; ``"fwpdc"`` — Algorithm 2 alone; ``"wpdc"`` — the naive Eq. (6)
  (same value as fWPDC, 62 reconstructions per step; for completeness, slow);
* ``"vdc_from_fwpdc"`` — fWPDC for the first ``switch_at`` fraction of the steps, then VDC;
* ``"vanilla_joint"`` — ``beta L_fwpdc + (1 - beta) (|L_fwpdc| / |L_vdc|) L_vdc`` (the ratio
  is a constant: no gradient flows through it);
* ``"meta_joint"`` — Algorithm 1: from the current weights theta, look ahead ``look_ahead``
  (k) steps with fWPDC and, separately, with VDC on the same k meta-train batches, then keep
  the copy (weights and optimiser state) with the lower VDC on a disjoint meta-test batch.
  Each advanced step costs two gradient steps.

``lrr=True`` adds the landmark-regression regularisation of Sec. 2.3: a second linear head on
the pooled feature regresses the 68 landmarks (normalised by the crop size), with
``L + (|L| / |L_lrr|) L_lrr`` as in Algorithm 1 line 8; the head is unused at inference.
``video=True`` draws each batch as ``batch_size / n`` short clips of n frames from the
corpus's synthesised clips (Sec. 2.4) instead of ``batch_size`` independent stills.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch

from facelab._checks import check_int
from facelab.methods.tddfa import vertex_distance as vd
from facelab.methods.tddfa.corpus import as_float
from facelab.methods.tddfa.net import MobileNetRegressor
from facelab.methods.tddfa.params import ParamStats, fit_param_stats, normalize_params
from facelab.model.morphable import MorphableModel
from facelab.progress import track

__all__ = ["LOSS_OPTIONS", "TrainConfig", "TrainResult", "train_tddfa"]

LOSS_OPTIONS = ("vdc", "fwpdc", "wpdc", "vdc_from_fwpdc", "vanilla_joint", "meta_joint")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (defaults: the paper's M+R+S at CPU scale).

    loss: one of LOSS_OPTIONS. lrr: landmark-regression regularisation (Sec. 2.3).
    video: batches of synthesised short clips (Sec. 2.4); needs ``clip_*`` corpus entries.
    steps: parameter updates of the kept trajectory. batch_size: images per step.
    lr: Adam learning rate, cosine-decayed to 0 (the paper uses SGD on a GPU; Adam converges
        in the few thousand CPU steps available here).
    look_ahead: k of meta-joint (paper: 100 of ~40k iterations; here 20 of ~1000).
    beta: vanilla-joint weight (paper's best: 0.5). switch_at: fraction of the steps trained
        with fWPDC before VDC for ``vdc_from_fwpdc``.
    width: backbone channel multiplier. seed: weights init and batch order.
    """

    loss: str = "meta_joint"
    lrr: bool = True
    video: bool = True
    steps: int = 1000
    batch_size: int = 48
    lr: float = 2e-3
    look_ahead: int = 20
    beta: float = 0.5
    switch_at: float = 0.5
    width: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSS_OPTIONS:
            raise ValueError(f"loss: expected one of {LOSS_OPTIONS}, got {self.loss!r}")
        check_int(self.steps, name="steps", minimum=1)
        check_int(self.batch_size, name="batch_size", minimum=2)
        check_int(self.look_ahead, name="look_ahead", minimum=1)
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta: expected a number in [0, 1], got {self.beta}")
        if not 0.0 <= self.switch_at <= 1.0:
            raise ValueError(f"switch_at: expected a number in [0, 1], got {self.switch_at}")


@dataclass
class TrainResult:
    """net (eval mode), stats (the Z-score statistics), config, history (name -> per-step
    list), choices (meta-joint: per look-ahead block, "fwpdc" or "vdc"), seconds (wall)."""

    net: MobileNetRegressor
    stats: ParamStats
    config: TrainConfig
    history: dict[str, list[float]] = field(default_factory=dict)
    choices: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Sampler:
    """Random batches of stills or of short clips from a corpus dict."""

    def __init__(self, data: dict, batch_size: int, video: bool, generator: torch.Generator):
        self.data, self.batch_size, self.video, self.g = data, batch_size, video, generator
        self.n = data["image"].shape[0]
        self.size = data["image"].shape[1]
        if video:
            if "clip_image" not in data:
                raise ValueError("data: video=True needs clip_image/clip_params/clip_landmarks "
                                 "(build the corpus with clip_frames > 1)")
            self.frames = data["clip_image"].shape[1]
            if batch_size % self.frames:
                raise ValueError(f"batch_size: expected a multiple of the clip length "
                                 f"{self.frames}, got {batch_size}")

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.data
        if self.video:
            idx = torch.randint(self.n, (self.batch_size // self.frames,), generator=self.g)
            return (as_float(d["clip_image"][idx].flatten(0, 1)),  # (B, H, W, 3)
                    d["clip_params"][idx].flatten(0, 1), d["clip_landmarks"][idx].flatten(0, 1))
        idx = torch.randint(self.n, (self.batch_size,), generator=self.g)
        return as_float(d["image"][idx]), d["params"][idx], d["landmarks"][idx]


def _loss(net, batch, model, stats, kind: str, cfg: TrainConfig, size: int) -> tuple:
    images, params, landmarks = batch
    z, lm = net.forward_train(images)
    zg = normalize_params(params, stats)
    terms: dict[str, torch.Tensor] = {}
    if kind == "wpdc":
        main = terms["wpdc"] = vd.wpdc(z, zg, model, stats=stats)
    else:
        if kind in ("fwpdc", "vanilla_joint"):
            terms["fwpdc"] = vd.fwpdc(z, zg, model, stats=stats)
        if kind in ("vdc", "vanilla_joint"):
            terms["vdc"] = vd.vdc(z, zg, model, stats=stats)
        if kind == "vanilla_joint":
            ratio = (terms["fwpdc"] / terms["vdc"].clamp_min(1e-12)).detach()
            main = cfg.beta * terms["fwpdc"] + (1 - cfg.beta) * ratio * terms["vdc"]
        else:
            main = terms[kind]
    total = main
    if cfg.lrr and lm is not None:
        l_lrr = (lm - landmarks / size).pow(2).mean()  # 1/136 sum ||l - l^g||^2, Sec. 2.3
        terms["lrr"] = l_lrr
        total = main + (main / l_lrr.clamp_min(1e-12)).detach() * l_lrr
    return total, terms


def _step(net, opt, batch, model, stats, kind, cfg, size) -> dict:
    net.train()
    total, terms = _loss(net, batch, model, stats, kind, cfg, size)
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()
    return {k: float(v.detach()) for k, v in terms.items()}


@torch.no_grad()
def _test_vdc(net, batch, model, stats) -> float:
    net.eval()
    images, params, _ = batch
    return float(vd.vdc(net(images), normalize_params(params, stats), model, stats=stats))


def _clone(net, opt, lr):
    net2 = copy.deepcopy(net)
    opt2 = torch.optim.Adam(net2.parameters(), lr=lr)
    opt2.load_state_dict(opt.state_dict())
    return net2, opt2


def train_tddfa(model: MorphableModel, data: dict, config: TrainConfig | None = None, *,
                stats: ParamStats | None = None, net: MobileNetRegressor | None = None,
                callback=None) -> TrainResult:
    """Train the regressor on a corpus (:func:`facelab.methods.tddfa.corpus.build_corpus`).

    model: the (40 / 10-mode) model the corpus was rendered with.
    data: dict with image (N, H, W, 3) uint8, params (N, 62) raw, landmarks (N, 68, 2)
        pixels (and clip_* entries for video=True).
    config: :class:`TrainConfig`. stats: Z-score statistics (default: fitted on data).
    net: start from this network (default: a fresh ``MobileNetRegressor(width=...)``).
    callback: a facelab.progress callback (None shows a tqdm bar); each step reports the
        loss terms, and meta-joint also ``choice`` (1 = fWPDC kept, 0 = VDC) and the two
        meta-test VDCs at the end of each look-ahead block.
    Returns a :class:`TrainResult`. Deterministic for a given seed on one thread.
    """
    cfg = TrainConfig() if config is None else config
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    for key in ("image", "params", "landmarks"):
        if key not in data:
            raise ValueError(f"data: missing {key!r}")
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    stats = fit_param_stats(data["params"].double()).to(dtype=torch.float32) if stats is None \
        else stats
    model = model.to(dtype=torch.float32)
    net = MobileNetRegressor(width=cfg.width) if net is None else net
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sampler = _Sampler(data, cfg.batch_size, cfg.video, g)
    size = data["image"].shape[1]
    result = TrainResult(net, stats, cfg)
    t0 = time.perf_counter()

    def lr_at(step):
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * step / cfg.steps))

    def record(values):
        for k, v in values.items():
            result.history.setdefault(k, []).append(v)

    progress = track(range(cfg.steps), callback=callback, desc=f"3DDFA {cfg.loss}")
    branches = None
    for step in progress:
        for o in ([opt] if branches is None else [b[1] for b in branches.values()]):
            for group in o.param_groups:
                group["lr"] = lr_at(step)
        batch = sampler()
        if cfg.loss == "meta_joint":
            k = cfg.look_ahead
            if branches is None:  # start of a look-ahead block: theta^f, theta^v <- theta
                branches = {"fwpdc": _clone(net, opt, cfg.lr), "vdc": _clone(net, opt, cfg.lr)}
                for _, o in branches.values():
                    for group in o.param_groups:
                        group["lr"] = lr_at(step)
            values = {}
            for name, (bnet, bopt) in branches.items():
                terms = _step(bnet, bopt, batch, model, stats, name, cfg, size)
                values.update({f"{name}_branch_{t}": v for t, v in terms.items()})
            if (step + 1) % k == 0 or step + 1 == cfg.steps:
                test = sampler()
                err = {name: _test_vdc(b[0], test, model, stats) for name, b in branches.items()}
                keep = min(err, key=err.get)
                net, opt = branches[keep]
                result.choices.append(keep)
                values.update({"choice": 1.0 if keep == "fwpdc" else 0.0,
                               "test_vdc_fwpdc": err["fwpdc"], "test_vdc_vdc": err["vdc"]})
                branches = None
        else:
            kind = cfg.loss
            if kind == "vdc_from_fwpdc":
                kind = "fwpdc" if step < cfg.switch_at * cfg.steps else "vdc"
            values = _step(net, opt, batch, model, stats, kind, cfg, size)
        record(values)
        progress.log(values)
    net.eval()
    result.net = net
    result.seconds = time.perf_counter() - t0
    return result
