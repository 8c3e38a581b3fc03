"""The timing protocol every benchmark here shares (see README.md).

Implementations of one workload are timed *interleaved*: each round calls every one of them
once, in the same order, so load from other processes on the shared machine hits them alike;
``warmup`` rounds first (compilation, caches), then ``rounds`` timed rounds. A ratio to a
peer is paired per round (peer time / our time in the same round) and reported as the median
with p10/p90, next to the one-minute load average at the time.
"""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["CLOCKS", "interleaved", "load_average", "paired_ratio", "quantiles"]


CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}
"""``wall``: elapsed time (the protocol's default); ``thread``: the calling thread's CPU time
(user + system, excluding time spent descheduled — on a machine loaded well beyond its cores,
wall time mostly measures the scheduler; only for single-threaded workloads)."""


def interleaved(fns: dict, rounds: int = 25, warmup: int = 3, every: dict | None = None,
                clock: str = "wall", shuffle: bool = False) -> dict:
    """{name: (n,) seconds} from calling every fn once per round. ``every[name] = k`` times
    that fn only every k-th round (slow references); it still sits between the others.
    ``clock``: a key of :data:`CLOCKS`. ``shuffle``: each round calls the fns in a new random
    order (seeded), so each follows every other one alike; in a fixed order (or a rotated one,
    which keeps each fn's predecessor) a fn always runs with the caches its predecessor left:
    a 224² rasterization right after a peer that filled the caches costs ~0.1-0.3 ms more
    than right after a warm call of its own kind."""
    every = every or {}
    now = CLOCKS[clock]
    times = {name: [] for name in fns}
    order = list(fns.items())
    rng = np.random.default_rng(0)
    for r in range(warmup + rounds):
        if shuffle:
            order = [order[k] for k in rng.permutation(len(order))]
        for name, fn in order:
            if (r - warmup) % every.get(name, 1) and r >= warmup:
                continue
            t = now()
            fn()
            if r >= warmup:
                times[name].append(now() - t)
    return {name: np.array(t) for name, t in times.items()}


def quantiles(x) -> tuple[float, float, float]:
    """(median, p10, p90)."""
    x = np.asarray(x, dtype=float)
    return float(np.median(x)), float(np.percentile(x, 10)), float(np.percentile(x, 90))


def paired_ratio(peer, ours, every: int = 1) -> tuple[float, float, float]:
    """(median, p10, p90) of peer/ours per round; with ``every`` > 1 the peer ran only every
    k-th round and is paired with ours from the same rounds."""
    peer = np.asarray(peer)
    ours = np.asarray(ours)[::every][: len(peer)]
    return quantiles(peer[: len(ours)] / ours)


def load_average() -> float:
    return os.getloadavg()[0]
