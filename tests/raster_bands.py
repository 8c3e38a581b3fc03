"""Test helper: force the CPU rasterizer's row bands on (imported by the raster tests)."""

from __future__ import annotations

import contextlib

import numba

from facelab.raster import cpu


@contextlib.contextmanager
def forced_bands(monkeypatch, n_bands: int, threads: int | None = 2):
    """Within the block every item's rows split into ``n_bands`` bands, the parallel kernel
    runs whatever the size (``PARALLEL_MIN_PIXELS``, ``BAND_MIN_PIXELS`` = 0; at batch 1
    instead of the face split of ``facelab.raster.helpers``), on up to
    ``threads`` Numba threads (None: as they are); the thread count is restored on exit (a
    test may set 1 inside to compare with the serial twin)."""
    monkeypatch.setattr(cpu, "_band_count", lambda batch, threads=None: n_bands)
    monkeypatch.setattr(cpu, "PARALLEL_MIN_PIXELS", 0)
    monkeypatch.setattr(cpu, "BAND_MIN_PIXELS", 0)
    monkeypatch.setattr(cpu, "SPLIT_MIN_FACES", 1 << 62)  # batch 1: bands, not the face split
    old = numba.get_num_threads()
    try:
        if threads is not None:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        yield
    finally:
        numba.set_num_threads(old)


def banded_and_serial(monkeypatch, verts, faces, size: int, pc: bool, near, n_bands: int):
    """Rasterize batch-1 ``verts`` (1, V, 3) at size² twice: forced into ``n_bands`` row bands
    on 2 threads (checking the launch plan says so), then on the serial twin. Returns
    ``(banded, serial)``, each ``(face_index, bary, depth)``; ``near`` as for the reference."""
    from facelab.raster.reference import resolve_near

    with forced_bands(monkeypatch, n_bands):
        assert cpu._launch_plan(1, verts.shape[1], faces.shape[0], size, size)[1:] == (
            numba.get_num_threads(), n_bands, 0)
        banded = [a.copy() for a in cpu.rasterize_numba(verts, faces, size, size, pc, False,
                                                         resolve_near(near, pc))]
        numba.set_num_threads(1)
        serial = cpu.rasterize_numba(verts, faces, size, size, pc, False, resolve_near(near, pc))
    return banded, serial


@contextlib.contextmanager
def forced_split(monkeypatch, threads: int = 2):
    """Within the block batch 1 runs the face split (``facelab.raster.helpers``) whatever the
    image and mesh size, on the caller and ``threads - 1`` helper threads (``threads`` need
    not exist as cores: the split is exact whoever claims what), on every call (no backoff)."""
    monkeypatch.setattr(cpu, "PARALLEL_MIN_PIXELS", 0)
    monkeypatch.setattr(cpu, "SPLIT_MIN_FACES", 0)
    monkeypatch.setattr(cpu, "parallel_threads", lambda: threads)
    monkeypatch.setattr(cpu, "MAX_SPLIT_HELPERS", 3)
    monkeypatch.setattr(cpu, "split_pays", lambda kind: True)  # every call (see the policy
    monkeypatch.setattr(cpu, "record_time", lambda kind, split, seconds: None)  # test)
    yield
