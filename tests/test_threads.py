"""facelab._threads: Numba runs on a layer that does not spin against torch's OpenMP pool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN_KERNEL = """
import torch, numba
import facelab as fl
v = torch.rand(1, 300, 3) * 60; v[..., 2] += 10
fl.rasterize(v, torch.randint(0, 300, (5000, 3)), 64, 64)   # a parallel Numba kernel
print(numba.threading_layer())
"""


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    full.pop("NUMBA_THREADING_LAYER", None)
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, check=True)


def test_workqueue_layer_even_when_torch_is_imported_first():
    out = _run(RUN_KERNEL)
    assert out.stdout.split()[-1] == "workqueue"
    assert "RuntimeWarning" not in out.stderr


def test_explicit_environment_wins():
    out = _run(RUN_KERNEL, NUMBA_THREADING_LAYER="omp")
    assert out.stdout.split()[-1] == "omp"


def test_warns_when_an_omp_pool_started_before_facelab():
    code = ("import numba, numpy as np\n"
            "numba.config.THREADING_LAYER = 'omp'\n"
            "numba.njit(parallel=True)(lambda a: a.sum())(np.ones(10))\n"
            "import warnings; warnings.simplefilter('always')\n"
            "import facelab\n")
    out = _run(code)
    assert "threading layer" in out.stderr and "omp" in out.stderr
