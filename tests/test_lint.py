"""The style gate: ruff (configured in pyproject.toml) is clean on the library, tests and benchmarks."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    try:
        import ruff  # noqa: F401
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.skip("ruff is not installed (it is in the dev extra)")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                           "facelab", "tests", "benchmarks"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
