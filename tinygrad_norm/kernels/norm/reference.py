"""The definition: what every normalization layer computes, in numpy.

The fused kernels of this package (rows.py, columns.py, blocks.py, chosen by
__init__.py) must agree with these two functions; the test suite holds them
to it (tests/test_kernels.py, tests/test_norm_core.py).

Layout. Every normalization layer of `tn.nn` is its input viewed as

    x[n, m, k, s]      shape (N, M, K, S), C-contiguous,

with one set of statistics per m (taken over n, k and s) and an affine
weight/bias per (m mod G, k) that is constant along s:

    layer                         (N, M,      K,       S)        G
    BatchNorm    (N, C, *)        (N, C,      1,       prod *)   C
    InstanceNorm (N, C, *)        (1, N·C,    1,       prod *)   C
    GroupNorm    (N, C, *), G     (1, N·G,    C/G,     prod *)   G
    LayerNorm    (*, D...)        (1, prod *, prod D,  1)        1
    RMSNorm      (*, D...)        like LayerNorm, without centering

Each is a free reshape of a contiguous array: BatchNorm2d reduces NCHW over N
and HW without a transposed copy. The kernels take x as the 2-D array
(N, M·K·S), weight and bias as (G, K), statistics as length-M vectors.

Forward, per m, over its cnt = N·K·S entries:

    μ = mean(x)                  (0 when not centering: RMSNorm)
    v = mean((x − μ)²)           biased (÷ cnt), ε inside the square root
    rstd = 1 / √(v + ε)          (1 when not scaling: mean-only BatchNorm)
    x̂ = r·(x − μ)·rstd + d,      y = γ·x̂ + β

r and d are Batch Renorm's correction (Ioffe 2017), r = clip(σ_B/σ, 1/r_max,
r_max), d = clip((μ_B − μ)/σ, ±d_max) against reference statistics (μ, 1/σ);
with r_max = 1 and d_max = 0 they are exactly 1 and 0, which is BatchNorm and
every other layer. With `batch_stats` off, (μ, rstd) are the reference
statistics themselves (eval mode: running statistics) and the layer is the
affine map x ↦ γ·(x − μ)·rstd + β.

Backward (r, d constants; h = g·γ; x̂_B = (x − μ)·rstd; means over the cnt entries):

    dx = r·rstd·(h − mean(h) − x̂_B·mean(h·x̂_B))      batch statistics
    dx = r·rstd·h                                     given statistics
    dγ = Σ g·x̂,  dβ = Σ g                             summed over n, s and m ≡ g mod G

(the mean(h) term only when centering, the x̂_B term only when scaling).
"""
from typing import NamedTuple

import numpy as np


class NormOptions(NamedTuple):
    """What a layer asks of the core, one record for the kernels and the references.

    eps: added to v.  center: subtract μ (0: RMSNorm).  scale: multiply by
    rstd (0: mean-only BatchNorm).  batch_stats: statistics of x (0: the
    reference ones, eval mode).  r_max, d_max: Batch Renorm's clips (1 and 0:
    none).  NOTE: the flags are floats (1.0 / 0.0), so that one compiled
    kernel serves every layer; build it with `NormOptions.of(...)`.
    """
    eps: float = 1e-5
    center: float = 1.0
    scale: float = 1.0
    batch_stats: float = 1.0
    r_max: float = 1.0
    d_max: float = 0.0

    @classmethod
    def of(cls, eps=1e-5, center=True, scale=True, batch_stats=True, r_max=1.0, d_max=0.0):
        return cls(float(eps), float(center), float(scale), float(batch_stats), float(r_max), float(d_max))


def dims(x, weight, n_stats):
    """(N, M, K, S, G) of the (N, M·K·S) view, from x, the (G, K) weight and M."""
    N, P = x.shape
    G, K = weight.shape
    M = n_stats
    S = P // (M * K) if M * K else 0
    return N, M, K, S, G


def forward(x, weight, bias, ref_mean, ref_rstd, opt, n_chunk=1):
    """(y, mean, var, rstd, r, d) of the (N, M·K·S) view x; the statistics are float64 of length M,
    var is nan where it is not computed. (n_chunk, the kernels' work split, does not change the result.)"""
    opt = NormOptions(*opt)
    N, M, K, S, G = dims(x, weight, ref_mean.shape[0])
    x4 = x.astype(np.float64).reshape(N, M, K, S)
    axes = (0, 2, 3)
    if opt.batch_stats:
        mean = x4.mean(axis=axes) if opt.center else np.zeros(M)
        dev = x4 - mean[:, None, None]
        var = (dev ** 2).mean(axis=axes) if opt.scale else np.full(M, np.nan)
        rstd = 1 / np.sqrt(var + opt.eps) if opt.scale else np.ones(M)
        r = (np.ones(M) if (opt.r_max == 1 or not opt.scale)
             else np.clip(ref_rstd / rstd, 1 / opt.r_max, opt.r_max))
        d = np.zeros(M) if opt.d_max == 0 else np.clip((mean - ref_mean) * ref_rstd, -opt.d_max, opt.d_max)
    else:  # given (reference) statistics
        mean, var, rstd = ref_mean.astype(np.float64), np.full(M, np.nan), ref_rstd.astype(np.float64)
        r, d = np.ones(M), np.zeros(M)
    w = np.tile(weight, (M // G, 1))[:, :, None]
    b = np.tile(bias, (M // G, 1))[:, :, None]
    xhat = (x4 - mean[:, None, None]) * (r * rstd)[:, None, None] + d[:, None, None]
    y = (w * xhat + b).reshape(N, -1).astype(x.dtype)
    return y, mean, var, rstd, r, d


def backward(g, x, weight, mean, rstd, r, d, opt, need_dx=1.0):
    """(dx, dγ, dβ) for the statistics the forward used; dγ, dβ as (1, G, K) float64."""
    opt = NormOptions(*opt)
    N, M, K, S, G = dims(x, weight, mean.shape[0])
    x4 = x.astype(np.float64).reshape(N, M, K, S)
    g4 = g.astype(np.float64).reshape(N, M, K, S)
    col = lambda v: v[:, None, None]  # noqa: E731  (per-m vector against (N, M, K, S))
    xb = (x4 - col(mean)) * col(rstd)
    h = g4 * np.tile(weight, (M // G, 1))[:, :, None]
    dx = h.copy()
    if opt.batch_stats:
        if opt.center:
            dx -= col(h.mean(axis=(0, 2, 3)))
        if opt.scale:
            dx -= xb * col((h * xb).mean(axis=(0, 2, 3)))
    dx = (col(r * rstd) * dx).reshape(N, -1).astype(x.dtype)
    dw = (g4 * (col(r) * xb + col(d))).sum(axis=(0, 3)).reshape(M // G, G, K).sum(axis=0)
    db = g4.sum(axis=(0, 3)).reshape(M // G, G, K).sum(axis=0)
    return dx, dw[None], db[None]


# Example inputs for the kernel tests (tests/test_kernels.py)

def example_forward(rng, dtype):
    # N=3 rows, M=4 statistics, K=2, S=3, G=2 groups of affine parameters.
    x = (rng.standard_normal((3, 24)) * 2 + 5).astype(dtype)
    weight = rng.uniform(0.5, 2, (2, 2)).astype(dtype)
    bias = rng.standard_normal((2, 2)).astype(dtype)
    return x, weight, bias, rng.uniform(4, 6, 4), rng.uniform(0.3, 0.8, 4)


def example_backward(rng, dtype):
    x, weight, _, mean, rstd = example_forward(rng, dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    return g, x, weight, mean, rstd, rng.uniform(0.5, 2, 4), rng.uniform(-1, 1, 4)
