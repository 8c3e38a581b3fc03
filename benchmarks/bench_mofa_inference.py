"""Benchmark: MoFA inference (encoder, encoder + decoder) vs. the optimisation baseline.

MoFA Sec. 7: regressing all parameters takes 4 ms (AlexNet, TitanX Pascal GPU) vs ~500 ms for
the optimisation-based method of Thies et al. [54] starting from the average model. Here, on
the CPU: the committed encoder (64 px input) alone and followed by the decoder (the teaching
model the weights were trained on), batch 1 and 32, and
:func:`facelab.methods.mofa.fit_optimization` (same loss, Adam from the mean face) per image.
Reported: median ms per image.

Run:  .venv/bin/python benchmarks/bench_mofa_inference.py [--threads 1] [--fit-steps 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from facelab.methods import mofa
from facelab.progress import History


def _median_ms(fn, repeats: int, per: int) -> float:
    fn()  # warm-up (Numba compilation, allocator)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times) / per


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--fit-steps", type=int, default=50)
    p.add_argument("--weights", default="photo")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder = mofa.load_encoder(args.weights)
    model = mofa.weights_model(encoder)  # the built-in model the weights were trained on
    data = mofa.test_batch(model, count=32, size=encoder.image_size)
    print(f"MoFA inference, {args.threads} thread(s), teaching model "
          f"(V={model.num_vertices}), {encoder.image_size} px")
    with torch.no_grad():
        for batch in (1, 32):
            img = data["image"][:batch]
            f, c = data["focal"][:batch], data["principal"][:batch]
            enc = _median_ms(lambda img=img: encoder(img), args.repeats, batch)
            full = _median_ms(lambda img=img, f=f, c=c: mofa.decode(encoder(img), model, f, c),
                              args.repeats, batch)
            print(f"  batch {batch:2d}: encoder {enc:7.2f} ms/img   encoder + decoder "
                  f"{full:7.2f} ms/img")
    few = {k: v[:4] for k, v in data.items()}
    code, ms = mofa.fit_optimization(model, few["image"], few["focal"], few["principal"],
                                     config=mofa.FitConfig(steps=args.fit_steps),
                                     callback=History())
    err = mofa.mean_errors(mofa.reconstruction_errors(code, few, model))
    print(f"  optimisation baseline ({args.fit_steps} Adam steps, 4 images at once): "
          f"{ms:7.1f} ms/img, geometry {err['geometry_mm']:.2f} mm, photometric "
          f"{err['photometric']:.3f}")
    print("  paper: 4 ms (AlexNet, GPU) vs ~500 ms (Thies et al., optimisation)")


if __name__ == "__main__":
    main()
