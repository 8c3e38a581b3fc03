"""``facelab.raster.lanes.div4``: one vector division, bit for bit the four scalar ones."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numba import njit

from facelab.raster import cpu
from facelab.raster.lanes import div4


@njit(error_model="numpy")
def _div4_compiled(a, d, out):
    for k in range(a.shape[0]):
        out[k] = div4(a[k, 0], a[k, 1], a[k, 2], a[k, 3], d[k, 0], d[k, 1], d[k, 2], d[k, 3])


@njit(error_model="numpy")
def _div_scalar(a, d, out):
    for k in range(a.shape[0]):
        for lane in range(4):
            out[k, lane] = a[k, lane] / d[k, lane]


def _operands(dtype, n=4096):
    """Random magnitudes over the whole exponent range plus the special values."""
    rng = np.random.default_rng(3)
    info = np.finfo(dtype)
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, info.tiny, info.max,
                        info.smallest_subnormal, 3.0, 1 / 3], dtype=dtype)
    exp = rng.uniform(np.log2(float(info.smallest_subnormal)), np.log2(float(info.max)) - 1,
                      (n, 4))
    a = (rng.choice([-1.0, 1.0], (n, 4)) * np.exp2(exp)).astype(dtype)
    d = (rng.choice([-1.0, 1.0], (n, 4)) * np.exp2(rng.permutation(exp))).astype(dtype)
    pairs = np.array(np.meshgrid(special, special)).reshape(2, -1).T  # every special pair
    k = len(pairs) // 4 * 4
    a[:k // 4] = pairs[:k, 0].reshape(-1, 4)
    d[:k // 4] = pairs[:k, 1].reshape(-1, 4)
    return np.ascontiguousarray(a), np.ascontiguousarray(d)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_div4_is_the_scalar_division_bit_for_bit(dtype):
    a, d = _operands(dtype)
    vec = np.empty_like(a)
    ref = np.empty_like(a)
    _div4_compiled(a, d, vec)
    _div_scalar(a, d, ref)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        plain = a / d  # NumPy: IEEE division too
    np.testing.assert_array_equal(vec.view(f"u{a.itemsize}")[~np.isnan(ref)],
                                  ref.view(f"u{a.itemsize}")[~np.isnan(ref)])
    np.testing.assert_array_equal(np.isnan(vec), np.isnan(ref))  # NaN payloads may differ
    np.testing.assert_array_equal(vec, plain)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        py = div4(*(dtype(x) for x in a[7]), *(dtype(x) for x in d[7]))  # the Python function
    np.testing.assert_array_equal(np.array(py, dtype=dtype), plain[7])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_barycentrics_and_depth_python_equals_compiled(dtype):
    """The register_jitable helper run as Python (div4 the plain function) and compiled."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=(64, 3)).astype(dtype)
    z = rng.uniform(0.5, 4.0, size=(64, 3)).astype(dtype)
    w[0] = 0  # total == 0: inf / NaN in both
    one = dtype(1)

    @njit(error_model="numpy")
    def compiled(w, z, pc, out):
        for k in range(w.shape[0]):
            out[k] = cpu.barycentrics_and_depth(w[k, 0], w[k, 1], w[k, 2], z[k, 0], z[k, 1],
                                                z[k, 2], pc, one)

    for pc in (False, True):
        out = np.empty((64, 4), dtype)
        compiled(w, z, pc, out)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            py = np.array([cpu.barycentrics_and_depth(*w[k], *z[k], pc, one)
                           for k in range(64)], dtype=dtype)
        np.testing.assert_array_equal(out, py)
        assert not np.isfinite(out[0]).all()


def test_the_rasterizer_divides_in_vector_lanes():
    """The compiled kernel uses packed divisions (vdivps/divps) for definition 4 in float32."""
    rng = np.random.default_rng(2)
    verts = rng.uniform(0, 6, (1, 8, 3)).astype(np.float32)
    verts[..., 2] += 1
    faces = rng.integers(0, 8, (6, 3))
    cpu.rasterize_numba(verts, faces, 6, 7, True, False, 0.0)
    kernel = cpu._SERIAL[cpu.rasterize_bands]
    fresh = njit(error_model="numpy")(kernel.py_func)  # cached code cannot be inspected
    xs = cpu._pixel_centres(7, verts.dtype)
    ranges = np.empty((1, 8, 4), np.int32)
    cpu.vertex_pixel_ranges(verts, 6, 7, np.inf, ranges)
    fresh(verts, faces, ranges, xs, xs[:6], np.float32(0), False, True, np.float32(1), 1, 4,
          np.empty((1, 6, 7), np.float32), np.empty((1, 6, 7), np.int64),
          np.empty((1, 6, 7, 3), np.float32), np.empty((1, 6, 7), np.float32),
          np.empty(1, np.int64))
    asm = "\n".join(fresh.inspect_asm().values())
    assert re.search(r"\bv?divps\b", asm)
