"""Elementwise kernels: forward of every unary/binary op and its fused backward.

All kernels take flat 1-D arrays of one length (any stride) and write into
preallocated outputs: `kernel(*inputs, *outputs, *scalars)`. Broadcasting and
contiguity are handled by `map_elementwise`, not here.

NOTE: the pip build of numba/llvmlite has no vector math library (SVML), so in
a numba loop exp, log and tanh are scalar libm calls, 10-40x slower per element
than numpy's AVX-512 loops. The *forward* of exp, log and tanh is therefore
numpy's ufunc (ops.py), sigmoid uses numpy's exp between two numba passes, and
every backward (plain arithmetic, which LLVM vectorises) is a numba kernel.

Backward kernels are fused: `sigmoid_backward(g, y)` computes g·y·(1−y) in one
pass from the saved *output*, where numpy would need three temporaries.
NaN propagates the way it does in PyTorch (relu(nan) = nan, maximum(nan, 1) = nan).
"""
import math

import numpy as np
from .jit import PARALLEL_MIN, kernel, prange

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _ref_sigmoid(x):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _ref_gelu(x):
    return (0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)


def _ref_gelu_tanh(x):
    c = math.sqrt(2 / math.pi)
    return (0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3)))).astype(x.dtype)


# ------------------------------------------------------------------ unary, forward

@kernel(np.negative)
def neg(x, out):
    for i in prange(x.size):
        out[i] = -x[i]


@kernel(np.sqrt)
def sqrt(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = math.sqrt(v) if v >= 0 else np.nan


@kernel(np.abs)
def abs_(x, out):
    for i in prange(x.size):
        out[i] = abs(x[i])


@kernel(lambda x: -np.abs(x))
def neg_abs(x, out):
    for i in prange(x.size):
        out[i] = -abs(x[i])


@kernel(lambda x, e: np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype), n_in=2,
        example=lambda rng, dt: ((x := rng.uniform(-8, 8, 37).astype(dt)), np.exp(-np.abs(x))))
def sigmoid_from_exp(x, e, out):
    """σ(x) from e = exp(−|x|): 1/(1+e) for x ≥ 0, e·1/(1+e) below (never overflows).
    NOTE: one division for both branches and constants in the array's precision,
    so that the loop vectorises (a division in each branch, or float64 literals
    on float32 data, made it 1.5–2x slower)."""
    one = out.dtype.type(1.0)
    for i in prange(x.size):
        ei = e[i]
        r = one / (one + ei)
        out[i] = r if x[i] >= 0 else ei * r


def sigmoid(x):
    """Numerically stable σ(x) in three passes: −|x|, numpy's SIMD exp, the kernel above.
    NOTE: −|x| is numpy's abs and negative (one buffer) below PARALLEL_MIN
    elements, where map_elementwise's per-call cost is a fifth of the whole
    sigmoid (60×100: 13.5 vs 17 µs), and the parallel neg_abs kernel above it."""
    if x.size < PARALLEL_MIN:
        e = np.abs(x)
        np.negative(e, out=e)
    else:
        e = map_elementwise(neg_abs, (x,))
    np.exp(e, out=e)
    return map_elementwise(sigmoid_from_exp, (x, e))


@kernel(lambda x: np.where(x <= 0, 0, x).astype(x.dtype))
def relu(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = 0.0 if v <= 0 else v  # nan is not <= 0, so it passes through


@kernel(lambda x, s: np.where(x > 0, x, x * s).astype(x.dtype), scalars=(0.01,))
def leaky_relu(x, out, slope):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else v * slope


@kernel(_ref_gelu)
def gelu(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))


@kernel(_ref_gelu_tanh)
def gelu_tanh(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = 0.5 * v * (1.0 + math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))


@kernel(lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), scalars=(0.8, 1.5))
def clamp(x, out, lo, hi):
    for i in prange(x.size):
        v = x[i]
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        out[i] = v


@kernel(np.power, scalars=(2.5,))
def pow_scalar(x, out, p):
    # NOTE: the common exponents get loops of plain arithmetic, which LLVM
    # vectorises; a general p calls the scalar pow() per element.
    if p == 2.0:
        for i in prange(x.size):
            out[i] = x[i] * x[i]
    elif p == 3.0:
        for i in prange(x.size):
            out[i] = x[i] * x[i] * x[i]
    elif p == 0.5:
        for i in prange(x.size):
            out[i] = math.sqrt(x[i]) if x[i] >= 0 else np.nan
    elif p == -1.0:
        for i in prange(x.size):
            out[i] = 1.0 / x[i]
    else:
        for i in prange(x.size):
            out[i] = x[i] ** p


# ----------------------------------------------------------------- unary, backward
# g is the incoming gradient; the second input is the saved x or the saved output y.

@kernel(lambda g, y: g * y, n_in=2)
def exp_backward(g, y, out):
    for i in prange(g.size):
        out[i] = g[i] * y[i]


@kernel(lambda g, x: g / x, n_in=2)
def log_backward(g, x, out):
    for i in prange(g.size):
        out[i] = g[i] / x[i]


@kernel(lambda g, y: g / (2 * y), n_in=2)
def sqrt_backward(g, y, out):
    for i in prange(g.size):
        out[i] = g[i] / (2.0 * y[i])


@kernel(lambda g, x: g * np.sign(x), n_in=2)
def abs_backward(g, x, out):
    for i in prange(g.size):
        v = x[i]
        out[i] = g[i] if v > 0 else (-g[i] if v < 0 else 0.0 * g[i])


@kernel(lambda g, y: g * (1 - y * y), n_in=2)
def tanh_backward(g, y, out):
    for i in prange(g.size):
        out[i] = g[i] * (1.0 - y[i] * y[i])


@kernel(lambda g, y: g * y * (1 - y), n_in=2)
def sigmoid_backward(g, y, out):
    for i in prange(g.size):
        out[i] = g[i] * y[i] * (1.0 - y[i])


@kernel(lambda g, y: np.where(y > 0, g, 0).astype(g.dtype), n_in=2)
def relu_backward(g, y, out):
    for i in prange(g.size):
        out[i] = g[i] if y[i] > 0 else 0.0


@kernel(lambda g, x, s: np.where(x > 0, g, g * s).astype(g.dtype), n_in=2, scalars=(0.01,))
def leaky_relu_backward(g, x, out, slope):
    for i in prange(g.size):
        out[i] = g[i] if x[i] > 0 else g[i] * slope


@kernel(lambda g, x: (g * (0.5 * (1 + _erf(x / math.sqrt(2)))
                           + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))).astype(g.dtype),
        n_in=2)
def gelu_backward(g, x, out):
    # d/dx x·Φ(x) = Φ(x) + x·φ(x)
    for i in prange(g.size):
        v = x[i]
        cdf = 0.5 * (1.0 + math.erf(v * 0.7071067811865476))
        pdf = 0.3989422804014327 * math.exp(-0.5 * v * v)
        out[i] = g[i] * (cdf + v * pdf)


def _ref_gelu_tanh_backward(g, x):
    c = math.sqrt(2 / math.pi)
    t = np.tanh(c * (x + 0.044715 * x ** 3))
    return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))).astype(g.dtype)


@kernel(_ref_gelu_tanh_backward, n_in=2)
def gelu_tanh_backward(g, x, out):
    for i in prange(g.size):
        v = x[i]
        t = math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))
        out[i] = g[i] * (0.5 * (1.0 + t)
                         + 0.5 * v * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 0.134145 * v * v))


@kernel(lambda g, x, lo, hi: np.where((x >= lo) & (x <= hi), g, 0).astype(g.dtype),
        n_in=2, scalars=(0.8, 1.5))
def clamp_backward(g, x, out, lo, hi):
    # NOTE: PyTorch passes the gradient where lo <= x <= hi, bounds included.
    for i in prange(g.size):
        v = x[i]
        out[i] = g[i] if (v >= lo and v <= hi) else 0.0


@kernel(lambda g, x, p: (g * p * x ** (p - 1)) if p != 0 else np.zeros_like(g),
        n_in=2, scalars=(2.5,))
def pow_scalar_backward(g, x, out, p):
    # NOTE: p == 0 gives a zero gradient even at x == 0 (where p·x^(p−1) is nan).
    for i in prange(g.size):
        out[i] = 0.0 if p == 0 else g[i] * p * x[i] ** (p - 1.0)


# ----------------------------------------------------------------- binary, forward

@kernel(np.add, n_in=2)
def add(a, b, out):
    for i in prange(a.size):
        out[i] = a[i] + b[i]


@kernel(np.subtract, n_in=2)
def sub(a, b, out):
    for i in prange(a.size):
        out[i] = a[i] - b[i]


@kernel(np.multiply, n_in=2)
def mul(a, b, out):
    for i in prange(a.size):
        out[i] = a[i] * b[i]


@kernel(np.divide, n_in=2)
def div(a, b, out):
    for i in prange(a.size):
        out[i] = a[i] / b[i]  # numba follows numpy: x/0 is ±inf or nan, no exception


@kernel(np.power, n_in=2)
def pow(a, b, out):  # noqa: A001 - the op's name
    for i in prange(a.size):
        out[i] = a[i] ** b[i]


@kernel(np.maximum, n_in=2)
def maximum(a, b, out):
    for i in prange(a.size):
        x, y = a[i], b[i]
        out[i] = x if (x >= y or x != x) else y  # nan wins, as in numpy and PyTorch


@kernel(np.minimum, n_in=2)
def minimum(a, b, out):
    for i in prange(a.size):
        x, y = a[i], b[i]
        out[i] = x if (x <= y or x != x) else y


# ---------------------------------------------------------------- binary, backward

@kernel(lambda g, a, b: (g * b, g * a), n_in=3, n_out=2)
def mul_backward(g, a, b, ga, gb):
    for i in prange(g.size):
        ga[i] = g[i] * b[i]
        gb[i] = g[i] * a[i]


@kernel(lambda g, a, b: (g / b, -g * a / (b * b)), n_in=3, n_out=2)
def div_backward(g, a, b, ga, gb):
    for i in prange(g.size):
        q = g[i] / b[i]
        ga[i] = q
        gb[i] = -q * a[i] / b[i]


def _ref_pow_backward(g, a, b, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        ga = np.where(b == 0, 0, g * b * a ** (b - 1))
        gb = np.where((a == 0) & (b >= 0), 0, g * y * np.log(a))
    return ga.astype(g.dtype), gb.astype(g.dtype)


@kernel(_ref_pow_backward, n_in=4, n_out=2)
def pow_backward(g, a, b, y, ga, gb):
    # NOTE: PyTorch's conventions: d/da is 0 where b == 0, and d/db is 0 where
    # a == 0 and b >= 0 (instead of 0·log 0 = nan).
    for i in prange(g.size):
        x, p = a[i], b[i]
        ga[i] = 0.0 if p == 0 else g[i] * p * x ** (p - 1.0)
        if x == 0 and p >= 0:
            gb[i] = 0.0
        else:
            gb[i] = g[i] * y[i] * (math.log(x) if x > 0 else (-np.inf if x == 0 else np.nan))


def _ref_max_backward(g, a, b):
    ga = np.where(a > b, g, np.where(a == b, g / 2, 0))
    return ga.astype(g.dtype), (g - ga).astype(g.dtype)


@kernel(_ref_max_backward, n_in=3, n_out=2)
def maximum_backward(g, a, b, ga, gb):
    # NOTE: on a tie PyTorch gives each side half of the gradient.
    for i in prange(g.size):
        x, y = a[i], b[i]
        if x > y:
            ga[i], gb[i] = g[i], 0.0
        elif x < y:
            ga[i], gb[i] = 0.0, g[i]
        else:
            ga[i] = gb[i] = 0.5 * g[i]


@kernel(lambda g, a, b: _ref_max_backward(g, b, a), n_in=3, n_out=2)
def minimum_backward(g, a, b, ga, gb):
    for i in prange(g.size):
        x, y = a[i], b[i]
        if x < y:
            ga[i], gb[i] = g[i], 0.0
        elif x > y:
            ga[i], gb[i] = 0.0, g[i]
        else:
            ga[i] = gb[i] = 0.5 * g[i]


# ---------------------------------------------------------------------- the driver

def map_elementwise(kern, inputs, n_out=1, scalars=(), dtype=None):
    """Broadcast `inputs` (ndarrays) to one shape, run `kern` over them flat and
    return its output array(s) of that shape.

    Same-shape contiguous inputs are passed as flat views; a one-element input
    (a scalar operand) as a zero-stride view; any other broadcast or strided
    input is first copied to contiguous memory (the kernels walk flat arrays).
    """
    shape = inputs[0].shape
    for x in inputs[1:]:
        # NOTE: a one-element operand of no more dims leaves the shape as it is;
        # np.broadcast_shapes (1.5 µs) only for real broadcasting
        if x.shape != shape and not (x.size == 1 and x.ndim <= len(shape)):
            shape = np.broadcast_shapes(*(x.shape for x in inputs))
            break
    dtype = dtype or inputs[0].dtype
    size = 1
    for s in shape:
        size *= s
    flat = []
    for x in inputs:
        if x.dtype != dtype:
            x = x.astype(dtype)
        if x.shape == shape:
            flat.append(x.ravel())  # a view when contiguous, else a contiguous copy
        elif x.size == 1:
            # NOTE: a stride-0 view repeats the one value without copying it.
            flat.append(np.ndarray((size,), dtype, buffer=np.ascontiguousarray(x), strides=(0,)))
        else:
            flat.append(np.ascontiguousarray(np.broadcast_to(x, shape)).reshape(-1))
    outs = [np.empty(shape, dtype) for _ in range(n_out)]
    # NOTE: the twin chosen here from the size we know (Kernel.__call__ would scan every argument)
    twin = kern.parallel if size >= PARALLEL_MIN else kern.serial
    twin(*flat, *[o.reshape(-1) for o in outs], *[float(s) for s in scalars])
    return outs[0] if n_out == 1 else tuple(outs)
