"""Numba and torch share the cores without spinning against each other.

Imported first by ``facelab/__init__.py``, so it runs wherever facelab is imported first
(scripts, the ``facelab`` command, the tests, a Jupyter kernel) and before any Numba kernel
launches its thread pool.

The problem: Numba's default threading layer on Linux without TBB is ``omp``, which loads the
system ``libgomp`` — a second OpenMP runtime beside the ``libgomp`` torch bundles. Each runtime
keeps its own worker pool, and an OpenMP worker spins after a parallel region before it
sleeps. With two pools on two cores, torch's workers and Numba's workers spin against each
other's real work: one 3DDFA_V2 inference went from 2.5-5 ms to 306-416 ms after the first
Numba kernel (issue 15). ``OMP_WAIT_POLICY=passive`` only helps when set before *both* runtimes
load, which a library imported after torch cannot do.

The fix at the root: Numba runs on its ``workqueue`` layer, its own pthread pool whose idle
workers block on a condition variable — no second OpenMP runtime in the process, nothing
spinning. It is always there and fork-safe (torch ``DataLoader`` workers). Measured
alternatives (``benchmarks/bench_threads.py``, loaded 2-core machine): ``omp`` with
``OMP_WAIT_POLICY=PASSIVE`` for Numba's own libgomp stalled worse; ``tbb`` (``pip install
tbb``) launched faster but stalled torch once by 3.5x when both ran 2 threads. Costs of
``workqueue``: ~40 µs per parallel launch (the ops run serial twins on one thread or one
task) and, on this machine, little 2-thread speed-up; parallel Numba kernels must not be
launched from two Python threads at once: the layer then terminates the whole process
("Concurrent access has been detected"). So facelab launches its parallel kernels from the
main thread only; on any other thread (a Dask worker's task threads, a user's thread pool, a
kernel subshell) :func:`parallel_threads` is 1 and every op runs its serial twin, which needs no
thread pool.

When Numba is not imported yet this only sets ``NUMBA_THREADING_LAYER`` (so importing
facelab stays cheap, and child processes inherit the choice); otherwise it sets
``numba.config.THREADING_LAYER``. An explicit ``NUMBA_THREADING_LAYER`` in the environment
wins (e.g. ``omp`` to reproduce the old behaviour in ``benchmarks/bench_threads.py``).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings

__all__ = ["NUMBA_LAYER", "configure_numba_threads", "parallel_threads"]

NUMBA_LAYER = "workqueue"


def configure_numba_threads() -> str:
    """Select Numba's threading layer (``workqueue`` unless the environment names one).

    Returns the selected layer name. If a Numba parallel kernel already ran in this process
    (its layer is fixed from then on) and it is an OpenMP one, warns instead.
    """
    if "numba" not in sys.modules:  # Numba reads the variable when its config loads
        os.environ.setdefault("NUMBA_THREADING_LAYER", NUMBA_LAYER)
        return os.environ["NUMBA_THREADING_LAYER"]
    import numba
    from numba.np.ufunc import parallel

    wanted = os.environ.get("NUMBA_THREADING_LAYER") or NUMBA_LAYER
    if parallel._is_initialized:
        layer = numba.threading_layer()
        if layer == "omp" and wanted != "omp":
            warnings.warn(
                "facelab: a Numba parallel kernel ran before facelab was imported, on the "
                "'omp' threading layer; Numba and torch may now spin against each other. "
                "Import facelab first or set NUMBA_THREADING_LAYER=workqueue.",
                RuntimeWarning, stacklevel=3)
        return layer
    numba.config.THREADING_LAYER = wanted
    return wanted


def parallel_threads() -> int:
    """Numba threads a facelab op may use from the calling thread.

    ``numba.get_num_threads()`` on the process's main thread, 1 on every other thread: the
    ops pick their serial twins there, so two Python threads never launch parallel kernels
    at once (fatal on the workqueue layer, see the module docstring).
    """
    if threading.current_thread() is not threading.main_thread():
        return 1
    import numba

    return numba.get_num_threads()


configure_numba_threads()
