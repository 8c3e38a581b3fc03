"""MoFA's ablation on the synthetic corpus, from scratch (the loss terms, >= 3 seeds).

    python -m facelab.methods.mofa.experiments --out mofa-ablation --jobs 2   # 3 seeds
    python -m facelab.methods.mofa.experiments --out DIR --seeds 0 --steps 60   # a smoke run

Every row trains a fresh encoder with the same settings (:data:`BASE`: steps, batch, corpus,
image size, one ``z_scale`` for all rows, so rows differ only in their loss) for each seed,
and evaluates it on the same held-out images (seed 1, never trained on) with
:func:`.evaluation.reconstruction_errors` and :func:`.evaluation.collapse_diagnostics`.
The rows (:data:`ROWS`):

* mean face — the zero-initialised encoder (MoFA's "before training"), the trivial baseline;
* photo only — the paper's unsupervised loss, Eq. (8) + Eq. (10) with its weights;
* photo + one addition each — the silhouette (coverage) term, the pose prior, the balanced
  landmark term (Eq. 9 with a weight that makes it about as large as w_photo E_photo at the
  mean face, :data:`.loss.LAND_WEIGHT`);
* all three together (the committed recipe), and landmarks only (Eq. 9 + Eq. 10, no Eq. 8).

Writes ``DIR/ablation.json`` (settings, the model record, per-seed means, per-row mean and
sd over seeds, per-image predicted angles of seed 0) and ``DIR/ablation.md`` (the table,
mean +- sd over seeds, and the command). Existing files are refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from facelab.atomic_io import atomic_path, refuse_existing, refuse_package_path, write_json
from facelab.methods.mofa.encoder import MofaEncoder
from facelab.methods.mofa.evaluation import (
    collapse_diagnostics,
    reconstruction_errors,
    test_batch,
)
from facelab.methods.mofa.layout import CodeLayout
from facelab.methods.mofa.loss import LAND_WEIGHT, POSE_WEIGHT, SIL_WEIGHT, recipe_loss
from facelab.methods.mofa.training import TrainConfig, cached_corpus, train

__all__ = ["BASE", "MEAN_FACE", "RESULTS", "ROWS", "format_ablation", "load_ablation",
           "run_ablation"]

RESULTS = Path(__file__).resolve().parent / "results" / "ablation.json"
"""The committed ablation (made by the command recorded inside it; re-checked by
``tests/test_mofa_results.py``)."""

BASE = TrainConfig(log_every=25)
"""Settings shared by every row: :class:`TrainConfig`'s defaults (400 steps, batch 8, 256
images, 64 px, cosine learning rate, one ``z_scale`` = 10 for all rows, so the rows differ only
in their loss). The committed weights use the same defaults (``facelab train mofa``)."""


ROWS = {
    "photo only (paper: Eq. 8 + 10)": recipe_loss(),
    "photo + silhouette": recipe_loss(sil=True),
    "photo + pose prior": recipe_loss(pose=True),
    "photo + balanced landmarks": recipe_loss(land=True),
    "photo + sil + pose + landmarks": recipe_loss(sil=True, pose=True, land=True),
    "landmarks only (Eq. 9 + 10)": recipe_loss(photo=False, land=True),
}
"""Ablation rows: name -> loss. The mean-face row is added by :func:`run_ablation`."""

MEAN_FACE = "mean face (before training)"
METRICS = ("geometry_mm", "photometric", "coverage", "landmark_px", "id0", "pitch_deg",
           "yaw_corr")


def _evaluate(code, batch, model) -> tuple[dict, dict]:
    """Means of the errors and diagnostics of ``code`` on ``batch``; per-image angles."""
    err = reconstruction_errors(code, batch, model)
    diag = collapse_diagnostics(code, batch, model)
    yaw = torch.stack([diag["yaw_deg"], diag["true_yaw_deg"]])
    corr = float(torch.corrcoef(yaw)[0, 1]) if float(diag["yaw_deg"].std()) > 1e-6 else 0.0
    means = {"geometry_mm": float(err["geometry_mm"].mean()),
             "photometric": float(err["photometric"].mean()),
             "coverage": float(err["coverage"].mean()),
             "landmark_px": float(err["landmark_px"].mean()),
             "id0": float(diag["id0"].mean()), "pitch_deg": float(diag["pitch_deg"].mean()),
             "yaw_corr": corr}
    angles = {k: [round(float(x), 2) for x in diag[k]] for k in
              ("pitch_deg", "yaw_deg", "true_pitch_deg", "true_yaw_deg")}
    return means, angles


_CORPORA: dict = {}  # per process: (model digest, config without loss) -> cached corpus


def _train_row(model, config: TrainConfig, name: str, held: dict) -> tuple:
    """Train one (seed, row) and evaluate it: (name, seed, means, angles, seconds)."""
    key = (model.digest(), dataclasses.replace(config, loss=BASE.loss))
    if key not in _CORPORA:
        _CORPORA.clear()  # keep one corpus per process
        _CORPORA[key] = cached_corpus(model, config)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    encoder, _ = train(model, config, corpus=_CORPORA[key], callback=[])
    seconds = time.perf_counter() - start
    with torch.no_grad():
        code = encoder(held["image"])
    means, angles = _evaluate(code, held, model)
    return name, config.seed, means, angles, round(seconds, 1)


def _worker_init(threads: int):
    torch.set_num_threads(threads)


def run_ablation(model, *, seeds=(0, 1, 2), base: TrainConfig = BASE, rows=None,
                 count: int = 64, jobs: int = 1, log=print) -> dict:
    """Train every row of ``rows`` (default :data:`ROWS`) for every seed; evaluate held out.

    model: the MorphableModel of corpus and decoder. seeds: training seeds (corpus and
    weight init). base: the shared :class:`TrainConfig` (its ``loss`` is replaced per row).
    count: held-out images (seed 1). jobs: worker processes (one thread each; the result does
    not depend on it). log: a print-like function for progress.
    Returns {"rows": {name: {"per_seed": [means...], "mean": {...}, "sd": {...},
    "train_seconds": [...]}}, "angles": {name: per-image angles of the first seed}}.
    """
    rows = ROWS if rows is None else rows
    held = test_batch(model, count=count, size=base.image_size)
    out = {"rows": {}, "angles": {}}
    with torch.no_grad():
        code = MofaEncoder(CodeLayout.for_model(model), image_size=base.image_size,
                           z_scale=base.z_scale)(held["image"])
    means, angles = _evaluate(code, held, model)
    out["rows"][MEAN_FACE] = {"per_seed": [means], "train_seconds": [0.0]}
    out["angles"][MEAN_FACE] = angles
    tasks = [(dataclasses.replace(base, seed=int(seed), loss=loss), name)
             for seed in seeds for name, loss in rows.items()]
    if jobs > 1:
        import concurrent.futures
        import multiprocessing

        with concurrent.futures.ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init, initargs=(1,)) as pool:
            futures = [pool.submit(_train_row, model, config, name, held)
                       for config, name in tasks]
            results = []
            for f in concurrent.futures.as_completed(futures):
                results.append(f.result())
                name, seed, means, _, seconds = results[-1]
                log(f"seed {seed} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                        means.items()) + f" ({seconds:.0f} s)")
    else:
        results = []
        for config, name in tasks:
            results.append(_train_row(model, config, name, held))
            name, seed, means, _, seconds = results[-1]
            log(f"seed {seed} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items())
                + f" ({seconds:.0f} s)")
    order = {(int(seed), name): k for k, (_, name) in enumerate(tasks)
             for seed in [tasks[k][0].seed]}
    for name, seed, means, angles, seconds in sorted(results,
                                                     key=lambda r: order[(r[1], r[0])]):
        row = out["rows"].setdefault(name, {"per_seed": [], "train_seconds": [],
                                            "seeds": []})
        row["per_seed"].append(means)
        row["train_seconds"].append(seconds)
        row["seeds"].append(seed)
        out["angles"].setdefault(name, angles)
    for row in out["rows"].values():
        per = row["per_seed"]
        row["mean"] = {k: statistics.fmean(p[k] for p in per) for k in METRICS}
        row["sd"] = {k: statistics.stdev(p[k] for p in per) if len(per) > 1 else 0.0
                     for k in METRICS}
    return out


def load_ablation(path=RESULTS, model=None) -> dict:
    """Read an ``ablation.json`` written by :func:`main` (default: the committed one).

    model: when given, the file's recorded model must be it (ValueError naming the command
    that regenerates the file otherwise, :func:`facelab.model.provenance.check_model`).
    """
    from facelab.model.provenance import check_model

    result = json.loads(Path(path).read_text())
    if model is not None:
        check_model(result.get("model"), model, what=f"MoFA ablation {str(path)!r}",
                    retrain=result.get("command", "python -m facelab.methods.mofa.experiments"))
    return result


def format_ablation(result: dict) -> str:
    """The ablation as a Markdown table: mean +- sd over seeds per row, and the geometric
    error relative to the mean face."""
    rows = result["rows"]
    ref = rows[MEAN_FACE]["mean"]["geometry_mm"]
    head = ("| row | seeds | geometry mm | vs mean face | photometric (true face region) | "
            "coverage | landmarks px | alpha_1 | pitch deg | yaw corr |")
    lines = [head, "|" + "---|" * 10]
    for name, row in rows.items():
        m, s = row["mean"], row["sd"]
        cells = [f"{m[k]:.2f} ± {s[k]:.2f}" if k not in ("photometric", "coverage", "yaw_corr")
                 else f"{m[k]:.3f} ± {s[k]:.3f}" for k in METRICS]
        rel = 100.0 * (m["geometry_mm"] / ref - 1.0)
        lines.append(f"| {name} | {len(row['per_seed'])} | {cells[0]} | {rel:+.0f} % | "
                     + " | ".join(cells[1:]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point: ``python -m facelab.methods.mofa.experiments --out DIR [options]``."""
    p = argparse.ArgumentParser(prog="python -m facelab.methods.mofa.experiments",
                                description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for ablation.json and ablation.md")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=BASE.steps)
    p.add_argument("--corpus-size", type=int, default=BASE.corpus_size)
    p.add_argument("--count", type=int, default=64, help="held-out images (default 64)")
    p.add_argument("--version", type=int, default=2, choices=(1, 2),
                   help="built-in model version (default 2, the full head)")
    p.add_argument("--rows", nargs="+", default=None, metavar="ROW",
                   help="a subset of the rows (their names' first words, e.g. 'photo only')")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes, one thread each (default 1; the table is the same)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    args = p.parse_args(argv)
    try:
        out = Path(args.out)
        refuse_package_path(out, name="--out")
        paths = [out / "ablation.json", out / "ablation.md"]
        if not args.force:
            refuse_existing(paths)
        rows = ROWS
        if args.rows:
            rows = {k: v for k, v in ROWS.items() if any(k.startswith(r) for r in args.rows)}
            if not rows:
                raise ValueError(f"--rows: expected prefixes of {list(ROWS)}, got {args.rows}")
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from facelab.model.provenance import model_record
    from facelab.model.registry import load_model

    model = load_model("synthetic", "teaching", version=args.version)
    base = dataclasses.replace(BASE, steps=args.steps, corpus_size=args.corpus_size)
    start = time.perf_counter()
    result = run_ablation(model, seeds=args.seeds, base=base, rows=rows, count=args.count,
                          jobs=args.jobs)
    command = "python -m facelab.methods.mofa.experiments " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]))
    result.update(command=command, model=model_record(model), version=args.version,
                  settings={k: getattr(base, k) for k in ("steps", "batch_size", "lr",
                                                          "image_size", "corpus_size",
                                                          "z_scale")},
                  weights={"land": LAND_WEIGHT, "sil": SIL_WEIGHT, "pose": POSE_WEIGHT},
                  seeds=list(args.seeds), count=args.count, threads=args.threads,
                  wall_seconds=round(time.perf_counter() - start, 1))
    out.mkdir(parents=True, exist_ok=True)
    table = format_ablation(result)
    write_json(paths[0], result)
    with atomic_path(paths[1]) as tmp:
        Path(tmp).write_text(f"{table}\n\nMade by: `{command}` ({result['wall_seconds']} s, "
                             f"{args.threads} thread).\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
