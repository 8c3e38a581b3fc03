"""facelab.kernel_launch: signatures declared once, the one launch, and the shuffled-order check
of the host emulation (it must catch an order-dependent write and pass every real kernel)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from facelab import kernel_sources as ks
from facelab.kernel_launch import (
    KernelOrderError,
    _checked_args,
    _host_function,
    declare_kernels,
    emulate_launch,
    launch,
)
from facelab.normals import cuda as normals_cuda
from facelab.raster import cuda as raster_cuda
from facelab.shaded_photometric import cuda as shaded_cuda
from facelab.shading import cuda as shading_cuda
from facelab.texture import cuda as texture_cuda
from facelab.vertex_losses import cuda as losses_cuda

ALL_TABLES = [raster_cuda.RASTERIZE_KERNELS, raster_cuda.INTERPOLATE_KERNELS,
              shading_cuda.KERNELS, normals_cuda.KERNELS, losses_cuda.KERNELS,
              shaded_cuda.KERNELS, texture_cuda.KERNELS]


@pytest.fixture
def kernel_folder(tmp_path, monkeypatch):
    """A kernels/ folder with only facelab_cuda.h; write test kernels into it."""
    kdir = tmp_path / "kernels"
    kdir.mkdir()
    shutil.copy(ks.kernel_dir() / ks.HEADER, kdir / ks.HEADER)
    monkeypatch.setenv("FACELAB_KERNELS", str(kdir))
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "cache"))
    ks.compile_for_host.cache_clear()
    yield kdir
    ks.compile_for_host.cache_clear()


# ----------------------------------------------------------------------------- declarations


def test_every_op_with_a_source_declares_its_kernels():
    assert {t.op for t in ALL_TABLES} == set(ks.kernel_names())


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.op)
def test_declarations_match_the_kernels_parameter_lists(table):
    """The host build derives each kernel's signature from its C parameter list."""
    for sig in table.values():
        _host_function(sig)  # raises RuntimeError on any difference


def test_declaration_expands_the_float_type():
    table = declare_kernels("demo", {"k": "in T* x, i32 n, T a, sum T* y", "plain": "i64 n"})
    assert sorted(table) == ["k_f32", "k_f64", "plain"]
    assert table["k_f64"].c_signature == "const f64*,i32,f64,f64*"
    assert table.for_dtype("k", torch.float32).name == "k_f32"
    with pytest.raises(ValueError, match="needs a direction"):
        declare_kernels("demo", {"k": "T* x"})
    with pytest.raises(ValueError, match="cannot parse"):
        declare_kernels("demo", {"k": "in float* x"})


def test_scalars_are_packed_as_their_declared_c_types():
    """What CuPy receives: NumPy scalars sized like the kernel's C parameters (CuPy passes a
    scalar by its dtype), e.g. the rasterizer's face count F as a 64-bit long long."""
    sig = raster_cuda.RASTERIZE_KERNELS["rasterize_zbuffer_f32"]
    verts, faces = torch.zeros(1, 3, 3), torch.zeros(1, 3, dtype=torch.int64)
    zbuffer = torch.full((1, 4, 5), -1, dtype=torch.int64)
    values = _checked_args(sig, (verts, faces, 1, 3, 1, 4, 5, -np.inf, True, False, zbuffer),
                           emulate=True)
    assert [type(v) for v in values[2:10]] == [np.int32, np.int32, np.int64, np.int32,
                                               np.int32, np.float32, np.int32, np.int32]
    assert values[7] == -np.inf and values[8] == 1
    with pytest.raises(OverflowError, match="B: 4294967296 does not fit in i32"):
        _checked_args(sig, (verts, faces, 2**32, 3, 1, 4, 5, 0.0, 0, 0, zbuffer), emulate=True)
    with pytest.raises(ValueError, match="verts: expected a CUDA tensor, got cpu"):
        _checked_args(sig, (verts, faces, 1, 3, 1, 4, 5, 0.0, 0, 0, zbuffer), emulate=False)


AXPY = """#include "facelab_cuda.h"
extern "C" __global__ void axpy(const float* x, float* y, float a, long long n) {
    for (long long i = fl_global_index(); i < n; i += fl_grid_stride()) y[i] += a * x[i];
}
FL_HOST_LAUNCHER(axpy)
"""


def test_launch_checks_arguments_against_the_declaration(kernel_folder):
    (kernel_folder / "axpy.cu").write_text(AXPY)
    sig = declare_kernels("axpy", {"axpy": "in f32* x, inout f32* y, f32 a, i64 n"})["axpy"]
    x = torch.arange(37, dtype=torch.float32)
    y = torch.ones(37)
    launch(sig, (3,), (5,), (x, y, 2, 37), emulate=True)  # 15 threads, grid-stride loop
    np.testing.assert_array_equal(y.numpy(), 1 + 2 * x.numpy())
    with pytest.raises(TypeError, match="expected 4 arguments"):
        launch(sig, (1,), (1,), (x, y, 2.0), emulate=True)
    with pytest.raises(TypeError, match="y: expected f32 elements, got torch.float64"):
        launch(sig, (1,), (1,), (x, y.double(), 2.0, 37), emulate=True)
    with pytest.raises(TypeError, match="n: expected an integer"):
        launch(sig, (1,), (1,), (x, y, 2.0, 37.0), emulate=True)
    with pytest.raises(ValueError, match="contiguous"):
        launch(sig, (1,), (1,), (x, torch.ones(74)[::2], 2.0, 37), emulate=True)


def test_a_declaration_that_disagrees_with_the_source_is_caught(kernel_folder):
    (kernel_folder / "axpy.cu").write_text(AXPY)
    wrong = declare_kernels("axpy", {"axpy": "in f32* x, inout f32* y, f32 a, i32 n"})["axpy"]
    with pytest.raises(RuntimeError, match=r"declared as \(const f32\*,f32\*,f32,i32\) but "
                                           r"kernels/axpy.cu has \(const f32\*,f32\*,f32,i64\)"):
        launch(wrong, (1,), (1,), (torch.ones(3), torch.ones(3), 1.0, 3), emulate=True)
    const_out = declare_kernels("axpy", {"axpy": "in f32* x, in f32* y, f32 a, i64 n"})["axpy"]
    with pytest.raises(RuntimeError, match="declared as"):
        launch(const_out, (1,), (1,), (torch.ones(3), torch.ones(3), 1.0, 3), emulate=True)


# ----------------------------------------------------------------------------- thread order

ORDER_KERNELS = r"""#include "facelab_cuda.h"
// Every (block, thread) of a 3-D grid records its visit once.
extern "C" __global__ void visit(int* hits) {
    const long long b = ((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const long long t = ((long long)threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x
                        + threadIdx.x;
    atomicAdd(hits + b * blockDim.x * blockDim.y * blockDim.z + t, 1);
}

// Item t covers pixel[t] at depth[t]; the nearest item should own the pixel.
// RACY (the DECA pattern): depth test and owner written separately; with equal depths the owner
// is whichever thread came last.
extern "C" __global__ void draw_split(const int* pixel, const float* depth, int n, float* zbuf,
                                      int* owner) {
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) {
        const int p = pixel[t];
        if (depth[t] < zbuf[p]) zbuf[p] = depth[t];
        if (zbuf[p] == depth[t]) owner[p] = (int)t;
    }
}

// Race-free: depth and item id packed in one 64-bit key, one atomicMin (ties: smaller id).
extern "C" __global__ void draw_packed(const int* pixel, const float* depth, int n,
                                       unsigned long long* key) {
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) {
        const unsigned long long k =
            ((unsigned long long)__float_as_uint(depth[t]) << 32) | (unsigned long long)t;
        atomicMin(key + pixel[t], k);  // depths are positive: their bits order like the floats
    }
}

// RACY: last writer wins.
extern "C" __global__ void last_writer(const int* pixel, int n, int* owner) {
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) owner[pixel[t]] = (int)t;
}

// Float atomicAdd of values of mixed magnitude: order changes only the rounding.
extern "C" __global__ void accumulate(const float* x, int n, float* acc) {
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) atomicAdd(acc + t % 3, x[t]);
}

// RACY although accumulated with atomicAdd: acc[1] receives the id of the third thread to run.
extern "C" __global__ void third_arrival(int n, float* acc) {
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) {
        atomicAdd(acc, 1.0f);
        if (acc[0] == 3.0f) atomicAdd(acc + 1, (float)t);
    }
}
FL_HOST_LAUNCHER(visit)
FL_HOST_LAUNCHER(draw_split)
FL_HOST_LAUNCHER(draw_packed)
FL_HOST_LAUNCHER(last_writer)
FL_HOST_LAUNCHER(accumulate)
FL_HOST_LAUNCHER(third_arrival)
"""

ORDER = declare_kernels("order", {
    "visit": "sum i32* hits",
    "draw_split": "in i32* pixel, in f32* depth, i32 n, inout f32* zbuf, out i32* owner",
    "draw_packed": "in i32* pixel, in f32* depth, i32 n, inout u64* key",
    "last_writer": "in i32* pixel, i32 n, out i32* owner",
    "accumulate": "in f32* x, i32 n, sum f32* acc",
    "third_arrival": "i32 n, sum f32* acc",
})


@pytest.fixture
def order_kernels(kernel_folder):
    (kernel_folder / "order.cu").write_text(ORDER_KERNELS)
    return ORDER


def _scene(n=96, n_pixels=8):
    """Items on a few pixels at only two depths: many exact ties (coplanar faces)."""
    rng = np.random.default_rng(3)
    pixel = torch.from_numpy(rng.integers(0, n_pixels, n).astype(np.int32))
    depth = torch.from_numpy(rng.choice([1.0, 2.0], n).astype(np.float32))
    return pixel, depth


def test_every_block_and_thread_runs_once_in_shuffled_order(order_kernels):
    hits = torch.zeros(3 * 2 * 2 * 4 * 3 * 2, dtype=torch.int32)
    report = emulate_launch(order_kernels["visit"], (3, 2, 2), (4, 3, 2), (hits,))
    assert report.ok
    assert (hits == 1).all()


def test_split_depth_test_and_id_is_reported_as_order_dependent(order_kernels):
    pixel, depth = _scene()
    zbuf = torch.full((8,), np.inf, dtype=torch.float32)
    owner = torch.full((8,), -1, dtype=torch.int32)
    args = (pixel, depth, len(pixel), zbuf, owner)
    report = emulate_launch(order_kernels["draw_split"], (3,), (8,), args)
    assert not report.ok
    (bad,) = [b for b in report.buffers if b.mismatches]
    assert bad.name == "owner" and not bad.bit_identical and bad.max_diff >= 1
    with pytest.raises(KernelOrderError, match="owner .out.: .* elements differ"):
        launch(order_kernels["draw_split"], (3,), (8,), args, emulate=True)


def test_packed_depth_and_id_passes_and_matches_the_nearest(order_kernels):
    pixel, depth = _scene()
    key = torch.full((8,), -1, dtype=torch.int64)
    report = emulate_launch(order_kernels["draw_packed"], (3,), (8,), (pixel, depth,
                                                                        len(pixel), key))
    assert report.ok and all(b.bit_identical for b in report.buffers)
    owner = (key & 0xFFFFFFFF).numpy()
    for p in range(8):  # the nearest item on each pixel, ties to the smaller id
        items = np.flatnonzero(pixel.numpy() == p)
        best = items[np.lexsort((items, depth.numpy()[items]))[0]] if len(items) else 0xFFFFFFFF
        assert owner[p] == best


def test_last_writer_wins_is_reported(order_kernels):
    pixel, _ = _scene()
    owner = torch.full((8,), -1, dtype=torch.int32)
    with pytest.raises(KernelOrderError, match="last_writer"):
        launch(order_kernels["last_writer"], (2,), (16,), (pixel, len(pixel), owner),
               emulate=True)


def test_float_atomic_add_is_compared_within_the_summation_bound(order_kernels):
    rng = np.random.default_rng(0)
    x = torch.from_numpy((rng.normal(size=3000) * 10.0 ** rng.integers(-4, 5, 3000))
                         .astype(np.float32))
    acc = torch.zeros(3, dtype=torch.float32)
    report = emulate_launch(order_kernels["accumulate"], (4,), (32,), (x, len(x), acc))
    (check,) = report.buffers
    assert report.ok and 0 <= check.bound_ratio <= 1
    assert not check.bit_identical  # the orders did round differently: the bound is needed
    exact = [np.sum(x.numpy()[k::3].astype(np.float64)) for k in range(3)]
    np.testing.assert_allclose(acc.numpy(), exact, rtol=1e-4, atol=1e-2)


def test_order_dependence_inside_an_atomic_add_buffer_is_still_caught(order_kernels):
    acc = torch.zeros(2, dtype=torch.float32)
    report = emulate_launch(order_kernels["third_arrival"], (2,), (8,), (16, acc))
    assert not report.ok
    assert report.buffers[0].bound_ratio > 1
