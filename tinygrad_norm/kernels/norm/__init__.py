"""Fused normalization kernels: ONE forward and ONE backward for every norm layer.

Read in this order:

    reference.py  the definition: the (N, M, K, S) view every layer is, the math
                  of forward and backward in numpy, and NormOptions (the record
                  of eps, center, scale, batch_stats, r_max, d_max)
    __init__.py   this file: the two kernels and the dispatcher that picks a path
    common.py     what the paths share: μ, v, rstd, r, d from float64 sums, the
                  coefficients of dx, the float32 hi/lo split of μ
    rows.py       LayerNorm, RMSNorm             (N == 1, S == 1: a statistic is a row)
    columns.py    BatchNorm1d on (N, C)           (S == K == 1: a statistic is a column)
    blocks.py     BatchNorm2d, (N, C, L), GroupNorm, InstanceNorm: runs of S values

The kernels take x as the 2-D array (N, M·K·S), weight and bias as (G, K),
statistics as length-M float64 vectors. Each is a parallel loop over chunks
(n_chunk: 1 for the serial twin, at most MAX_CHUNKS for the parallel one), the
unit of parallel work; the backward writes one partial dγ/dβ per chunk (the
caller sums them), so results do not depend on the number of threads.
"""
import math

from ..jit import device, kernel, prange
from . import reference
from .blocks import blocks_backward, blocks_forward
from .columns import columns_backward, columns_forward
from .common import BLOCK, MAX_CHUNKS, blocking, helper, layout
from .reference import NormOptions
from .rows import rows_backward, rows_forward

__all__ = ["NormOptions", "norm_forward", "norm_backward", "n_chunks", "running_update",
           "reference", "blocking", "BLOCK", "MAX_CHUNKS"]


@kernel(reference.forward, n_in=5, n_out=6, scalars=(tuple(NormOptions(1e-5, 1.0, 1.0, 1.0, 1.5, 0.5)), 3),
        reassociate=True, example=reference.example_forward)
def norm_forward(x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, options, n_chunk):
    """y = γ·(r·(x − μ)·rstd + d) + β on the (N, M·K·S) view; writes the statistics
    used (mean, var, rstd: length M, float64) and the Renorm correction r, d.
    var is nan where it was not computed (given statistics, or no scaling).
    options: a NormOptions as a plain tuple (see below); n_chunk: the number of
    work units (n_chunks)."""
    opt = NormOptions(*options)
    for c in prange(n_chunk):
        _forward_chunk(c, n_chunk, x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, opt)


@kernel(reference.backward, n_in=7, n_out=3, scalars=(tuple(NormOptions(1e-5, 1.0, 1.0, 1.0, 1.5, 0.5)), 1.0),
        reassociate=True, example=reference.example_backward)
def norm_backward(g, x, weight, mean, rstd, r, d, dx, dweight, dbias, options, need_dx):
    """dx (when need_dx) and one partial dγ, dβ per chunk: dweight[c], dbias[c]
    of shape (G, K), float64; the caller sums over c. See reference.backward."""
    opt = NormOptions(*options)
    n_chunk = dweight.shape[0]
    for c in prange(n_chunk):
        _backward_chunk(c, n_chunk, g, x, weight, mean, rstd, r, d, dx, dweight, dbias, opt, need_dx)


# NOTE: the kernels take the options as a plain tuple and make the record inside:
# numba's dispatcher types a tuple of floats in C, a namedtuple in Python
# (≈ 2.5 µs more per call, twice per training step of every norm layer).
# NOTE: the kernels' bodies are out of the prange loops: the parallel twin compiles
# in a fraction of the time, and both twins share one compiled body.

@helper
def _forward_chunk(c, n_chunk, x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, opt):
    N, M, K, S, G, L = layout(x, mean.shape[0], weight)
    m0, m1, unit = _chunk(c, n_chunk, M, L, N)
    inv_count = 1.0 / (N * L) if N * L > 0 else math.nan
    if opt.batch_stats == 0.0:   # given statistics: (μ, rstd) are the reference, r = 1, d = 0
        for m in range(m0, m1):
            mean[m], var[m], rstd[m], r[m], d[m] = ref_mean[m], math.nan, ref_rstd[m], 1.0, 0.0
    # NOTE: K > 1 for rows: a "row" of one element (BatchNorm1d on one sample, in eval)
    # is cheaper as a short run of blocks.py than as a row
    if N == 1 and S == 1 and K > 1:
        rows_forward(x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, opt, inv_count, m0, m1)
    elif N > 1 and S == 1 and K == 1:
        columns_forward(x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, opt, inv_count, m0, m1)
    else:
        blocks_forward(x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, opt, inv_count,
                       m0, m1, unit)


@helper
def _backward_chunk(c, n_chunk, g, x, weight, mean, rstd, r, d, dx, dweight, dbias, opt, need_dx):
    N, M, K, S, G, L = layout(x, mean.shape[0], weight)
    m0, m1, unit = _chunk(c, n_chunk, M, L, N)
    inv_count = 1.0 / (N * L) if N * L > 0 else math.nan
    dweight[c] = 0.0
    dbias[c] = 0.0
    if N == 1 and S == 1 and K > 1:
        rows_backward(g, x, weight, mean, rstd, r, d, dx, dweight[c], dbias[c], opt, inv_count, need_dx, m0, m1)
    elif N > 1 and S == 1 and K == 1:
        columns_backward(g, x, weight, mean, rstd, r, d, dx, dweight[c], dbias[c], opt, inv_count, need_dx,
                         m0, m1)
    else:
        blocks_backward(g, x, weight, mean, rstd, r, d, dx, dweight[c], dbias[c], opt, inv_count, need_dx,
                        m0, m1, unit)


@helper
def _chunk(c, n_chunk, M, L, N):
    """Statistics m0..m1 of chunk c, and how many of them make one unit of work
    (blocks.py runs all passes over a unit before the next): one block when
    N == 1, so its data is still in cache for the next pass; the whole chunk
    when N > 1, so every pass walks rows in memory order over the chunk's
    columns. NOTE: walking BatchNorm2d channel by channel instead (4 KiB per
    row at power-of-two strides) is slow: the prefetcher restarts on every
    page, cache sets collide."""
    per_block, n_blocks = blocking(M, L)
    m0 = min(M, c * n_blocks // n_chunk * per_block)
    m1 = min(M, (c + 1) * n_blocks // n_chunk * per_block)
    return m0, m1, (per_block if N == 1 else max(m1 - m0, 1))


def n_chunks(M, L, parallel):
    """How many chunks the kernels split M statistics of L positions into (and how
    many partial dγ/dβ rows `norm_backward` writes): one for the serial twin, up to
    MAX_CHUNKS for the parallel one.
    NOTE: one chunk when serial: when N > 1 a pass walks each chunk's columns
    over all rows, and whole rows are faster than several narrow column strips."""
    return min(blocking(M, L)[1], MAX_CHUNKS) if parallel else 1


@device
def running_update(buffer, batch_value, momentum, scale):
    """In place: buffer ← (1 − momentum)·buffer + momentum·scale·batch_value
    (a running statistic; scale = n/(n − 1) turns a biased variance unbiased)."""
    for i in range(buffer.shape[0]):
        buffer[i] = (1.0 - momentum) * buffer[i] + momentum * (scale * batch_value[i])
