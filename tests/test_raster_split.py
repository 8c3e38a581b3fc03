"""The face split of one image between the caller and helper threads (facelab.raster.helpers):
deterministic schedules through the kernel's claim slots, the merge, the claims under
contention, and the executor end to end (bit-identical to one thread and to the reference)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from raster_bands import forced_split
from test_raster_cpu import _assert_same, _band_stress_mesh
from test_raster_reference import random_mesh

from facelab.raster import claims, cpu, helpers
from facelab.raster.reference import rasterize_reference, resolve_near
from facelab.raster.triangles import CHUNK


def _kernel_args(verts, faces, size, pc, near):
    dtype = verts.dtype
    xs = cpu._pixel_centres(size, dtype)
    return (verts, np.ascontiguousarray(faces, dtype=np.int64), xs, xs,
            dtype.type(resolve_near(near, pc)), False, pc, dtype.type(1), 1, cpu.SPAN_MIN_WIDTH,
            cpu.SMALL_BOX_PIXELS, cpu.RUN_MAX_WIDTH)


def _buffers(size, dtype, fill=True):
    """(zbuffer, face_index, bary, depth, nonfinite) for batch 1; garbage-filled if ``fill``
    (a helper's buffers are not cleared: only what it wrote may be read)."""
    bufs = (np.empty((1, size, size), np.float32), np.empty((1, size, size), np.int64),
            np.empty((1, size, size, 3), dtype), np.empty((1, size, size), dtype),
            np.zeros(1, np.int64))
    if fill:
        rng = np.random.default_rng(0)
        for b in bufs[:4]:
            b[...] = rng.integers(-5, 5, b.shape).astype(b.dtype)
    return bufs


def _ctl(front: int, back: int, n_helpers: int = 1) -> np.ndarray:
    ctl = np.zeros(claims.ctl_size(n_helpers), dtype=np.int64)
    ctl[0] = (back << 32) | front
    return ctl


@pytest.fixture(scope="module")
def stress():
    """A stress mesh of ~3,000 faces (12 chunks): ties by id between far-apart faces, large,
    degenerate, off-screen and behind-camera triangles, interleaved in id order."""
    rng = np.random.default_rng(5)
    verts, faces = _band_stress_mesh(rng, 37)
    assert -(-len(faces) // CHUNK) >= 12
    return verts, faces


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pc", [False, True])
def test_every_split_point_merges_to_the_sequential_result(stress, dtype, pc):
    """The caller rasterizes chunks [0, k) from the front, a helper [k, n) from the back (in
    decreasing chunk order, into garbage-filled buffers), the merge keeps each pixel's smaller
    (depth key, id): face ids, barycentrics and depth equal one thread's and the reference's
    bit for bit at every split point k, ties decided by the smaller id."""
    verts, faces = stress
    verts = verts.astype(dtype)
    size, near = 37, (0.0 if pc else None)
    n = -(-len(faces) // CHUNK)
    args = _kernel_args(verts, faces, size, pc, near)
    ref = rasterize_reference(verts, faces, size, size, pc, False, near)
    kernel = cpu._SERIAL[cpu.rasterize_bands]
    for k in range(n + 1):
        mine, theirs = _buffers(size, dtype, fill=False), _buffers(size, dtype)
        ctl = _ctl(0, k)
        bad = kernel(*args, *mine, ctl, 0)
        ctl[0] = (n << 32) | k
        bad += kernel(*args, *theirs, ctl, 1)
        assert ctl[claims.state_index(1) + 1] == n - k  # the helper's claimed chunks
        if n - k:
            claims.merge_private(*mine[:4], *theirs[:4], 0, size * size, False)
        _assert_same(ref, mine[1:4])
        assert bad == 0


def test_a_helper_alone_in_decreasing_order_is_exact(stress):
    """A helper that claims every chunk (from the back: decreasing ids) writes the sequential
    winner wherever something covers the pixel and leaves the rest of its z-buffer at +inf."""
    verts, faces = stress
    size = 37
    n = -(-len(faces) // CHUNK)
    ref = rasterize_reference(verts, faces, size, size, False, False, None)
    theirs = _buffers(size, np.float32)
    cpu._SERIAL[cpu.rasterize_bands](*_kernel_args(verts, faces, size, False, None), *theirs,
                                     _ctl(0, n), 1)
    covered = ref[0] >= 0
    np.testing.assert_array_equal(theirs[1][covered], ref[0][covered])
    np.testing.assert_array_equal(theirs[2][covered], ref[1][covered])
    np.testing.assert_array_equal(theirs[3][covered], ref[2][covered])
    assert np.all(theirs[0][~covered] == np.inf)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_merge_matches_a_numpy_lexicographic_minimum(dtype):
    """``merge_private`` against NumPy: the smaller (key, id) wins, +inf keys were never
    written (their ids are garbage), ties go to the smaller id; mixed, taken and skipped
    blocks and a ragged tail, float32 and float64 values."""
    rng = np.random.default_rng(3)
    n = 5 * claims.MERGE_BLOCK + 7
    z0 = rng.integers(0, 4, n).astype(np.float32)
    z1 = rng.integers(0, 4, n).astype(np.float32)
    z0[rng.random(n) < 0.2] = np.inf
    z1[rng.random(n) < 0.2] = np.inf
    z1[:claims.MERGE_BLOCK] = -1.0  # a whole block taken
    z1[claims.MERGE_BLOCK:2 * claims.MERGE_BLOCK] = np.inf  # a whole block skipped
    z0[claims.MERGE_BLOCK:2 * claims.MERGE_BLOCK] = 1.0
    f0, f1 = rng.integers(0, 50, n), rng.integers(0, 50, n)
    f0[z0 == np.inf], f1[z1 == np.inf] = -1, -7  # garbage where unwritten
    b0, b1 = rng.random((n, 3)).astype(dtype), rng.random((n, 3)).astype(dtype)
    d0, d1 = rng.random(n).astype(dtype), rng.random(n).astype(dtype)
    take = (z1 < z0) | ((z1 == z0) & (z1 < np.inf) & (f1 < f0))
    want = [np.where(take, z1, z0), np.where(take, f1, f0), np.where(take[:, None], b1, b0),
            np.where(take, d1, d0)]
    got = [z0.copy(), f0.copy(), b0.copy(), d0.copy()]
    claims.merge_private(*(a[None] for a in got), *(a[None] for a in (z1, f1, b1, d1)), 0, n,
                         True)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert 0 < take.sum() < n and ((z1 == z0) & (z1 < np.inf)).sum() > 10  # ties


def test_claims_from_both_ends_never_overlap():
    """Two threads claiming from the front and the back of 20,000 chunks at once (compiled
    compare-and-swap, no GIL) claim every chunk exactly once."""
    from numba import njit

    @njit(nogil=True)
    def claim_all(ctl, back, out):
        k = 0
        while True:
            c = claims.claim_back(ctl) if back else claims.claim_front(ctl)
            if c < 0:
                return k
            out[k] = c
            k += 1

    n = 20_000
    for _ in range(5):
        ctl, outs = _ctl(0, n), [np.full(n, -1), np.full(n, -1)]
        counts = [0, 0]

        def run(i, ctl=ctl, outs=outs, counts=counts):
            counts[i] = claim_all(ctl, i == 1, outs[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = np.concatenate([outs[0][:counts[0]], outs[1][:counts[1]]])
        np.testing.assert_array_equal(np.sort(got), np.arange(n))
        assert np.all(np.diff(outs[0][:counts[0]]) > 0)  # the caller: increasing
        assert np.all(np.diff(outs[1][:counts[1]]) < 0)  # a helper: decreasing


def test_hand_over_states():
    """A helper joins only if the caller has not closed; the caller waits for its chunks; the
    helper waits for GO before merging and gives up after its spins (the caller merges)."""
    S = claims.state_index(1)
    ctl = _ctl(0, 4)
    assert claims.close(ctl, 1, 10) == 0 and not claims.join(ctl, 1)  # closed first
    ctl = _ctl(0, 4)
    assert claims.join(ctl, 1)
    assert claims.close(ctl, 1, 10) == -1  # joined, still drawing: the caller must block
    assert not claims.drawn(ctl, 1, 10)  # no GO yet: the helper gives up
    assert claims.close(ctl, 1, 10) == claims.DRAWN
    assert not claims.wait_finished(ctl, 1, 10)
    claims.finish(ctl, 1, 0)
    assert claims.wait_finished(ctl, 1, 10) and ctl[S] == claims.FINISHED and ctl[S + 3] == 0
    ctl = _ctl(0, 4, n_helpers=2)
    assert claims.join(ctl, 2) and ctl[claims.state_index(2)] == claims.JOINED
    claims.go(ctl, 2)
    assert claims.drawn(ctl, 2, 10) and ctl[claims.state_index(1)] == claims.IDLE


def _caller_waits_for(monkeypatch, n_helpers, kernel=None):
    """Make the caller's kernel start only once ``n_helpers`` helpers joined (deterministic
    participation, whatever the load); returns a list that counts the merges."""
    kernel = kernel or cpu._SERIAL[cpu.rasterize_bands]

    def caller_waits(*args):
        ctl, slot = args[-2], args[-1]
        if slot == 0:
            deadline = time.monotonic() + 60
            while any(ctl[claims.state_index(h)] == claims.IDLE
                      for h in range(1, n_helpers + 1)):
                assert time.monotonic() < deadline, "no helper joined within 60 s"
                time.sleep(0.0005)
        return kernel(*args)

    monkeypatch.setitem(cpu._SERIAL, cpu.rasterize_bands, caller_waits)
    merged, merge = [], claims.merge_private

    def counting_merge(*a):
        merged.append(1)
        return merge(*a)

    monkeypatch.setattr(claims, "merge_private", counting_merge)
    return merged


@pytest.mark.parametrize("threads", [2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_executor_is_bit_identical_to_one_thread(monkeypatch, stress, threads, dtype):
    """End to end on the caller and 1 or 3 helper threads: first as scheduling has it (whoever
    gets a core claims what is left), then with every helper joined before the caller starts
    (so they claim chunks and are merged): equal to the reference every time."""
    verts, faces = stress
    verts = verts.astype(dtype)
    ref = rasterize_reference(verts, faces, 37, 37, True, False, 0.0)
    with forced_split(monkeypatch, threads):
        assert cpu._launch_plan(1, verts.shape[1], len(faces), 37, 37)[3] == threads - 1
        for _ in range(20):
            _assert_same(ref, cpu.rasterize_numba(verts, faces, 37, 37, True, False, 0.0))
        merged = _caller_waits_for(monkeypatch, threads - 1)
        for _ in range(3):
            _assert_same(ref, cpu.rasterize_numba(verts, faces, 37, 37, True, False, 0.0))
    assert len(merged) >= 3


def test_split_counts_bad_faces_and_nonfinite_writes(monkeypatch):
    """Out-of-range face indices are counted whichever thread claims them (the API raises)
    and non-finite winners are reported from the helpers' buffers too."""
    rng = np.random.default_rng(8)
    verts, faces = random_mesh(rng, 1, 300, 3000, 40, 40)
    with forced_split(monkeypatch):
        for where in (5, len(faces) - 5):  # in the caller's first chunk / a helper's
            bad = faces.copy()
            bad[where, 1] = 300
            out = cpu.rasterize_numba_counts(verts, bad, 40, 40, False, False, -np.inf)
            assert out[5] > 0
            with pytest.raises(ValueError, match="faces: expected indices in"):
                cpu.rasterize_numba(verts, bad, 40, 40, False, False, -np.inf)
        huge = verts.copy()
        huge[0, faces[-3]] = [[1.0, 1.0, 3e38], [39.0, 2.0, -3e38], [2.0, 39.0, 3e38]]
        ref = rasterize_reference(huge, faces, 40, 40)
        out = cpu.rasterize_numba_counts(huge, faces, 40, 40, False, False, -np.inf)
        _assert_same(ref, out[:3])
        assert (out[4] > 0) == (not np.all(np.isfinite(ref[1])) or
                                not np.all(np.isfinite(ref[2])))


def test_a_helper_that_never_joins_costs_nothing(monkeypatch, stress):
    """When no helper gets a core before the caller has claimed every chunk, the caller closes
    the job: nothing is merged and the result is the caller's alone."""
    verts, faces = stress
    monkeypatch.setattr(claims, "join", lambda ctl, h: False)
    merged = []
    monkeypatch.setattr(claims, "merge_private", lambda *a: merged.append(1))
    ref = rasterize_reference(verts, faces, 37, 37)
    with forced_split(monkeypatch):
        _assert_same(ref, cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf))
    assert not merged


def test_splits_are_kept_only_while_they_pay(monkeypatch):
    """The policy per kind of call: its first two calls and one in ``REFRESH`` run alone (the
    serial time); a split that takes more than ``PAYS`` of the serial time sends the next
    calls to the caller alone, 4 then 8 (doubling, capped), judged on the splits' running
    average; a split that pays ends the backoff; kinds are independent and the least recent
    are forgotten."""
    monkeypatch.setattr(helpers._HELPERS, "kinds", {})
    monkeypatch.setattr(helpers, "BACKOFF_FIRST", 4)
    monkeypatch.setattr(helpers, "BACKOFF_MAX", 8)

    def run(kind, split_time, serial_time, calls):
        pattern = []
        for _ in range(calls):
            split = helpers.split_pays(kind)
            helpers.record_time(kind, split, split_time if split else serial_time)
            pattern.append(int(split))
        return pattern

    slow = (224, 224, 37538, "<f4")
    assert run(slow, 1.2, 1.0, 2 + 1 + 4 + 1 + 8 + 1 + 8 + 1) == (
        [0, 0, 1] + [0] * 4 + [1] + [0] * 8 + [1] + [0] * 8 + [1])  # capped at 8
    assert helpers._HELPERS.kinds[slow].serial == pytest.approx(1.0)
    fast = (512, 512, 9000, "<f4")
    assert run(fast, 0.7, 1.0, 2 * helpers.REFRESH) == (
        [0, 0] + [1] * (helpers.REFRESH - 2) + [0] + [1] * (helpers.REFRESH - 1))
    after = run(slow, 0.9, 1.0, 12)  # the backoff left (one refresh call in it), then pays
    assert after[:8] == [0] * 8 and after[-3:] == [1, 1, 1]
    noisy = (256, 256, 9000, "<f4")  # one slow split among fast ones decides nothing
    helpers.record_time(noisy, False, 1.0)
    helpers.record_time(noisy, False, 1.0)
    for t in (0.8, 0.8, 1.2, 0.8, 1.1):
        assert helpers.split_pays(noisy)
        helpers.record_time(noisy, True, t)
    helpers.record_time(("new", 1), True, 1.0)  # a split with no serial time yet: noted only
    assert helpers._HELPERS.kinds[("new", 1)].split is None
    for k in range(helpers._KINDS):
        helpers.record_time(("other", k), False, 1.0)
    assert fast not in helpers._HELPERS.kinds and not helpers.split_pays(fast)


def test_the_policy_runs_alone_where_a_split_does_not_pay(monkeypatch, stress):
    """End to end: with splits made slow (a helper that joins late), the calls of that kind
    settle on the caller alone; results are exact either way."""
    verts, faces = stress
    monkeypatch.setattr(helpers._HELPERS, "kinds", {})
    ref = rasterize_reference(verts, faces, 37, 37)
    splits, real = [], helpers.rasterize_split

    def slow_split(*a):
        splits.append(1)
        time.sleep(0.1)  # far slower than the caller alone, even on a loaded machine
        return real(*a)

    monkeypatch.setattr(cpu, "PARALLEL_MIN_PIXELS", 0)
    monkeypatch.setattr(cpu, "SPLIT_MIN_FACES", 0)
    monkeypatch.setattr(cpu, "parallel_threads", lambda: 2)
    monkeypatch.setattr(cpu, "rasterize_split", slow_split)
    for _ in range(40):
        _assert_same(ref, cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf))
    assert 1 <= len(splits) <= 4  # splits at calls 3, 8, 17 and 34 (backoff 4, 8, 16)


def test_a_helper_error_reaches_the_caller(monkeypatch, stress):
    """An exception in a helper's kernel is raised in the caller once the helper finished, and
    the helpers serve the next call."""
    verts, faces = stress
    kernel = cpu._SERIAL[cpu.rasterize_bands]

    def failing(*args):
        if args[-1] > 0:
            raise MemoryError("helper")
        return kernel(*args)

    with forced_split(monkeypatch):
        _caller_waits_for(monkeypatch, 1, failing)
        with pytest.raises(MemoryError, match="helper"):
            cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf)
        monkeypatch.setitem(cpu._SERIAL, cpu.rasterize_bands, kernel)
        ref = rasterize_reference(verts, faces, 37, 37)
        _assert_same(ref, cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf))


def test_busy_helpers_fall_back_to_one_thread(monkeypatch, stress):
    """A call that finds the helpers reserved by another call runs alone (exact)."""
    verts, faces = stress
    ref = rasterize_reference(verts, faces, 37, 37)
    with forced_split(monkeypatch):
        assert helpers._HELPERS.acquire(1)
        try:
            _assert_same(ref, cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf))
        finally:
            helpers._HELPERS.release()


def test_a_forked_child_starts_its_own_helpers(monkeypatch, stress):
    """After fork the helper threads do not exist in the child: it starts its own."""
    import multiprocessing as mp

    verts, faces = stress
    ref = rasterize_reference(verts, faces, 37, 37)
    with forced_split(monkeypatch):
        cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf)  # helpers started
        ctx = mp.get_context("fork")
        with ctx.Pool(1) as pool:
            got = pool.apply(cpu.rasterize_numba, (verts, faces, 37, 37, False, False, -np.inf))
    _assert_same(ref, got)


def test_split_outputs_are_recycled_once_dropped(monkeypatch, stress):
    """After a split call nothing of it is held by the helpers (they drop the call's arrays
    before announcing they finished), so the output pool hands the arrays out again once the
    caller dropped them, and never while the caller holds them."""
    verts, faces = stress
    with forced_split(monkeypatch):
        merged = _caller_waits_for(monkeypatch, 1)
        first = cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf)
        held = cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf)
        assert all(a is not b for a, b in zip(first, held, strict=True))
        ids = [id(a) for a in held]
        del held
        again = cpu.rasterize_numba(verts, faces, 37, 37, False, False, -np.inf)
        assert [id(a) for a in again] == ids
    assert len(merged) >= 3  # every call merged a helper's part


def test_helpers_keep_two_buffer_sets(monkeypatch):
    """A helper keeps its buffers for the two most recent shapes (alternating sizes allocate
    nothing), and they are written in full when made (never-touched pages read slowly)."""
    monkeypatch.setattr(helpers._HELPERS, "scratch", {})

    def args(size, dtype):
        return (None,) * 12 + (np.empty((1, size, size), np.float32),
                               np.empty((1, size, size), np.int64),
                               np.empty((1, size, size, 3), dtype),
                               np.empty((1, size, size), dtype))

    a = helpers._HELPERS.buffers(1, args(8, np.float32))
    b = helpers._HELPERS.buffers(1, args(9, np.float32))
    assert helpers._HELPERS.buffers(1, args(8, np.float32)) is a
    assert helpers._HELPERS.buffers(1, args(9, np.float32)) is b
    assert not np.any(a[1]) and a[2].dtype == np.float32 and a[0].shape == (1, 8, 8)
    helpers._HELPERS.buffers(1, args(8, np.float64))  # a third set: the least recent goes
    assert helpers._HELPERS.buffers(1, args(9, np.float32)) is b
    assert helpers._HELPERS.buffers(1, args(8, np.float32)) is not a
