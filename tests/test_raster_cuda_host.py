"""kernels/rasterize.cu and kernels/interpolate.cu: nvcc compile, host-emulated runs vs the
reference (the CUDA kernels' own logic on the CPU), and real-GPU runs (marked ``cuda``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from test_raster_reference import fan_mesh, grid_mesh, random_mesh, sphere_mesh, to_screen

from facelab import kernel_sources as ks
from facelab.kernel_launch import KernelOrderError, emulate_launch
from facelab.kernel_sources import nvcc_compile
from facelab.raster import cuda
from facelab.raster.reference import (
    interpolate_backward_reference,
    interpolate_reference,
    pixel_barycentrics_reference,
    rasterize_reference,
    resolve_near,
)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def host_rasterize(verts, faces, H, W, pc=False, cull=False, near=None):
    """rasterize.cu through ``cuda.rasterize_cuda(..., emulate=True)``, as NumPy arrays."""
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    out = cuda.rasterize_cuda(_t(verts), _t(faces), H, W, pc, cull, resolve_near(near, pc),
                              emulate=True)
    return tuple(o.numpy() for o in out)


def host_interpolate(attrs, face_index, bary, faces, verts=None, pc=False, grad=None):
    """Returns (out, bary_from_verts or None, grad_attrs, grad_verts or None) from
    interpolate.cu's host build (``emulate=True``)."""
    attrs, face_index, bary = _t(attrs), _t(face_index), _t(bary)
    faces = _t(np.asarray(faces, dtype=np.int64))
    rebary = None
    if verts is not None:
        rebary = cuda.pixel_barycentrics_cuda(_t(verts), face_index, faces, pc,
                                              emulate=True).numpy()
    out = cuda.interpolate_forward_cuda(attrs, face_index, bary, faces, emulate=True).numpy()
    if grad is None:
        return out, rebary, None, None
    ga, gv = cuda.interpolate_backward_cuda(_t(grad), attrs, face_index, bary, faces,
                                            None if verts is None else _t(verts), pc, True,
                                            verts is not None, emulate=True)
    return out, rebary, ga.numpy(), None if gv is None else gv.numpy()


# ----------------------------------------------------------------------------- nvcc


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("name", ["rasterize", "interpolate"])
def test_nvcc_compiles(name):
    ptx = nvcc_compile(name, arch="sm_90").read_text()
    for kernel in {"rasterize": ["rasterize_zbuffer_f32", "rasterize_resolve_f64"],
                   "interpolate": ["interpolate_backward_f64", "pixel_barycentrics_f32"]}[name]:
        assert f".entry {kernel}" in ptx


# ----------------------------------------------------------------------------- host emulation


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pc", [False, True])
@pytest.mark.parametrize("cull", [False, True])
def test_host_rasterize_random_matches_reference(dtype, pc, cull):
    rng = np.random.default_rng(9)
    verts, faces = random_mesh(rng, 2, 40, 70, 17, 19, dtype=dtype)
    ref = rasterize_reference(verts, faces, 17, 19, pc, cull)
    got = host_rasterize(verts, faces, 17, 19, pc, cull)
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("case", ["grid", "grid_flipped", "fan", "sphere", "coplanar", "behind",
                                  "slivers", "huge", "empty"])
def test_host_rasterize_crafted_cases(case):
    H = W = 34
    pc = False
    if case in ("grid", "grid_flipped"):
        v, f = grid_mesh(7, 5.0, flip=case == "grid_flipped")
    elif case == "fan":
        v, f = fan_mesh()
    elif case == "sphere":
        v, f = sphere_mesh(14)
        v = to_screen(v, H)
    elif case == "coplanar":
        tri = np.array([[1.0, 1.0, 2.0], [1.0, 30.0, 2.0], [30.0, 1.0, 2.0]])
        v, f = np.concatenate([tri, tri, tri]), np.array([[6, 7, 8], [3, 4, 5], [0, 1, 2]])
    elif case == "behind":
        v = np.array([[1.0, 1.0, 2.0], [1.0, 30.0, 2.0], [30.0, 1.0, -1.0],
                      [2.0, 2.0, 5.0], [2.0, 25.0, 5.0], [25.0, 2.0, 5.0]])
        f, pc = np.array([[0, 1, 2], [3, 4, 5]]), True
    elif case == "slivers":
        v = np.array([[1.5, 1.5, 1], [5.5, 5.5, 1], [9.5, 9.5, 1], [0.0, 0.0, 1],
                      [30.0, 30.0, 1], [30.0, 30.0 + 1e-4, 1]])
        f = np.array([[0, 1, 2], [3, 4, 5]])
    elif case == "huge":
        v = np.array([[-1e5, -1e5, 1.0], [-1e5, 3e5, 2.0], [3e5, -1e5, 3.0]])
        f = np.array([[0, 1, 2]])
    else:
        v, f = np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int64)
    for dtype in (np.float32, np.float64):
        verts = np.repeat(np.asarray(v, dtype=dtype)[None], 2, axis=0)
        ref = rasterize_reference(verts, f, H, W, pc)
        got = host_rasterize(verts, f, H, W, pc)
        for r, g in zip(ref, got, strict=True):
            np.testing.assert_array_equal(g, r)
        if case == "coplanar":
            assert set(np.unique(got[0])) == {-1, 0}


def test_host_negative_depths_order_correctly():
    # orthographic depths of both signs: the packed key must keep the nearest (most negative)
    near_tri = [[1.0, 1.0, -3.0], [1.0, 9.0, -3.0], [9.0, 1.0, -3.0]]
    far_tri = [[0.0, 0.0, 2.0], [0.0, 10.0, 2.0], [10.0, 0.0, 2.0]]
    mid_tri = [[0.0, 0.0, -0.0], [0.0, 10.0, 0.0], [10.0, 0.0, 0.0]]
    verts = np.array([far_tri + near_tri + mid_tri], dtype=np.float32)
    faces = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    got = host_rasterize(verts, faces, 10, 10)
    ref = rasterize_reference(verts, faces, 10, 10)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[0][0, 2, 2] == 1 and got[0][0, 0, 8] == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pc", [False, True])
def test_host_interpolate_matches_reference(dtype, pc):
    rng = np.random.default_rng(4)
    verts, faces = random_mesh(rng, 2, 30, 40, 13, 16, dtype=dtype)
    fi, bary, _ = rasterize_reference(verts, faces, 13, 16, pc)
    attrs = rng.normal(size=(2, 30, 3)).astype(dtype)
    grad = rng.normal(size=(2, 13, 16, 3)).astype(dtype)
    out, rebary, ga, gv = host_interpolate(attrs, fi, bary, faces, verts, pc, grad)
    np.testing.assert_array_equal(out, interpolate_reference(attrs, fi, bary, faces))
    np.testing.assert_array_equal(rebary, pixel_barycentrics_reference(verts, fi, faces, pc))
    ra, rv = interpolate_backward_reference(grad, attrs, fi, bary, faces, verts, pc)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(ga, ra, rtol=tol, atol=tol)
    np.testing.assert_allclose(gv, rv, rtol=tol, atol=tol * np.abs(rv).max())
    _, _, ga2, gv2 = host_interpolate(attrs, fi, bary, faces, None, pc, grad)
    np.testing.assert_allclose(ga2, ra, rtol=tol, atol=tol)
    assert gv2 is None


def test_host_grid_stride_loops_cover_everything(monkeypatch):
    """A grid smaller than the work: the kernels' grid-stride loops must cover every item."""
    monkeypatch.setattr(cuda, "BLOCK", 32)
    monkeypatch.setattr(cuda, "_MAX_GRID", 3)
    rng = np.random.default_rng(5)
    verts, faces = random_mesh(rng, 2, 30, 60, 15, 17, dtype=np.float64)
    ref = rasterize_reference(verts, faces, 15, 17, True)
    got = host_rasterize(verts, faces, 15, 17, True)
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_array_equal(g, r)
    fi, bary, _ = ref
    attrs = rng.normal(size=(2, 30, 2))
    grad = rng.normal(size=(2, 15, 17, 2))
    out, rebary, ga, gv = host_interpolate(attrs, fi, bary, faces, verts, True, grad)
    np.testing.assert_array_equal(out, interpolate_reference(attrs, fi, bary, faces))
    np.testing.assert_array_equal(rebary, pixel_barycentrics_reference(verts, fi, faces, True))
    ra, rv = interpolate_backward_reference(grad, attrs, fi, bary, faces, verts, True)
    np.testing.assert_allclose(ga, ra, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gv, rv, rtol=1e-10, atol=1e-10 * np.abs(rv).max())


# ----------------------------------------------------------------------------- thread order

PACKED = "atomicMin(zb + (long long)i * W + j, key);"
# The race the packed key prevents: a depth test, then the face id written on its own. Emulated
# one thread at a time, it goes wrong where depths tie (coplanar faces): the last writer wins.
SPLIT = ("{ unsigned long long* z = zb + (long long)i * W + j;"
         " if ((key >> 32) <= (*z >> 32)) *z = key; }")


def _coplanar_scene(dtype):
    """Three copies of one triangle (equal depths everywhere) plus a nearer small one."""
    tri = [[1.0, 1.0, 2.0], [1.0, 30.0, 2.0], [30.0, 1.0, 2.0]]
    near = [[5.0, 5.0, 1.0], [5.0, 12.0, 1.0], [12.0, 5.0, 1.0]]
    verts = np.array([tri * 3 + near], dtype=dtype)
    faces = np.array([[6, 7, 8], [3, 4, 5], [0, 1, 2], [9, 10, 11]])
    return _t(verts), _t(faces)


def _zbuffer_args(verts, faces, H, W):
    zbuffer = torch.full((1, H, W), -1, dtype=torch.int64)
    return (verts, faces, 1, verts.shape[1], faces.shape[0], H, W, -np.inf, 0, 0, zbuffer)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_zbuffer_is_order_independent_on_ties(dtype):
    verts, faces = _coplanar_scene(dtype)
    sig = cuda.RASTERIZE_KERNELS.for_dtype("rasterize_zbuffer", verts.dtype)
    report = emulate_launch(sig, (2,), (2,), _zbuffer_args(verts, faces, 34, 34))
    assert report.ok and all(b.bit_identical for b in report.buffers)
    ref = rasterize_reference(verts.numpy(), faces.numpy(), 34, 34)[0]
    assert set(np.unique(ref)) == {-1, 0, 3}  # ties go to the smallest face id


def test_split_depth_test_and_face_id_fails_the_order_check(tmp_path, monkeypatch):
    """rasterize.cu with the packed atomicMin replaced by the split write is caught."""
    source = ks.read_source("rasterize")
    assert source.count(PACKED) == 1
    kdir = tmp_path / "kernels"
    kdir.mkdir()
    for name in (ks.HEADER, "raster_common.cuh"):
        shutil.copy(ks.kernel_dir() / name, kdir / name)
    (kdir / "rasterize.cu").write_text(source.replace(PACKED, SPLIT))
    monkeypatch.setenv("FACELAB_KERNELS", str(kdir))
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "cache"))
    ks.compile_for_host.cache_clear()
    try:
        verts, faces = _coplanar_scene(np.float32)
        with pytest.raises(KernelOrderError, match=r"zbuffer \(inout\): \d+ elements differ"):
            cuda.rasterize_cuda(verts, faces, 34, 34, False, False, -np.inf, emulate=True)
    finally:
        ks.compile_for_host.cache_clear()


# ----------------------------------------------------------------------------- real GPU


def _cuda_or_skip():
    pytest.importorskip("cupy")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pc", [False, True])
def test_gpu_rasterize_and_interpolate_match_cpu(dtype, pc):
    _cuda_or_skip()
    import facelab.raster as R

    rng = np.random.default_rng(1)
    verts, faces = random_mesh(rng, 3, 60, 120, 40, 50, dtype=np.float64)
    v_cpu = torch.tensor(verts, dtype=dtype)
    f = torch.tensor(faces)
    fr_cpu = R.rasterize(v_cpu, f, 40, 50, pc)
    fr_gpu = R.rasterize(v_cpu.cuda(), f.cuda(), 40, 50, pc)
    torch.testing.assert_close(fr_gpu.face_index.cpu(), fr_cpu.face_index, rtol=0, atol=0)
    torch.testing.assert_close(fr_gpu.bary.cpu(), fr_cpu.bary)
    torch.testing.assert_close(fr_gpu.depth.cpu(), fr_cpu.depth)
    attrs = torch.randn(3, 60, 4, dtype=dtype)
    outs, grads = [], []
    for dev in ("cpu", "cuda"):
        a = attrs.to(dev).requires_grad_()
        v = v_cpu.to(dev).requires_grad_()
        frags = fr_cpu if dev == "cpu" else fr_gpu
        out = R.interpolate(a, frags, f.to(dev), screen_verts=v)
        out.square().sum().backward()
        outs.append(out.detach().cpu())
        grads.append((a.grad.cpu(), v.grad.cpu()))
    torch.testing.assert_close(outs[1], outs[0])
    tol = dict(rtol=1e-3, atol=1e-3) if dtype == torch.float32 else {}
    torch.testing.assert_close(grads[1][0], grads[0][0], **tol)
    torch.testing.assert_close(grads[1][1], grads[0][1], **tol)
