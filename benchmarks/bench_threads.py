"""Thread coexistence: a torch network's inference before and after a Numba kernel ran.

Issue 15: after any Numba parallel kernel had run, torch inference slowed 60-150x on a loaded
2-core machine (two OpenMP pools spinning against each other). ``facelab._threads`` puts Numba
on its ``workqueue`` layer; this benchmark measures the effect.

Each configuration runs in a fresh process (the threading layer is fixed once a pool starts):
``NUMBA_THREADING_LAYER=omp`` (the old default) and facelab's default (``workqueue``), each at
torch at 1 and 2 threads, Numba at 2 (its default on two cores). In the
child: the 3DDFA_V2 MobileNet regressor (committed weights, batch 1) is timed ``--calls``
times before any Numba kernel; then ``facelab.rasterize`` (parallel Numba) runs on a 38k-vertex
grid; then ``--calls`` timed inferences (after); then ``--calls`` rounds of [rasterize, timed
inference] (training-style alternation, which also includes the cache eviction by the 7 MB
of raster buffers). The ratio is median(after) / median(before); the goal is <= 1.2.

A correctness check sits beside the timing: the inference output after equals the one before.

Usage: python benchmarks/bench_threads.py [--calls 25] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def _grid_mesh(n=138, size=224):
    """A (n², 3) height-field grid (≈ 38k vertices, 76k triangles) filling the image."""
    y, x = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    z = 40 * np.exp(-2 * (x**2 + y**2))
    v = np.stack([(0.45 * x + 0.5) * size, (0.45 * y + 0.5) * size, 1000.0 - z], -1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = (idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(),
                  idx[1:, 1:].ravel())
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    return v.reshape(-1, 3).astype(np.float32), faces


def child(threads: int, numba_threads: int, calls: int, passive: bool) -> dict:
    import torch

    if passive:  # torch's bundled libgomp has read the environment; Numba's has not loaded
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import numba

    import facelab as fl
    from facelab.methods.tddfa.regressor import load_pretrained

    torch.set_num_threads(threads)
    numba.set_num_threads(numba_threads)
    reg = load_pretrained().eval()
    x = torch.rand(1, reg.image_size, reg.image_size, 3, generator=torch.Generator().manual_seed(0))
    v, f = _grid_mesh()
    verts, faces = torch.from_numpy(v)[None], torch.from_numpy(f)

    def infer():
        t = time.perf_counter()
        out = reg(x)
        return time.perf_counter() - t, out

    with torch.inference_mode():
        for _ in range(5):
            infer()
        before = []
        for _ in range(calls):
            dt, out_before = infer()
            before.append(dt)
        fl.rasterize(verts, faces, 224, 224)  # the first Numba parallel kernel
        after = []
        for _ in range(calls):
            dt, out_after = infer()
            after.append(dt)
        alternating, control = [], []
        buffers = [np.empty((224, 224, n), np.float32) for n in (1, 1, 3, 1)]  # ~ raster outputs
        for _ in range(calls):
            fl.rasterize(verts, faces, 224, 224)
            dt, _ = infer()
            alternating.append(dt)
            for buf in buffers:  # control: touch as much memory without a Numba kernel
                buf.fill(1.0)
            dt, _ = infer()
            control.append(dt)
        kernel = {}
        for n in (1, 2):  # the bare rasterize kernel on 1 and 2 Numba threads, interleaved
            numba.set_num_threads(n)
            kernel[n] = []
        from facelab.raster import cpu

        for _ in range(calls):
            for n in (1, 2):
                numba.set_num_threads(n)
                t = time.perf_counter()
                cpu.rasterize_numba(v[None], f, 224, 224, False, False, -np.inf)
                kernel[n].append(time.perf_counter() - t)
    layer = numba.threading_layer() + ("+passive" if passive else "")
    return {"layer": layer, "threads": threads,
            "kernel_1_ms": [1e3 * t for t in kernel[1]],
            "kernel_2_ms": [1e3 * t for t in kernel[2]],
            "numba_threads": numba_threads, "alternating_ms": [1e3 * t for t in alternating],
            "control_ms": [1e3 * t for t in control],
            "before_ms": [1e3 * t for t in before], "after_ms": [1e3 * t for t in after],
            "same_output": bool(torch.equal(out_before, out_after))}


def _stats(ms):
    return np.median(ms), np.percentile(ms, 10), np.percentile(ms, 90)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=25)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--repeats", type=int, default=2, help="fresh processes per configuration")
    ap.add_argument("--child", type=int, nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child[:2], args.calls, bool(args.child[2]))))
        return None
    rows = []
    # the old default, omp with a passive wait policy (Numba's libgomp only), facelab's
    layers = (("omp", 0), ("omp", 1), (None, 0))
    configs = [(layer, t) for _ in range(args.repeats) for layer in layers for t in (1, 2)]
    for (layer, passive), threads in configs:
        env = dict(os.environ)
        env.pop("NUMBA_THREADING_LAYER", None)
        env.pop("OMP_WAIT_POLICY", None)
        if layer:
            env["NUMBA_THREADING_LAYER"] = layer
        cmd = [sys.executable, __file__, "--child", str(threads), "2", str(passive), "--calls",
               str(args.calls)]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        b, a, c = _stats(r["before_ms"]), _stats(r["after_ms"]), _stats(r["alternating_ms"])
        k = _stats(r["control_ms"])
        r["ratio"] = a[0] / b[0]
        r["ratio_alternating"] = c[0] / b[0]
        k1, k2 = _stats(r["kernel_1_ms"]), _stats(r["kernel_2_ms"])
        r["kernel_speedup_2"] = float(np.median(np.array(r["kernel_1_ms"])
                                                / np.array(r["kernel_2_ms"])))
        r["load"] = os.getloadavg()[0]
        rows.append(r)
        print(f"layer {r['layer']:>11} torch/numba threads {threads}/2: before {b[0]:6.2f} ms "
              f"[{b[1]:.2f}, {b[2]:.2f}], after {a[0]:7.2f} ms [{a[1]:.2f}, {a[2]:.2f}], "
              f"ratio {r['ratio']:5.2f}; alternating with rasterize {c[0]:6.2f} ms "
              f"[{c[1]:.2f}, {c[2]:.2f}], ratio {r['ratio_alternating']:5.2f} "
              f"(control: NumPy fill instead {k[0] / b[0]:5.2f}); "
              f"same output {r['same_output']}; rasterize kernel 1 thread {k1[0]:.2f} ms, "
              f"2 threads {k2[0]:.2f} [{k2[1]:.2f}, {k2[2]:.2f}] ms, "
              f"speed-up {r['kernel_speedup_2']:.2f}; "
              f"load {r['load']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh)
    return rows


if __name__ == "__main__":
    main()
