"""The one timing helper of the benchmark scripts.

The machines are shared and noisy, so every figure is a median of repeated
runs, and functions that are compared take turns (a, b, a, b, ...): a burst of
load from another process then hits all of them alike.
"""
import time

import numpy as np


def interleaved(fns, repeats, calls=1, warmup=2, warmup_seconds=0.0, clock=time.perf_counter):
    """Seconds per call of each function: one array of `repeats` samples per
    function, each sample the mean of `calls` back-to-back calls; the functions
    take turns sample by sample. `warmup` calls each first (numba compiles or
    loads its cache on first use), then, for at least `warmup_seconds`, more
    calls in turns.
    `clock` may be time.process_time: CPU seconds of the whole process, which on a
    loaded machine leave out the time spent waiting for a core (threads that
    spin while waiting count, though).
    NOTE: on the development VM the first ~15 ms of a hot loop ran slower than
    the rest (a LayerNorm step 227 µs in its first 80 calls, 187 µs after; a
    copy 27.7 µs, then 24.6): short measurements need the time-based warm-up."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    end = time.perf_counter() + warmup_seconds
    while time.perf_counter() < end:
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = clock()
            for _ in range(calls):
                fn()
            ts.append((clock() - t0) / calls)
    return [np.asarray(ts) for ts in times]


def medians(fns, repeats, calls=1, warmup=2, warmup_seconds=0.0, clock=time.perf_counter):
    """Median seconds per call of each function (see `interleaved`)."""
    return [float(np.median(ts)) for ts in interleaved(fns, repeats, calls, warmup, warmup_seconds, clock)]
