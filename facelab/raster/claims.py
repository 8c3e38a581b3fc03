"""Shared counters and hand-over states for the rasterizer's face split (:mod:`.helpers`).

At batch 1 on two or more threads, the caller and facelab's helper threads rasterize one
image together (:func:`facelab.raster.helpers.rasterize_split`): each claims chunks of
``triangles.CHUNK`` faces from one counter, in increasing order, into buffers of its own (the
caller into the outputs), and the caller then merges the helpers' buffers into the outputs
(:func:`merge_private`). Each thread's chunks are contiguous; since a helper claims them in
decreasing order, the depth test compares ``(key, face id)`` (the sequential winner's order).
A control array ``ctl`` (int64) holds::

    ctl[0]              the unclaimed chunks [front, back): back << 32 | front; the caller
                        claims from the front, the helpers from the back (claim_front,
                        claim_back: compare-and-swap)
    ctl[1 + 2 (h - 1)]  helper h's state: IDLE, JOINED (running), CLOSED (the caller finished
                        before it joined: it must not start), FINISHED
    ctl[2 + 2 (h - 1)]  how many chunks helper h claimed (0: its buffers hold nothing)

The states change by compare-and-swap: a helper joins ``IDLE -> JOINED`` and the caller closes
``IDLE -> CLOSED``, so exactly one of the two wins and a late helper never writes into buffers
the caller no longer waits for. A helper that joined sets ``FINISHED`` with release ordering
after its last write; the caller reads it with acquire ordering before merging.

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

IDLE, JOINED, CLOSED, FINISHED = 0, 1, 2, 3
#: Pixels per block of :func:`merge_private` (a block none of whose pixels a helper won is
#: skipped after one vectorised test).
MERGE_BLOCK = 32


def ctl_size(n_helpers: int) -> int:
    """Length of the control array for ``n_helpers`` helpers (module docstring)."""
    return 1 + 2 * n_helpers


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
def _join_py(ctl, h):
    """Helper ``h`` (>= 1) joins the job: True unless the caller already closed it."""
    return compare_swap(ctl, 2 * h - 1, IDLE, JOINED) == IDLE


def _finish_py(ctl, h):
    """Helper ``h`` has written everything it will write (release)."""
    store_release(ctl, 2 * h - 1, FINISHED)


def _close_py(ctl, h, spins):
    """The caller is done claiming: returns True when helper ``h`` joined and has finished,
    False when it never joined (then it never will); waits for a running helper by spinning at
    most ``spins`` times, then returns -1 (the caller blocks on the helper's event instead)."""
    state = compare_swap(ctl, 2 * h - 1, IDLE, CLOSED)
    if state == IDLE:
        return 0
    for _ in range(spins):
        if load_acquire(ctl, 2 * h - 1) == FINISHED:
            return 1
        spin_pause()
    return 1 if load_acquire(ctl, 2 * h - 1) == FINISHED else -1


join = njit(cache=True, nogil=True)(_join_py)
finish = njit(cache=True, nogil=True)(_finish_py)
close = njit(cache=True, nogil=True)(_close_py)


# ------------------------------------------------------------------------- merge
def _merge_private_py(zbuffer, face_index, bary, depth, zb1, fi1, ba1, depth1):
    """Merge one helper's buffers into the caller's, keeping each pixel's sequential winner.

    All (1, H, W[, 3]); the helper's ``zb1`` was cleared to +inf, and its other buffers are
    read only where it wrote. A sequential pass keeps, per pixel, the first face (smallest id)
    with the smallest float32 depth key (strict ``<`` in increasing id); each thread kept that
    winner among its own faces, so the pixel's winner is the smaller ``(key, id)`` of the two.
    A key of +inf was never written (nothing wins against the initial +inf), so ties are
    compared by id only between written keys.
    """
    zf, ff, bf, df = zbuffer.reshape(-1), face_index.reshape(-1), bary.reshape(-1), depth.reshape(-1)
    zg, fg, bg, dg = zb1.reshape(-1), fi1.reshape(-1), ba1.reshape(-1), depth1.reshape(-1)
    n = zf.shape[0]
    inf = np.float32(np.inf)
    take = np.empty(MERGE_BLOCK, np.int32)
    for start in range(0, n, MERGE_BLOCK):  # blocks of pixels: all, none or some taken
        s0 = np.uintp(start)  # (the split's claims are contiguous runs of faces, so the
        m = min(MERGE_BLOCK, n - start)  # pixels each thread won come in runs)
        count = 0
        for q in range(m):  # branch-free, vectorised
            p = s0 + np.uintp(q)
            k1, k0 = zg[p], zf[p]
            t = (k1 < k0) | ((k1 == k0) & (k1 < inf) & (fg[p] < ff[p]))
            take[q] = t
            count += t
        if count == 0:
            continue
        for q in range(m):
            p = s0 + np.uintp(q)
            if count == m or take[q]:
                zf[p] = zg[p]
                ff[p] = fg[p]
                df[p] = dg[p]
                u = np.uintp(3) * p
                bf[u] = bg[u]
                bf[u + np.uintp(1)] = bg[u + np.uintp(1)]
                bf[u + np.uintp(2)] = bg[u + np.uintp(2)]


merge_private = njit(cache=True, nogil=True, error_model="numpy")(_merge_private_py)
