"""Fused softmax / log-softmax along the middle axis of an (A, R, B) array, and backward.

The caller views the input with `reduce.reduce_view(x, (dim,))`, so any `dim`
of a C-contiguous array is the R axis here (B == 1 when dim is the last axis).

Numerically stable: the row maximum m is subtracted before exponentiating,
    softmax(x)     = e^(x − m) / Σ e^(x − m)
    log_softmax(x) = x − m − log Σ e^(x − m)
and the sums accumulate in float64. Backward, from the saved output y:
    softmax:      dx = y · (g − Σ g·y)
    log_softmax:  dx = g − e^y · Σ g
"""
import math

import numpy as np

from .jit import device, kernel, prange


def _x3(rng, dtype):
    x = rng.standard_normal((3, 5, 4)) * 3
    x[0, :, 0] += 800.0  # a row that overflows a naive exp
    return x.astype(dtype)


def _ref_log_softmax(x):
    x64 = x.astype(np.float64)
    m = x64.max(axis=1, keepdims=True)
    return (x64 - m - np.log(np.exp(x64 - m).sum(axis=1, keepdims=True))).astype(x.dtype)


def _ref_softmax(x):
    return np.exp(_ref_log_softmax(x.astype(np.float64))).astype(x.dtype)


@device(inline=True)
def _row_max(x, a, R):
    """max over r of x[a, r, 0]; a nan makes it nan (as PyTorch's softmax)."""
    m = -np.inf
    for r in range(R):
        v = x[a, r, 0]
        if v > m or v != v:
            m = v
    return m


@device(inline=True)
def _column_max(x, a, m):
    """m[b] = max over r of x[a, r, b] (nan wins)."""
    m[:] = -np.inf
    for r in range(x.shape[1]):
        for b in range(x.shape[2]):
            v = x[a, r, b]
            if v > m[b] or v != v:
                m[b] = v


@kernel(_ref_softmax, reassociate=True, example=lambda rng, dt: (_x3(rng, dt),))
def softmax(x, out):
    A, R, B = x.shape
    if B == 1:  # softmax over the last axis: one contiguous row at a time
        for a in prange(A):
            m = _row_max(x, a, R)
            s = 0.0
            for r in range(R):
                e = math.exp(x[a, r, 0] - m)
                out[a, r, 0] = e
                s += e
            for r in range(R):
                out[a, r, 0] = out[a, r, 0] / s
        return
    for a in prange(A):
        m = np.empty(B)
        _column_max(x, a, m)
        s = np.zeros(B, np.float64)
        for r in range(R):
            for b in range(B):
                e = math.exp(x[a, r, b] - m[b])
                out[a, r, b] = e
                s[b] += e
        for r in range(R):
            for b in range(B):
                out[a, r, b] = out[a, r, b] / s[b]


@kernel(_ref_log_softmax, reassociate=True, example=lambda rng, dt: (_x3(rng, dt),))
def log_softmax(x, out):
    A, R, B = x.shape
    if B == 1:
        for a in prange(A):
            m = _row_max(x, a, R)
            s = 0.0
            for r in range(R):
                s += math.exp(x[a, r, 0] - m)
            shift = m + math.log(s)
            for r in range(R):
                out[a, r, 0] = x[a, r, 0] - shift
        return
    for a in prange(A):
        m = np.empty(B)
        _column_max(x, a, m)
        s = np.zeros(B, np.float64)
        for r in range(R):
            for b in range(B):
                s[b] += math.exp(x[a, r, b] - m[b])
        for b in range(B):
            s[b] = m[b] + math.log(s[b])
        for r in range(R):
            for b in range(B):
                out[a, r, b] = x[a, r, b] - s[b]


def _g_y(rng, dtype, log):
    x = _x3(rng, np.float64)
    y = _ref_log_softmax(x) if log else _ref_softmax(x)
    return rng.standard_normal(x.shape).astype(dtype), y.astype(dtype)


def _ref_softmax_backward(g, y):
    g64, y64 = g.astype(np.float64), y.astype(np.float64)
    return (y64 * (g64 - (g64 * y64).sum(axis=1, keepdims=True))).astype(g.dtype)


@kernel(_ref_softmax_backward, n_in=2, reassociate=True, example=lambda rng, dt: _g_y(rng, dt, False))
def softmax_backward(g, y, out):
    """dx = y · (g − Σ_r g·y)"""
    A, R, B = y.shape
    for a in prange(A):
        s = np.zeros(B, np.float64)
        for r in range(R):
            for b in range(B):
                s[b] += g[a, r, b] * y[a, r, b]
        for r in range(R):
            for b in range(B):
                out[a, r, b] = y[a, r, b] * (g[a, r, b] - s[b])


def _ref_log_softmax_backward(g, y):
    g64, y64 = g.astype(np.float64), y.astype(np.float64)
    return (g64 - np.exp(y64) * g64.sum(axis=1, keepdims=True)).astype(g.dtype)


@kernel(_ref_log_softmax_backward, n_in=2, reassociate=True, example=lambda rng, dt: _g_y(rng, dt, True))
def log_softmax_backward(g, y, out):
    """dx = g − e^y · Σ_r g"""
    A, R, B = y.shape
    for a in prange(A):
        s = np.zeros(B, np.float64)
        for r in range(R):
            for b in range(B):
                s[b] += g[a, r, b]
        for r in range(R):
            for b in range(B):
                out[a, r, b] = g[a, r, b] - math.exp(y[a, r, b]) * s[b]
