"""``facelab train tddfa``: build the synthetic corpus, train, evaluate, save small weights.

    facelab train tddfa --out facelab-train/tddfa_mobilenet.pt
                                 # the committed run: M+R+S on model version 2, 800 steps,
                                 # ~1 min of CPU on 1 core (4 min wall on the shared machine)
    facelab train tddfa --steps 100 --out /tmp/tddfa.pt
    facelab train tddfa --ablation tables.json   # the old Tables 3 / 4 rows over seeds

The fair meta-joint and stability experiments are :mod:`facelab.methods.tddfa.experiments`.
The weights record the model (name, version, digest), the command that trained them and
their NME on a small check set (:data:`CHECK_SPEC`) that ``tests/test_tddfa_weights.py``
re-evaluates, so stale numbers fail.

Corpora are cached (see :mod:`facelab.methods.tddfa.corpus`); the run is deterministic for a
given seed on one thread (``--threads 1``, the default).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from facelab.atomic_io import refuse_existing, refuse_package_path, write_json
from facelab.command_errors import CommandParser, check_count, check_rate
from facelab.methods.tddfa import evaluation as ev
from facelab.methods.tddfa.corpus import (
    TDDFA_MODEL_VERSION,
    CorpusSpec,
    build_corpus,
    build_motion_videos,
    cached,
    spec_key,
    tddfa_model,
)
from facelab.methods.tddfa.regressor import save_pretrained
from facelab.methods.tddfa.training import LOSS_OPTIONS, TrainConfig, train_tddfa
from facelab.model.provenance import model_record

__all__ = ["CHECK_SPEC", "DEFAULT_OUT", "TRAIN_COMMAND", "ablation_options", "check_numbers",
           "load_data", "train_main"]

#: The command that made the committed ``facelab/weights/tddfa_mobilenet.pt``.
TRAIN_COMMAND = "facelab train tddfa --out facelab-train/tddfa_mobilenet.pt"

#: A small held-out set (not the training or test corpus seeds) on which the weights file
#: stores its numbers, for the staleness test.
CHECK_SPEC = CorpusSpec(count=48, size=48, seed=11)


def check_numbers(reg_net, stats, model, size: int = 48) -> dict:
    """NME / dense NME (%) of a network on :data:`CHECK_SPEC` rendered at ``size`` px."""
    spec = CorpusSpec(count=CHECK_SPEC.count, size=size, seed=CHECK_SPEC.seed)
    data = build_corpus(model, spec)
    numbers = ev.evaluate(reg_net, stats, model, data)
    lm_nme = ev.metrics.nme(ev.landmarks_screen(model, ev.predict_params(reg_net, stats,
                                                                         data["image"]), size),
                            data["landmarks"]).mean() * 100
    return {"spec": spec_key(spec), "nme": float(lm_nme), "dense": numbers["dense"]}

#: Where ``facelab train tddfa`` writes by default (relative to the current folder); the
#: shipped ``facelab/weights/tddfa_mobilenet.pt`` is never written by the command.
DEFAULT_OUT = Path("facelab-train") / "tddfa_mobilenet.pt"


def _parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="facelab train tddfa",
                      description="Train the 3DDFA_V2 regressor on synthetic faces. Writes "
                                  "to facelab-train/ by default, never into the package.")
    p.add_argument("--loss", choices=LOSS_OPTIONS, default="meta_joint")
    p.add_argument("--no-lrr", action="store_true", help="drop landmark-regression branch")
    p.add_argument("--no-video", action="store_true", help="drop short-video synthesis")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=30)
    p.add_argument("--look-ahead", type=int, default=20)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=float, default=0.5, help="backbone channel multiplier")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=48, help="crop size in pixels")
    p.add_argument("--train-count", type=int, default=1200)
    p.add_argument("--test-count", type=int, default=300)
    p.add_argument("--clip-frames", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"weights file (default {DEFAULT_OUT}); never inside the installed "
                        "package; load it with load_pretrained(path)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing --out / --ablation file (default: refuse)")
    p.add_argument("--ablation", type=Path, default=None,
                   help="run the Table 3/4 ablation instead and write its rows as JSON")
    p.add_argument("--ablation-steps", type=int, default=250)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--ablation-options", nargs="+", default=None,
                   help="names of the ablation rows to run (default: all of Tables 3 and 4)")
    return p


def load_data(size: int = 48, train_count: int = 1200, test_count: int = 300,
              clip_frames: int = 3, progress: bool = True) -> tuple:
    """(model, train, test, videos), built once and cached; videos are the talking-head clips
    of :func:`build_motion_videos` (8 clips of 24 frames)."""
    model = tddfa_model()
    tr = CorpusSpec(count=train_count, size=size, seed=0, clip_frames=clip_frames)
    te = CorpusSpec(count=test_count, size=size, seed=1)
    version = model.digest()  # the model's fingerprint keys the cache
    train = cached("train", lambda: build_corpus(model, tr, progress=progress), **spec_key(tr),
                   model=version)
    test = cached("test", lambda: build_corpus(model, te, progress=progress), **spec_key(te),
                  model=version)
    videos = cached("motion", lambda: build_motion_videos(model, size=size), count=8,
                    frames=24, size=size, seed=2000, model=version)
    return model, train, test, videos


def ablation_options(steps: int = 250, batch_size: int = 24, look_ahead: int = 10,
                     width: float = 0.5) -> dict[str, TrainConfig]:
    """The rows of Tables 3 and 4 as TrainConfigs (a smaller network and run than the main one)."""
    base = TrainConfig(steps=steps, batch_size=batch_size, look_ahead=look_ahead, width=width,
                       lrr=False, video=False)

    def c(**kw):
        return TrainConfig(**{**base.__dict__, **kw})

    return {
        "VDC": c(loss="vdc"), "fWPDC": c(loss="fwpdc"),
        "VDC from fWPDC": c(loss="vdc_from_fwpdc"), "Vanilla-joint": c(loss="vanilla_joint"),
        "Meta-joint": c(loss="meta_joint"), "VDC w/ lrr": c(loss="vdc", lrr=True),
        "fWPDC w/ lrr": c(loss="fwpdc", lrr=True),
        "Meta-joint w/ lrr": c(loss="meta_joint", lrr=True),
        "fWPDC w/ svs": c(loss="fwpdc", video=True),
        "Meta-joint w/ lrr w/ svs": c(loss="meta_joint", lrr=True, video=True),
    }


def _validate(args) -> Path:
    """Check option values before any work (building the corpus takes minutes)."""
    for option, value, minimum in (("--steps", args.steps, 1), ("--batch-size", args.batch_size, 2),
                                   ("--look-ahead", args.look_ahead, 1), ("--size", args.size, 16),
                                   ("--train-count", args.train_count, 2),
                                   ("--test-count", args.test_count, 1),
                                   ("--clip-frames", args.clip_frames, 1),
                                   ("--threads", args.threads, 1),
                                   ("--ablation-steps", args.ablation_steps, 1)):
        check_count(value, option, minimum=minimum)
    check_rate(args.lr, "--lr", maximum=10.0)
    target = args.ablation if args.ablation is not None else args.out
    option = "--ablation" if args.ablation is not None else "--out"
    refuse_package_path(target, name=option)
    if not args.force:
        refuse_existing([target])
    if args.ablation is not None and args.ablation_options is not None:
        known = ablation_options(args.ablation_steps)
        unknown = sorted(set(args.ablation_options) - set(known))
        if unknown:
            raise ValueError(f"--ablation-options: unknown {unknown}; known {list(known)}")
    return target


def train_main(argv=None) -> int:
    """Entry point of ``facelab train tddfa``; returns the exit status."""
    args = _parser().parse_args(argv)
    target = _validate(args)
    print(f"facelab train tddfa: writing to {target.resolve()}", flush=True)
    torch.set_num_threads(max(1, args.threads))
    model, train, test, videos = load_data(args.size, args.train_count, args.test_count,
                                           args.clip_frames)
    if args.ablation is not None:
        options = ablation_options(args.ablation_steps)
        if args.ablation_options is not None:
            options = {k: v for k, v in options.items() if k in args.ablation_options}
        rows = ev.run_ablation(model, train, test, videos, options, seeds=tuple(args.seeds))
        write_json(args.ablation, rows, overwrite=args.force)
        print(f"wrote {args.ablation}")
        return 0
    cfg = TrainConfig(loss=args.loss, lrr=not args.no_lrr, video=not args.no_video,
                      steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      look_ahead=args.look_ahead, seed=args.seed, width=args.width)
    t0 = time.perf_counter()
    res = train_tddfa(model, train, cfg)
    minutes = (time.perf_counter() - t0) / 60
    numbers = ev.evaluate(res.net, res.stats, model, test, videos)
    meta = {"config": cfg.__dict__, "image_size": args.size, "resolution": "teaching",
            "train_count": args.train_count, "clip_frames": args.clip_frames,
            "train_minutes": minutes, "threads": args.threads, "choices": res.choices,
            "evaluation": numbers, "torch": str(torch.__version__),
            "model": model_record(model), "model_version": TDDFA_MODEL_VERSION,
            "command": "facelab train tddfa " + " ".join(argv if argv is not None
                                                         else sys.argv[1:]),
            "check": check_numbers(res.net, res.stats, model, args.size)}
    save_pretrained(args.out, res.net, res.stats, meta, overwrite=args.force)
    t1 = numbers["table1"]
    print(f"trained {cfg.loss} (lrr={cfg.lrr}, svs={cfg.video}) for {cfg.steps} steps in "
          f"{minutes:.1f} min; NME {t1['mean']:.2f}% (bins {t1['[0, 30]']:.2f} / "
          f"{t1['[30, 60]']:.2f} / {t1['[60, 90]']:.2f}), dense {numbers['dense']:.2f}%, "
          f"video NME {numbers['video_nme']:.2f}%, stability {numbers['stability']:.2f}%")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(train_main())
