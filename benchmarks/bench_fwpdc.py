"""fWPDC vs naive WPDC (3DDFA_V2 Algorithm 2 vs Eqs. 6-7): same weights, one reconstruction.

Workload (issue 7): the built-in model at resolution "bfm" (~38k vertices) truncated to
40 identity / 10 expression modes, a batch of 128 random parameter pairs whose ground-truth
T is a scaled rotation. Reports the largest weight and loss differences (claim: identical to
1e-5) and the wall time of the weights of each (float32, torch, 1 thread by default),
timed **interleaved** (``timing.py``): per round the naive weights once, then fWPDC's
``--inner`` times (their median is the round's fWPDC time: one call is ~100x shorter, so a
single load spike would otherwise decide the round); after a warm-up round, ``--rounds``
timed rounds. Reported: each time's median [p10, p90], the per-round ratio naive / fWPDC as
median [p10, p90] and its minimum (goal: >= 100 in every round), and the load average.
Paper: 41.7 ms (WPDC) vs 3.6 ms (fWPDC) at batch 128 on a GPU (ratio 11.6).

Usage: python benchmarks/bench_fwpdc.py [--batch 128] [--resolution bfm] [--threads 1]
       [--rounds 8] [--inner 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from timing import load_average, quantiles

from facelab.methods.tddfa.params import pack_params
from facelab.methods.tddfa.vertex_distance import fwpdc, fwpdc_weights, wpdc, wpdc_weights
from facelab.model.registry import load_model
from facelab.rotations import euler_to_matrix


def random_pair(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    R = euler_to_matrix(torch.randn(batch, 3, generator=g) * 0.5)
    t = torch.randn(batch, 3, generator=g) * 5 + 60
    t[:, 2] = 0
    T = torch.cat([0.5 * R, t[:, :, None]], dim=2)
    target = pack_params(T, torch.randn(batch, 40, generator=g), torch.randn(batch, 10,
                                                                         generator=g))
    return target + 0.05 * torch.randn(batch, 62, generator=g), target


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--resolution", default="bfm")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8,
                    help="timed rounds (each runs the naive weights once: ~15 s at batch 128)")
    ap.add_argument("--inner", type=int, default=5, help="fWPDC calls per round")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model("synthetic", resolution=args.resolution, version=1)
    model = model.truncated(n_id=40, n_exp=10)
    pred, target = random_pair(args.batch)
    w_naive = wpdc_weights(pred, target, model)
    w_fast = fwpdc_weights(pred, target, model)
    dw = float((w_naive - w_fast).abs().max())
    dl = float((wpdc(pred, target, model, weights=w_naive)
                - fwpdc(pred, target, model, weights=w_fast)).abs())
    m64, p64, g64 = model.to(dtype=torch.float64), pred[:8].double(), target[:8].double()
    dw64 = float((wpdc_weights(p64, g64, m64) - fwpdc_weights(p64, g64, m64)).abs().max())

    def fast_round():
        times = []
        for _ in range(args.inner):
            t0 = time.perf_counter()
            fwpdc_weights(pred, target, model)
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    naive, fast, loads = [], [], []
    for r in range(1 + args.rounds):  # round 0: warm-up
        t0 = time.perf_counter()
        wpdc_weights(pred, target, model)
        t_naive = time.perf_counter() - t0
        t_fast = fast_round()
        if r:
            naive.append(t_naive)
            fast.append(t_fast)
            loads.append(load_average())
    naive, fast = np.array(naive), np.array(fast)
    ratio = naive / fast
    print(f"model {model.name}: V={model.num_vertices}, batch {args.batch}, float32, "
          f"{args.threads} thread(s); {args.rounds} interleaved rounds (fWPDC: median of "
          f"{args.inner} calls per round); load {min(loads):.1f}-{max(loads):.1f}")
    print(f"float32: max |w_wpdc - w_fwpdc| = {dw:.2e}; |L_wpdc - L_fwpdc| = {dl:.2e}; "
          f"float64 (batch 8): max weight difference {dw64:.2e}  (claim: equal to 1e-5)")
    med, lo, hi = quantiles(1e3 * naive)
    print(f"naive WPDC weights: {med:9.1f} ms [{lo:.1f}, {hi:.1f}]   (paper 41.7 ms, GPU)")
    med, lo, hi = quantiles(1e3 * fast)
    print(f"fWPDC weights:      {med:9.1f} ms [{lo:.2f}, {hi:.2f}]   (paper  3.6 ms, GPU)")
    med, lo, hi = quantiles(ratio)
    print(f"speed-up per round: {med:.1f}x [{lo:.1f}, {hi:.1f}], min {ratio.min():.1f}x "
          f"(goal >= 100x in every round; paper 11.6x)")


if __name__ == "__main__":
    main()
