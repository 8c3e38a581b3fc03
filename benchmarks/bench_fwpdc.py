"""fWPDC vs naive WPDC (3DDFA_V2 Algorithm 2 vs Eqs. 6-7): same weights, one reconstruction.

Workload (issue 7): the built-in model at resolution "bfm" (~38k vertices) truncated to
40 identity / 10 expression modes, a batch of 128 random parameter pairs whose ground-truth
T is a scaled rotation. Reports the largest weight and loss differences (claim: identical to
1e-5) and the median wall time of the weights of each (float32, torch, 1 thread by default)
and their ratio. Paper: 41.7 ms (WPDC) vs 3.6 ms (fWPDC) at batch 128 on a GPU (ratio 11.6).

Usage: python benchmarks/bench_fwpdc.py [--batch 128] [--resolution bfm] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

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


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--resolution", default="bfm")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model("synthetic", resolution=args.resolution, version=1)
    model = model.truncated(n_id=40, n_exp=10)
    pred, target = random_pair(args.batch)
    t0 = time.perf_counter()
    w_naive = wpdc_weights(pred, target, model)  # slow: timed once
    t_naive = time.perf_counter() - t0
    w_fast = fwpdc_weights(pred, target, model)
    dw = float((w_naive - w_fast).abs().max())
    dl = float((wpdc(pred, target, model, weights=w_naive)
                - fwpdc(pred, target, model, weights=w_fast)).abs())
    t_fast = timed(lambda: fwpdc_weights(pred, target, model), args.repeats * 2)
    m64, p64, g64 = model.to(dtype=torch.float64), pred[:8].double(), target[:8].double()
    dw64 = float((wpdc_weights(p64, g64, m64) - fwpdc_weights(p64, g64, m64)).abs().max())
    print(f"model {model.name}: V={model.num_vertices}, batch {args.batch}, float32, "
          f"{args.threads} thread(s)")
    print(f"float32: max |w_wpdc - w_fwpdc| = {dw:.2e}; |L_wpdc - L_fwpdc| = {dl:.2e}; "
          f"float64 (batch 8): max weight difference {dw64:.2e}  (claim: equal to 1e-5)")
    print(f"naive WPDC weights: {t_naive * 1e3:9.1f} ms   (paper 41.7 ms, GPU)")
    print(f"fWPDC weights:      {t_fast * 1e3:9.1f} ms   (paper  3.6 ms, GPU)")
    print(f"speed-up: {t_naive / t_fast:.1f}x   (paper 11.6x)")


if __name__ == "__main__":
    main()
