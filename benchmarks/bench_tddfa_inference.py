"""3DDFA_V2 inference speed on one CPU thread: regression + dense reconstruction per image.

Loads the committed weights (facelab/weights/tddfa_mobilenet.pt) and times, for one image
(batch 1), the backbone forward pass, the dense reconstruction V3d(p) (Eq. 5) of the
teaching model and of the BFM-scale model (~38k vertices), and the 68-landmark sparse
reconstruction. Paper (i5-8259U): 19.2 ms on one core including reconstruction (120 x 120
input, MobileNet 3.27 M parameters), 7.2 ms on four; dense 45k vertices ~1 ms.

Usage: python benchmarks/bench_tddfa_inference.py [--threads 1] [--repeats 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from facelab.methods.tddfa.corpus import tddfa_model
from facelab.methods.tddfa.reconstruct import reconstruct_dense, reconstruct_sparse
from facelab.methods.tddfa.regressor import TDDFARegressor, load_pretrained


def timed(fn, repeats: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    reg = load_pretrained()
    size = reg.image_size
    bfm = tddfa_model("bfm")
    reg_bfm = TDDFARegressor(reg.net, reg.stats, bfm, size).eval()
    x = torch.rand(1, size, size, 3)
    with torch.inference_mode():
        p = reg(x)
        t_net = timed(lambda: reg(x), args.repeats)
        t_dense = timed(lambda: reg.dense(p), args.repeats)
        t_bfm = timed(lambda: reg_bfm.dense(p), max(20, args.repeats // 4))
        t_bfm_checked = timed(lambda: reconstruct_dense(bfm, p), max(20, args.repeats // 4))
        t_lm = timed(lambda: reconstruct_sparse(reg.model, p), args.repeats)
    n_par = sum(q.numel() for q in reg.net.parameters())
    print(f"{args.threads} thread(s); input {size}x{size}; backbone {n_par / 1e6:.2f} M params")
    print(f"regression (backbone + de-normalise): {t_net:6.2f} ms")
    print(f"dense V3d (cached bases), teaching ({reg.model.num_vertices} verts): {t_dense:6.2f} ms")
    print(f"dense V3d (cached bases), bfm ({bfm.num_vertices} verts): {t_bfm:6.2f} ms   "
          f"(paper ~1 ms, 45k)")
    print(f"dense V3d, bfm, checked reconstruct_dense: {t_bfm_checked:6.2f} ms")
    print(f"sparse 68 landmarks:                  {t_lm:6.2f} ms   (paper 0.01 ms)")
    print(f"total regression + dense (teaching):  {t_net + t_dense:6.2f} ms   "
          f"(paper 19.2 ms on 1 core)")
    print(f"total regression + dense (bfm):       {t_net + t_bfm:6.2f} ms")


if __name__ == "__main__":
    main()
