"""Numba's on-disk kernel cache: detect corrupt files and remove them so kernels rebuild.

facelab's CPU kernels are compiled with ``njit(cache=True)``; Numba stores an index
(``*.nbi``, two pickles: version, then (stamp, overloads)) and data files (``*.nbc``, one
pickle each) in ``__pycache__`` next to the source, or under ``NUMBA_CACHE_DIR``. A file
cut short (a full disk, a killed process, a copied checkout) makes Numba raise
``UnpicklingError`` on the first call of the kernel, and facelab stays unusable until the
cache is removed by hand.

:func:`repair_numba_cache` scans facelab's cache files once per process, checks that each
is a complete sequence of pickles with :func:`pickletools.genops` (which only parses
opcodes: nothing is constructed or executed), and deletes every file of a kernel whose
index or data is corrupt, with a warning; Numba then recompiles that kernel on its next
call. The op packages call it when they are imported.
"""

from __future__ import annotations

import os
import pickletools
import threading
import warnings
from pathlib import Path

__all__ = ["corrupt_cache_files", "repair_numba_cache", "serial_twin"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_DONE = False
_LOCK = threading.Lock()


def _pickles_complete(data: bytes, count: int | None) -> bool:
    """True when ``data`` is exactly ``count`` complete pickles (any number >= 1 if None)."""
    pos, seen = 0, 0
    try:
        while pos < len(data):
            end = None
            for op, _, at in pickletools.genops(data[pos:]):
                if op.name == "STOP":
                    end = at + 1
                    break
            if end is None:
                return False
            pos += end
            seen += 1
    except Exception:  # ValueError (truncated / unknown opcode) and friends: corrupt
        return False
    return seen >= 1 and (count is None or seen == count)


def _cache_dirs() -> list[Path]:
    dirs = [p for p in _PACKAGE_DIR.rglob("__pycache__") if p.is_dir()]
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user and Path(user).is_dir():
        # Numba mirrors the source folder's absolute path under NUMBA_CACHE_DIR
        dirs += [p for p in Path(user).rglob("*") if p.is_dir() and "facelab" in p.parts]
    return dirs


def corrupt_cache_files(dirs=None) -> list[Path]:
    """The Numba cache files (``*.nbi``, ``*.nbc``) in ``dirs`` that are not complete pickles.

    dirs: folders to scan; None: facelab's ``__pycache__`` folders and its folders under
    ``NUMBA_CACHE_DIR``.
    """
    bad = []
    for folder in (_cache_dirs() if dirs is None else [Path(d) for d in dirs]):
        for path in sorted(folder.glob("*.nb[ic]")):
            try:
                data = path.read_bytes()
            except OSError:
                continue  # removed meanwhile (another process repairing or recompiling)
            if not _pickles_complete(data, 2 if path.suffix == ".nbi" else 1):
                bad.append(path)
    return bad


def _kernel_files(path: Path) -> list[Path]:
    """Every cache file of the kernel ``path`` belongs to (``name.pyXY.nbi`` / ``.N.nbc``)."""
    stem = path.name.split(".py")[0]  # e.g. "cpu._merge_chunks_py-142"
    return [p for p in path.parent.glob(f"{stem}.py*.nb[ic]")]


def repair_numba_cache(dirs=None, *, force: bool = False) -> list[Path]:
    """Delete corrupt Numba cache files (and their kernel's other files); return them.

    Runs once per process unless ``force``. Warns (``RuntimeWarning``) naming the files,
    since the kernels they held are recompiled on their next call (seconds).
    """
    global _DONE
    with _LOCK:
        if _DONE and not force:
            return []
        _DONE = True
        removed: list[Path] = []
        for path in corrupt_cache_files(dirs):
            for p in _kernel_files(path) or [path]:
                try:
                    p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
        if removed:
            warnings.warn(
                f"facelab: removed {len(removed)} corrupt Numba cache file(s) "
                f"({', '.join(sorted({p.name for p in removed})[:4])}); the kernels are "
                "recompiled on their next call", RuntimeWarning, stacklevel=2)
        return removed


def serial_twin(py_func, **options):
    """``numba.njit(cache=True, **options)`` of a renamed copy of ``py_func``.

    A kernel's parallel variant (``njit(parallel=True, cache=True)(f)``) and a serial twin
    compiled from the *same* function would share one on-disk cache entry: Numba names cache
    files by the function's qualified name and line and keys the index by signature and
    bytecode, not by the compile options. Whichever variant a process compiled first was then
    loaded for both, so a "serial" twin could run the parallel code — on the workqueue layer,
    two threads doing that at once terminate the process (facelab._threads). The copy has
    the qualified name ``<name>_serial``, so the twin gets cache files of its own.
    """
    import types

    import numba

    twin = types.FunctionType(py_func.__code__, py_func.__globals__,
                              f"{py_func.__name__}_serial", py_func.__defaults__,
                              py_func.__closure__)
    twin.__qualname__ = f"{py_func.__qualname__}_serial"
    twin.__kwdefaults__ = py_func.__kwdefaults__
    twin.__module__ = py_func.__module__
    twin.__doc__ = py_func.__doc__
    return numba.njit(cache=True, **options)(twin)

