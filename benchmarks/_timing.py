"""The one timing helper of the benchmark scripts.

The machines are shared and noisy, so every figure is a median of repeated
runs, and functions that are compared take turns (a, b, a, b, ...): a burst of
load from another process then hits all of them alike.
"""
import time

import numpy as np


def interleaved(fns, repeats, calls=1, warmup=2):
    """Seconds per call of each function: one array of `repeats` samples per
    function, each sample the mean of `calls` back-to-back calls; the functions
    take turns sample by sample. `warmup` calls each first (numba compiles or
    loads its cache on first use)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            ts.append((time.perf_counter() - t0) / calls)
    return [np.asarray(ts) for ts in times]


def medians(fns, repeats, calls=1, warmup=2):
    """Median seconds per call of each function (see `interleaved`)."""
    return [float(np.median(ts)) for ts in interleaved(fns, repeats, calls, warmup)]
