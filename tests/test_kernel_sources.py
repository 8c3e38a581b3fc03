"""Every CUDA source compiles: with nvcc for the GPU, and for the host with CUDA emulation."""

import ctypes
import shutil

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
