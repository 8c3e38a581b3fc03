"""Shared counters and hand-over states for the rasterizer's face split (:mod:`.helpers`).

At batch 1 on two or more threads, the caller and facelab's helper threads rasterize one
image together (:func:`facelab.raster.helpers.rasterize_split`): each claims chunks of
``triangles.CHUNK`` faces from one shared range, the caller from the front and the helpers
from the back, into buffers of its own (the caller into the outputs), and the helpers'
buffers are then merged into the outputs (:func:`merge_private`). Each thread's chunks are
contiguous; since a helper claims them in decreasing order, the depth test compares
``(key, face id)`` (the sequential winner's order).
A control array ``ctl`` (int64) holds::

    ctl[0]          the unclaimed chunks [front, back): back << 32 | front; the caller claims
                    from the front, the helpers from the back (claim_front, claim_back)
    ctl[S(h)]       helper h's state (S(h) = 4 h - 3): IDLE, JOINED (running), CLOSED (the
                    caller finished before it joined: it must not start), DRAWN (its chunks
                    are done), FINISHED (it will write nothing more)
    ctl[S(h) + 1]   how many chunks helper h claimed (0: its buffers hold nothing)
    ctl[S(h) + 2]   GO: set by the caller once its own chunks are done (merge may start)
    ctl[S(h) + 3]   1 when helper h merged the upper part of the image itself

The states change by compare-and-swap: a helper joins ``IDLE -> JOINED`` and the caller closes
``IDLE -> CLOSED``, so exactly one of the two wins and a late helper never writes into buffers
the caller no longer waits for. With one helper the merge is shared: the helper, DRAWN, waits a
bounded time for GO and then merges the upper part of the image while the caller merges the
lower; a helper that gave up (its caller descheduled) finishes without merging, and the caller
merges that part too. Every state is stored with release ordering after the writes it
announces and read with acquire ordering.

The atomics are LLVM ``cmpxchg`` (acq_rel), ``load atomic acquire``
and ``store atomic release`` on int64 (plain moves and ``lock`` instructions on x86, but the
compiler may not move buffer writes across them). Each is also a plain Python function
(what runs under ``NUMBA_DISABLE_JIT=1``, where facelab never starts helpers); compiled, an
``@overload`` routes it to the intrinsic.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload, register_jitable

__all__: list[str] = []

IDLE, JOINED, CLOSED, DRAWN, FINISHED = 0, 1, 2, 3, 4
#: The control array of a call that claims nothing (the kernel's slot -1: chunks in order).
NO_CTL = np.zeros(0, dtype=np.int64)
#: Pixels per block of :func:`merge_private` (a block none of whose pixels a helper won is
#: skipped after one vectorised test).
MERGE_BLOCK = 32


def compare_swap(ctl, i, expected, value):
    """``ctl[i] = value`` if ``ctl[i] == expected``; returns the old value (atomic compiled)."""
    old = ctl[i]
    if old == expected:
        ctl[i] = value
    return old


def load_acquire(ctl, i):
    """``ctl[i]``, read with acquire ordering when compiled."""
    return ctl[i]


def store_release(ctl, i, value):
    """``ctl[i] = value``, written with release ordering when compiled."""
    ctl[i] = value


def spin_pause():
    """A spin-wait hint to the CPU (x86 ``pause``); nothing in plain Python."""


def _pointer(context, builder, signature, args):
    ary = context.make_array(signature.args[0])(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1]])


@intrinsic
def _compare_swap(typingctx, ctl, i, expected, value):
    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature, args)
        pair = builder.cmpxchg(ptr, args[2], args[3], "acq_rel", "acquire")
        return builder.extract_value(pair, 0)

    return types.int64(ctl, types.intp, types.int64, types.int64), codegen


@intrinsic
def _load_acquire(typingctx, ctl, i):
    def codegen(context, builder, signature, args):
        return builder.load_atomic(_pointer(context, builder, signature, args), "acquire", 8)

    return types.int64(ctl, types.intp), codegen


@intrinsic
def _store_release(typingctx, ctl, i, value):
    def codegen(context, builder, signature, args):
        builder.store_atomic(args[2], _pointer(context, builder, signature, args), "release", 8)
        return context.get_dummy_value()

    return types.void(ctl, types.intp, types.int64), codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


@intrinsic
def _spin_pause(typingctx):
    def codegen(context, builder, signature, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@overload(compare_swap)
def _compare_swap_compiled(ctl, i, expected, value):
    return lambda ctl, i, expected, value: _compare_swap(ctl, i, expected, value)


@overload(load_acquire)
def _load_acquire_compiled(ctl, i):
    return lambda ctl, i: _load_acquire(ctl, i)


@overload(store_release)
def _store_release_compiled(ctl, i, value):
    return lambda ctl, i, value: _store_release(ctl, i, value)


@overload(spin_pause)
def _spin_pause_compiled():
    return lambda: _spin_pause()


# ------------------------------------------------------------------------- chunk claims
LOW = (1 << 32) - 1


def pack_chunks(n_chunks: int) -> int:
    """``ctl[0]`` before a split: every chunk unclaimed (front 0, back ``n_chunks``)."""
    return n_chunks << 32


@register_jitable
def claim_front(ctl):
    """The lowest unclaimed chunk (the caller's claims), or -1 when none is left."""
    while True:
        w = load_acquire(ctl, 0)
        if (w & LOW) >= (w >> 32):
            return -1
        if compare_swap(ctl, 0, w, w + 1) == w:
            return w & LOW


@register_jitable
def claim_back(ctl):
    """The highest unclaimed chunk (the helpers' claims), or -1 when none is left.

    Claiming from both ends keeps each thread's faces contiguous, so the pixels a helper wins
    come in runs (cheap to merge) rather than interleaved chunk by chunk (38k face grid at
    224²: merge 59 us interleaved).
    """
    while True:
        w = load_acquire(ctl, 0)
        front, back = w & LOW, w >> 32
        if front >= back:
            return -1
        if compare_swap(ctl, 0, w, ((back - 1) << 32) | front) == w:
            return back - 1


# ------------------------------------------------------------------------- hand-over steps
def state_index(h):
    """Index of helper ``h``'s state in ``ctl`` (module docstring)."""
    return 4 * h - 3


def ctl_size(n_helpers: int) -> int:
    """Length of the control array for ``n_helpers`` helpers (module docstring)."""
    return 1 + 4 * n_helpers


def _join_py(ctl, h):
    """Helper ``h`` (>= 1) joins the job: True unless the caller already closed it."""
    return compare_swap(ctl, 4 * h - 3, IDLE, JOINED) == IDLE


def _drawn_py(ctl, h, spins):
    """Helper ``h``'s chunks are done (release); then waits at most ``spins`` spins for the
    caller's GO. True: the caller's chunks are done too, so the helper may merge its part."""
    store_release(ctl, 4 * h - 3, DRAWN)
    for _ in range(spins):
        if load_acquire(ctl, 4 * h - 1) == 1:
            return True
        spin_pause()
    return load_acquire(ctl, 4 * h - 1) == 1


def _finish_py(ctl, h, merged):
    """Helper ``h`` has written everything it will write (release); ``merged``: whether it
    merged its part of the image."""
    ctl[4 * h] = merged
    store_release(ctl, 4 * h - 3, FINISHED)


def _close_py(ctl, h, spins):
    """The caller is done claiming. Returns 0 when helper ``h`` never joined (then it never
    will), its state (DRAWN or FINISHED) once its chunks are done, or -1 when that took more
    than ``spins`` spins (the caller then blocks on the helper's event instead)."""
    state = compare_swap(ctl, 4 * h - 3, IDLE, CLOSED)
    if state == IDLE:
        return 0
    for _ in range(spins):
        state = load_acquire(ctl, 4 * h - 3)
        if state >= DRAWN:
            return state
        spin_pause()
    state = load_acquire(ctl, 4 * h - 3)
    return state if state >= DRAWN else -1


def _go_py(ctl, h):
    """The caller's chunks are done: helper ``h`` may merge (release)."""
    store_release(ctl, 4 * h - 1, 1)


def _wait_finished_py(ctl, h, spins):
    """Spin at most ``spins`` times for helper ``h`` to finish; True when it has."""
    for _ in range(spins):
        if load_acquire(ctl, 4 * h - 3) == FINISHED:
            return True
        spin_pause()
    return load_acquire(ctl, 4 * h - 3) == FINISHED


join = njit(cache=True, nogil=True)(_join_py)
drawn = njit(cache=True, nogil=True)(_drawn_py)
finish = njit(cache=True, nogil=True)(_finish_py)
close = njit(cache=True, nogil=True)(_close_py)
go = njit(cache=True, nogil=True)(_go_py)
wait_finished = njit(cache=True, nogil=True)(_wait_finished_py)


# ------------------------------------------------------------------------- merge
def _merge_private_py(zbuffer, face_index, bary, depth, zb1, fi1, ba1, depth1, start, stop,
                      keep_keys):
    """Merge one helper's buffers into the caller's, keeping each pixel's sequential winner.

    All (1, H, W[, 3]); pixels ``start`` to ``stop`` (flat indices) are merged, and the
    caller's z-buffer too if ``keep_keys`` (needed for a further helper's merge). The helper's
    ``zb1`` was cleared to +inf, and its other buffers are read only where it wrote. A
    sequential pass keeps, per pixel, the first face (smallest id) with the smallest float32
    depth key (strict ``<`` in increasing id); each thread kept that winner among its own
    faces, so the pixel's winner is the smaller ``(key, id)`` of the two. A key of +inf was
    never written (nothing wins against the initial +inf), so ties are compared by id only
    between written keys.

    Blocks of ``MERGE_BLOCK`` pixels: one vectorised test each; a block the helper did not win
    is skipped, one it won whole is copied, a mixed one blended with bit masks over int32
    views (branch-free: the pattern of winners is irregular; teaching model at 512² with 60k
    of 262k pixels taken, 0.45 ms with a branch per pixel).
    """
    zf, ff = zbuffer.reshape(-1), face_index.reshape(-1)
    zg, fg = zb1.reshape(-1), fi1.reshape(-1)
    zi, zj = zf.view(np.int32), zg.view(np.int32)  # same bits: selects by integer masks
    bi, bj = bary.reshape(-1).view(np.int32), ba1.reshape(-1).view(np.int32)
    di, dj = depth.reshape(-1).view(np.int32), depth1.reshape(-1).view(np.int32)
    r = di.shape[0] // zf.shape[0]  # int32 words per value: 1 (float32) or 2 (float64)
    inf = np.float32(np.inf)
    take, tie = np.empty(MERGE_BLOCK, np.int32), np.empty(MERGE_BLOCK, np.int32)
    mask = np.empty(3 * 2 * MERGE_BLOCK, np.int32)
    ur, u3r = np.uintp(r), np.uintp(3 * r)  # unsigned indices: no wrap-around tests, which
    for block in range(start, stop, MERGE_BLOCK):  # keep LLVM from vectorising
        s0 = np.uintp(block)
        m = np.uintp(min(MERGE_BLOCK, stop - block))
        count = n_ties = 0
        for q in range(m):  # vectorised; the ids are read only for ties (rare: 2 MB fewer
            p = s0 + np.uintp(q)  # reads at 512²)
            k1, k0 = zg[p], zf[p]
            t = np.int32(k1 < k0)
            e = np.int32((k1 == k0) & (k1 < inf))
            take[np.uintp(q)] = t
            tie[np.uintp(q)] = e
            count += t
            n_ties += e
        if n_ties:
            for q in range(m):
                p = s0 + np.uintp(q)
                t = take[np.uintp(q)] | (tie[np.uintp(q)] & np.int32(fg[p] < ff[p]))
                count += t - take[np.uintp(q)]
                take[np.uintp(q)] = t
        if count == 0:
            continue
        if count == m:  # the helper won the whole block: copies
            for q in range(m):
                ff[s0 + np.uintp(q)] = fg[s0 + np.uintp(q)]
            if keep_keys:
                for q in range(m):
                    zi[s0 + np.uintp(q)] = zj[s0 + np.uintp(q)]
            for u in range(ur * s0, ur * (s0 + m)):
                di[np.uintp(u)] = dj[np.uintp(u)]
            for u in range(u3r * s0, u3r * (s0 + m)):
                bi[np.uintp(u)] = bj[np.uintp(u)]
            continue
        for q in range(m):  # mixed: blend with masks of all ones / all zeros
            p = s0 + np.uintp(q)
            k64 = np.int64(-take[np.uintp(q)])
            ff[p] = (fg[p] & k64) | (ff[p] & ~k64)
        if keep_keys:
            for q in range(m):
                p = s0 + np.uintp(q)
                k = -take[np.uintp(q)]
                zi[p] = (zj[p] & k) | (zi[p] & ~k)
        for q in range(m):
            for c in range(u3r):
                mask[u3r * np.uintp(q) + np.uintp(c)] = -take[np.uintp(q)]
        for u in range(ur * m):
            k = mask[np.uintp(3) * np.uintp(u)]  # pixel u // r: its first bary word's mask
            v = ur * s0 + np.uintp(u)
            di[v] = (dj[v] & k) | (di[v] & ~k)
        for u in range(u3r * m):
            k = mask[np.uintp(u)]
            v = u3r * s0 + np.uintp(u)
            bi[v] = (bj[v] & k) | (bi[v] & ~k)


merge_private = njit(cache=True, nogil=True, error_model="numpy")(_merge_private_py)
