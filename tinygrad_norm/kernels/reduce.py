"""Reduction kernels over the middle axis of an (A, R, B) array, and their backward.

Any reduction over one *contiguous group* of axes of a C-contiguous array is a
reduction over R of the (A, R, B) view: `reduce_view` finds that view (copying
to a transposed layout only when the reduced axes are not adjacent).

Float32 sums accumulate in float64: as fast (the loops are memory bound) and
far more accurate than float32 accumulation over millions of elements.
"""
import math

import numpy as np

from .jit import kernel, prange


def _x3(rng, dtype):
    return rng.standard_normal((3, 5, 4)).astype(dtype)


def _g_x3(rng, dtype):
    return rng.standard_normal((3, 4)).astype(dtype), _x3(rng, dtype)

def _ref_sum(x):
    return x.sum(axis=1, dtype=np.float64).astype(x.dtype)


@kernel(_ref_sum, reassociate=True, example=lambda rng, dt: (_x3(rng, dt),))
def sum_arb(x, out):
    A, R, B = x.shape
    if B == 1:  # reducing trailing axes: one running sum per row
        for a in prange(A):
            s = 0.0
            for r in range(R):
                s += x[a, r, 0]
            out[a, 0] = s
        return
    for a in prange(A):
        acc = np.zeros(B, np.float64)
        for r in range(R):
            for b in range(B):
                acc[b] += x[a, r, b]
        for b in range(B):
            out[a, b] = acc[b]


def _ref_extremum(x, largest):
    return (x.max(axis=1), x.argmax(axis=1)) if largest else (x.min(axis=1), x.argmin(axis=1))


@kernel(_ref_extremum, n_out=2, scalars=(True,), example=lambda rng, dt: (_x3(rng, dt),))
def extremum_arb(x, out, idx, largest):
    """Largest (or smallest) value along R and the index of its first occurrence;
    nan wins, as in PyTorch."""
    A, R, B = x.shape
    for a in prange(A):
        for b in range(B):
            best, at = x[a, 0, b], 0
            for r in range(1, R):
                v = x[a, r, b]
                if best != best:
                    break
                if v != v or (v > best if largest else v < best):
                    best, at = v, r
            out[a, b], idx[a, b] = best, at


def _ref_var(x, correction):
    m = x.astype(np.float64).mean(axis=1)
    v = ((x - m[:, None, :]) ** 2).sum(axis=1) / max(x.shape[1] - correction, 0)
    return m.astype(x.dtype), v.astype(x.dtype)


@kernel(_ref_var, n_out=2, scalars=(1.0,), reassociate=True, example=lambda rng, dt: (_x3(rng, dt),))
def var_arb(x, mean, var, correction):
    """Mean and variance along R, two-pass (no catastrophic cancellation):
    var = Σ(x − mean)² / (R − correction)."""
    A, R, B = x.shape
    denom = max(R - correction, 0.0)
    for a in prange(A):
        m = np.zeros(B, np.float64)
        for r in range(R):
            for b in range(B):
                m[b] += x[a, r, b]
        for b in range(B):
            m[b] /= R
        s = np.zeros(B, np.float64)
        for r in range(R):
            for b in range(B):
                d = x[a, r, b] - m[b]
                s[b] += d * d
        for b in range(B):
            mean[a, b] = m[b]
            var[a, b] = s[b] / denom  # R == correction gives inf/nan, as in PyTorch


# ----------------------------------------------------------------------- backward

@kernel(lambda g, x, s: np.broadcast_to((g * s)[:, None, :], x.shape).astype(g.dtype),
        n_in=2, scalars=(0.5,), example=_g_x3)
def spread_arb(g, like, out, scale):
    """Backward of sum (scale 1) and mean (scale 1/R): out[a, r, b] = scale·g[a, b].
    `like` only provides the (A, R, B) shape."""
    A, R, B = out.shape
    T = out.dtype.type
    if B == 1:  # trailing axes reduced: a contiguous run of R per row
        for a in prange(A):
            v = T(g[a, 0] * scale)
            for r in range(R):
                out[a, r, 0] = v
        return
    # NOTE: the scaled rows first, in the output's precision, then plain row copies
    # over all A·R rows: the copy loop vectorises (no float64 product and conversion
    # per element) and the parallel twin has work even when A == 1 (mean over dim 0).
    rows = np.empty((A, B), out.dtype)
    for a in range(A):
        for b in range(B):
            rows[a, b] = T(g[a, b] * scale)
    for ar in prange(A * R):
        src = rows[ar // R]
        dst = out[ar // R, ar % R]
        for b in range(B):
            dst[b] = src[b]


@kernel(lambda g, x, m, s: (g[:, None, :] * s * (x - m[:, None, :])).astype(x.dtype),
        n_in=3, scalars=(0.5,), example=lambda rng, dt: (*_g_x3(rng, dt), _x3(rng, dt).mean(1)))
def var_backward_arb(g, x, mean, out, scale):
    """Backward of var: dx = g · scale · (x − mean), scale = 2 / (R − correction)."""
    A, R, B = x.shape
    for a in prange(A):
        for r in range(R):
            for b in range(B):
                out[a, r, b] = g[a, b] * scale * (x[a, r, b] - mean[a, b])


def _ref_max_backward(g, x, m):
    mm = m[:, None, :]
    tie = (x == mm) | (np.isnan(x) & np.isnan(mm))
    return (tie * (g / tie.sum(axis=1))[:, None, :]).astype(x.dtype)


def _g_x3_ties(rng, dtype):
    g, x = _g_x3(rng, dtype)
    x = np.round(x)  # rounding makes ties common
    x[0, 2, 1] = x[1, 0, 2] = x[1, 3, 2] = np.nan  # nan maxima: one, and a tie of two
    return g, x, x.max(axis=1)


@kernel(_ref_max_backward, n_in=3, example=_g_x3_ties)
def extremum_backward_arb(g, x, m, out):
    """Backward of a full/multi-axis max or min: the gradient is shared evenly
    among the entries equal to the extremum, and among the nan entries when
    the extremum is nan (PyTorch's rule for max(); its amax(dim) backward gives
    the whole slice nan there instead)."""
    A, R, B = x.shape
    for a in prange(A):
        for b in range(B):
            mv = m[a, b]
            if mv != mv:  # nan: the nan entries share the gradient
                n = 0
                for r in range(R):
                    if x[a, r, b] != x[a, r, b]:
                        n += 1
                share = g[a, b] / n
                for r in range(R):
                    out[a, r, b] = share if x[a, r, b] != x[a, r, b] else 0.0
                continue
            n = 0
            for r in range(R):
                if x[a, r, b] == mv:
                    n += 1
            share = g[a, b] / n if n > 0 else 0.0
            for r in range(R):
                out[a, r, b] = share if x[a, r, b] == mv else 0.0


def _ref_scatter(g, x, idx):
    out = np.zeros_like(x)
    np.put_along_axis(out, idx[:, None, :], g[:, None, :], axis=1)
    return out


@kernel(_ref_scatter, n_in=3,
        example=lambda rng, dt: (*_g_x3(rng, dt), rng.integers(0, 5, (3, 4))))
def scatter_arb(g, like, idx, out):
    """Backward of max/min along one dim: the gradient goes to the returned index."""
    A, R, B = out.shape
    for a in prange(A):
        for r in range(R):
            for b in range(B):
                out[a, r, b] = 0.0
        for b in range(B):
            out[a, idx[a, b], b] = g[a, b]


# ---------------------------------------------------------------------- the driver

def normalize_dims(dim, ndim):
    """`dim` (None, int or tuple, negatives allowed) -> sorted tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {d})")
        d = d % ndim if ndim else 0
        if d in out:
            raise ValueError(f"dim {d} appears multiple times in the list of dims")
        out.append(d)
    return tuple(sorted(out))


def reduce_view(x, axes):
    """View `x` as a contiguous (A, R, B) array whose R axis holds `axes`.

    Returns (x3, perm): perm is the axis order the (A, R, B) layout was taken
    in (None when x was used as is), so that a gradient computed in that
    layout can be put back with `unreduce_view`.
    """
    nd = x.ndim
    if not axes:
        return np.ascontiguousarray(x).reshape(1, 1, -1), None
    lo, hi = axes[0], axes[-1]
    perm = None
    if hi - lo + 1 != len(axes):  # reduced axes not adjacent: move them last
        perm = tuple(d for d in range(nd) if d not in axes) + tuple(axes)
        x = np.transpose(x, perm)
        lo, hi = nd - len(axes), nd - 1
    x = np.ascontiguousarray(x)
    A = math.prod(x.shape[:lo])
    R = math.prod(x.shape[lo:hi + 1])
    return x.reshape(A, R, math.prod(x.shape[hi + 1:])), perm


def unreduce_view(g3, shape, perm):
    """Inverse of `reduce_view` for an (A, R, B) gradient: back to `shape`."""
    if perm is None:
        return g3.reshape(shape)
    permuted_shape = tuple(shape[d] for d in perm)
    return np.transpose(g3.reshape(permuted_shape), np.argsort(perm))


def kept_shape(shape, axes, keepdim):
    """Shape of a reduction's result."""
    if keepdim:
        return tuple(1 if d in axes else s for d, s in enumerate(shape))
    return tuple(s for d, s in enumerate(shape) if d not in axes)
