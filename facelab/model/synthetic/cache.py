"""On-disk cache of generated synthetic models (``.npz``, atomic writes).

Files live in ``$FACELAB_CACHE`` or ``~/.cache/facelab/`` and are named by the
generator version and the vertex budget, so a new generator never reads an old
file. A file that cannot be read, or whose version or keys do not match, is
ignored and regenerated. Writes go to a temporary file in the same folder and
are moved into place with ``os.replace``, so readers never see half a file.

Versions 1 and 2 (:mod:`facelab.model.head`) share the key (:func:`source_key`) and the
resolution names (:func:`vertex_budget`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from facelab._checks import check_int


def vertex_budget(resolution, resolutions: dict[str, int], minimum: int, maximum: int) -> int:
    """The vertex count a generator is asked for: ``resolutions[resolution]`` for a name, or
    ``resolution`` itself, an int in [minimum, maximum]; ValueError naming both otherwise."""
    if isinstance(resolution, str):
        if resolution not in resolutions:
            raise ValueError(
                f"resolution: expected one of {sorted(resolutions)} or an int vertex count "
                f"in [{minimum}, {maximum}], got {resolution!r}"
            )
        return resolutions[resolution]
    n = check_int(resolution, name="resolution")
    if not minimum <= n <= maximum:
        raise ValueError(
            f"resolution: expected one of {sorted(resolutions)} or an int vertex count "
            f"in [{minimum}, {maximum}], got {n}"
        )
    return n


def source_key(version: str, paths) -> str:
    """``"<version>-<12 hex>"``: ``version`` plus a SHA-256 of the names and bytes of the
    generator's source files ``paths`` (in the given order), so any edit to the generator
    invalidates its cached arrays (a bumped version alone relies on someone remembering)."""
    h = hashlib.sha256(version.encode())
    for path in paths:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return f"{version}-{h.hexdigest()[:12]}"


def cache_dir() -> Path:
    """The cache folder: ``$FACELAB_CACHE`` or ``~/.cache/facelab``."""
    env = os.environ.get("FACELAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "facelab"


def cache_path(version: str, n_vertices: int) -> Path:
    return cache_dir() / f"synthetic-{version}-{n_vertices}.npz"


def load_cached(version: str, n_vertices: int, keys) -> dict | None:
    """The cached arrays, or None when missing, stale or unreadable."""
    path = cache_path(version, n_vertices)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["version"]) != version or not set(keys) <= set(data.files):
                return None
            return {k: data[k] for k in keys}
    except Exception:  # corrupted or truncated file: regenerate
        return None


def save_cached(version: str, n_vertices: int, arrays: dict) -> None:
    """Write atomically; silently skip when the folder is not writable."""
    path = cache_path(version, n_vertices)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, version=np.array(version), **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError:
        pass
