"""A corrupt Numba cache file is detected and removed, and the kernels rebuild on their own."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import facelab
from facelab.numba_cache import corrupt_cache_files, repair_numba_cache, stale_cache_files

PACKAGE = Path(facelab.__file__).resolve().parent


def _write_kernel(folder: Path, stem: str, *, index_ok=True, data_ok=True) -> None:
    index = pickle.dumps("0.60.0") + pickle.dumps((("stamp", 1), {"key": f"{stem}.py311.1.nbc"}))
    data = pickle.dumps(("compiled", b"\x00" * 300))
    (folder / f"{stem}.py311.nbi").write_bytes(index if index_ok else index[:-7])
    (folder / f"{stem}.py311.1.nbc").write_bytes(data if data_ok else data[:40])


def test_only_corrupt_kernels_are_removed(tmp_path):
    _write_kernel(tmp_path, "cpu._good_py-10")
    _write_kernel(tmp_path, "cpu._cut_index_py-20", index_ok=False)
    _write_kernel(tmp_path, "cpu._cut_data_py-30", data_ok=False)
    (tmp_path / "cpu._garbage_py-40.py311.nbi").write_bytes(b"\x89PNG not a pickle")
    bad = {p.name for p in corrupt_cache_files([tmp_path])}
    assert bad == {"cpu._cut_index_py-20.py311.nbi", "cpu._cut_data_py-30.py311.1.nbc",
                   "cpu._garbage_py-40.py311.nbi"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        removed = repair_numba_cache([tmp_path], force=True)
    assert any("corrupt Numba cache" in str(w.message) for w in caught)
    assert {p.name for p in removed} >= bad | {"cpu._cut_index_py-20.py311.1.nbc"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cpu._good_py-10.py311.1.nbc", "cpu._good_py-10.py311.nbi"]
    assert repair_numba_cache([tmp_path], force=True) == []


def _genops_complete(data: bytes, count: int) -> bool:
    import pickletools
    pos, seen = 0, 0
    try:
        while pos < len(data):
            end = next((at + 1 for op, _, at in pickletools.genops(data[pos:])
                        if op.name == "STOP"), None)
            if end is None:
                return False
            pos, seen = pos + end, seen + 1
    except Exception:
        return False
    return seen == count


def test_the_framing_walk_agrees_with_parsing_every_opcode():
    """The fast completeness check (frames and large out-of-frame payloads walked by their
    lengths) says what an opcode-by-opcode parse says, on Numba-like files (a version pickle
    then a payload with large bytes/str objects written outside frames) cut anywhere."""
    import random

    from facelab.numba_cache import _pickles_complete

    rng = random.Random(0)
    blobs = [pickle.dumps("0.68.1", protocol=-1) + pickle.dumps(
        (("stamp", k), {"code": bytes(rng.randrange(256) for _ in range(size)),
                        "name": "x" * size2, "small": list(range(k))}), protocol=-1)
        for k, size, size2 in ((1, 70_000, 10), (2, 300, 200_000), (3, 150_000, 90_000))]
    for blob in blobs:
        assert _pickles_complete(blob, 2) and not _pickles_complete(blob, 1)
        for cut in [len(blob) - 1, len(blob) - 2, 3] + [rng.randrange(1, len(blob))
                                                        for _ in range(200)]:
            assert _pickles_complete(blob[:cut], 2) == _genops_complete(blob[:cut], 2), cut


def test_kernels_older_than_an_inlined_helper_module_are_removed(tmp_path):
    """Numba keys a cached kernel by its own file only; a kernel compiled before a facelab
    module it imports with compiled code (raster/spans.py's register_jitable helpers) changed
    is stale and removed, a newer one is kept, and modules without compiled code do not count."""
    src = tmp_path / "cpu.py"
    src.write_text("from facelab.raster.spans import _passes  # inlined helpers\n"
                   "from facelab.raster import buffers\nimport facelab.numba_cache\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for stem in ("cpu._old_py-10", "cpu._new_py-20"):
        _write_kernel(cache, stem)
    spans = (PACKAGE / "raster" / "spans.py").stat().st_mtime
    for f in cache.glob("cpu._old_py-10.*"):
        os.utime(f, (spans - 10.0, spans - 10.0))  # compiled before spans.py last changed
    for f in cache.glob("cpu._new_py-20.*"):
        os.utime(f, (spans + 10.0, spans + 10.0))
    assert [p.name for p in stale_cache_files([cache])] == ["cpu._old_py-10.py311.nbi"]
    assert repair_numba_cache([cache], force=True) == []  # none corrupt: nothing to warn about
    assert sorted(p.name for p in cache.iterdir()) == [
        "cpu._new_py-20.py311.1.nbc", "cpu._new_py-20.py311.nbi"]
    # buffers.py holds no compiled code and numba_cache.py only builds twins: never stale by them
    src.write_text("from facelab.raster import buffers\nimport facelab.numba_cache\n")
    for f in cache.iterdir():
        os.utime(f, (0.0, 0.0))
    assert stale_cache_files([cache]) == []



def test_intrinsic_and_overload_modules_count_as_compiled_code(tmp_path):
    """raster/lanes.py holds no njit/register_jitable function, only an ``@intrinsic`` and an
    ``@overload`` that the rasterizer inlines: a kernel importing it goes stale with it."""
    from facelab.numba_cache import _COMPILED, _kernel_imports

    src = tmp_path / "cpu.py"
    src.write_text("from facelab.raster.lanes import div4\n")
    lanes = PACKAGE / "raster" / "lanes.py"
    assert _kernel_imports(src) == {lanes.resolve()} or _kernel_imports(src) == {lanes}
    code = "\n".join(line for line in lanes.read_text().splitlines()
                     if line.startswith("@"))  # its decorators alone
    assert _COMPILED.search(code)


_CHILD = r"""
import torch
from facelab.raster import rasterize
v = torch.tensor([[[0.0, 0, 1], [10, 0, 1], [0, 10, 1]]])
print(int((rasterize(v, torch.tensor([[0, 1, 2]]), 8, 8).face_index == 0).sum()))
"""


def _run(root: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    env["PYTHONPATH"] = str(root)
    return subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                          text=True, timeout=1200, cwd=root)


def test_truncated_cache_file_no_longer_breaks_facelab(tmp_path):
    # a copy of the package (with its compiled cache, mtimes kept so the cache is valid)
    shutil.copytree(PACKAGE, tmp_path / "facelab", ignore=shutil.ignore_patterns("*.pt"))
    cache = tmp_path / "facelab" / "raster" / "__pycache__"
    if not list(cache.glob("cpu._rasterize_bands_py-*.nbi")):  # fresh checkout: compile
        assert _run(tmp_path).returncode == 0
    index = next(cache.glob("cpu._rasterize_bands_py-*.nbi"))
    index.write_bytes(index.read_bytes()[:50])  # what a killed writer or a full disk leaves
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-1500:]
    import torch

    from facelab.raster import rasterize

    v = torch.tensor([[[0.0, 0, 1], [10, 0, 1], [0, 10, 1]]])
    want = int((rasterize(v, torch.tensor([[0, 1, 2]]), 8, 8).face_index == 0).sum())
    assert want > 0 and proc.stdout.split()[-1] == str(want)
    assert "corrupt Numba cache" in proc.stderr
