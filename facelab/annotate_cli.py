"""``facelab annotate`` and ``facelab synth-clips``: NeuFace as a dataset annotator (Sec. 4).

    facelab synth-clips -o clips --count 8 --frames 120 --views 7
    facelab annotate clips/*.npz -o annotations                    # local process pool
    facelab annotate clips/*.npz -o annotations --scheduler tcp://10.0.0.5:8786   # Dask

Inputs: clip files (``.npz`` in :meth:`facelab.data.talking.TalkingClip.save`'s format:
``images`` (T, N, H, W, 3) uint8, ``detections`` (T, N, 68, 2), optional
``detection_weights``; ground truth when present is used for the metrics) or videos
(``.mp4``/``.avi``/``.mov``/``.gif``: frames read with the ``video`` extra, landmarks detected
with MediaPipe, the ``landmarks`` extra; single view).

Per clip, ``OUT/<name>.npz``: ``params`` (T, N, D) NeuFace vectors, the layout sizes,
``metrics_json``, optionally ``verts`` (T, N, V, 3) float16 model-space meshes
(``--meshes``); and ``OUT/manifest.json`` listing every clip's status, metrics, seconds and
error. Each clip file is written atomically, so a re-run skips clips whose file exists
(resumable, idempotent; ``--force`` redoes them), and a failing clip is recorded with its
one-line error while the others go on. Progress: one line per finished clip.

Workers: ``--workers K`` local processes (default 1: in this process), or a Dask cluster with
``--scheduler ADDRESS`` (``dask.distributed``; every worker must see the input and output
paths, e.g. a shared file system, and have facelab installed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from facelab.command_errors import check_count, one_line

__all__ = ["add_annotate_parser", "add_synth_clips_parser", "annotate_one", "run_annotate",
           "run_synth_clips"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".gif")
MANIFEST = "manifest.json"


def add_synth_clips_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth-clips", help="write synthetic talking-head clips with ground truth (.npz)",
        description="Write COUNT synthetic talking-head clips (model version 1) as "
                    "OUT/clip_SEED.npz, the input format of `facelab annotate`.")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--count", type=int, default=4, help="number of clips (default: 4)")
    p.add_argument("--frames", type=int, default=120, help="frames per clip (default: 120)")
    p.add_argument("--views", type=int, default=7, help="views, 1 to 7 (default: 7)")
    p.add_argument("--size", type=int, default=64, help="image size (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first clip (default: 0)")
    p.add_argument("--force", action="store_true", help="overwrite existing clip files")
    return p


def add_annotate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "annotate", help="annotate clips with NeuFace (local pool or a Dask cluster)",
        description=__doc__.split("\n\n")[2].replace("\n", " "))
    p.add_argument("inputs", type=Path, nargs="+", metavar="VIDEOS",
                   help="clip files (.npz) or videos (.mp4/.avi/.mov/.gif)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--iterations", type=int, default=60, help="EM iterations (default: 60)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate on w")
    p.add_argument("--lambda-temp", type=float, default=None, help="weight of L_temporal")
    p.add_argument("--lambda-view", type=float, default=None, help="weight of L_multiview")
    p.add_argument("--meshes", action="store_true", help="also store the meshes (float16)")
    p.add_argument("--share-identity", action="store_true",
                   help="one identity code per clip (the mean of the per-image codes)")
    p.add_argument("--weights", type=Path, default=None,
                   help="Φ weights (.pt from python -m facelab.methods.neuface.pretrain; "
                        "default: the shipped ones)")
    p.add_argument("--beta-threshold", type=float, default=None,
                   help="flag clips with ||mean beta||_2 above this (default: the 99.9 %% "
                        "quantile of a standard normal code, metrics.beta_norm_threshold)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address (tcp://host:port): run on that cluster")
    p.add_argument("--force", action="store_true", help="redo clips that are already done")
    return p


# ------------------------------------------------------------------ one clip (any worker)
def _load_input(path: Path):
    from facelab.data.talking import clip_from_frames, load_clip

    if path.suffix.lower() == ".npz":
        return load_clip(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        from facelab.image_io import read_video

        return clip_from_frames(read_video(path, max_frames=240))
    raise ValueError(f"{path.name}: expected a clip .npz or a video "
                     f"({', '.join(VIDEO_SUFFIXES)})")


def annotate_one(path: str, out_dir: str, options: dict) -> dict:
    """Annotate one clip into ``out_dir/<stem>.npz`` (atomic); returns its manifest entry.
    Never raises: an error becomes ``{"status": "failed", "error": one line}``."""
    import numpy as np
    import torch

    t0 = time.perf_counter()
    src, out = Path(path), Path(out_dir) / (Path(path).stem + ".npz")
    entry = {"input": str(src), "output": str(out)}
    try:
        from facelab.atomic_io import atomic_path
        from facelab.methods.neuface import (
            LossWeights,
            evaluate_clip,
            load_phi,
            neuface_optimize,
            reconstruct,
        )
        from facelab.metrics import beta_norm_threshold
        from facelab.model.registry import load_model

        torch.set_num_threads(1)
        model = load_model("synthetic", "teaching", version=1)
        net = load_phi(model, options.get("weights"))
        clip = _load_input(src)
        defaults = LossWeights()
        lt, lv = options.get("lambda_temp"), options.get("lambda_view")
        weights = LossWeights(lambda_temp=defaults.lambda_temp if lt is None else lt,
                              lambda_view=defaults.lambda_view if lv is None else lv)
        res = neuface_optimize(model, net, clip, weights=weights,
                               iterations=options.get("iterations", 60),
                               lr=options.get("lr", 3e-4),
                               share_identity=bool(options.get("share_identity")))
        metrics = evaluate_clip(model, net.layout, res.vec, clip)
        thr = options.get("beta_threshold") or beta_norm_threshold(max(net.layout.n_id, 1))
        metrics["beta_rejected"] = bool(metrics["beta_norm"] > thr)
        metrics["seconds"] = round(res.seconds, 2)
        T, N = clip.frames, clip.views
        lay = net.layout
        arrays = {"params": res.vec.reshape(T, N, -1).numpy(),
                  "layout": np.array([3, lay.jaw, lay.n_id, lay.n_exp, 3]),
                  "image_size": np.array(clip.image_size),
                  "metrics_json": np.array(json.dumps(metrics))}
        if options.get("meshes"):
            arrays["verts"] = reconstruct(model, lay, res.vec, clip)["verts"].half().numpy()
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        entry.update(status="done", metrics=metrics)
    except Exception as exc:  # a failing clip is reported, never raised (module docs)
        entry.update(status="failed", error=one_line(exc))
    entry["seconds"] = round(time.perf_counter() - t0, 2)
    return entry


# ------------------------------------------------------------------ the command
def _write_manifest(out: Path, manifest: dict) -> None:
    from facelab.atomic_io import write_json

    write_json(out / MANIFEST, manifest, sort_keys=True)


def _finished(path: Path) -> bool:
    """A previous run's output exists and is a complete npz."""
    import numpy as np

    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return "params" in z.files and "metrics_json" in z.files
    except (OSError, ValueError, EOFError):
        return False


def _run_local(jobs, out: Path, options: dict, workers: int):
    if workers == 1:
        for path in jobs:
            yield annotate_one(str(path), str(out), options)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(annotate_one, str(p), str(out), options): p for p in jobs}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # the worker process died (killed, out of memory)
                p = futures[fut]
                yield {"input": str(p), "status": "failed", "error": one_line(exc)}


def _run_dask(jobs, out: Path, options: dict, address: str):
    from distributed import Client, as_completed

    with Client(address, timeout="30s") as client:
        futures = {client.submit(annotate_one, str(p), str(out), options, pure=False,
                                 key=f"annotate-{p.stem}-{time.time_ns()}"): p for p in jobs}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # a worker was lost (KilledWorker) or the task failed
                p = futures[fut]
                yield {"input": str(p), "status": "failed", "error": one_line(exc)}


def run_annotate(args: argparse.Namespace) -> int:
    """The ``annotate`` command (module docs); status 1 when any clip failed."""
    from facelab.atomic_io import refuse_package_path

    check_count(args.iterations, "--iterations", minimum=0)
    check_count(args.workers, "--workers", minimum=1, maximum=256)
    out = refuse_package_path(args.out, name="--out")
    for p in args.inputs:
        if not p.is_file():
            raise FileNotFoundError(f"VIDEOS: no such file: {p}")
    stems = [p.stem for p in args.inputs]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise ValueError(f"VIDEOS: several inputs share the name {dup[0]!r}; outputs are "
                         "named after the input's stem")
    if args.scheduler is not None and "://" not in args.scheduler:
        raise ValueError(f"--scheduler: expected an address like tcp://host:8786, got "
                         f"{args.scheduler!r}")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest = {"clips": {}}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            manifest = {"clips": {}}
    manifest.setdefault("clips", {})
    options = {"iterations": args.iterations, "lr": args.lr, "lambda_temp": args.lambda_temp,
               "lambda_view": args.lambda_view, "meshes": args.meshes,
               "share_identity": args.share_identity,
               "weights": None if args.weights is None else str(args.weights.resolve()),
               "beta_threshold": args.beta_threshold}
    manifest["settings"] = options
    jobs = []
    for p in args.inputs:
        if not args.force and _finished(out / (p.stem + ".npz")):
            prev = manifest["clips"].get(p.stem, {})
            if prev.get("status") != "done":
                manifest["clips"][p.stem] = {"input": str(p), "status": "done",
                                             "output": str(out / (p.stem + ".npz"))}
            continue
        jobs.append(p.resolve())
    total, skipped = len(args.inputs), len(args.inputs) - len(jobs)
    print(f"annotate: {total} clips, {skipped} already done, {len(jobs)} to run on "
          f"{args.scheduler or f'{args.workers} local worker(s)'}", file=sys.stderr)
    t0 = time.perf_counter()
    runner = (_run_dask(jobs, out, options, args.scheduler) if args.scheduler
              else _run_local(jobs, out, options, args.workers))
    failed = 0
    for k, entry in enumerate(runner, 1):
        stem = Path(entry["input"]).stem
        manifest["clips"][stem] = entry
        _write_manifest(out, manifest)
        if entry["status"] == "done":
            m = entry["metrics"]
            print(f"[{k}/{len(jobs)}] {stem}: done in {entry['seconds']:.1f} s "
                  f"(NME {m['nme']:.2f} %)", file=sys.stderr)
        else:
            failed += 1
            print(f"[{k}/{len(jobs)}] {stem}: failed: {entry['error']}", file=sys.stderr)
    _write_manifest(out, manifest)
    print(f"annotate: {len(jobs) - failed} done, {failed} failed, {skipped} skipped in "
          f"{time.perf_counter() - t0:.1f} s; manifest {manifest_path}", file=sys.stderr)
    return 1 if failed else 0


def run_synth_clips(args: argparse.Namespace) -> int:
    """The ``synth-clips`` command (module docs)."""
    from facelab.atomic_io import refuse_existing, refuse_package_path
    from facelab.data.talking import TalkingHeadConfig, synthesize_clip
    from facelab.model.registry import load_model

    check_count(args.count, "--count", maximum=10_000)
    check_count(args.frames, "--frames", minimum=4, maximum=10_000)
    check_count(args.views, "--views", maximum=7)
    check_count(args.size, "--size", minimum=16, maximum=512)
    check_count(args.seed, "--seed", minimum=0)
    out = refuse_package_path(args.out, name="--out")
    paths = [out / f"clip_{args.seed + i:04d}.npz" for i in range(args.count)]
    if not args.force:
        refuse_existing(paths)
    model = load_model("synthetic", "teaching", version=1)
    cfg = TalkingHeadConfig(frames=args.frames, views=args.views, image_size=args.size)
    for i, path in enumerate(paths):
        synthesize_clip(model, cfg, seed=args.seed + i).save(path)
        print(f"[{i + 1}/{len(paths)}] {path}", file=sys.stderr)
    return 0
