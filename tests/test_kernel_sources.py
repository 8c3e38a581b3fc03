"""Every CUDA source compiles: with nvcc for the GPU, and for the host with CUDA emulation."""

import ctypes
import shutil

import numpy as np
import pytest

from facelab import kernel_sources as ks

ALL_KERNELS = ks.kernel_names()


def test_kernel_folder_has_header_and_every_op():
    assert (ks.kernel_dir() / ks.HEADER).is_file()
    assert {"rasterize", "interpolate"} <= set(ALL_KERNELS)


def test_unknown_kernel_is_a_clear_error():
    with pytest.raises(ValueError, match="name: expected one of"):
        ks.kernel_path("no_such_op")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("name", ALL_KERNELS)
def test_every_cu_compiles_with_nvcc(name):
    out = ks.nvcc_compile(name, arch="sm_90")
    text = out.read_text()
    assert ".entry" in text  # at least one kernel was emitted


@pytest.mark.parametrize("name", ALL_KERNELS)
def test_every_cu_builds_for_the_host(name):
    lib = ks.compile_for_host(name)
    assert isinstance(lib, ctypes.CDLL)


def test_host_emulation_runs_a_grid_stride_kernel(tmp_path, monkeypatch):
    """The emulation header runs every (block, thread) pair exactly once."""
    kdir = tmp_path / "kernels"
    kdir.mkdir()
    shutil.copy(ks.kernel_dir() / ks.HEADER, kdir / ks.HEADER)
    (kdir / "axpy.cu").write_text(
        '#include "facelab_cuda.h"\n'
        'extern "C" __global__ void axpy(const float* x, float* y, float a, long long n) {\n'
        "  for (long long i = fl_global_index(); i < n; i += fl_grid_stride())\n"
        "    atomicAdd(&y[i], a * x[i]);\n"
        "}\n"
        "FL_HOST_LAUNCHER(axpy, (const float* x, float* y, float a, long long n), (x, y, a, n))\n"
    )
    monkeypatch.setenv("FACELAB_KERNELS", str(kdir))
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "cache"))
    ks.compile_for_host.cache_clear()
    lib = ks.compile_for_host("axpy")
    fn = lib.host_axpy
    fn.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float,
                                         ctypes.c_longlong]
    x = np.arange(37, dtype=np.float32)
    y = np.ones(37, dtype=np.float32)
    fn(3, 1, 1, 5, 1, 1, x.ctypes.data, y.ctypes.data, 2.0, 37)  # 15 threads, grid-stride loop
    np.testing.assert_array_equal(y, 1 + 2 * x)
    ks.compile_for_host.cache_clear()


def test_broken_source_reports_compiler_output(tmp_path, monkeypatch):
    kdir = tmp_path / "kernels"
    kdir.mkdir()
    shutil.copy(ks.kernel_dir() / ks.HEADER, kdir / ks.HEADER)
    (kdir / "broken.cu").write_text('#include "facelab_cuda.h"\nthis is not C++;\n')
    monkeypatch.setenv("FACELAB_KERNELS", str(kdir))
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "cache"))
    ks.compile_for_host.cache_clear()
    with pytest.raises(RuntimeError, match="host build of .*broken.cu failed"):
        ks.compile_for_host("broken")
    ks.compile_for_host.cache_clear()
