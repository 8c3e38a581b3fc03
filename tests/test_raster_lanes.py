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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_bands", [1, 2, 4])
def test_non_finite_barycentrics_match_reference(monkeypatch, dtype, n_bands):
    """Perspective-correct with no near plane: vertices at depth 0 and on both sides of it
    give inf / NaN lanes in the vector divisions; the kernel writes the reference's values
    (NaN where it has NaN), counts them, and the row bands (2 threads) agree bit for bit."""
    import numba

    from facelab.raster.reference import rasterize_reference

    rng = np.random.default_rng(11 + n_bands)
    size = 29
    xy = rng.uniform(-4, size + 4, (90, 2))
    z = rng.choice([0.0, -1.0, 1.0, 2.0, 1e-30], (90, 1)) * rng.uniform(0.5, 1.5, (90, 1))
    verts = np.concatenate([xy, z], 1)[None].astype(dtype)
    faces = np.arange(90).reshape(-1, 3)
    ref = rasterize_reference(verts, faces, size, size, True, False, -np.inf)
    monkeypatch.setattr(cpu, "_band_count", lambda batch, threads=None: n_bands)
    monkeypatch.setattr(cpu, "PARALLEL_MIN_PIXELS", 0)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        got = cpu.rasterize_numba_counts(verts, faces, size, size, True, False, -np.inf)
    finally:
        numba.set_num_threads(old)
    for a, b in zip(got[:3], ref, strict=True):
        np.testing.assert_array_equal(a, b)  # NaN where the reference has NaN
    assert not (np.isfinite(ref[1]).all() and np.isfinite(ref[2]).all())  # not vacuous
    assert got[4] > 0 and got[3] == 0 and got[5] == 0  # the non-finite writes are counted
