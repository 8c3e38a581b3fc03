"""Numba's on-disk kernel cache: detect corrupt files and remove them so kernels rebuild.

facelab's CPU kernels are compiled with ``njit(cache=True)``; Numba stores an index
(``*.nbi``, two pickles: version, then (stamp, overloads)) and data files (``*.nbc``, one
pickle each) in ``__pycache__`` next to the source, or under ``NUMBA_CACHE_DIR``. A file
cut short (a full disk, a killed process, a copied checkout) makes Numba raise
``UnpicklingError`` on the first call of the kernel, and facelab stays unusable until the
cache is removed by hand.

:func:`repair_numba_cache` scans facelab's cache files once per process, checks that each
is a complete sequence of pickles — by walking the pickle frames by their lengths (5 ms for a
fresh checkout's 156 files, 11 MB), or, for a layout the walk does not know, with
:func:`pickletools.genops` (130 ms for all of them); both only read, nothing is constructed
or executed. A cut that falls exactly on a frame boundary after a 0x2E byte would pass the
walk (about 1 in 10^7 random cuts; none in 8,883 tested against genops). It deletes every
file of a kernel whose index or data is corrupt, with a warning; Numba then recompiles that
kernel on its next call. The op packages call it when they are imported.

It also removes **stale** kernels. Numba keys a cached kernel by its own source file's
modification time and size, but a kernel inlines ``register_jitable`` helpers from other
modules (the rasterizer's row spans live in ``raster/spans.py``): after an edit or a ``git
checkout`` that changes only a helper module, Numba would load machine code compiled from
the old helper, silently. So a kernel whose cache index is older than any facelab module its
source file imports and that holds compiled code (one level: the modules named in its
``import`` statements that mention ``njit``, ``register_jitable``, ``@intrinsic`` or
``@overload``, e.g. ``raster/lanes.py``'s vector division) is removed and recompiled on its
next call.
"""

from __future__ import annotations

import os
import pickletools
import re
import threading
import warnings
from pathlib import Path

__all__ = ["corrupt_cache_files", "repair_numba_cache", "serial_twin", "stale_cache_files"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_THIS = Path(__file__).resolve()
_DONE = False
_LOCK = threading.Lock()


# Blocks of a protocol-4/5 pickle stream outside frames: opcode -> size of its length field.
_FRAME, _PROTO, _STOP = 0x95, 0x80, 0x2E
_OUT_OF_FRAME = {0x95: 8, 0x8E: 8, 0x8D: 8, 0x96: 8, ord("B"): 4, ord("X"): 4}


def _framed_pickles(data: bytes) -> int | None:
    """Walk a stream of protocol >= 4 pickles block by block without parsing opcodes: each
    pickle is PROTO, then frames (FRAME + 8-byte length) and large payloads the pickler writes
    outside frames (BINBYTES/BINUNICODE/BYTEARRAY + length), ending with STOP. Returns the
    number of pickles when every block is complete, each pickle ends with STOP and the walk
    ends exactly at the end of ``data``; -1 when a block runs past the end (cut short); None
    when the layout is one the walk does not know (e.g. a short run of opcodes after a large
    payload: the pickler frames only runs of >= 4 bytes), for the caller to parse instead.
    Numba's cache files are written this way (``pickle.dumps(..., protocol=-1)``): 6 ms for
    a fresh checkout's 156 files instead of 130 ms for :func:`pickletools.genops` over them.
    """
    n, pos, size = 0, 0, len(data)
    while pos < size:
        op = data[pos]
        if op == _PROTO:
            if pos and data[pos - 1] != _STOP:
                return None
            n, pos = n + 1, pos + 2
            continue
        width = _OUT_OF_FRAME.get(op)
        if width is None or n == 0:
            return None
        if pos + 1 + width > size:
            return -1
        length = int.from_bytes(data[pos + 1:pos + 1 + width], "little")
        pos += 1 + width + length
        if pos > size:
            return -1
    return n if n and data[-1] == _STOP else None


def _pickles_complete(data: bytes, count: int | None) -> bool:
    """True when ``data`` is exactly ``count`` complete pickles (any number >= 1 if None).

    The framing walk (:func:`_framed_pickles`) decides when it knows the layout; otherwise
    the opcodes are parsed with :func:`pickletools.genops` (nothing is constructed).
    """
    walked = _framed_pickles(data)
    if walked is not None:
        return walked > 0 and (count is None or walked == count)
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


def _kernel_source(index: Path) -> Path | None:
    """The source file of the kernel whose cache index is ``index`` (``<module>.<qualname>-
    <line>.pyXY.nbi`` in ``__pycache__`` beside it, or under ``NUMBA_CACHE_DIR`` in a folder
    mirroring the source folder's absolute path)."""
    module = index.name.split(".", 1)[0]
    folder = index.parent
    if folder.name == "__pycache__":
        folder = folder.parent
    else:
        user = os.environ.get("NUMBA_CACHE_DIR")
        try:
            folder = Path(folder.anchor) / folder.relative_to(Path(user)) if user else None
        except ValueError:
            folder = None
    src = None if folder is None else folder / f"{module}.py"
    return src if src is not None and src.is_file() else None


def _module_file(name: str) -> Path | None:
    """The source file of facelab module ``name`` (``facelab.raster.spans``), or None."""
    parts = name.split(".")
    if parts[0] != "facelab":
        return None
    base = _PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


_IMPORT = re.compile(r"^\s*(?:from\s+(facelab[\w.]*)\s+import\s+(\([^)]*\)|[^\n]*)"
                     r"|import\s+(facelab[\w.]*))", re.M)
_COMPILED = re.compile(r"register_jitable|njit|@intrinsic|@overload")


def _kernel_imports(src: Path) -> set[Path]:
    """The files of the facelab modules ``src`` imports that hold compiled code (they mention
    ``njit``, ``register_jitable``, ``@intrinsic`` or ``@overload``: a kernel inlines or links
    them); ``from facelab.x import
    y`` names facelab/x.py, or facelab/x/y.py when y is a module. A regular expression over
    the import statements, not a parse: this runs when the op packages are imported."""
    try:
        text = src.read_text()
    except (OSError, ValueError):
        return set()
    names = set()
    for module, imported, plain in _IMPORT.findall(text):
        if plain:
            names.add(plain)
            continue
        names.add(module)
        names.update(f"{module}.{n.split()[0]}" for n in imported.strip("()").split(",")
                     if n.split())
    out = set()
    for f in map(_module_file, names):
        if f is None or f in (src, _THIS):
            continue  # this module builds serial twins but holds no compiled code
        try:
            if _COMPILED.search(f.read_text()):
                out.add(f)
        except (OSError, ValueError):
            continue
    return out


def stale_cache_files(dirs=None) -> list[Path]:
    """The cache indexes (``*.nbi``) of kernels compiled before a facelab module their source
    imports last changed (see the module docstring); ``dirs`` as in :func:`corrupt_cache_files`.
    """
    stale, deps = [], {}
    for folder in (_cache_dirs() if dirs is None else [Path(d) for d in dirs]):
        for index in sorted(folder.glob("*.nbi")):
            src = _kernel_source(index)
            if src is None:
                continue
            if src not in deps:
                deps[src] = _kernel_imports(src)
            try:
                built = index.stat().st_mtime
                newest = max((d.stat().st_mtime for d in deps[src]), default=0.0)
            except OSError:
                continue  # removed meanwhile
            if newest > built:
                stale.append(index)
    return stale


def _kernel_files(path: Path) -> list[Path]:
    """Every cache file of the kernel ``path`` belongs to (``name.pyXY.nbi`` / ``.N.nbc``)."""
    stem = path.name.split(".py")[0]  # e.g. "cpu._merge_chunks_py-142"
    return [p for p in path.parent.glob(f"{stem}.py*.nb[ic]")]


def _unlink(paths) -> list[Path]:
    removed = []
    for p in paths:
        try:
            p.unlink()
            removed.append(p)
        except OSError:  # removed meanwhile, or not ours to remove
            continue
    return removed


def repair_numba_cache(dirs=None, *, force: bool = False) -> list[Path]:
    """Delete corrupt Numba cache files (and their kernel's other files), and the files of
    stale kernels (:func:`stale_cache_files`); return the corrupt ones removed.

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
            removed += _unlink(_kernel_files(path) or [path])
        for path in stale_cache_files(dirs):  # routine after an edit: no warning
            _unlink(_kernel_files(path))
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

