"""The rasterizer's reusable arrays, per Python thread: the scratch z-buffer and a small pool
of output sets (:func:`facelab.raster.cpu.rasterize_numba_counts`).

Fresh multi-megabyte arrays on every call cost page faults (1,760 per call at 512²); reusing
them is safe because scratch contents are undefined between calls (the kernels clear what they
read) and an output set is handed out again only once no caller refers to it.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

__all__: list[str] = []

_scratch = threading.local()  # per Python thread: z-buffer and output arrays between calls
_POOL_SHAPES = 4  # output sets kept per thread (one per (B, H, W, dtype), least recent out)


def _zbuffer(shape: tuple) -> np.ndarray:
    """A (B, H, W) float32 scratch z-buffer (contents undefined; the kernel clears it)."""
    buf = getattr(_scratch, "zbuffer", None)
    if buf is None or buf.shape != shape:
        buf = _scratch.zbuffer = np.empty(shape, dtype=np.float32)
    return buf


def _reference_counts(arrays: tuple) -> list:
    return [sys.getrefcount(a) for a in arrays]


# what _reference_counts reports for arrays only a tuple refers to (tuple, loop, argument)
_POOL_REFS = max(_reference_counts((np.empty(0),)))


def _unreferenced(arrays: tuple) -> bool:
    """True when only the pool's tuple refers to each array (callers dropped them all)."""
    return max(_reference_counts(arrays)) <= _POOL_REFS


def _outputs(B: int, H: int, W: int, dtype) -> tuple:
    """``(face_index (B, H, W) int64, bary (B, H, W, 3), depth (B, H, W))``, contents undefined.

    The arrays of an earlier call with the same shapes are handed out again once nothing
    outside this pool refers to them any more: a tensor made by ``torch.from_numpy`` (and any
    view of it, or NumPy array made from it) keeps the array referenced, so outputs a caller
    still holds are never overwritten. Reuse saves the page faults of a fresh multi-megabyte
    allocation on every call (7 MB at 512², which malloc returns to the system on free).
    """
    pool = getattr(_scratch, "outputs", None)
    if pool is None:
        pool = _scratch.outputs = {}
    key = (B, H, W, np.dtype(dtype).str)
    arrays = pool.pop(key, None)
    if arrays is None or not _unreferenced(arrays):
        arrays = (np.empty((B, H, W), dtype=np.int64), np.empty((B, H, W, 3), dtype=dtype),
                  np.empty((B, H, W), dtype=dtype))
    pool[key] = arrays  # most recent last
    while len(pool) > _POOL_SHAPES:
        pool.pop(next(iter(pool)))
    return arrays
