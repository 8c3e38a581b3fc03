"""CUDA kernel sources in ``kernels/``: locate, compile for the GPU (CuPy) or for the host (ctypes).

Every compiled op has a CUDA C file ``kernels/<op>.cu`` that includes ``facelab_cuda.h``.
That one source is used three ways:

* :func:`raw_module` compiles it with NVRTC through ``cupy.RawModule`` (cached per device)
  for real GPU execution;
* :func:`nvcc_compile` compiles it with ``nvcc`` (when on PATH) so the tests prove every
  ``.cu`` file is valid CUDA for a current architecture even on machines without a GPU;
* :func:`compile_for_host` compiles it with the system C++ compiler and ``-DFACELAB_HOST``,
  where ``facelab_cuda.h`` emulates the CUDA grid one thread at a time, in a shuffled order, and
  loads it with ``ctypes``, so the tests run the *kernels' own logic* on the CPU and compare it
  with the NumPy reference.

Launching (on the GPU or in the host emulation) goes through :func:`facelab.kernel_launch.launch`
with the kernel signatures each op declares once.

Installed from a wheel, the sources live in ``facelab/_kernels/`` (see ``pyproject.toml``); in a
checkout, in ``kernels/`` next to the package.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

__all__ = [
    "compile_for_host",
    "cuda_available",
    "kernel_dir",
    "kernel_names",
    "kernel_path",
    "nvcc_compile",
    "raw_module",
    "read_source",
]

HEADER = "facelab_cuda.h"


def kernel_dir() -> Path:
    """The folder holding the ``.cu`` sources (``$FACELAB_KERNELS`` overrides)."""
    env = os.environ.get("FACELAB_KERNELS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "kernels", here / "_kernels"):
        if (candidate / HEADER).is_file():
            return candidate
    raise FileNotFoundError(
        f"facelab's CUDA sources ({HEADER} and *.cu) were not found next to the package "
        f"({here.parent / 'kernels'}); set FACELAB_KERNELS to the kernels/ folder of a "
        "facelab checkout"
    )


def kernel_names() -> list[str]:
    """Names of all ops with a CUDA source, e.g. ``["rasterize", "sh_shade"]``."""
    return sorted(p.stem for p in kernel_dir().glob("*.cu"))


def kernel_path(name: str) -> Path:
    """Path of ``kernels/<name>.cu``; ``ValueError`` naming the known ops if absent."""
    path = kernel_dir() / f"{name}.cu"
    if not path.is_file():
        raise ValueError(f"name: expected one of {kernel_names()}, got {name!r}")
    return path


def read_source(name: str) -> str:
    """The CUDA C source of op ``name``."""
    return kernel_path(name).read_text()


def _digest(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _headers() -> list[Path]:
    """Every shared header (``*.h``, ``*.cuh``): a change to any of them invalidates builds."""
    return sorted([*kernel_dir().glob("*.h"), *kernel_dir().glob("*.cuh")])


def _build_dir() -> Path:
    root = os.environ.get("FACELAB_CACHE") or os.path.join(Path.home(), ".cache", "facelab")
    path = Path(root) / "host_kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def compile_for_host(name: str, *, compiler: str | None = None) -> ctypes.CDLL:
    """Compile ``kernels/<name>.cu`` for the CPU with CUDA emulation and load it.

    The library exports ``host_<kernel>(const fl_launch*, void** args)`` and
    ``host_<kernel>_signature()`` for every kernel that the source names with
    ``FL_HOST_LAUNCHER`` (call them through :func:`facelab.kernel_launch.launch`). Builds are
    cached by content hash.
    Raises ``RuntimeError`` with the compiler's output when compilation fails.
    """
    cxx = compiler or os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise RuntimeError("compile_for_host: no C++ compiler found (install g++ or set CXX)")
    src = kernel_path(name)
    flags = ["-O2", "-std=c++17", "-shared", "-fPIC", "-DFACELAB_HOST", "-fno-fast-math"]
    out = _build_dir() / f"{name}-{_digest(src, *_headers(), extra=' '.join([cxx, *flags]))}.so"
    if not out.exists():
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            tmp_out = Path(tmp) / out.name
            cmd = [cxx, *flags, "-I", str(kernel_dir()), "-x", "c++", str(src), "-o", str(tmp_out)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"host build of {src} failed:\n{' '.join(cmd)}\n{proc.stderr}")
            os.replace(tmp_out, out)
    return ctypes.CDLL(str(out))


def nvcc_compile(name: str, *, arch: str = "sm_90", output: str = "ptx") -> Path:
    """Compile ``kernels/<name>.cu`` with ``nvcc`` for ``arch`` (no GPU needed).

    output: ``"ptx"`` or ``"cubin"``. Returns the output path (in the cache folder).
    Raises ``FileNotFoundError`` when nvcc is not on PATH and ``RuntimeError`` with nvcc's
    output when compilation fails.
    """
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise FileNotFoundError("nvcc_compile: nvcc is not on PATH")
    if output not in ("ptx", "cubin"):
        raise ValueError(f"output: expected 'ptx' or 'cubin', got {output!r}")
    src = kernel_path(name)
    out = _build_dir() / f"{name}-{arch}.{output}"
    cmd = [nvcc, f"-{output}", f"-arch={arch}", "-I", str(kernel_dir()), str(src), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nvcc failed on {src}:\n{' '.join(cmd)}\n{proc.stderr}")
    return out


def cuda_available() -> bool:
    """True when CuPy imports and torch sees a CUDA device."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


_MODULES: dict = {}


def raw_module(name: str, device_index: int = 0):
    """The ``cupy.RawModule`` for op ``name`` on a device, compiled once and cached.

    :func:`facelab.kernel_launch.launch` launches its kernels on torch's current stream.
    """
    key = (name, device_index)
    if key not in _MODULES:
        import cupy

        with cupy.cuda.Device(device_index):
            _MODULES[key] = cupy.RawModule(
                code=read_source(name),
                options=("--std=c++17", f"-I{kernel_dir()}"),
            )
    return _MODULES[key]
