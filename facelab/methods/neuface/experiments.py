"""Reproduce NeuFace's ablations on synthetic ground truth (Tables 3, S1, S3; Fig. 4; timing).

    python -m facelab.methods.neuface.experiments --out facelab_neuface_results.json

For each seed (a clip: one subject, ``--frames`` frames, ``--views`` yaw views) it runs

* ``truth``     — the true parameters in Φ's layout (the floor of each metric);
* ``phi``       — Φ alone, per image (the paper's "DECA" rows: the network before optimisation);
* ``l2d``, ``l2d+view``, ``l2d+temp``, ``full`` — NeuFace with the loss subsets of Table 3;
* ``full-naive`` — the non-EM pairwise losses of App. B (Table S3);
* ``full-median`` — the median temporal target (Table S1);
* ``baseline``  — direct fitting, Eq. (5), from Φ's predictions (Fig. 4's "FLAME fitting");

and reports NME (%), MPVE (mm), CVD (mm), MSI_3D^L, MSI_3D^V and seconds per clip, mean ± sd
over the seeds, beside the paper's MEAD numbers (different units and data: compare orderings,
not values). ``--timing`` times a full 120-frame clip with 1 and with 7 views instead.
The committed ``results/ablation.json`` is re-checked by ``tests/test_neuface_results.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from facelab.data.talking import TalkingHeadConfig, synthesize_clip
from facelab.methods.neuface.baseline import fit_baseline
from facelab.methods.neuface.evaluate import evaluate_clip
from facelab.methods.neuface.objective import LossWeights
from facelab.methods.neuface.optimize import neuface_optimize, predict
from facelab.methods.neuface.pretrain import load_phi
from facelab.model.provenance import model_record

__all__ = ["CONFIGS", "PAPER", "run_config", "run_experiments", "solve_config", "summarize",
           "time_clips", "TIMING_COMMAND"]

RESULTS = Path(__file__).resolve().parent / "results" / "ablation.json"
TIMING = RESULTS.parent / "timing.json"
"""The committed ``--timing`` run (120-frame clips, 1 and 7 views)."""
COMMAND = "python -m facelab.methods.neuface.experiments --out ablation.json"

_DEFAULT = LossWeights()
CONFIGS = {
    "truth": None,
    "phi": None,
    "l2d": LossWeights(lambda_temp=0.0, lambda_view=0.0),
    "l2d+view": LossWeights(lambda_temp=0.0),
    "l2d+temp": LossWeights(lambda_view=0.0),
    "full": _DEFAULT,
    "full-naive": LossWeights(style="naive"),
    "full-median": LossWeights(temporal_target="median"),
    "baseline": _DEFAULT,
}
"""Rows of the table: "truth" = the true parameters in Φ's layout (coefficients beyond it
dropped: the representation's floor); "phi" = Φ's prediction; "baseline" = Eq. (5) with the
full losses; the others NeuFace with those loss weights."""

PAPER = {
    "table3_mead": {"l2d": {"cvd": 0.333, "msi_l": 0.015, "msi_v": 0.022, "nme": 2.44},
                    "l2d+view": {"cvd": 0.110, "msi_l": 0.015, "msi_v": 0.023, "nme": 2.49},
                    "l2d+temp": {"cvd": 0.294, "msi_l": 0.176, "msi_v": 0.250, "nme": 2.56},
                    "full": {"cvd": 0.103, "msi_l": 0.206, "msi_v": 0.305, "nme": 2.58},
                    "phi": {"cvd": 0.209, "msi_l": 0.011, "msi_v": 0.016, "nme": 4.65}},
    "table_s3": {"full-naive": {"msi_l": 0.208, "msi_v": 0.333, "cvd": 0.233, "nme": 4.26},
                 "full": {"msi_l": 0.284, "msi_v": 0.462, "cvd": 0.201, "nme": 3.36}},
    "table_s1": {"full": {"cvd": 0.0981, "nme": 3.03},
                 "full-median": {"cvd": 0.0985, "nme": 3.09}},
    "table2_base_dataset": {"baseline": {"msi_l": 0.034, "msi_v": 0.053, "cvd": 0.192,
                                         "nme": 4.34}},
    "fig4_mpve_order": "NeuFace < FLAME fitting < DECA",
    "timing_minutes_gpu": {"1 view": 2.5, "7 views": 8.0},
}


def solve_config(name: str, model, net, clip, *, iterations: int, lr: float) -> torch.Tensor:
    """The parameter vectors (T N, D) of one row of the table (:data:`CONFIGS`) for one clip."""
    if name not in CONFIGS:
        raise ValueError(f"name: expected one of {sorted(CONFIGS)}, got {name!r}")
    weights = CONFIGS[name]
    if name == "truth":
        return net.layout.from_face(clip.params, clip.camera)
    if weights is None:
        return predict(net, clip)
    if name == "baseline":
        return fit_baseline(model, net.layout, predict(net, clip), clip, weights=weights)[0]
    return neuface_optimize(model, net, clip, weights=weights, iterations=iterations,
                            lr=lr).vec


def run_config(name: str, model, net, clip, *, iterations: int, lr: float) -> dict:
    """One row for one clip: the metrics of :func:`evaluate_clip` plus ``seconds``."""
    t0 = time.perf_counter()
    vec = solve_config(name, model, net, clip, iterations=iterations, lr=lr)
    out = evaluate_clip(model, net.layout, vec, clip)
    out["seconds"] = time.perf_counter() - t0
    return out


def summarize(per_seed: dict) -> dict:
    """{config: {metric: [values]}} -> {config: {metric: {"mean", "sd"}}}."""
    out = {}
    for name, rows in per_seed.items():
        out[name] = {}
        for metric in rows[0]:
            vals = [r[metric] for r in rows]
            out[name][metric] = {"mean": statistics.fmean(vals),
                                 "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0}
    return out


def run_experiments(seeds=(0, 1, 2), frames: int = 40, views: int = 3, iterations: int = 60,
                    lr: float = 3e-4, configs=tuple(CONFIGS), log=print) -> dict:
    """Every config on every seed's clip (module docs); returns the JSON-able result."""
    from facelab.model.registry import load_model

    model = load_model("synthetic", "teaching", version=1)
    net = load_phi(model)
    cfg = TalkingHeadConfig(frames=frames, views=views)
    per_seed = {name: [] for name in configs}
    for seed in seeds:
        clip = synthesize_clip(model, cfg, seed=seed)
        for name in configs:
            torch.manual_seed(seed)
            row = run_config(name, model, net, clip, iterations=iterations, lr=lr)
            per_seed[name].append(row)
            log(f"seed {seed} {name:12s} " + " ".join(f"{k}={v:.4g}" for k, v in row.items()))
    return {"model": model_record(model), "command": COMMAND,
            "settings": {"seeds": list(seeds), "frames": frames, "views": views,
                         "iterations": iterations, "lr": lr, "image_size": cfg.image_size,
                         "loss_weights": {"lambda_temp": _DEFAULT.lambda_temp,
                                          "lambda_view": _DEFAULT.lambda_view,
                                          "window": _DEFAULT.window}},
            "per_seed": per_seed, "summary": summarize(per_seed), "paper": PAPER}


TIMING_COMMAND = "python -m facelab.methods.neuface.experiments --timing --out timing.json"


def time_clips(frames: int = 120, iterations: int = 60, lr: float = 3e-4, log=print) -> dict:
    """Seconds of a full NeuFace optimisation of one clip with 1 and with 7 views, and where
    the time goes (Φ forward, formation + losses, backward + Adam).

    Per clip: "seconds" (wall) and "cpu_seconds" (this process's CPU time, which a busy
    shared machine does not inflate; with one thread it is the unloaded wall time),
    "timing" (wall seconds per phase, :class:`.optimize.NeuFaceResult`), the synthesis
    time of the clip (not part of NeuFace), and the metrics of Φ and of the result, so the
    timed run is seen to do its job. Seed 0; the model record and the thread count are kept.
    """
    from facelab.model.registry import load_model

    model = load_model("synthetic", "teaching", version=1)
    net = load_phi(model)
    out = {"model": model_record(model), "command": TIMING_COMMAND,
           "threads": torch.get_num_threads(), "paper_minutes_gpu": PAPER["timing_minutes_gpu"],
           "clips": {}}
    for views in (1, 7):
        t0 = time.perf_counter()
        clip = synthesize_clip(model, TalkingHeadConfig(frames=frames, views=views), seed=0)
        synth = time.perf_counter() - t0
        torch.manual_seed(0)
        c0 = time.process_time()
        res = neuface_optimize(model, net, clip, iterations=iterations, lr=lr)
        cpu = time.process_time() - c0
        out["clips"][f"{views} view(s)"] = {
            "frames": frames, "views": views, "images": frames * views,
            "iterations": iterations, "seconds": res.seconds, "cpu_seconds": cpu,
            "timing": res.timing, "synthesis_seconds": synth,
            "phi": evaluate_clip(model, net.layout, predict(net, clip), clip),
            "neuface": evaluate_clip(model, net.layout, res.vec, clip)}
        log(f"{views} view(s): {res.seconds:.1f} s wall, {cpu:.1f} s CPU {res.timing}")
    return out


def main(argv=None) -> int:
    from facelab.atomic_io import write_json

    ap = argparse.ArgumentParser(prog="python -m facelab.methods.neuface.experiments",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--views", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--timing", action="store_true",
                    help="time 120-frame clips with 1 and 7 views instead")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for --timing")
    args = ap.parse_args(argv)
    if args.timing:
        torch.set_num_threads(max(1, args.threads))
        result = time_clips(iterations=args.iterations)
    else:
        result = run_experiments(tuple(args.seeds), args.frames, args.views, args.iterations)
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
