"""On-disk cache of generated synthetic models (``.npz``, atomic writes).

Files live in ``$FACELAB_CACHE`` or ``~/.cache/facelab/`` and are named by the
generator version and the vertex budget, so a new generator never reads an old
file. A file that cannot be read, or whose version or keys do not match, is
ignored and regenerated. Writes go to a temporary file in the same folder and
are moved into place with ``os.replace``, so readers never see half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


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
