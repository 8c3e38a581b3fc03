"""Two-stage training of the multi-level model (supplement Sec. 1), scaled to a CPU.

"For robust training, we first pretrain our network up to the base level [...]. Afterwards,
we finetune our complete network [...] end-to-end with a learning rate of 0.001 for the base
level network, 0.005 for the geometry correctives network and 0.01 for the reflectance
correctives network." (supp. Sec. 1). The paper: AdaDelta, batch 5, 200k + 190k iterations on
a GPU (16 h). Here: Adam, batch 8, a few hundred steps on one CPU thread, 64 x 64 images of
:class:`.corpus.DetailFaces`; the fine-tuning learning rates are the supplement's, used as Adam
step sizes (see :class:`MultilevelTrainConfig`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from facelab._checks import check_int, check_positive
from facelab.methods.mofa.layout import CodeLayout
from facelab.methods.multilevel.corpus import DetailConfig, DetailFaces
from facelab.methods.multilevel.correctives import KINDS
from facelab.methods.multilevel.loss import MultilevelLossConfig, multilevel_loss
from facelab.methods.multilevel.network import MultilevelNet
from facelab.methods.multilevel.regularisers import mesh_terms
from facelab.progress import History, track

__all__ = ["MultilevelTrainConfig", "base_model", "finetune", "pretrain", "train"]


@dataclass(frozen=True)
class MultilevelTrainConfig:
    """Settings of :func:`pretrain` and :func:`finetune`.

    pretrain_steps, finetune_steps: optimiser steps of the two stages.
    batch_size: images per step (paper: 5). corpus_size: distinct training images, cycled.
    image_size: H = W. seed: corpus and initialisation seed.
    pretrain_lr: Adam learning rate of the base pre-training (paper: AdaDelta 0.01).
    lr_base, lr_geometry, lr_reflectance: fine-tuning learning rates (paper: 0.001, 0.005,
        0.01), the pretrained encoder + final light / geometry correctives / reflectance
        correctives.
    correctives: C (paper 500). kind: corrective space (supp. Eqs. 1-3).
    base_albedo: reflectance modes the base level may regress (None: all the model's; 40 in
        the study of Fig. 8).
    pretrain_land: w_land of pre-training (0: photometric only, collapses; see the loss).
    loss: the fine-tuning :class:`MultilevelLossConfig` (default: the supplement's weights).
    detail: the corpus' :class:`DetailConfig`. log_every: callback interval (steps).
    """

    pretrain_steps: int = 400
    finetune_steps: int = 200
    batch_size: int = 8
    corpus_size: int = 320
    image_size: int = 64
    seed: int = 0
    pretrain_lr: float = 2e-3
    lr_base: float = 1e-3
    lr_geometry: float = 5e-3
    lr_reflectance: float = 1e-2
    correctives: int = 500
    kind: str = "linear"
    base_albedo: int | None = None
    pretrain_land: float = 1.0
    loss: MultilevelLossConfig = field(default_factory=MultilevelLossConfig)
    detail: DetailConfig = field(default_factory=DetailConfig)
    log_every: int = 10

    def __post_init__(self):
        for name in ("pretrain_steps", "finetune_steps"):
            check_int(getattr(self, name), name=name, minimum=0)
        for name in ("batch_size", "corpus_size", "image_size", "log_every"):
            check_int(getattr(self, name), name=name, minimum=1)
        check_int(self.seed, name="seed", minimum=0)
        check_int(self.correctives, name="correctives", minimum=0)
        for name in ("pretrain_lr", "lr_base", "lr_geometry", "lr_reflectance"):
            check_positive(getattr(self, name), name=name)
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if self.corpus_size % self.batch_size:
            raise ValueError(f"corpus_size: expected a multiple of batch_size "
                             f"{self.batch_size}, got {self.corpus_size}")
        if self.base_albedo is not None:
            check_int(self.base_albedo, name="base_albedo", minimum=0)
        if not isinstance(self.loss, MultilevelLossConfig):
            raise TypeError(f"loss: expected MultilevelLossConfig, got "
                            f"{type(self.loss).__name__}")
        if not isinstance(self.detail, DetailConfig):
            raise TypeError(f"detail: expected DetailConfig, got {type(self.detail).__name__}")


def base_model(model, config: MultilevelTrainConfig):
    """The base level's model: ``model`` (float32), truncated to ``config.base_albedo``
    reflectance modes when set (the corpus keeps them all)."""
    model = model.to(dtype=torch.float32)
    if config.base_albedo is not None:
        model = model.truncated(n_albedo=config.base_albedo)
    return model


class _Cache:
    """Renders each chunk of the corpus once; keeps images (uint8), landmarks and intrinsics."""

    def __init__(self, dataset: DetailFaces, chunk: int):
        self.dataset, self.chunk, self.store = dataset, chunk, {}

    def get(self, start: int) -> dict:
        if start not in self.store:
            b = self.dataset.batch(start, self.chunk)
            self.store[start] = {"image": (b["image"] * 255).round().to(torch.uint8),
                                 "landmarks_2d": b["landmarks_2d"], "focal": b["focal"],
                                 "principal": b["principal"]}
        item = self.store[start]
        return dict(item, image=item["image"].float() / 255.0)


def _corpus(model, config: MultilevelTrainConfig) -> _Cache:
    ds = DetailFaces(model, size=config.image_size, length=config.corpus_size, seed=config.seed,
                     detail=config.detail)
    return _Cache(ds, config.batch_size)


def _loop(net, model, config, loss_config, optimizer, steps, corpus, callback, desc, mesh):
    history = History()
    callbacks = [history] + ([] if callback is None else
                             (list(callback) if isinstance(callback, (list, tuple))
                              else [callback]))
    net.train()
    t0 = time.perf_counter()
    progress = track(range(steps), callback=callbacks if callback is not None else None,
                     desc=desc)
    for step in progress:
        batch = corpus.get((step * config.batch_size) % config.corpus_size)
        code = net(batch["image"])
        terms = multilevel_loss(net, code, model, batch, loss_config, mesh)
        if not torch.isfinite(terms["total"]):
            raise FloatingPointError(f"{desc}: the loss became {float(terms['total'])} at step "
                                     f"{step}")
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        if step % config.log_every == 0 or step == steps - 1:
            values = {k: float(v.detach()) for k, v in terms.items()}
            values["seconds"] = time.perf_counter() - t0
            if callback is None:
                history.on_step(step, values)
            progress.log(values)
    if callback is None:
        history.on_end()
    net.eval()
    return history


def pretrain(model, config: MultilevelTrainConfig | None = None, *, net=None, callback=None):
    """Stage 1: train the base level only (MoFA's loss with the supplement's base weights).

    model: the corpus' MorphableModel (``fl.load_model("synthetic", "teaching", version=1)``).
    Returns ``(net, history)``: a :class:`MultilevelNet` (C = config.correctives, correctives
    untouched at zero) and a :class:`facelab.progress.History` ("total", "photo", "land",
    "reg", "seconds").
    """
    config = MultilevelTrainConfig() if config is None else config
    if not isinstance(config, MultilevelTrainConfig):
        raise TypeError(f"config: expected MultilevelTrainConfig, got {type(config).__name__}")
    bm = base_model(model, config)
    if net is None:
        torch.manual_seed(config.seed)
        net = MultilevelNet(CodeLayout.for_model(bm), bm.num_vertices, config.correctives,
                            config.kind, image_size=config.image_size)
    corpus = _corpus(model, config)
    optimizer = torch.optim.Adam(net.base.parameters(), lr=config.pretrain_lr)
    loss_config = MultilevelLossConfig.pretraining(land=config.pretrain_land)
    history = _loop(net, bm, config, loss_config, optimizer, config.pretrain_steps, corpus,
                    callback, "pretrain base", None)
    return net, history


def finetune(model, net: MultilevelNet, config: MultilevelTrainConfig | None = None, *,
             callback=None, begin: bool = True):
    """Stage 2: fine-tune the whole network end to end with the final level and regularisers.

    net: a pretrained :class:`MultilevelNet` (from :func:`pretrain`); trained in place.
    begin: copy the base light head into the final one first (:meth:`MultilevelNet.begin_finetune`).
    Adam with three parameter groups at ``lr_base`` / ``lr_geometry`` / ``lr_reflectance``.
    Returns ``(net, history)`` with the terms of :func:`.loss.multilevel_loss`.
    """
    config = MultilevelTrainConfig() if config is None else config
    if not isinstance(net, MultilevelNet):
        raise TypeError(f"net: expected a MultilevelNet, got {type(net).__name__}")
    bm = base_model(model, config)
    if begin:
        net.begin_finetune()
    groups = net.parameter_groups()
    optimizer = torch.optim.Adam([
        {"params": groups["base"], "lr": config.lr_base},
        {"params": groups["geometry"], "lr": config.lr_geometry},
        {"params": groups["reflectance"], "lr": config.lr_reflectance}])
    corpus = _corpus(model, config)
    history = _loop(net, bm, config, config.loss, optimizer, config.finetune_steps, corpus,
                    callback, "finetune", mesh_terms(bm))
    return net, history


def train(model, config: MultilevelTrainConfig | None = None, *, callback=None):
    """Both stages: :func:`pretrain` then :func:`finetune`. Returns (net, pre_history,
    fine_history)."""
    net, h1 = pretrain(model, config, callback=callback)
    net, h2 = finetune(model, net, config, callback=callback)
    return net, h1, h2
