"""One image rasterized by the calling thread and facelab's helper threads (a face split).

At batch 1 on several threads, :func:`facelab.raster.cpu.rasterize_numba_counts` runs
:func:`rasterize_split` while that pays (``PAYS``): the caller and ``n`` helper threads each
call the rasterizer's serial kernel (compiled without the GIL) over chunks of
``triangles.CHUNK`` faces claimed from one shared range (:mod:`facelab.raster.claims`: the
caller from the front, helpers from the back, so each thread's faces are contiguous), into
buffers of its own: the caller into the outputs, a helper into scratch buffers (only its
z-buffer is cleared). The helpers' buffers are then merged into the outputs, keeping per pixel
the smaller ``(depth key, face id)``, which is exactly the sequential winner
(:func:`facelab.raster.claims.merge_private`; with one helper, the helper merges the upper
half of the image while the caller merges the lower). So the results are bit-identical to one
thread.

Why not a parallel (``prange``) launch of row bands on Numba's thread pool: every band redoes
the triangle pass (the per-triangle work is most of the time at 224²), and on the ``workqueue``
layer facelab uses (``facelab._threads``) the caller sleeps while the pool's two workers are
woken: a vectorised loop took 0.49 ms as two tasks against 0.25 ms as one on this machine, as
if run one after the other (``omp``, whose caller runs a task and whose workers spin: 0.19 ms
for both). Here the caller works from the first moment, a helper joins when it gets a core,
chunks go to whoever is free (a helper that never runs, e.g. on a machine loaded by another
process, costs the call nothing: the caller closes the job and claims every chunk), and the
caller waits only for a chunk a helper already claimed. Each helper sleeps on a condition
variable of its own between calls (woken only by a call that needs it), so nothing spins
against torch; the caller spins briefly (``claims.close``)
only while a helper finishes a chunk it is running.

The helpers are daemon threads started on first use, one set per process (a forked child
starts its own). Calls from two Python threads at once do not share them: a call that finds
the helpers busy runs alone, serially.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from facelab.raster import claims
from facelab.raster.triangles import CHUNK

__all__: list[str] = []


#: Buffer sets a helper keeps (one per image shape and dtype; alternating two sizes, e.g. a
#: picture and its supersampled render, reallocates nothing).
SCRATCH_SETS = 2
#: Spins of the caller's wait for a helper's running chunk (or its share of the merge) before
#: it blocks on the helper's event (about 0.1-0.3 ms).
CLOSE_SPINS = 5_000
#: Spins of a helper's wait for the caller's last chunk before it leaves the whole merge to the
#: caller (a caller that was descheduled would otherwise keep the helper spinning).
GO_SPINS = 5_000


#: A split is kept up only while it pays: the split calls of one kind (image size, face count,
#: dtype) must take at most ``PAYS`` of the time the caller alone took (running averages of
#: each, the splits' restarting after every backoff, so one slow call does not decide).
#: Otherwise the next calls of that kind run on the caller alone, first ``BACKOFF_FIRST`` of
#: them, doubling on each further split that did not pay up to ``BACKOFF_MAX`` (those calls
#: refresh the serial time); one that pays ends the backoff. A kind's first two calls run
#: alone, for the serial time, and then one in ``REFRESH``. Why: the helper shares its core
#: with whatever else runs there (another process, or torch's or another library's OpenMP
#: workers spinning after their work): with one busy process beside it, splits ran at
#: 0.63-0.77x one thread's speed; interleaved with torch and Open3D calls, 0.77-0.91x.
PAYS = 0.95
BACKOFF_FIRST, BACKOFF_MAX = 4, 256
REFRESH = 32
_KINDS = 16  # call kinds remembered (least recent dropped)


class _Kind:
    """What the policy knows of one kind of call."""

    __slots__ = ("backoff", "calls", "n_serial", "serial", "skip", "split")

    def __init__(self):
        self.serial = None  # seconds: running average of the caller-alone calls
        self.split = None  # seconds: running average of the splits since the last backoff
        self.n_serial = 0  # caller-alone calls recorded
        self.calls = 0  # calls asked about
        self.skip = 0  # calls left to run on the caller alone
        self.backoff = 0  # the next backoff length (0: none pending)


class _Helpers:
    """The helper threads and their scratch buffers (one instance per process)."""

    def __init__(self):
        self.pid = None
        self.kinds: dict = {}  # call kind -> _Kind (split_pays / record_time)

    def _reset(self):
        self.pid = os.getpid()
        self.busy = threading.Lock()  # held by the call using the helpers
        self.threads: list[threading.Thread] = []
        # per helper h: its condition, its job and the job's number (a helper a call does not
        # need is never woken, so it never holds that call's arrays)
        self.conds: dict[int, threading.Condition] = {}
        self.jobs: dict[int, tuple | None] = {}
        self.serials: dict[int, int] = {}
        self.scratch: dict = {}

    def acquire(self, n: int) -> bool:
        """Reserve the helpers for one call (False when another thread's call holds them)."""
        if self.pid != os.getpid():
            self._reset()
        if not self.busy.acquire(blocking=False):
            return False
        while len(self.threads) < n:
            h = len(self.threads) + 1
            self.conds[h], self.jobs[h], self.serials[h] = threading.Condition(), None, 0
            thread = threading.Thread(target=self._loop, args=(h,), daemon=True,
                                      name=f"facelab-raster-{h}")
            thread.start()
            self.threads.append(thread)
        return True

    def buffers(self, h: int, args: tuple) -> tuple:
        """Helper ``h``'s private (zbuffer, face_index, bary, depth, nonfinite), shaped like
        the call's (contents undefined)."""
        zbuffer, face_index, bary, depth = args[12:16]
        key = (face_index.shape, bary.dtype.str)
        kept = self.scratch.setdefault(h, {})  # this helper's sets, least recent first
        bufs = kept.pop(key, None)
        if bufs is None:
            # written once in full: pages never touched map the shared zero page, and reading
            # them in the merge measured 4x slower, every call (teaching model 512²: 1.7 ms)
            bufs = (*(np.full_like(a, 0) for a in (zbuffer, face_index, bary, depth)),
                    np.zeros(1, np.int64))
        kept[key] = bufs
        while len(kept) > SCRATCH_SETS:
            kept.pop(next(iter(kept)))
        return bufs

    def submit(self, job, n: int) -> None:
        """Hand ``job`` to helpers 1 to ``n``."""
        for h in range(1, n + 1):
            with self.conds[h]:
                self.jobs[h] = job
                self.serials[h] += 1
                self.conds[h].notify()

    def _loop(self, h: int):
        seen = 0
        while True:
            cond = self.conds[h]
            with cond:
                while self.serials[h] == seen:
                    cond.wait()
                seen, job = self.serials[h], self.jobs[h]
            if job is None:  # withdrawn: the call is over
                continue
            kernel, args, ctl, n, results = job
            job = None
            if not claims.join(ctl, h):  # the caller finished first: nothing to do
                kernel = args = ctl = results = None
                continue
            merged = 0
            try:
                bufs = self.buffers(h, args)
                bad = kernel(*args[:12], *bufs, ctl, h)
                results[h] = (bad, int(bufs[4][0]), bufs[:4])
                if n == 1 and ctl[claims.state_index(h) + 1] and claims.drawn(ctl, h, GO_SPINS):
                    claims.merge_private(*args[12:16], *bufs[:4], _upper(args), args[13].size,
                                         False)
                    merged = 1
            except BaseException as exc:  # re-raised by the caller
                results[h] = exc
            finally:  # drop the call's arrays first (the output pool reuses unreferenced
                event = results["events"][h]  # ones), then announce: little Python (GIL)
                kernel = args = results = bufs = None  # runs here after the caller resumed
                claims.finish(ctl, h, merged)
                ctl = None
                event.set()

    def release(self):
        for h, cond in self.conds.items():
            with cond:
                self.jobs[h] = None
        self.busy.release()


_HELPERS = _Helpers()


def split_pays(kind) -> bool:
    """Whether the next batch-1 call of this ``kind`` (a hashable: image size, faces, dtype)
    should split (see ``PAYS``)."""
    st = _HELPERS.kinds.get(kind)
    if st is None:
        return False
    st.calls += 1
    if st.n_serial < 2 or st.calls % REFRESH == 0:
        return False  # the serial time: two first calls (the first pays page faults), and
    if st.skip > 0:  # one in REFRESH later, so that it follows the machine's speed
        st.skip -= 1
        return False
    return True


def record_time(kind, split: bool, seconds: float) -> None:
    """Record a batch-1 call of ``kind``: ``split`` or not, and how long it took."""
    kinds = _HELPERS.kinds
    st = kinds.pop(kind, None) or _Kind()
    kinds[kind] = st  # most recent last
    while len(kinds) > _KINDS:
        kinds.pop(next(iter(kinds)))
    if not split:
        st.n_serial += 1
        st.serial = seconds if st.n_serial <= 2 else 0.75 * st.serial + 0.25 * seconds
        return
    if st.serial is None:  # nothing to compare with yet (a split forced from outside)
        return
    st.split = seconds if st.split is None else 0.75 * st.split + 0.25 * seconds
    if st.split <= PAYS * st.serial:
        st.backoff = 0
    else:
        st.backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, 2 * st.backoff))
        st.skip = st.backoff
        st.split = None  # the next split starts a new average


def compile_hand_over(dtype) -> None:
    """Run every compiled step of a split once on tiny arrays of ``dtype`` (numpy float type),
    so that ``python -m facelab.warmup`` caches them: whether a real split reaches them
    depends on which thread gets a core first."""
    ctl = np.zeros(claims.ctl_size(1), dtype=np.int64)
    ctl[0] = claims.pack_chunks(1)
    claims.join(ctl, 1)
    claims.drawn(ctl, 1, 0)
    claims.go(ctl, 1)
    claims.close(ctl, 1, 0)
    claims.finish(ctl, 1, 0)
    claims.wait_finished(ctl, 1, 0)
    one = (np.full((1, 1, 1), np.inf, np.float32), np.full((1, 1, 1), -1, np.int64),
           np.zeros((1, 1, 1, 3), dtype), np.zeros((1, 1, 1), dtype))
    claims.merge_private(*one, *(a.copy() for a in one), 0, 1, True)


def _wait(event: threading.Event) -> None:
    """Wait for a helper's event even through KeyboardInterrupt (re-raised afterwards): the
    helper writes into its buffers and, merging, into the outputs, which must not be handed
    out again while it does."""
    interrupted = None
    while True:
        try:
            event.wait()
            break
        except BaseException as exc:
            interrupted = exc
    if interrupted is not None:
        raise interrupted


def _upper(args: tuple) -> int:
    """First pixel of the part of the image a single helper merges (a block boundary)."""
    size = args[13].size
    return min(size, (size // 2 + claims.MERGE_BLOCK - 1) // claims.MERGE_BLOCK
               * claims.MERGE_BLOCK)


def rasterize_split(kernel, args: tuple, n: int) -> tuple[int, int]:
    """Run ``kernel`` (the rasterizer's serial kernel) on the caller and ``n`` helpers.

    args: the kernel's arguments up to ``nonfinite`` (batch 1, one band; the caller's buffers
    are the outputs). Returns ``(bad_faces, nonfinite_writes)`` summed over the threads that
    worked; the outputs hold the merged result (with one helper, the helper merges the upper
    part of the image while the caller merges the lower). Falls back to the caller alone when
    the helpers are busy with another thread's call.
    """
    if not _HELPERS.acquire(n):
        return int(kernel(*args, claims.NO_CTL, -1)), int(args[16].sum())
    try:
        ctl = np.zeros(claims.ctl_size(n), dtype=np.int64)
        ctl[0] = claims.pack_chunks(-(-args[1].shape[0] // CHUNK))
        events = {h: threading.Event() for h in range(1, n + 1)}
        results = {"events": events}
        _HELPERS.submit((kernel, args, ctl, n, results), n)
        bad_faces = nonfinite = 0
        try:
            bad_faces = int(kernel(*args, ctl, 0))
            nonfinite = int(args[16][0])
        finally:  # even when interrupted: a joined helper is writing into its buffers
            for h in range(1, n + 1):
                state = claims.close(ctl, h, CLOSE_SPINS)
                if state == -1:
                    _wait(events[h])
                    state = claims.FINISHED
                out = results.get(h)
                if isinstance(out, BaseException):
                    _wait(events[h])
                    raise out
                if state == 0 or ctl[claims.state_index(h) + 1] == 0:
                    continue  # never joined, or joined after the last claim
                helper_bad, helper_nonfinite, bufs = out
                bad_faces += int(helper_bad)
                nonfinite += helper_nonfinite
                if n == 1:  # the helper merges the upper part unless it gave up waiting
                    claims.go(ctl, h)
                    upper = _upper(args)
                    claims.merge_private(*args[12:16], *bufs, 0, upper, False)
                    if not claims.wait_finished(ctl, h, CLOSE_SPINS):
                        _wait(events[h])
                    if not ctl[claims.state_index(h) + 3]:
                        claims.merge_private(*args[12:16], *bufs, upper, args[13].size,
                                             False)
                else:
                    _wait(events[h])
                    claims.merge_private(*args[12:16], *bufs, 0, args[13].size, True)
    finally:
        _HELPERS.release()
    return bad_faces, nonfinite
