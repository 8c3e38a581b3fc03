"""Shading + photometric loss fused (MoFA Eqs. 4 + 8), forward + backward, interleaved.

Workload (issue 15): the built-in model at "bfm" scale (38k vertices; ``--random`` or a
missing registry: random vertices), its mean face projected onto a 224² image, front-facing
visibility, gradients to positions, albedo, normals and lighting (the image is data). Per
round, each implementation runs once (fresh leaf tensors, forward + backward):

* ``fused``: :func:`facelab.losses.shaded_photometric_loss` (one compiled op per direction);
* ``chain``: the two compiled ops, ``sh_shade`` then ``photometric_loss`` (before the fusion);
* ``torch``: plain torch autograd (the peer; ``bench_shading.step_torch``);
* ``numpy``: the NumPy reference, forward + backward (timed every 4th round).

Reported per image: median ms [p10, p90], and each ratio (other / fused) paired per round.
Correctness beside the timing: the fused loss against the NumPy reference.

``--clock thread`` times each call by the thread's CPU time instead of wall time (1 thread
only): on the shared machine loaded far beyond its 2 cores, wall time mostly measures how long
the scheduler kept the process waiting.

Usage: python benchmarks/bench_shaded_loss.py [--threads 1] [--batch 1] [--rounds 25]
       [--clock wall|thread]
"""

from __future__ import annotations

import argparse
import json

import numba
import numpy as np
import torch
from bench_shading import EPS, make_inputs, step_compiled, step_numpy, step_torch
from timing import interleaved, load_average, paired_ratio, quantiles

from facelab.losses import shaded_photometric_loss
from facelab.shaded_photometric import reference


def _leaves(inp):
    """Fresh leaf tensors sharing the inputs' storage (no copy inside the timed region)."""
    out = dict(inp)
    for k in ("albedo", "normals", "gamma", "positions"):
        out[k] = inp[k].detach().requires_grad_()
    return out


def step_fused(inp):
    loss = shaded_photometric_loss(inp["image"], inp["positions"], inp["albedo"],
                                   inp["normals"], inp["gamma"], inp["visibility"], eps=EPS,
                                   reduction="sum")
    loss.backward()
    return loss


def run(threads: int, batch: int, rounds: int, use_model: bool, clock: str = "wall") -> list[dict]:
    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
    model = None
    if use_model:
        try:
            from facelab.model.registry import load_model

            model = load_model("synthetic", resolution="bfm", version=1)
        except ImportError:
            model = None
    inp = make_inputs(batch, 38000, 224, model=model)
    fns = {"fused": lambda: step_fused(_leaves(inp)),
           "chain": lambda: step_compiled(_leaves(inp)),
           "torch": lambda: step_torch(_leaves(inp)),
           "numpy": lambda: step_numpy(inp, False)}
    times = interleaved(fns, rounds=rounds, warmup=2, every={"numpy": 4}, clock=clock)
    loss = step_fused(_leaves(inp)).item()
    arrays = [inp[k].numpy() for k in ("image", "positions", "albedo", "normals", "gamma")]
    ref, _ = reference.shaded_photometric_forward(
        *arrays, inp["visibility"].numpy().astype(np.float32), EPS)
    check = abs(loss - float(ref.sum())) / max(abs(float(ref.sum())), 1e-30)
    load = load_average()
    n_vert = inp["albedo"].shape[1]
    rows = []
    for name in ("fused", "chain", "torch", "numpy"):
        med, p10, p90 = quantiles(1e3 * times[name] / batch)
        ratio = paired_ratio(times[name], times["fused"], 4 if name == "numpy" else 1)
        rows.append(dict(benchmark="shaded_loss", workload=f"{n_vert} verts, 224², B={batch}",
                         threads=threads, impl=name, median_ms=med, p10_ms=p10, p90_ms=p90,
                         ratio_to="fused", ratio=ratio, check=f"rel. err vs reference {check:.1e}",
                         load=load, clock=clock))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--random", action="store_true", help="random vertices, not the model")
    ap.add_argument("--clock", choices=("wall", "thread"), default="wall",
                    help="wall time (default) or the thread's CPU time (1 thread only)")
    ap.add_argument("--json", help="write the rows here (for run_all.py)")
    args = ap.parse_args(argv)
    rows = []
    for threads in args.threads:
        for batch in args.batch:
            if args.clock == "thread" and threads != 1:
                raise SystemExit("--clock thread: only with --threads 1 (CPU time of one thread)")
            for r in run(threads, batch, args.rounds, not args.random, args.clock):
                rows.append(r)
                m, lo, hi = r["ratio"]
                print(f"{r['workload']:>28} thr {threads} {r['impl']:>6}: {r['median_ms']:7.2f} ms "
                      f"[{r['p10_ms']:.2f}, {r['p90_ms']:.2f}] per image, ÷ fused {m:6.2f} "
                      f"[{lo:.2f}, {hi:.2f}]; {r['check']}; load {r['load']:.2f}; "
                      f"{args.clock} clock", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh)
    return rows


if __name__ == "__main__":
    main()
