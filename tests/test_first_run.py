"""A fresh process compiles no Numba kernel: its first ``rasterize`` and its first fit (every
stage, the closed-form ones included) only load machine code from the on-disk cache that
``python -m facelab.warmup`` (run by ``make demo`` / ``make test``) filled.

A kernel without a cacheable signature (``cache=False``, a closure, a new dtype path taken
only at run time) would compile again in every process and show up here as a "data saved"
line of ``NUMBA_DEBUG_CACHE``. Speed is measured in ``benchmarks/bench_fit.py``, not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CODE = """
import torch
import facelab as fl
from facelab.data.photos import sample_landmarks, sample_photo
from facelab.fitting import FitSettings
from facelab.fitting.refine import RefineSettings
from facelab.progress import History
verts = torch.tensor([[[10., 10., 1.], [100., 20., 2.], [30., 90., 3.]]])
frag = fl.rasterize(verts, torch.tensor([[0, 1, 2]]), 128, 128)
print("RASTERIZED", int((frag.face_index >= 0).sum()), flush=True)
s = FitSettings(steps_pose=2, steps_shape=2, steps_color=2, refine=RefineSettings(steps=2))
fl.fit_image(sample_photo("astronaut"), fl.load_model("synthetic", resolution="teaching"),
             sample_landmarks("astronaut"), settings=s, callback=History())
print("FITTED", flush=True)
"""


def _run(code: str) -> str:
    env = dict(os.environ, NUMBA_DEBUG_CACHE="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600, check=True).stdout


def test_fresh_process_first_rasterize_and_fit_compile_nothing():
    _run(CODE)  # fills the cache if this checkout was never warmed up (or a kernel changed)
    out = _run(CODE)  # a fresh process: loads only
    assert "RASTERIZED" in out and "FITTED" in out
    raster = out.split("RASTERIZED")[0]
    assert "data loaded" in raster and "data saved" not in raster, (
        "the first rasterize compiled a kernel in a fresh process:\n" + raster)
    saved = [line for line in out.splitlines() if "saved" in line]
    assert not saved, "a fresh process compiled kernels (run python -m facelab.warmup):\n" + \
        "\n".join(saved)
