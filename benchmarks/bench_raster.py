"""Rasterizer speed: Numba kernels vs the NumPy reference and a named peer (Open3D).

Workload (issue 3 "Speed"): the built-in synthetic model at resolution "bfm" (~38k vertices,
~75k triangles, like 3DDFA_V2's BFM crop), frontal-ish pose, face filling most of the image,
at 120², 224², 256², 512²; batch 1 and 16; 1 and 2 Numba threads. Reports the median
milliseconds per frame of ``facelab.rasterize`` (public API, torch float32 input, validation
included) and of the bare kernel call (``cpu.rasterize_numba``).

The NumPy reference is far too slow for the whole mesh: it is timed on the first
``--ref-faces`` triangles at each size and extrapolated linearly in the triangle count (said
in the table). Open3D's ``RaycastingScene.cast_rays`` (one ray per pixel centre,
orthographic) is measured in the same run when ``open3d`` imports; otherwise it is skipped.

Usage: python benchmarks/bench_raster.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
import torch

import facelab.raster as R
from facelab.raster import cpu
from facelab.raster.reference import rasterize_reference


def face_mesh():
    """(V, 3) model-space vertices and (F, 3) faces at BFM scale (grid fallback)."""
    try:
        from facelab.model.registry import load_model

        m = load_model("synthetic", resolution="bfm", version=1)
        return m.mean_shape.double().numpy(), m.faces.numpy(), m.name
    except ImportError:
        n = 196
        y, x = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
        z = 40 * np.exp(-2 * (x**2 + y**2))
        v = np.stack([75 * x, 95 * y, z], -1).reshape(-1, 3)
        idx = np.arange(n * n).reshape(n, n)
        a, b, c, d = (idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(),
                      idx[1:, 1:].ravel())
        return v, np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)]), "grid"


def screen_verts(v, size, yaw=0.25):
    """Rotate about y, flip y (model y up -> screen y down), fit 90 % of the image."""
    c, s = np.cos(yaw), np.sin(yaw)
    r = v @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    scale = 0.9 * size / np.ptp(r[:, :2], axis=0).max()
    centre = (r[:, :2].max(0) + r[:, :2].min(0)) / 2
    return np.stack([(r[:, 0] - centre[0]) * scale + size / 2,
                     -(r[:, 1] - centre[1]) * scale + size / 2, 1000.0 - r[:, 2]], -1)


def median_ms(fn, repeat):
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def open3d_peer(v, faces, size):
    """Open3D RaycastingScene.cast_rays, one orthographic ray per pixel centre, or None."""
    try:
        import open3d as o3d
    except ImportError:
        return None
    scene = o3d.t.geometry.RaycastingScene()
    sv = screen_verts(v, size).astype(np.float32)
    scene.add_triangles(o3d.core.Tensor(sv), o3d.core.Tensor(faces.astype(np.uint32)))
    j, i = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    rays = np.stack([j, i, np.zeros_like(i), np.zeros_like(i), np.zeros_like(i),
                     np.ones_like(i)], -1).astype(np.float32)
    rays_t = o3d.core.Tensor(rays)
    return lambda: scene.cast_rays(rays_t, nthreads=numba.get_num_threads())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="224² only, fewer repeats")
    parser.add_argument("--ref-faces", type=int, default=1500,
                        help="triangles timed for the NumPy reference (then extrapolated)")
    args = parser.parse_args()
    sizes = [224] if args.quick else [120, 224, 256, 512]
    repeat = 5 if args.quick else 15
    v, faces, name = face_mesh()
    F = faces.shape[0]
    print(f"mesh {name}: V={len(v)}, F={F}; numba {numba.__version__}, "
          f"max threads {numba.config.NUMBA_NUM_THREADS}")
    header = (f"{'size':>5} {'B':>3} {'thr':>3} {'api ms/frame':>13} {'kernel ms/frame':>16} "
              f"{'coverage':>8} {'ref ms (extrap.)':>17} {'x ref':>7} {'open3d ms':>10} "
              f"{'x o3d':>6}")
    print(header)
    print("-" * len(header))
    max_threads = numba.config.NUMBA_NUM_THREADS
    for size in sizes:
        base = screen_verts(v, size).astype(np.float32)
        sub = faces[:args.ref_faces]
        ref_ms = median_ms(lambda b=base, s=sub, z=size: rasterize_reference(b[None], s, z, z),
                           1) * F / len(sub)
        for B in (1, 16):
            verts_np = np.ascontiguousarray(np.repeat(base[None], B, 0))
            verts_t = torch.from_numpy(verts_np)
            faces_t = torch.from_numpy(faces)
            for threads in (1, 2):
                if threads > max_threads:
                    continue
                numba.set_num_threads(threads)
                torch.set_num_threads(threads)  # torch's validation ops share the OpenMP pool
                reps = repeat if B == 1 else max(3, repeat // 4)
                api = median_ms(lambda vt=verts_t, ft=faces_t, z=size: R.rasterize(vt, ft, z, z),
                                reps) / B
                kern = median_ms(lambda vn=verts_np, z=size: cpu.rasterize_numba(
                    vn, faces, z, z, False, False, -np.inf), reps) / B
                cov = float((R.rasterize(verts_t[:1], faces_t, size, size).face_index >= 0)
                            .float().mean())
                peer = open3d_peer(v, faces, size) if B == 1 else None
                o3d_ms = median_ms(peer, reps) if peer is not None else float("nan")
                print(f"{size:>5} {B:>3} {threads:>3} {api:>13.2f} {kern:>16.2f} {cov:>8.2f} "
                      f"{ref_ms:>17.0f} {ref_ms / api:>7.0f} {o3d_ms:>10.2f} "
                      f"{o3d_ms / api:>6.1f}")
    print("ref: NumPy reference timed on the first "
          f"{args.ref_faces} triangles, scaled by {F}/{args.ref_faces}; "
          "open3d: nan = not installed (or batch 16, not measured)")


if __name__ == "__main__":
    main()
