"""Run every op's CUDA source through the host emulation from an *installed* facelab.

Used by tests/test_wheel.py: executed with a fresh virtual environment's Python, from a working
directory outside the checkout, with FACELAB_KERNELS unset. Argument: the venv's prefix; the
script checks that facelab and its kernel sources come from there, then compares each op's
emulated CUDA kernels (``cuda.py`` with ``emulate=True``) with its NumPy reference, forward and
backward, float32 and float64. Prints one ``ok`` line per check; any failure raises.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

import facelab
from facelab import kernel_sources
from facelab.normals import cuda as normals_cuda
from facelab.normals import reference as normals_ref
from facelab.normals.autograd import vertex_face_table
from facelab.raster import cuda as raster_cuda
from facelab.raster import reference as raster_ref
from facelab.shaded_photometric import cuda as shaded_cuda
from facelab.shaded_photometric import reference as shaded_ref
from facelab.shading import cuda as shading_cuda
from facelab.shading import reference as shading_ref
from facelab.texture import cuda as texture_cuda
from facelab.texture import reference as texture_ref
from facelab.vertex_losses import cuda as losses_cuda
from facelab.vertex_losses import reference as losses_ref


def _close(got, want, dtype, scale=1.0):
    tol = (2e-4 if dtype == np.float32 else 1e-9) * scale
    got = got.numpy() if isinstance(got, torch.Tensor) else got
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


def check_raster(dtype, rng):
    B, V, F, H, W = 2, 30, 50, 14, 17
    verts = np.concatenate([rng.uniform(-2, W + 2, (B, V, 1)), rng.uniform(-2, H + 2, (B, V, 1)),
                            rng.uniform(1, 5, (B, V, 1))], axis=-1).astype(dtype)
    faces = rng.integers(0, V, (F, 3)).astype(np.int64)
    ref = raster_ref.rasterize_reference(verts, faces, H, W, True)
    got = raster_cuda.rasterize_cuda(torch.from_numpy(verts), torch.from_numpy(faces), H, W,
                                     True, False, raster_ref.resolve_near(None, True),
                                     emulate=True)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_array_equal(g.numpy(), r)
    assert (ref[0] >= 0).sum() > 20, "test scene covers too few pixels"
    fi, bary = ref[0], ref[1]
    attrs = rng.normal(size=(B, V, 3)).astype(dtype)
    grad = rng.normal(size=(B, H, W, 3)).astype(dtype)
    t = [torch.from_numpy(a) for a in (attrs, fi, bary, faces, verts, grad)]
    rebary = raster_cuda.pixel_barycentrics_cuda(t[4], t[1], t[3], True, emulate=True)
    np.testing.assert_array_equal(rebary.numpy(),
                                  raster_ref.pixel_barycentrics_reference(verts, fi, faces, True))
    out = raster_cuda.interpolate_forward_cuda(t[0], t[1], t[2], t[3], emulate=True)
    np.testing.assert_array_equal(out.numpy(),
                                  raster_ref.interpolate_reference(attrs, fi, bary, faces))
    ga, gv = raster_cuda.interpolate_backward_cuda(t[5], t[0], t[1], t[2], t[3], t[4], True,
                                                   True, True, emulate=True)
    ra, rv = raster_ref.interpolate_backward_reference(grad, attrs, fi, bary, faces, verts, True)
    _close(ga, ra, dtype)
    _close(gv, rv, dtype, scale=10)


def check_shading(dtype, rng):
    albedo = rng.uniform(0, 1, (2, 40, 3)).astype(dtype)
    normals = rng.normal(size=(2, 40, 3))
    normals = (normals / np.linalg.norm(normals, axis=-1, keepdims=True)).astype(dtype)
    gamma = rng.normal(size=(2, 9, 3)).astype(dtype)
    grad = rng.normal(size=(2, 40, 3)).astype(dtype)
    t = [torch.from_numpy(a) for a in (albedo, normals, gamma, grad)]
    _close(shading_cuda.sh_shade_forward(*t[:3], emulate=True),
           shading_ref.sh_shade_forward(albedo, normals, gamma), dtype)
    got = shading_cuda.sh_shade_backward(*t, emulate=True)
    for g, r in zip(got, shading_ref.sh_shade_backward(albedo, normals, gamma, grad),
                    strict=True):
        _close(g, r, dtype, scale=10)


def check_normals(dtype, rng):
    V = 25
    verts = rng.normal(size=(2, V, 3)).astype(dtype)
    faces = np.array([rng.permutation(V)[:3] for _ in range(40)], dtype=np.int64)
    table = vertex_face_table(torch.from_numpy(faces), V)
    tv = torch.from_numpy(verts)
    normals, inv_norm = normals_cuda.vertex_normals_forward(tv, table.faces, table.offsets,
                                                            table.face_ids, emulate=True)
    rn, ri = normals_ref.vertex_normals_forward(verts, faces)
    _close(normals, rn, dtype, scale=10)
    _close(inv_norm, ri, dtype, scale=10)
    grad = rng.normal(size=(2, V, 3)).astype(dtype)
    got = normals_cuda.vertex_normals_backward(tv, table.faces, table.offsets, table.face_ids,
                                               table.corners, normals, inv_norm,
                                               torch.from_numpy(grad), emulate=True)
    _close(got, normals_ref.vertex_normals_backward(verts, faces, rn, ri, grad), dtype,
           scale=100)


def check_photometric(dtype, rng):
    H, W, V, eps = 9, 11, 60, 1e-3
    image = rng.uniform(0, 1, (2, H, W, 3)).astype(dtype)
    positions = np.concatenate([rng.uniform(-1, W + 1, (2, V, 1)),
                                rng.uniform(-1, H + 1, (2, V, 1))], axis=-1).astype(dtype)
    colors = rng.uniform(0, 1, (2, V, 3)).astype(dtype)
    weights = (rng.uniform(size=(2, V)) > 0.2).astype(dtype)
    grad_loss = rng.normal(size=2).astype(dtype)
    t = [torch.from_numpy(a) for a in (image, positions, colors, weights)]
    loss, count = losses_cuda.photometric_forward(*t, eps, emulate=True)
    ref_loss, ref_count = losses_ref.photometric_forward(image, positions, colors, weights, eps)
    np.testing.assert_array_equal(count.numpy(), ref_count)
    _close(loss, ref_loss, dtype)
    got = losses_cuda.photometric_backward(*t, eps, count, torch.from_numpy(grad_loss),
                                           emulate=True)
    ref = losses_ref.photometric_backward(image, positions, colors, weights, eps, ref_count,
                                          grad_loss)
    for g, r in zip(got, ref, strict=True):
        _close(g, r, dtype, scale=10)


def check_shaded_photometric(dtype, rng):
    H, W, V, eps = 9, 11, 60, 1e-3
    image = rng.uniform(0, 1, (2, H, W, 3)).astype(dtype)
    positions = np.concatenate([rng.uniform(-1, W + 1, (2, V, 1)),
                                rng.uniform(-1, H + 1, (2, V, 1))], axis=-1).astype(dtype)
    albedo = rng.uniform(0, 1, (2, V, 3)).astype(dtype)
    normals = rng.normal(size=(2, V, 3))
    normals = (normals / np.linalg.norm(normals, axis=-1, keepdims=True)).astype(dtype)
    gamma = rng.normal(0, 0.3, (2, 9, 3)).astype(dtype)
    weights = (rng.uniform(size=(2, V)) > 0.2).astype(dtype)
    grad_loss = rng.normal(size=2).astype(dtype)
    arrays = (image, positions, albedo, normals, gamma, weights)
    t = [torch.from_numpy(a) for a in arrays]
    loss, count = shaded_cuda.shaded_photometric_forward(*t, eps, emulate=True)
    ref_loss, ref_count = shaded_ref.shaded_photometric_forward(*arrays, eps)
    np.testing.assert_array_equal(count.numpy(), ref_count)
    _close(loss, ref_loss, dtype)
    got = shaded_cuda.shaded_photometric_backward(*t, eps, count, torch.from_numpy(grad_loss),
                                                  emulate=True)
    ref = shaded_ref.shaded_photometric_backward(*arrays, eps, ref_count, grad_loss)
    for g, r in zip(got, ref, strict=True):
        _close(g, r, dtype, scale=10)


def check_texture(dtype, rng):
    texture = rng.uniform(0, 1, (2, 5, 7, 3)).astype(dtype)
    uv = rng.uniform(-0.2, 1.2, (2, 6, 8, 2)).astype(dtype)
    mask = rng.uniform(size=(2, 6, 8)) > 0.3
    grad = rng.normal(size=(2, 6, 8, 3)).astype(dtype)
    t = [torch.from_numpy(a) for a in (texture, uv, mask)]
    out = texture_cuda.sample_texture_forward(*t, emulate=True)
    _close(out, texture_ref.sample_texture_forward(texture, uv, mask), dtype)
    got = texture_cuda.sample_texture_backward(*t, torch.from_numpy(grad), emulate=True)
    ref = texture_ref.sample_texture_backward(texture, uv, mask, grad)
    for g, r in zip(got, ref, strict=True):
        _close(g, r, dtype, scale=10)


CHECKS = {"rasterize+interpolate": check_raster, "sh_shade": check_shading,
          "vertex_normals": check_normals, "photometric": check_photometric,
          "shaded_photometric": check_shaded_photometric, "texture": check_texture}


def main(prefix: str) -> None:
    prefix_path = Path(prefix).resolve()
    assert "FACELAB_KERNELS" not in os.environ, "FACELAB_KERNELS must be unset"
    package = Path(facelab.__file__).resolve()
    assert prefix_path in package.parents, f"facelab imported from {package}, not {prefix_path}"
    kdir = kernel_sources.kernel_dir().resolve()
    assert kdir == package.parent / "_kernels", f"kernel sources found in {kdir}"
    print("facelab", package, "kernels", kdir)
    ops = set(kernel_sources.kernel_names())
    assert ops == {"rasterize", "interpolate", "sh_shade", "vertex_normals", "photometric",
                   "shaded_photometric", "texture"}, ops
    for name, check in CHECKS.items():
        for dtype in (np.float32, np.float64):
            check(dtype, np.random.default_rng(0))
            print("ok", name, np.dtype(dtype).name)


if __name__ == "__main__":
    main(sys.argv[1])
