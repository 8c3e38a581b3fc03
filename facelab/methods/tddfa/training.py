"""Training 3DDFA_V2's regressor: VDC, fWPDC, their joint options and meta-joint (Sec. 2.2-2.4).

Options of ``TrainConfig.loss`` (the rows of Table 3):

* ``"vdc"`` — Eq. (4) alone; ``"fwpdc"`` — Algorithm 2 alone; ``"wpdc"`` — the naive Eq. (6)
  (same value as fWPDC, 62 reconstructions per step; for completeness, slow);
* ``"vdc_from_fwpdc"`` — fWPDC for the first ``switch_at`` fraction of the steps, then VDC;
* ``"vanilla_joint"`` — ``beta L_fwpdc + (1 - beta) (|L_fwpdc| / |L_vdc|) L_vdc`` (the ratio
  is a constant: no gradient flows through it);
* ``"meta_joint"`` — Algorithm 1: from the current weights theta, look ahead ``look_ahead``
  (k) steps with fWPDC and, separately, with VDC on the same k meta-train batches (line 8),
  then keep the weights with the lower VDC on one meta-test batch disjoint from them
  (lines 2 and 10). Each advanced step costs two gradient steps.

  Optimiser state: Algorithm 1 line 8 takes plain gradient steps, which carry no state.
  With ``optimizer="adam"`` each branch keeps *its own* Adam moments across blocks and only
  the weights (and batch-norm statistics) are synchronised to the kept branch at the end of a
  block, so the VDC branch's 13-40x larger gradients never enter the fWPDC branch's
  second-moment estimate (copying one Adam state into both branches would). With
  ``optimizer="sgd"`` every option takes the paper's plain steps theta <- theta - lr grad.
  ``selector="random"`` keeps a branch by a fair coin instead of the meta-test VDC: the
  control that separates the selection from the doubled number of gradient steps.

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
    lr: learning rate, cosine-decayed to 0 (the paper uses SGD on a GPU; Adam converges in the
        few thousand CPU steps available here).
    look_ahead: k of meta-joint (paper: 100 of ~40k iterations; here 20 of ~1000).
    beta: vanilla-joint weight (paper's best: 0.5). switch_at: fraction of the steps trained
        with fWPDC before VDC for ``vdc_from_fwpdc``.
    width: backbone channel multiplier. seed: weights init and batch order.
    optimizer: "adam" (per-branch state in meta-joint) or "sgd" (Algorithm 1 line 8's plain
        gradient steps, momentum-free).
    selector: meta-joint's branch choice, "vdc" (Algorithm 1 line 10) or "random" (control).
    eval_every: record the held-out VDC (``eval_data`` of :func:`train_tddfa`) every this many
        gradient steps (0: never); Fig. 3's curves.
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
    optimizer: str = "adam"
    selector: str = "vdc"
    eval_every: int = 0

    def __post_init__(self):
        if self.loss not in LOSS_OPTIONS:
            raise ValueError(f"loss: expected one of {LOSS_OPTIONS}, got {self.loss!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer: expected 'adam' or 'sgd', got {self.optimizer!r}")
        if self.selector not in ("vdc", "random"):
            raise ValueError(f"selector: expected 'vdc' or 'random', got {self.selector!r}")
        check_int(self.eval_every, name="eval_every", minimum=0)
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
    grad_steps: int = 0


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

    def _take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.data
        if self.video:
            return (as_float(d["clip_image"][idx].flatten(0, 1)),  # (B, H, W, 3)
                    d["clip_params"][idx].flatten(0, 1), d["clip_landmarks"][idx].flatten(0, 1))
        return as_float(d["image"][idx]), d["params"][idx], d["landmarks"][idx]

    @property
    def per_batch(self) -> int:
        return self.batch_size // self.frames if self.video else self.batch_size

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._take(torch.randint(self.n, (self.per_batch,), generator=self.g))

    def block(self, k: int) -> tuple[list, tuple]:
        """k meta-train batches and one meta-test batch, all drawn without replacement from
        one permutation, so the meta-test images are disjoint from the meta-train ones
        (Algorithm 1 line 2)."""
        m = self.per_batch
        if (k + 1) * m > self.n:
            raise ValueError(f"data: meta-joint needs (look_ahead + 1) x {m} = {(k + 1) * m} "
                             f"distinct samples per block, the corpus has {self.n}")
        idx = torch.randperm(self.n, generator=self.g)[:(k + 1) * m].reshape(k + 1, m)
        return [self._take(i) for i in idx[:k]], self._take(idx[k])


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


def _optimizer(net, cfg: TrainConfig):
    if cfg.optimizer == "sgd":  # Algorithm 1 line 8: theta <- theta - alpha grad
        return torch.optim.SGD(net.parameters(), lr=cfg.lr)
    return torch.optim.Adam(net.parameters(), lr=cfg.lr)


def _sync(dst, src) -> None:
    """Copy src's weights and batch-norm buffers into dst (its optimiser state stays)."""
    with torch.no_grad():
        for a, b in zip(dst.state_dict().values(), src.state_dict().values(), strict=True):
            a.copy_(b)


@torch.no_grad()
def _eval_vdc(net, data, model, stats, batch: int = 128) -> float:
    """Mean VDC (Eq. 4) of ``net`` on a held-out corpus dict (Fig. 3's vertex error)."""
    net.eval()
    total, n = 0.0, data["image"].shape[0]
    for s in range(0, n, batch):
        images = as_float(data["image"][s:s + batch])
        zg = normalize_params(data["params"][s:s + batch], stats)
        total += float(vd.vdc(net(images), zg, model, stats=stats)) * images.shape[0]
    return total / n


def train_tddfa(model: MorphableModel, data: dict, config: TrainConfig | None = None, *,
                stats: ParamStats | None = None, net: MobileNetRegressor | None = None,
                callback=None, eval_data: dict | None = None) -> TrainResult:
    """Train the regressor on a corpus (:func:`facelab.methods.tddfa.corpus.build_corpus`).

    model: the (40 / 10-mode) model the corpus was rendered with.
    data: dict with image (N, H, W, 3) uint8, params (N, 62) raw, landmarks (N, 68, 2)
        pixels (and clip_* entries for video=True).
    config: :class:`TrainConfig`. stats: Z-score statistics (default: fitted on data).
    net: start from this network (default: a fresh ``MobileNetRegressor(width=...)``).
    callback: a facelab.progress callback (None shows a tqdm bar); each step reports the
        loss terms, and meta-joint also ``choice`` (1 = fWPDC kept, 0 = VDC) and the two
        meta-test VDCs at the end of each look-ahead block.
    eval_data: a held-out corpus dict; with ``config.eval_every`` > 0 its mean VDC is
        recorded in ``history["eval_vdc"]`` against ``history["eval_grad_steps"]`` (gradient
        steps spent so far, both branches of meta-joint counted).
    Returns a :class:`TrainResult`. Deterministic for a given seed on one thread.
    """
    cfg = TrainConfig() if config is None else config
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    for key in ("image", "params", "landmarks"):
        if key not in data:
            raise ValueError(f"data: missing {key!r}")
    if cfg.eval_every and eval_data is None:
        raise ValueError("eval_data: config.eval_every > 0 needs a held-out corpus dict")
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    coin = torch.Generator().manual_seed(7919 * cfg.seed + 1)  # the random selector's own
    stats = fit_param_stats(data["params"].double()).to(dtype=torch.float32) if stats is None \
        else stats
    model = model.to(dtype=torch.float32)
    net = MobileNetRegressor(width=cfg.width) if net is None else net
    sampler = _Sampler(data, cfg.batch_size, cfg.video, g)
    size = data["image"].shape[1]
    result = TrainResult(net, stats, cfg)
    t0 = time.perf_counter()
    meta = cfg.loss == "meta_joint"
    # meta-joint: two branches, each with its own optimiser state for the whole run
    branches = {"fwpdc": (net, _optimizer(net, cfg))}
    if meta:
        twin = copy.deepcopy(net)
        branches["vdc"] = (twin, _optimizer(twin, cfg))
    opts = [o for _, o in branches.values()]
    grad_steps = 0

    def lr_at(step):
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * step / cfg.steps))

    def record(values):
        for k, v in values.items():
            result.history.setdefault(k, []).append(v)

    next_eval = 0

    def monitor(current, force=False):
        """Record the held-out VDC once every eval_every gradient steps (meta-joint: at the
        first block end past the mark, so the kept weights are measured)."""
        nonlocal next_eval
        if cfg.eval_every and (force or grad_steps >= next_eval):
            result.history.setdefault("eval_grad_steps", []).append(grad_steps)
            result.history.setdefault("eval_vdc", []).append(
                _eval_vdc(current, eval_data, model, stats))
            while next_eval <= grad_steps:
                next_eval += cfg.eval_every

    monitor(net)
    progress = track(range(cfg.steps), callback=callback, desc=f"3DDFA {cfg.loss}")
    block: list = []
    test = None
    for step in progress:
        for o in opts:
            for group in o.param_groups:
                group["lr"] = lr_at(step)
        if meta:
            k = cfg.look_ahead
            if not block:  # Algorithm 1 line 2: k meta-train batches + a disjoint meta-test
                block, test = sampler.block(min(k, cfg.steps - step))
            batch = block.pop(0)
            values = {}
            for name, (bnet, bopt) in branches.items():  # line 8, both branches
                terms = _step(bnet, bopt, batch, model, stats, name, cfg, size)
                values.update({f"{name}_branch_{t}": v for t, v in terms.items()})
                grad_steps += 1
            if not block:  # line 10: keep the branch with the lower meta-test VDC
                err = {name: _test_vdc(b[0], test, model, stats) for name, b in branches.items()}
                if cfg.selector == "random":
                    keep = "fwpdc" if bool(torch.rand((), generator=coin) < 0.5) else "vdc"
                else:
                    keep = min(err, key=err.get)
                other = "vdc" if keep == "fwpdc" else "fwpdc"
                _sync(branches[other][0], branches[keep][0])  # weights only, states stay
                result.choices.append(keep)
                monitor(branches["fwpdc"][0])
                values.update({"choice": 1.0 if keep == "fwpdc" else 0.0,
                               "test_vdc_fwpdc": err["fwpdc"], "test_vdc_vdc": err["vdc"]})
        else:
            kind = cfg.loss
            if kind == "vdc_from_fwpdc":
                kind = "fwpdc" if step < cfg.switch_at * cfg.steps else "vdc"
            values = _step(net, opts[0], sampler(), model, stats, kind, cfg, size)
            grad_steps += 1
            monitor(net)
        record(values)
        progress.log(values)
    net = branches["fwpdc"][0]  # == the kept branch after the final sync
    if cfg.eval_every and result.history["eval_grad_steps"][-1] != grad_steps:
        monitor(net, force=True)
    net.eval()
    result.net = net
    result.grad_steps = grad_steps
    result.seconds = time.perf_counter() - t0
    return result
