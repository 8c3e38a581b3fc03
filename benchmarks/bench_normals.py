"""Benchmark: compiled area-weighted vertex normals (``facelab.normals``), forward + backward.

Workload: the built-in model at "bfm" scale (38k vertices, 3DDFA_V2's BFM crop), vertices of
random identities/expressions, float32, batch 1 and 16, 1 thread by default; the upstream
gradient is random. Measured, interleaved round by round (the machine is shared and loaded,
so every method sees the same load), ms per image, median and best over the rounds:

* ``compiled``: ``facelab.normals.vertex_normals`` (public API: validation, cached table
  lookup, Numba kernels) with the default "two_pass" variants of forward and backward (a face
  pass into a (B, F, 3) buffer — c_f, resp. G_f — then the race-free vertex gather);
* ``gather``: the same with the "gather" variants, which recompute c_f (resp. G_f) for every
  incidence instead of buffering it: the design question "recompute or buffer";
* ``numpy``: the NumPy reference (``facelab.normals.reference``), forward + backward;
* ``torch``: the peer, ``facelab.normals.torch_ref.vertex_normals_torch`` (torch autograd,
  index_add scatter).

``--forward-only`` times forward passes only (no autograd graph).

Run:  .venv/bin/python benchmarks/bench_normals.py [--threads 1] [--batch 1 16] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import torch

from facelab.model.registry import load_model
from facelab.normals import cpu, reference, vertex_normals
from facelab.normals.torch_ref import vertex_normals_torch as torch_vertex_normals


def make_inputs(model, batch: int, seed: int = 0):
    """verts (B, V, 3) float32 of random faces, grad_out (B, V, 3)."""
    g = torch.Generator().manual_seed(seed)
    alpha = torch.randn(batch, model.n_id, generator=g)
    delta = torch.randn(batch, model.n_exp, generator=g)
    verts = model.shape(alpha, delta).detach().float().contiguous()
    grad_out = torch.randn(verts.shape, generator=g)
    return verts, grad_out


def methods(faces, forward_only: bool):
    faces_np = faces.numpy()
    defaults = (cpu.FORWARD, cpu.BACKWARD)

    def compiled(variant):
        def run(verts, grad_out):
            cpu.FORWARD = cpu.BACKWARD = variant  # read at call time by the CPU backend
            try:
                if forward_only:
                    vertex_normals(verts, faces)
                    return
                v = verts.clone().requires_grad_()
                vertex_normals(v, faces).backward(grad_out)
            finally:
                cpu.FORWARD, cpu.BACKWARD = defaults
        return run

    def numpy_ref(verts, grad_out):
        v = verts.numpy()
        n, r = reference.vertex_normals_forward(v, faces_np)
        if not forward_only:
            reference.vertex_normals_backward(v, faces_np, n, r, grad_out.numpy())

    def torch_peer(verts, grad_out):
        if forward_only:
            with torch.no_grad():
                torch_vertex_normals(verts, faces)
            return
        v = verts.clone().requires_grad_()
        torch_vertex_normals(v, faces).backward(grad_out)

    return {"compiled": compiled("two_pass"), "gather": compiled("gather"),
            "numpy": numpy_ref, "torch": torch_peer}


def bench(model, batches, threads, rounds, numpy_every, forward_only):
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    what = "forward only" if forward_only else "forward + backward"
    print(f"vertex normals, {what}, V={model.num_vertices}, F={model.num_faces} "
          f"(built-in '{model.name}'), float32, {threads} thread(s), {rounds} interleaved rounds")
    print("ms per image: median [best]; ratios of medians [of bests] to 'compiled'")
    fns = methods(model.faces, forward_only)
    names = list(fns)
    print(f"{'batch':>5} " + " ".join(f"{n:>17}" for n in names)
          + " " + " ".join(f"{'x ' + n:>14}" for n in names[1:]))
    for batch in batches:
        verts, grad_out = make_inputs(model, batch)
        for fn in fns.values():  # warm-up: Numba cache load, table build
            fn(verts, grad_out)
        times = {n: [] for n in names}
        for r in range(rounds):
            for n in names:
                if n == "numpy" and r % numpy_every:
                    continue  # the reference is slow: every numpy_every-th round only
                t0 = time.perf_counter()
                fns[n](verts, grad_out)
                times[n].append(1e3 * (time.perf_counter() - t0) / batch)
        med = {n: statistics.median(times[n]) for n in names}
        best = {n: min(times[n]) for n in names}
        cells = " ".join(f"{med[n]:>8.2f} [{best[n]:>6.2f}]" for n in names)
        ratios = " ".join(f"{med[n] / med['compiled']:>6.1f} [{best[n] / best['compiled']:>5.1f}]"
                          for n in names[1:])
        print(f"{batch:>5} {cells} {ratios}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--numpy-every", type=int, default=3,
                        help="time the NumPy reference every N-th round only")
    parser.add_argument("--forward-only", action="store_true")
    args = parser.parse_args()
    # Set the thread counts before anything starts a thread pool: lowering them afterwards
    # left idle pool threads competing for the cores (torch's peer ran 5x slower at batch 1).
    torch.set_num_threads(args.threads[0])
    numba.set_num_threads(args.threads[0])
    model = load_model("synthetic", "bfm", version=1)
    for threads in args.threads:
        bench(model, args.batch, threads, args.rounds, args.numpy_every, args.forward_only)


if __name__ == "__main__":
    main()
