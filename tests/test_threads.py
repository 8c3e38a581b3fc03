"""facelab._threads: Numba runs on a layer that does not spin against torch's OpenMP pool."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
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


def test_parallel_ops_from_several_python_threads_do_not_abort():
    """Numba's workqueue layer terminates the process when two threads launch parallel
    kernels at once; facelab runs serial twins off the main thread, so this survives."""
    script = textwrap.dedent("""
        import threading, numba, torch
        import facelab as fl
        from facelab._threads import parallel_threads
        numba.set_num_threads(2)
        m = fl.load_model("synthetic", "teaching", version=1)
        cam, t = fl.default_camera(8, 160, 160)
        f = fl.form(m, fl.FaceParams(id=torch.zeros(8, m.n_id), translation=t), cam)
        seen = []
        def work():
            seen.append(parallel_threads())
            for _ in range(15):
                fl.render(f, 160, 160)
        ths = [threading.Thread(target=work) for _ in range(3)]
        [th.start() for th in ths]; work(); [th.join() for th in ths]
        assert sorted(seen) == [1, 1, 1, 2], seen
        print("survived")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0 and "survived" in out.stdout, out.stderr[-2000:]
