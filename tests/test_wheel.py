"""The wheel ships the CUDA sources: build it, install it (not editable) into a fresh virtual
environment, and run every op's kernels through the host emulation from there.

No network: the wheel is built with ``--no-build-isolation`` from the dev environment's
setuptools, installed with ``--no-deps``, and the fresh environment borrows the dev
environment's packages (torch, numpy, ...) through a ``.pth`` file. Slow (a C++ build of every
kernel) but free of timing assertions; the timeouts are generous for a loaded CI machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "facelab", "kernels"]
TIMEOUT = 1800  # seconds per step; a two-core CI machine shared with other jobs is slow

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env=None):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the checkout (the build leaves no files in the tree)."""
    if shutil.which("g++") is None and shutil.which("c++") is None and not os.environ.get("CXX"):
        pytest.skip("no C++ compiler for the host build of the kernels")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info", "build")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", tmp / "dist"], cwd=src)
    (path,) = (tmp / "dist").glob("facelab-*.whl")
    return path


def test_wheel_contains_the_kernel_sources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"facelab/_kernels/{p.name}" for p in (ROOT / "kernels").iterdir()
                if p.suffix in (".cu", ".cuh", ".h")}
    assert "facelab/_kernels/facelab_cuda.h" in expected
    assert {"facelab/_kernels/rasterize.cu", "facelab/_kernels/raster_common.cuh"} <= expected
    assert expected <= names, sorted(expected - names)
    assert "facelab/kernel_launch.py" in names and "facelab/weights/mofa_photo.pt" in names


def test_installed_wheel_runs_every_kernel_against_the_reference(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    # install with the dev environment's pip into the fresh one: not editable, no downloads
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          wheel], cwd=tmp_path)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    # torch, numpy, numba ... from the dev environment (after the fresh site-packages on sys.path)
    (site / "dev_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"  # outside the checkout, so `facelab/` there cannot be imported
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("FACELAB_KERNELS", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["FACELAB_CACHE"] = str(tmp_path / "cache")  # compile from the installed sources
    out = _run([python, ROOT / "tests" / "installed_kernels_check.py", venv], cwd=work, env=env)
    assert f"facelab {venv.resolve()}" in out
    for op in ("rasterize+interpolate", "sh_shade", "vertex_normals", "photometric",
               "shaded_photometric", "texture"):
        for dtype in ("float32", "float64"):
            assert f"ok {op} {dtype}" in out, out
