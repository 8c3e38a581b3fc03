"""The realism bar over several seeds, with the mean head and the detector's mirror consistency.

``tests/test_head_realism.py`` runs one seed of :func:`facelab.realism.realism_study` (24 random
heads of the built-in model version 2, medium resolution, yaw up to 45 degrees). This script
runs the same protocol for ``--seeds`` and for identity scales ``--id-scales`` (1: the model's
population, 0: the mean head, only expression, albedo, pose and light vary) and prints, per
run and as mean +- sd over the seeds:

* NME over the 68 points (% of the inter-ocular distance): mean, median, max, renders <= 5 %;
* the inner 51 points' largest NME;
* the detector's **mirror inconsistency**: NME between MediaPipe's points on a render and on
  its mirror image mapped back (mean, max). For any landmark definition T, NME(d, T) +
  NME(d_mirror, T) >= that inconsistency, so half of it is a floor that some render (or its
  mirror image) cannot go below whatever the model's landmarks are.

Usage: PYTHONPATH=. python benchmarks/head_realism_seeds.py [--seeds 0 1 2]
       [--id-scales 1 0] [--renders 24]   (about 1 minute per run on one core)
"""

from __future__ import annotations

import argparse

import numpy as np

import facelab as fl
from facelab.realism import realism_study


def summary(out: dict) -> dict:
    nme, mirror = out["nme"] * 100, out["mirror"] * 100
    return {"found": f"{int(out['found'].sum())}/{len(nme)}", "mean": np.nanmean(nme),
            "median": np.nanmedian(nme), "max": np.nanmax(nme),
            "n_ok": int((nme <= 5.0).sum()), "inner_max": np.nanmax(out["inner"] * 100),
            "mirror_mean": np.nanmean(mirror), "mirror_max": np.nanmax(mirror),
            "worst_yaw": float(out["yaw"][np.nanargmax(nme)])}


COLUMNS = ("mean", "median", "max", "n_ok", "inner_max", "mirror_mean", "mirror_max")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--id-scales", type=float, nargs="+", default=[1.0, 0.0])
    ap.add_argument("--renders", type=int, default=24)
    args = ap.parse_args(argv)
    model = fl.load_model("synthetic", "medium", version=2)
    print(f"model {model.name} version 2, digest {model.digest()}; {args.renders} renders per "
          "run; NME in % of the inter-ocular distance")
    print("| identity scale | seed | faces found | NME mean | median | max | renders <= 5 % "
          "| inner max | mirror inconsistency mean | max | worst render's yaw |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for scale in args.id_scales:
        rows = []
        for seed in args.seeds:
            s = summary(realism_study(model, n=args.renders, seed=seed, id_scale=scale))
            rows.append(s)
            print(f"| {scale:g} | {seed} | {s['found']} | {s['mean']:.2f} | {s['median']:.2f} | "
                  f"{s['max']:.2f} | {s['n_ok']} | {s['inner_max']:.2f} | "
                  f"{s['mirror_mean']:.2f} | {s['mirror_max']:.2f} | {s['worst_yaw']:.1f} |",
                  flush=True)
        cells = []
        for c in COLUMNS:
            v = np.array([r[c] for r in rows], dtype=float)
            cells.append(f"{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.2f}")
        print(f"| {scale:g} | mean ± sd | | " + " | ".join(cells) + " | |", flush=True)


if __name__ == "__main__":
    main()
