"""facelab.warmup compiles every Numba kernel the image-formation path uses, so a later
process (the user's first call) loads them all from the cache and compiles nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LATER_PROCESS = """
import gc, json, numba, torch
from numba.core.registry import CPUDispatcher
from facelab.model.registry import load_model
from facelab.raster import rasterize
from facelab.warmup import _one_pass
model = load_model("synthetic", resolution="teaching", version=1)
for threads in (1, 2):                      # other sizes and batches than the warm-up's
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    _one_pass(model, 1, torch.float32, size=48)
    _one_pass(model, 1, torch.float32, size=190)  # one image: split by faces on 2 threads
    _one_pass(model, 3, torch.float32, size=200)
    big = torch.randn(48, model.num_vertices, 3) * 20 + 60  # a batch with a parallel vertex pass
    big[..., 2] = 900.0
    rasterize(big, model.faces, 16, 16)
ran, misses = 0, {}
for obj in gc.get_objects():
    if isinstance(obj, CPUDispatcher) and obj.py_func.__module__.startswith("facelab"):
        ran += bool(obj.signatures)
        if obj.stats.cache_misses:
            misses[obj.py_func.__module__ + "." + obj.py_func.__name__] = len(
                obj.stats.cache_misses)
print(json.dumps({"ran": ran, "misses": misses}))
"""


def _python(args, cache: Path) -> str:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_NUM_THREADS="2",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_after_warm_up_the_first_call_compiles_nothing(tmp_path):
    cold = json.loads(_python(["-c", LATER_PROCESS], tmp_path / "cold").splitlines()[-1])
    assert cold["misses"], "without the warm-up the kernels compile (the check can fail)"
    out = _python(["-m", "facelab.warmup"], tmp_path / "warm")
    assert "kernels ready" in out
    warm = json.loads(_python(["-c", LATER_PROCESS], tmp_path / "warm").splitlines()[-1])
    assert warm["ran"] >= 10 and warm["misses"] == {}, warm
