"""Unsupervised training of MoFA's encoder through the model-based decoder (MoFA Secs. 6-7).

The corpus is :class:`facelab.data.SyntheticFaces`: faces rendered from the same built-in
model with random identity, expression, reflectance, pose and SH light over random
backgrounds, generated on the fly from fixed seeds (MoFA Sec. 7 trains on 100k such images
for its ground-truth evaluation). Training reads only the images (and, with the surrogate,
the 2D landmarks); the ground-truth parameters are kept for evaluation.

    encoder, history = train(model, TrainConfig(loss=recipe_loss(sil=True, pose=True, land=True)))
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from facelab._checks import check_int, check_positive
from facelab.atomic_io import atomic_path, refuse_package_path
from facelab.data.faces import FaceSampling, SyntheticFaces
from facelab.methods.mofa.decoder import decode, face_region_pixels
from facelab.methods.mofa.encoder import MofaEncoder
from facelab.methods.mofa.layout import CodeLayout
from facelab.methods.mofa.loss import MofaLossConfig, mofa_loss
from facelab.model.morphable import MorphableModel
from facelab.progress import History, track

__all__ = ["TrainConfig", "cached_corpus", "code_from_batch", "load_encoder", "mofa_sampling",
           "save_encoder", "train", "weights_model", "training_corpus", "WEIGHTS_DIR"]

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
TRAIN_SEED, TEST_SEED = 0, 1


def mofa_sampling() -> FaceSampling:
    """The corpus distribution: facelab's defaults without jaw rotation, so every face lies
    in the span of MoFA's decoder (which, like the paper, has no jaw joint)."""
    return FaceSampling(jaw_max=0.0)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train` (defaults: the committed runs and the ablation's, ~1-2 min on
    one idle CPU core with version 2 of the built-in model).

    steps: optimiser steps. batch_size: images per step (MoFA: 5). lr: Adam learning rate
    (MoFA: AdaDelta, lr 0.1, 200k steps on a GPU). image_size: H = W of the corpus and encoder.
    corpus_size: distinct training images, cycled (rendered once, then cached as uint8).
    seed: corpus seed (samples depend only on (seed, index)) and weight-init seed.
    surrogate: add the landmark surrogate loss with the paper's w_land = 1 (MoFA Eq. 9) when
    ``loss.land`` is 0. loss: the :class:`MofaLossConfig` (default the paper's weights;
    :func:`.loss.recipe_loss` adds the silhouette term, pose prior and balanced landmarks).
    log_every: report losses to the callback every this many steps.
    z_scale: the encoder's mm of z translation per output unit (:class:`MofaEncoder`); small
    values mimic MoFA's 200x smaller z learning rate. The same value for every compared run.
    cosine: decay the learning rate to 0 along a half cosine over ``steps`` (short CPU runs
    end far better settled than at a constant rate); False keeps it constant.
    """

    steps: int = 400
    batch_size: int = 8
    lr: float = 2e-3
    image_size: int = 64
    corpus_size: int = 256
    seed: int = TRAIN_SEED
    surrogate: bool = False
    loss: MofaLossConfig = field(default_factory=MofaLossConfig)
    log_every: int = 10
    z_scale: float = 10.0
    cosine: bool = True

    def __post_init__(self):
        for name in ("steps", "batch_size", "image_size", "corpus_size", "log_every"):
            check_int(getattr(self, name), name=name, minimum=1)
        check_int(self.seed, name="seed", minimum=0)
        check_positive(self.lr, name="lr")
        if self.corpus_size % self.batch_size:
            raise ValueError(f"corpus_size: expected a multiple of batch_size "
                             f"{self.batch_size}, got {self.corpus_size}")
        if not isinstance(self.loss, MofaLossConfig):
            raise TypeError(f"loss: expected MofaLossConfig, got {type(self.loss).__name__}")

    @property
    def loss_config(self) -> MofaLossConfig:
        """The loss actually used: ``loss``, with the paper's binary w_land = 1 when
        ``surrogate`` is set and ``loss.land`` is 0 (a balanced ``loss.land`` is kept)."""
        if self.surrogate and self.loss.land == 0:
            return dataclasses.replace(self.loss, land=1.0)
        return self.loss


def training_corpus(model, size: int = 64, length: int = 4000, seed: int = TRAIN_SEED):
    """The synthetic corpus of :func:`train` (:class:`SyntheticFaces`, perspective camera)."""
    return SyntheticFaces(model, size=size, length=length, seed=seed, sampling=mofa_sampling())


def code_from_batch(batch: dict, layout: CodeLayout) -> torch.Tensor:
    """The ground-truth code (B, D) of a SyntheticFaces batch (id, exp, albedo, angles,
    translation, gamma), e.g. to decode the true face or to check the decoder."""
    return layout.join(id=batch["id"], exp=batch["exp"], albedo=batch["albedo"],
                       rotation=batch["angles"], translation=batch["translation"],
                       sh=batch["gamma"])


class _CachedCorpus:
    """Renders each chunk of the corpus once and keeps images (uint8) and landmarks."""

    def __init__(self, dataset: SyntheticFaces, chunk: int):
        self.dataset, self.chunk, self.store = dataset, chunk, {}

    def get(self, start: int) -> dict:
        if start not in self.store:
            b = self.dataset.batch(start, self.chunk)
            size = b["image"].shape[1]
            self.store[start] = {"image": (b["image"] * 255).round().to(torch.uint8),
                                 "landmarks_2d": b["landmarks_2d"], "focal": b["focal"],
                                 "principal": b["principal"],
                                 "region": face_region_pixels(b["screen_verts"],
                                                              self.dataset.model, size, size)}
        item = self.store[start]
        return dict(item, image=item["image"].float() / 255.0)


def cached_corpus(model, config: TrainConfig) -> _CachedCorpus:
    """The training corpus of ``config`` (size, length, seed), each batch rendered once and
    kept (uint8 images, landmarks, intrinsics, face-region pixels); pass it to several
    :func:`train` calls to render it only once."""
    return _CachedCorpus(training_corpus(model.to(dtype=torch.float32), config.image_size,
                                         config.corpus_size, config.seed), config.batch_size)


def train(model, config: TrainConfig | None = None, *, encoder: MofaEncoder | None = None,
          callback=None, checkpoint=None, checkpoint_every: int = 50, corpus=None):
    """Train MoFA's encoder end to end through the decoder (MoFA Sec. 6 loss, Adam).

    model: the MorphableModel of the decoder (and of the corpus), e.g.
        ``load_model("synthetic", "teaching")`` (80/64/80 modes, MoFA's code sizes).
    config: :class:`TrainConfig` (default: the committed run's settings).
    encoder: a :class:`MofaEncoder` to continue training (default: a fresh one, seeded).
    callback: None (tqdm bar) or a :class:`facelab.progress.Callback` (e.g.
        ``facelab.widgets.ConvergencePlot()``); receives "total", "photo", "land", "reg".
    checkpoint: optional ``fn(encoder, step)`` called every ``checkpoint_every`` steps and at
        the end (e.g. to save weights during a long run).
    corpus: a :func:`cached_corpus` of the same model and config to reuse (default: a new one).

    Returns ``(encoder, history)``: the trained encoder (eval mode) and a
    :class:`facelab.progress.History` with per-step losses and "seconds".
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected TrainConfig, got {type(config).__name__}")
    model = model.to(dtype=torch.float32)
    layout = CodeLayout.for_model(model)
    if encoder is None:
        torch.manual_seed(config.seed)
        encoder = MofaEncoder(layout, image_size=config.image_size, z_scale=config.z_scale)
    if corpus is None:
        corpus = cached_corpus(model, config)
    elif not isinstance(corpus, _CachedCorpus) or corpus.chunk != config.batch_size:
        raise ValueError("corpus: expected cached_corpus(model, config) of this config")
    loss_config = config.loss_config
    optimizer = torch.optim.Adam(encoder.parameters(), lr=config.lr)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
                if config.cosine else None)
    history = History()
    callbacks = [history] + ([] if callback is None else
                             (list(callback) if isinstance(callback, (list, tuple)) else
                              [callback]))
    encoder.train()
    start_time = time.perf_counter()
    progress = track(range(config.steps), callback=callbacks if callback is not None else None,
                     desc="train mofa")
    for step in progress:
        batch = corpus.get((step * config.batch_size) % config.corpus_size)
        code = encoder(batch["image"])  # (B, D)
        decoded = decode(code, model, batch["focal"], batch["principal"], layout=layout,
                         shade=False)  # mofa_loss shades inside its fused op
        terms = mofa_loss(decoded, layout.split(code), batch["image"], model,
                          config=loss_config, landmarks=batch["landmarks_2d"],
                          region=batch["region"])
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        if step % config.log_every == 0 or step == config.steps - 1:
            values = {k: float(v.detach()) for k, v in terms.items()}
            values["seconds"] = time.perf_counter() - start_time
            if callback is None:
                history.on_step(step, values)
            progress.log(values)
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0
                                       or step == config.steps - 1):
            checkpoint(encoder, step + 1)
    if callback is None:
        history.on_end()
    encoder.eval()
    return encoder, history


def save_encoder(encoder: MofaEncoder, path, *, half: bool = False, **metadata) -> Path:
    """Save weights and constructor config (plus JSON-able ``metadata``) to ``path`` (.pt).

    half: store the floating-point tensors as float16 (half the file; the committed weights
    are saved so, and their stored metrics are measured with the float16 weights).
    Written atomically (a temporary file renamed into place, so an interrupted run
    keeps the previous checkpoint); a path inside the installed facelab package (the
    shipped ``facelab/weights/*.pt``) raises ValueError.
    """
    path = refuse_package_path(path)
    state = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).clone()
             for k, v in encoder.state_dict().items() if k not in ("offset", "scale")}
    with atomic_path(path) as tmp:
        torch.save({"config": encoder.config(), "state_dict": state, "metadata": metadata}, tmp)
    return path


def load_encoder(name_or_path="photo", model: MorphableModel | None = None) -> MofaEncoder:
    """Load a saved encoder: a path, or the committed weights ``"photo"`` (the paper's
    unsupervised loss) / ``"surrogate"`` (the full recipe, with the balanced landmark surrogate,
    :func:`.loss.recipe_loss`) from ``facelab/weights/mofa_<name>.pt``.

    model: the morphable model the codes will be decoded with; when given, the file's
        recorded model (``metadata["model"]``, :func:`facelab.model.provenance.model_record`)
        must match it, else ValueError naming the training command (files without a record
        were trained on version 1 of the built-in model and fit only its models).
    Returns the encoder in eval mode; its training metadata is in ``encoder.metadata``.
    """
    if isinstance(name_or_path, str) and name_or_path in ("photo", "surrogate"):
        path = WEIGHTS_DIR / f"mofa_{name_or_path}.pt"
    else:
        path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"name_or_path: expected 'photo', 'surrogate' or an existing file, "
                         f"got {str(name_or_path)!r}")
    try:  # weights_only: torch's restricted unpickler, no code runs
        blob = torch.load(path, map_location="cpu", weights_only=True)
        cfg = dict(blob["config"])
        cfg.setdefault("reduce", None)  # files written before the 1x1 reduction existed
        layout = CodeLayout(**cfg.pop("layout"))
        encoder = MofaEncoder(layout, **cfg)
        encoder.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in blob["state_dict"].items()}, strict=False)
    except Exception as exc:  # truncated, not a .pt, another network's weights, ...
        first = " ".join(str(exc).split())[:200]
        raise ValueError(f"name_or_path: {str(path)!r} is not a MoFA encoder file written by "
                         f"save_encoder / facelab train mofa ({type(exc).__name__}: {first})"
                         ) from exc
    encoder.metadata = blob.get("metadata", {}) if isinstance(blob, dict) else {}
    if model is not None:
        from facelab.model.provenance import check_model

        check_model(encoder.metadata.get("model"), model, what=f"MoFA weights {str(path)!r}",
                    retrain=encoder.metadata.get("command", "facelab train mofa"))
    return encoder.eval()


def weights_model(encoder: MofaEncoder) -> MorphableModel:
    """The built-in model an encoder from :func:`load_encoder` was trained on, checked.

    Reads ``encoder.metadata["version"]`` (files without one were trained on version 1) and
    loads ``load_model("synthetic", "teaching", version=...)``; raises ValueError (naming the
    training command) when the file's recorded digest is not that model's.
    """
    from facelab.model.provenance import check_model
    from facelab.model.registry import load_model

    meta = getattr(encoder, "metadata", {})
    model = load_model("synthetic", "teaching", version=int(meta.get("version", 1)))
    check_model(meta.get("model"), model, what="MoFA weights",
                retrain=meta.get("command", "facelab train mofa"))
    return model
