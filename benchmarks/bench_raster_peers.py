"""Rasterizer speed, interleaved, against a serial bounding-box rasterizer in C (Sim3DR class)
and Open3D.

Issue 15's protocol: each workload's implementations run alternately in one process
(``--rounds`` rounds after warm-ups); ratios are paired per round, median [p10, p90].

* ``api``: ``facelab.rasterize`` (torch float32 in, validation included);
* ``kernel``: ``facelab.raster.cpu.rasterize_numba`` (validated NumPy in);
* ``bbox-c``: the named baseline for 3DDFA_V2's Sim3DR / face3d class — a plain serial C
  rasterizer written here (compiled with the system C compiler, ``-O3``, loaded with
  ctypes): per triangle its pixel bounding box, per pixel three edge functions, a
  barycentric depth and a z-buffer test writing depth, triangle id and barycentrics, like
  Sim3DR's ``rasterize_triangles``. (The issue measured Sim3DR itself ≈ 1.2× faster than
  such a loop at 224²; Sim3DR is not on the package index.)
* ``sim3dr`` (only with ``--sim3dr DIR``, a checkout of 3DDFA_V2's ``Sim3DR`` folder): Sim3DR's
  own ``_rasterize_triangles`` from ``DIR/lib/rasterize_kernel.cpp``, compiled into a
  temporary folder with the flags its ``setup.py`` gets from distutils (``-O3 -DNDEBUG
  -fwrapv -std=c++11``, no ``-march``) and called through a one-line ``extern "C"`` shim via
  ctypes instead of its Cython wrapper (microseconds apart). Sim3DR samples pixels at integer
  coordinates and keeps the *largest* depth, so it is fed x - 0.5, y - 0.5 and -depth, and its
  buffers are reset per call as its Python ``rasterize`` does (depth -1e8, ids -1).
* ``open3d``: ``RaycastingScene.cast_rays``, one orthographic ray per pixel centre (when
  ``open3d`` imports).

Workloads: a face-like grid named "38k grid" (19,044 vertices, 37,538 triangles: the name
counts triangles) at 120², 224², 512²; the built-in "bfm" model at 224²; the teaching model
(version 1) and the teaching head (version 2, the default model) at 512²; and "38k grid 224²
batch 16": 16 poses in one call, every time divided by 16 (per frame; bbox-c and Open3D run the
16 frames one by one),
with ``api ÷ api-b1`` the paired ratio of batch-1 to batch-16 per-frame time (> 1: batching
pays). With several ``--threads`` the rows also give ``÷ 1 thread``: the same implementation's
1-thread time over this one, paired by round (``--threads`` runs all thread counts in every
round, alternating, so load hits them alike). Correctness beside each timing: the share of
pixels covered by both on which facelab's face id equals the C baseline's (they differ only
where an edge passes exactly through a pixel centre, which the top-left rule decides).

``--clock thread`` (1 thread only) times each call by the calling thread's CPU time.

``--busy K`` runs K busy-loop processes meanwhile: a loaded machine, reproducibly (the 2-thread
face split must then fall back to the caller alone rather than slow down).

Usage: python benchmarks/bench_raster_peers.py [--threads 1 2] [--rounds 25] [--json out]
       [--only WORKLOAD] [--sim3dr DIR] [--clock wall|thread] [--shuffle] [--busy K]
       [--no-open3d] [--always-split]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
import torch
from bench_raster import screen_verts
from timing import CLOCKS, interleaved, load_average, paired_ratio, quantiles

import facelab as fl
from facelab.raster import cpu

C_SOURCE = r"""
#include <math.h>
#include <stdint.h>
/* verts (V, 3) float32 screen x, y, depth; faces (F, 3) int32; outputs (H, W). Serial. */
void bbox_rasterize(const float* verts, const int32_t* faces, int F, int H, int W,
                    float* zbuf, int32_t* tri, float* bary) {
    for (int p = 0; p < H * W; ++p) { zbuf[p] = INFINITY; tri[p] = -1; }
    for (int f = 0; f < F; ++f) {
        const float* a = verts + 3 * faces[3 * f];
        const float* b = verts + 3 * faces[3 * f + 1];
        const float* c = verts + 3 * faces[3 * f + 2];
        float xmin = fminf(a[0], fminf(b[0], c[0])), xmax = fmaxf(a[0], fmaxf(b[0], c[0]));
        float ymin = fminf(a[1], fminf(b[1], c[1])), ymax = fmaxf(a[1], fmaxf(b[1], c[1]));
        int j0 = (int)fmaxf(ceilf(xmin - 0.5f), 0.f), j1 = (int)fminf(floorf(xmax - 0.5f), W - 1.f);
        int i0 = (int)fmaxf(ceilf(ymin - 0.5f), 0.f), i1 = (int)fminf(floorf(ymax - 0.5f), H - 1.f);
        float area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
        if (area == 0.f) continue;
        float inv = 1.f / area;
        for (int i = i0; i <= i1; ++i) {
            float py = i + 0.5f;
            for (int j = j0; j <= j1; ++j) {
                float px = j + 0.5f;
                float w0 = ((b[0] - px) * (c[1] - py) - (b[1] - py) * (c[0] - px)) * inv;
                float w1 = ((c[0] - px) * (a[1] - py) - (c[1] - py) * (a[0] - px)) * inv;
                float w2 = 1.f - w0 - w1;
                if (w0 < 0.f || w1 < 0.f || w2 < 0.f) continue;
                float z = w0 * a[2] + w1 * b[2] + w2 * c[2];
                int p = i * W + j;
                if (z < zbuf[p]) {
                    zbuf[p] = z; tri[p] = f;
                    bary[3 * p] = w0; bary[3 * p + 1] = w1; bary[3 * p + 2] = w2;
                }
            }
        }
    }
}
"""


def c_baseline():
    """The compiled serial bounding-box rasterizer, or None without a C compiler."""
    folder = Path(tempfile.mkdtemp(prefix="facelab-bbox-"))
    (folder / "bbox.c").write_text(C_SOURCE)
    try:
        subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", "-o",
                        str(folder / "bbox.so"), str(folder / "bbox.c"), "-lm"], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    lib = ctypes.CDLL(str(folder / "bbox.so"))
    lib.bbox_rasterize.restype = None
    return lib.bbox_rasterize


SIM3DR_SHIM = r"""
#include "{source}"
extern "C" void sim3dr_rasterize(float* v, int* t, float* d, int* tb, float* bw, int ntri,
                                 int h, int w) {{
    _rasterize_triangles(v, t, d, tb, bw, ntri, h, w);
}}
"""


def sim3dr_peer(folder):
    """Sim3DR's ``_rasterize_triangles`` compiled from ``folder/lib`` (see the module doc)."""
    source = Path(folder) / "lib" / "rasterize_kernel.cpp"
    if not source.is_file():
        raise SystemExit(f"--sim3dr: expected {source} (3DDFA_V2's Sim3DR folder)")
    build = Path(tempfile.mkdtemp(prefix="facelab-sim3dr-"))
    (build / "shim.cpp").write_text(SIM3DR_SHIM.format(source=source.resolve()))
    subprocess.run(["c++", "-O3", "-DNDEBUG", "-fwrapv", "-std=c++11", "-shared", "-fPIC",
                    "-o", str(build / "sim3dr.so"), str(build / "shim.cpp")], check=True,
                   capture_output=True)
    fn = ctypes.CDLL(str(build / "sim3dr.so")).sim3dr_rasterize
    fn.restype = None
    return fn


def grid_mesh(n=138):
    """A face-like height field: n² vertices (19,044 for n=138), 2 (n-1)² triangles (37,538)."""
    y, x = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    z = 40 * np.exp(-2 * (x**2 + y**2))
    v = np.stack([75 * x, 95 * y, z], -1).reshape(-1, 3)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = (idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(),
                  idx[1:, 1:].ravel())
    return v, np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])


def workloads():
    v, f = grid_mesh()
    out = [(f"38k grid {s}²", v, f, s) for s in (120, 224, 512)]
    out.append(("38k grid 224² batch 16", v, f, 224))
    try:
        from facelab.model.registry import load_model

        bfm = load_model("synthetic", resolution="bfm", version=1)
        out.append(("bfm model 224²", bfm.mean_shape.double().numpy(), bfm.faces.numpy(), 224))
        teach = load_model("synthetic", resolution="teaching", version=1)
        out.append(("teaching model 512²", teach.mean_shape.double().numpy(),
                    teach.faces.numpy(), 512))
        head = load_model("synthetic", resolution="teaching", version=2)  # the default model
        out.append(("teaching v2 (head) 512²", head.mean_shape.double().numpy(),
                    head.faces.numpy(), 512))
    except ImportError:
        pass
    return out


def open3d_peer(sv, faces, size, threads):
    try:
        import open3d as o3d
    except ImportError:
        return None
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(sv), o3d.core.Tensor(faces.astype(np.uint32)))
    j, i = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    z = np.zeros_like(i)
    rays = o3d.core.Tensor(np.stack([j, i, z, z, z, z + 1], -1).astype(np.float32))
    return lambda: scene.cast_rays(rays, nthreads=threads)


def _batch(v, size, n):
    """(n, V, 3) float32 screen vertices: n yaws around the default pose."""
    return np.stack([screen_verts(v, size, yaw=0.25 + 0.02 * k) for k in range(n)]).astype(
        np.float32)


def run(thread_counts: list, rounds: int, only: str | None = None,
        sim3dr: str | None = None, clock: str = "wall", shuffle: bool = False,
        open3d: bool = True) -> list[dict]:
    """Every workload; per round every implementation at every thread count, alternating."""
    bbox = c_baseline()
    sim = sim3dr_peer(sim3dr) if sim3dr else None
    rows = []
    for name, v, faces, size in workloads():
        if only and only not in name:
            continue
        batch = 16 if name.endswith("batch 16") else 1
        svb = np.ascontiguousarray(_batch(v, size, batch))
        sv = svb[0]
        faces64 = np.ascontiguousarray(faces, dtype=np.int64)
        faces32 = np.ascontiguousarray(faces, dtype=np.int32)
        verts_t, faces_t = torch.from_numpy(svb), torch.from_numpy(faces64)
        fns = {}
        for threads in thread_counts:
            def use(fn, t=threads):
                def call():
                    numba.set_num_threads(t)
                    torch.set_num_threads(t)
                    return fn()
                return call
            fns[("api", threads)] = use(lambda vt=verts_t, ft=faces_t, s=size: fl.rasterize(
                vt, ft, s, s))
            fns[("kernel", threads)] = use(lambda vn=svb, f=faces64, s=size: cpu.rasterize_numba(
                vn, f, s, s, False, False, -np.inf))
            if batch > 1:
                v1 = verts_t[:1].contiguous()
                fns[("api-b1", threads)] = use(lambda vt=v1, ft=faces_t, s=size: fl.rasterize(
                    vt, ft, s, s))
            peer = open3d_peer(sv, faces32, size, threads) if batch == 1 and open3d else None
            if peer is not None:
                fns[("open3d", threads)] = peer
        zbuf = np.empty((size, size), np.float32)
        tri = np.empty((size, size), np.int32)
        bary = np.empty((size, size, 3), np.float32)
        if bbox is not None:
            ptrs = [[a.ctypes.data_as(ctypes.c_void_p) for a in (svb[k], faces32, zbuf, tri,
                                                                  bary)] for k in range(batch)]
            n_faces, c_size = ctypes.c_int(len(faces32)), ctypes.c_int(size)

            def run_bbox(ptrs=ptrs, n=n_faces, s=c_size):
                for p in ptrs:
                    bbox(p[0], p[1], n, s, s, p[2], p[3], p[4])
            fns[("bbox-c", 1)] = run_bbox
        if sim is not None:
            shifted = svb.copy()  # integer sample points, largest depth wins
            shifted[..., :2] -= np.float32(0.5)
            shifted[..., 2] *= -1
            s_depth = np.empty((size, size), np.float32)
            s_tri = np.empty((size, size), np.int32)
            s_bary = np.empty((size, size, 3), np.float32)
            n_tri = len(faces32)
            s_ptrs = [[a.ctypes.data_as(ctypes.c_void_p) for a in (shifted[k], faces32, s_depth,
                                                                    s_tri, s_bary)]
                      for k in range(batch)]

            def run_sim(ptrs=s_ptrs, n=n_tri, s=size, zb=s_depth, ids=s_tri):
                for p in ptrs:
                    zb.fill(-1e8)  # as Sim3DR.rasterize allocates them
                    ids.fill(-1)
                    sim(p[0], p[1], p[2], p[3], p[4], n, s, s)
            fns[("sim3dr", 1)] = run_sim
        times = interleaved(fns, rounds=rounds, warmup=3, clock=clock, shuffle=shuffle)
        times = {k: t / (1 if k[0] == "api-b1" else batch) for k, t in times.items()}
        check = ""
        if bbox is not None:
            ours = cpu.rasterize_numba(svb, faces64, size, size, False, False, -np.inf)[0][-1]
            run_bbox(ptrs[-1:])
            both = (ours >= 0) & (tri >= 0)
            check = (f"ids = bbox-c on {100 * float((ours[both] == tri[both]).mean()):.3f} % "
                     f"of {int(both.sum())} px")
            if sim is not None:
                run_sim(s_ptrs[-1:])
                both = (ours >= 0) & (s_tri >= 0)
                check += (f"; = sim3dr on {100 * float((ours[both] == s_tri[both]).mean()):.3f} "
                          f"% of {int(both.sum())} px")
        load = load_average()
        for serial_impl in ("bbox-c", "sim3dr"):  # serial: one time beside every thread count
            if (serial_impl, 1) in times:
                serial = times.pop((serial_impl, 1))
                times.update({(serial_impl, threads): serial for threads in thread_counts})
        for (impl, threads), t in times.items():
            med, p10, p90 = quantiles(1e3 * t)
            ratio = paired_ratio(t, times[("kernel", threads)])
            ratio_api = paired_ratio(t, times[("api", threads)])
            row = dict(benchmark="rasterize", workload=name, threads=threads, impl=impl,
                       median_ms=med, p10_ms=p10, p90_ms=p90, ratio_to="kernel", ratio=ratio,
                       ratio_api=ratio_api, check=check, load=load, faces=len(faces),
                       batch=batch, clock=clock)
            if ("sim3dr", threads) in times:
                row["ratio_sim3dr"] = paired_ratio(times[("sim3dr", threads)], t)
            if (impl, 1) in times and threads != 1 and impl not in ("bbox-c", "sim3dr"):
                row["speedup_vs_1_thread"] = paired_ratio(times[(impl, 1)], t)
            if ("api-b1", threads) in times and impl == "api":
                row["b1_over_b16"] = paired_ratio(times[("api-b1", threads)], t)
            rows.append(row)
    return rows


@contextlib.contextmanager
def busy_processes(k: int):
    """``k`` child processes spinning in a Python loop for the duration (killed on exit)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--only", help="run the workloads whose name contains this")
    ap.add_argument("--json", help="write the rows here (for run_all.py)")
    ap.add_argument("--sim3dr", metavar="DIR",
                    help="also time Sim3DR's kernel from this checkout of 3DDFA_V2's Sim3DR")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="thread: the calling thread's CPU time (1 thread only; on a machine "
                         "loaded beyond its cores wall time mostly measures the scheduler)")
    ap.add_argument("--shuffle", action="store_true",
                    help="call the implementations in a new random order every round "
                         "(timing.interleaved); in the fixed order ``api`` always runs right "
                         "after the peers, which fill the caches, and ``kernel`` right after "
                         "``api``: at 224² that alone makes ``api`` look ~0.3 ms slower")
    ap.add_argument("--no-open3d", action="store_true",
                    help="leave Open3D out (the slowest peer; for thread-count comparisons)")
    ap.add_argument("--always-split", action="store_true",
                    help="split every batch-1 call on 2+ threads (facelab.raster.helpers), "
                         "without the policy that keeps a split only while it pays")
    ap.add_argument("--busy", type=int, default=0, metavar="K",
                    help="run K busy-loop processes meanwhile (a loaded machine, reproducibly: "
                         "K = 1 leaves one of two cores to the benchmark)")
    args = ap.parse_args(argv)
    if args.clock == "thread" and args.threads != [1]:
        ap.error("--clock thread: only with --threads 1 (other threads' time is not counted)")
    if args.always_split:
        cpu.split_pays = lambda kind: True
    with busy_processes(args.busy):
        rows = run(args.threads, args.rounds, args.only, args.sim3dr, args.clock, args.shuffle,
                   not args.no_open3d)
    for r in rows:
        r["busy"] = args.busy
    for r in rows:
        m, lo, hi = r["ratio"]
        extra = ""
        if "speedup_vs_1_thread" in r:
            extra += " ÷ 1 thread {:.2f} [{:.2f}, {:.2f}]".format(*r["speedup_vs_1_thread"])
        if "ratio_sim3dr" in r:
            extra += " sim3dr ÷ this {:.2f} [{:.2f}, {:.2f}]".format(*r["ratio_sim3dr"])
        if "b1_over_b16" in r:
            extra += " b1 ÷ b16 {:.2f} [{:.2f}, {:.2f}]".format(*r["b1_over_b16"])
        print(f"{r['workload']:>22} thr {r['threads']} {r['impl']:>7}: {r['median_ms']:7.2f} ms "
              f"[{r['p10_ms']:.2f}, {r['p90_ms']:.2f}], ÷ kernel {m:5.2f} [{lo:.2f}, {hi:.2f}]"
              f"{extra}; {r['check']}; load {r['load']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh)
    return rows


if __name__ == "__main__":
    main()
