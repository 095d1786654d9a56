"""Fused normalization kernels: ONE forward and ONE backward for every norm layer.

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

Math, per m, over its cnt = N·K·S entries:

    μ = mean(x)                  (0 when not centering: RMSNorm)
    v = mean((x − μ)²)           biased; float64 sums of x − c and (x − c)² in one
                                 pass, c a value of the statistic's own data (its
                                 first), so a 1e5 offset costs nothing
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

Precision. Statistics are accumulated in float64 (float32 inputs too).
Elementwise work runs in the input's precision T (16 float32 lanes per
AVX-512 vector instead of 8 float64): μ is split as hi + lo with hi = T(μ),
x − hi is exact or within one rounding, and lo is folded into a per-run
constant, so float32 keeps the float64 centring. The backward's sums add
T-precision partials of FLUSH elements (or FLUSH_ROWS rows) into float64,
dγ and dβ of rows (LayerNorm) included.

Loops. Consecutive m are grouped into blocks so that a row segment
x[n, block] has at least BLOCK contiguous elements (BatchNorm1d on (N, C)
has one element per (n, m)). A block is a sequence of *runs*, one per (m, k),
of S contiguous elements sharing μ, rstd, γ and β: long runs (S >= RUN_MIN:
BatchNorm2d, GroupNorm, InstanceNorm) are walked with scalar coefficients,
short ones (BatchNorm1d) with per-position coefficient vectors, rows
(N == 1, S == 1, K > 1: LayerNorm, RMSNorm) with the weight row itself, and
columns (N > 1, S == K == 1: BatchNorm1d on (N, C)) with the short-run passes
and a single loop over the statistics between them, so every inner loop is
contiguous and vectorised. Blocks are dealt out to the
caller's number of chunks (n_chunks: 1 for the serial twin, at most
MAX_CHUNKS for the parallel one), the unit of parallel work; the backward
writes one partial dγ/dβ per chunk (the caller sums them), so results do not
depend on the number of threads. When N == 1 all passes over a block run
while it is in cache; when N > 1 each pass walks the chunk's columns row by
row (see _units).
"""
import math

import numpy as np

from .jit import device, kernel, prange

BLOCK = 256       # a block of statistics spans at least this many positions per row
RUN_MIN = 16      # runs at least this long use scalar coefficients
MAX_CHUNKS = 16   # parallel work units (also the number of partial dγ/dβ rows)
FLUSH = 256       # T-precision partial sums are added into float64 every FLUSH elements
FLUSH_ROWS = 16   # ... or every FLUSH_ROWS rows (short runs)

# NOTE: the helpers below (`@helper`: numba functions called from the kernels,
# compiled when the first kernel is built) are compiled on their own, so they need
# the kernels' `reassoc` flag themselves (without it every running sum is a serial chain).
helper = device(reassociate=True)
# Small helpers called once per row or per statistic: inlined into their callers
inline_helper = device(reassociate=True, inline=True)


@device
def blocking(M, L):
    """(statistics per block, number of blocks) for M statistics of L positions per row."""
    per_block = max(1, min(M, -(-BLOCK // max(L, 1))))
    return per_block, (M + per_block - 1) // per_block


@device
def running_update(buffer, batch_value, momentum, scale):
    """In place: buffer ← (1 − momentum)·buffer + momentum·scale·batch_value
    (a running statistic; scale = n/(n − 1) turns a biased variance unbiased)."""
    for i in range(buffer.shape[0]):
        buffer[i] = (1.0 - momentum) * buffer[i] + momentum * (scale * batch_value[i])


def n_chunks(M, L, parallel):
    """How many chunks the kernels split M statistics of L positions into (and how
    many partial dγ/dβ rows `norm_backward` writes): one for the serial twin, up to
    MAX_CHUNKS for the parallel one.
    NOTE: one chunk when serial, because when N > 1 a pass walks each chunk's
    columns over all rows: BatchNorm1d on 256×1024 in 4 chunks of 256 columns
    wrote its output in 43 µs, in one chunk of whole rows in 32 µs."""
    return min(blocking(M, L)[1], MAX_CHUNKS) if parallel else 1


@inline_helper
def _rsqrt(v):
    # NOTE: explicit, whatever numba's error model: 1/√0 = inf, 1/√(negative) = nan.
    if v > 0.0:
        return 1.0 / math.sqrt(v)
    return math.inf if v == 0.0 else math.nan


@inline_helper
def _split(v, T):
    """v (float64) as hi + lo in the working precision T, hi = T(v). NOTE: the
    elementwise loops compute x − v as (x − hi), exact or within one rounding,
    and fold lo into a per-run constant: float32 arrays are processed in float32
    (twice the SIMD width, no conversions) without losing the float64 centring.
    A second subtraction `(x − hi) − lo` in the loop would not survive `reassoc`."""
    hi = T(v)
    return hi, v - np.float64(hi)


# Block helpers. A block is n_runs runs of S contiguous elements starting at
# column p0 of every row; per-run coefficients are vectors of length n_runs.
# Short runs use per-position copies of them (scratch `pos`: one row per vector).

@helper
def _per_position(run_values, n_runs, S, out):
    """Position q·S + s gets run_values[q] (for short runs; S == 1 needs no copy)."""
    if S == 1:
        return run_values
    for q in range(n_runs):
        v = run_values[q]
        seg = out[q * S:(q + 1) * S]
        for s in range(S):
            seg[s] = v
    return out


@helper
def _per_position_affine(shift, a, b, n_runs, S, T, out):
    """Per-position (hi, a, b − lo·a) in the working precision T: out[0..2, q·S + s]
    for run q, so that (x − hi)·a + (b − lo·a) = (x − shift)·a + b."""
    for q in range(n_runs):
        hi, lo = _split(shift[q], T)
        aq, bq = T(a[q]), T(b[q] - lo * a[q])
        for s in range(q * S, (q + 1) * S):
            out[0, s], out[1, s], out[2, s] = hi, aq, bq


@helper
def _moment(x, p0, n_runs, S, c, squared, out, pos):
    """out[q] = Σ_n Σ_s x[n, run q, s], or Σ (x − c[q])² when `squared` (float64)."""
    width = n_runs * S
    if S >= RUN_MIN:
        out[:n_runs] = 0.0
        for n in range(x.shape[0]):
            row = x[n, p0:p0 + width]
            for q in range(n_runs):
                seg = row[q * S:(q + 1) * S]
                t = 0.0
                if squared:
                    cq = c[q]
                    for s in range(S):
                        dev = seg[s] - cq
                        t += dev * dev
                else:
                    for s in range(S):
                        t += seg[s]
                out[q] += t
        return
    acc = out[:width] if S == 1 else pos[1, :width]
    acc[:] = 0.0
    if squared:
        cp = _per_position(c, n_runs, S, pos[0])
        for n in range(x.shape[0]):
            row = x[n, p0:p0 + width]
            for j in range(width):
                dev = row[j] - cp[j]
                acc[j] += dev * dev
    else:
        for n in range(x.shape[0]):
            row = x[n, p0:p0 + width]
            for j in range(width):
                acc[j] += row[j]
    if S > 1:
        for q in range(n_runs):
            out[q] = acc[q * S:(q + 1) * S].sum()


@helper
def _shifted_moments(x, p0, n_runs, S, c, out, out2, pos):
    """out[q] = Σ (x − c[q]) and out2[q] = Σ (x − c[q])² over run q of every row,
    in float64, in ONE pass. With c a value of the statistic's own data, the
    caller's var = mean(d²) − mean(d)² cancels only what |mean − c| adds (a few
    σ: a few bits of float64), and a constant channel gives exactly 0."""
    width = n_runs * S
    if S >= RUN_MIN:
        out[:n_runs] = 0.0
        out2[:n_runs] = 0.0
        for n in range(x.shape[0]):
            row = x[n, p0:p0 + width]
            for q in range(n_runs):
                seg = row[q * S:(q + 1) * S]
                cq = c[q]
                t = 0.0
                t2 = 0.0
                for s in range(S):
                    dev = seg[s] - cq
                    t += dev
                    t2 += dev * dev
                out[q] += t
                out2[q] += t2
        return
    cp = _per_position(c, n_runs, S, pos[0])
    acc = out[:width] if S == 1 else pos[1, :width]
    acc2 = out2[:width] if S == 1 else pos[2, :width]
    acc[:] = 0.0
    acc2[:] = 0.0
    N = x.shape[0]
    n4 = N - N % 4
    # NOTE: four rows per sweep: the float64 accumulators are loaded and stored once
    # per four rows (BatchNorm1d 256×1024: 62 µs one row at a time, 32 µs four)
    for n in range(0, n4, 4):
        r0, r1 = x[n, p0:p0 + width], x[n + 1, p0:p0 + width]
        r2, r3 = x[n + 2, p0:p0 + width], x[n + 3, p0:p0 + width]
        for j in range(width):
            cj = cp[j]
            d0, d1, d2, d3 = r0[j] - cj, r1[j] - cj, r2[j] - cj, r3[j] - cj
            acc[j] += (d0 + d1) + (d2 + d3)
            acc2[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
    for n in range(n4, N):
        row = x[n, p0:p0 + width]
        for j in range(width):
            dev = row[j] - cp[j]
            acc[j] += dev
            acc2[j] += dev * dev
    if S > 1:
        for q in range(n_runs):
            out[q] = acc[q * S:(q + 1) * S].sum()
            out2[q] = acc2[q * S:(q + 1) * S].sum()


@helper
def _affine(x, y, p0, n_runs, S, mu, a, b):
    """y = (x − mu)·a + b with per-run mu, a, b; long runs in the input's
    precision: y = (x − hi)·a + (b − lo·a)."""
    T = y.dtype.type
    width = n_runs * S
    if S >= RUN_MIN:
        for n in range(x.shape[0]):
            row = x[n, p0:p0 + width]
            out = y[n, p0:p0 + width]
            for q in range(n_runs):
                seg = row[q * S:(q + 1) * S]
                dst = out[q * S:(q + 1) * S]
                hi, lo = _split(mu[q], T)
                aq, bq = T(a[q]), T(b[q] - lo * a[q])
                for s in range(S):
                    dst[s] = (seg[s] - hi) * aq + bq
        return
    coef = np.empty((3, width), x.dtype)  # per position: hi, a, b − lo·a
    _per_position_affine(mu, a, b, n_runs, S, T, coef)
    _affine_positions(x, y, p0, coef)


@helper
def _affine_positions(x, y, p0, coef):
    """y = (x − hi)·a + b at the columns p0 + j of every row, with per-position
    coefficients coef[:, j] = (hi, a, b) in the input's precision."""
    width = coef.shape[1]
    hp, ap, bp = coef[0], coef[1], coef[2]
    for n in range(x.shape[0]):
        row = x[n, p0:p0 + width]
        out = y[n, p0:p0 + width]
        for j in range(width):
            out[j] = (row[j] - hp[j]) * ap[j] + bp[j]


@helper
def _grad_moments(g, x, p0, n_runs, S, mu, rs, sg, sgx, pos):
    """sg[q] = Σ g and sgx[q] = Σ g·(x − mu)·rs over run q of every row. Sums are
    taken in the input's precision, FLUSH elements (long runs) or FLUSH_ROWS rows
    (short runs) at a time, and added into float64: Σ g·(x − mu) = Σ g·(x − hi) − lo·Σ g."""
    T = x.dtype.type
    width = n_runs * S
    if S >= RUN_MIN:
        sg[:n_runs] = 0.0
        sgx[:n_runs] = 0.0
        for n in range(x.shape[0]):
            grow = g[n, p0:p0 + width]
            xrow = x[n, p0:p0 + width]
            for q in range(n_runs):
                hi, lo = _split(mu[q], T)
                t = 0.0
                tx = 0.0
                for s0 in range(q * S, (q + 1) * S, FLUSH):
                    s1 = min((q + 1) * S, s0 + FLUSH)
                    gs = grow[s0:s1]
                    xs = xrow[s0:s1]
                    tb = T(0.0)
                    txb = T(0.0)
                    for s in range(s1 - s0):
                        tb += gs[s]
                        txb += gs[s] * (xs[s] - hi)
                    t += tb
                    tx += txb
                sg[q] += t
                sgx[q] += (tx - lo * t) * rs[q]
        return
    # short runs: per-position sums, FLUSH_ROWS rows at a time in T, added into float64
    hp = np.empty(width, x.dtype)   # per position: hi of μ
    lp = pos[0, :width]             # per position: lo of μ
    for q in range(n_runs):
        hi, lo = _split(mu[q], T)
        hp[q * S:(q + 1) * S] = hi
        lp[q * S:(q + 1) * S] = lo
    acc = sg[:width] if S == 1 else pos[1, :width]
    accx = sgx[:width] if S == 1 else pos[2, :width]
    acc[:] = 0.0
    accx[:] = 0.0
    tg = np.empty(width, x.dtype)
    tgx = np.empty(width, x.dtype)
    N = x.shape[0]
    for n0 in range(0, N, FLUSH_ROWS):
        tg[:] = 0.0
        tgx[:] = 0.0
        n1 = min(N, n0 + FLUSH_ROWS)
        n4 = n1 - (n1 - n0) % 4
        for n in range(n0, n4, 4):  # four rows per sweep, as in _shifted_moments
            g0, g1, g2, g3 = g[n, p0:p0 + width], g[n + 1, p0:p0 + width], g[n + 2, p0:p0 + width], g[n + 3, p0:p0 + width]
            x0, x1, x2, x3 = x[n, p0:p0 + width], x[n + 1, p0:p0 + width], x[n + 2, p0:p0 + width], x[n + 3, p0:p0 + width]
            for j in range(width):
                h = hp[j]
                tg[j] += (g0[j] + g1[j]) + (g2[j] + g3[j])
                tgx[j] += (g0[j] * (x0[j] - h) + g1[j] * (x1[j] - h)) + (g2[j] * (x2[j] - h) + g3[j] * (x3[j] - h))
        for n in range(n4, n1):
            grow = g[n, p0:p0 + width]
            xrow = x[n, p0:p0 + width]
            for j in range(width):
                tg[j] += grow[j]
                tgx[j] += grow[j] * (xrow[j] - hp[j])
        for j in range(width):
            acc[j] += tg[j]
            accx[j] += tgx[j]
    for j in range(width):
        accx[j] -= lp[j] * acc[j]
    for q in range(n_runs):
        if S > 1:
            sg[q] = acc[q * S:(q + 1) * S].sum()
            sgx[q] = accx[q * S:(q + 1) * S].sum()
        sgx[q] *= rs[q]


@helper
def _grad_affine(g, x, dx, p0, n_runs, S, mu, alpha, beta, kappa):
    """dx = alpha·g − beta − kappa·(x − mu) with per-run coefficients; long runs
    in the input's precision: dx = alpha·g − kappa·(x − hi) − (beta − kappa·lo)."""
    T = dx.dtype.type
    width = n_runs * S
    if S >= RUN_MIN:
        for n in range(x.shape[0]):
            grow = g[n, p0:p0 + width]
            xrow = x[n, p0:p0 + width]
            out = dx[n, p0:p0 + width]
            for q in range(n_runs):
                gs = grow[q * S:(q + 1) * S]
                xs = xrow[q * S:(q + 1) * S]
                dst = out[q * S:(q + 1) * S]
                hi, lo = _split(mu[q], T)
                aq, bq, kq = T(alpha[q]), T(beta[q] - kappa[q] * lo), T(kappa[q])
                for s in range(S):
                    dst[s] = aq * gs[s] - kq * (xs[s] - hi) - bq
        return
    # dx = alpha·g − kappa·(x − hi) − (beta − kappa·lo)
    #    = alpha·g + (x − hi)·(−kappa) + (lo·kappa − beta)
    coef = np.empty((4, width), x.dtype)  # per position: hi, −kappa, lo·kappa − beta, alpha
    neg_kappa = np.empty(n_runs)
    neg_beta = np.empty(n_runs)
    for q in range(n_runs):
        neg_kappa[q], neg_beta[q] = -kappa[q], -beta[q]
    _per_position_affine(mu, neg_kappa, neg_beta, n_runs, S, T, coef)
    for q in range(n_runs):
        coef[3, q * S:(q + 1) * S] = T(alpha[q])
    _grad_affine_positions(g, x, dx, p0, coef)


@helper
def _grad_affine_positions(g, x, dx, p0, coef):
    """dx = alpha·g + (x − hi)·(−kappa) + (lo·kappa − beta) at the columns p0 + j of
    every row, with coef[:, j] = (hi, −kappa, lo·kappa − beta, alpha) in the input's precision."""
    width = coef.shape[1]
    hp, kp, bp, ap = coef[0], coef[1], coef[2], coef[3]
    for n in range(x.shape[0]):
        grow = g[n, p0:p0 + width]
        xrow = x[n, p0:p0 + width]
        out = dx[n, p0:p0 + width]
        for j in range(width):
            out[j] = ap[j] * grow[j] + ((xrow[j] - hp[j]) * kp[j] + bp[j])


@helper
def _per_run(values, m0, m1, K, out):
    """out[(m − m0)·K + k] = values[m]: a per-statistic vector as per-run values."""
    q = 0  # NOTE: plain counters, not per-m slices: BatchNorm has K = 1 and thousands of m
    for m in range(m0, m1):
        v = values[m]
        for _ in range(K):
            out[q] = v
            q += 1


@helper
def _per_statistic(run_sums, m0, m1, K, scale, out):
    """out[m] = scale·Σ_k run_sums[(m − m0)·K + k]."""
    q = 0
    for m in range(m0, m1):
        t = 0.0
        for _ in range(K):
            t += run_sums[q]
            q += 1
        out[m] = t * scale


@inline_helper
def _statistics(s1, s2, c, inv_count, center, scale, eps):
    """(μ, v, rstd) of one statistic from the float64 sums s1 = Σ (x − c) and
    s2 = Σ (x − c)² of its values (c = 0 when not centering), inv_count = 1/their
    number: μ = c + mean(x − c), or 0 without centering; v = the biased variance,
    or the mean square without centering; v = nan and rstd = 1 without scaling."""
    md = s1 * inv_count
    mu = c + md if center != 0.0 else 0.0
    if scale == 0.0:
        return mu, math.nan, 1.0
    v = max(s2 * inv_count - md * md, 0.0) if center != 0.0 else s2 * inv_count
    return mu, v, _rsqrt(v + eps)


@inline_helper
def _correction(mu, rs, ref_mu, ref_rs, scale, r_max, d_max):
    """Batch Renorm's (r, d) of one statistic against the reference (ref_mu, ref_rs);
    exactly (1, 0) when r_max == 1 and d_max == 0 (every layer but BatchRenorm)."""
    r = 1.0
    if r_max != 1.0 and scale != 0.0:
        r = min(max(ref_rs / rs, 1.0 / r_max), r_max)
    d = 0.0
    if d_max != 0.0:
        d = min(max((mu - ref_mu) * ref_rs, -d_max), d_max)
    return r, d


@inline_helper
def _renorm(m0, m1, mean, rstd, ref_mean, ref_rstd, scale, r_max, d_max, r, d):
    """r[m], d[m] = _correction(...) for m0 <= m < m1. NOTE: one call per block,
    not per m (calls are not free)."""
    for m in range(m0, m1):
        r[m], d[m] = _correction(mean[m], rstd[m], ref_mean[m], ref_rstd[m], scale, r_max, d_max)


@helper
def _block_statistics(x, m0, m1, K, S, eps, center, scale, r_max, d_max, ref_mean, ref_rstd,
                      inv_count, mean, var, rstd, r, d, sums, sums2, mu, pos):
    """Mean and variance over the block of statistics m0..m1, then Batch Renorm's
    r, d. `sums`, `sums2`, `mu`: scratch of (m1 − m0)·K runs. Both moments in one
    pass about a shift (each statistic's first value, see _shifted_moments);
    the mean alone, or the mean square alone (RMSNorm), in one pass too."""
    n_runs, p0 = (m1 - m0) * K, m0 * K * S
    if center != 0.0 and scale != 0.0:
        empty = x.shape[0] == 0 or K * S == 0
        for m in range(m0, m1):
            # the shift: a value of the statistic's own data (nothing to read when empty)
            mean[m] = 0.0 if empty else x[0, m * K * S]
        _per_run(mean, m0, m1, K, mu)
        _shifted_moments(x, p0, n_runs, S, mu, sums, sums2, pos)
        _per_statistic(sums, m0, m1, K, 1.0, var)     # Σ d, for now
        _per_statistic(sums2, m0, m1, K, 1.0, rstd)   # Σ d², for now
        for m in range(m0, m1):
            mean[m], var[m], rstd[m] = _statistics(var[m], rstd[m], mean[m], inv_count, 1.0, 1.0, eps)
        _renorm(m0, m1, mean, rstd, ref_mean, ref_rstd, scale, r_max, d_max, r, d)
        return
    if center != 0.0:
        _moment(x, p0, n_runs, S, mu, False, sums, pos)
        _per_statistic(sums, m0, m1, K, inv_count, mean)
    else:
        mean[m0:m1] = 0.0
    _per_run(mean, m0, m1, K, mu)
    if scale != 0.0:  # not centering (RMSNorm): the mean square, about mu = 0
        _moment(x, p0, n_runs, S, mu, True, sums, pos)
        _per_statistic(sums, m0, m1, K, inv_count, var)
        for m in range(m0, m1):
            rstd[m] = _rsqrt(var[m] + eps)
    else:
        var[m0:m1] = math.nan
        rstd[m0:m1] = 1.0
    _renorm(m0, m1, mean, rstd, ref_mean, ref_rstd, scale, r_max, d_max, r, d)


# Rows: N == 1 and S == 1 (LayerNorm, RMSNorm): statistic m is the contiguous
# row x[0, m·K:(m+1)·K] and the affine parameters vary along it; no per-run
# arrays are needed, every pass reads the row (in L1) and the weight row.

@inline_helper
def _row_statistics(seg, center, scale, eps):
    """(μ, v, rstd) of one row: float64 sums of x − c about the row's first value c
    (one pass, see _shifted_moments and _statistics)."""
    K = seg.shape[0]
    c = np.float64(seg[0]) if (center != 0.0 and K > 0) else 0.0
    s1 = 0.0
    s2 = 0.0
    for k in range(K):
        dev = np.float64(seg[k]) - c
        s1 += dev
        s2 += dev * dev
    return _statistics(s1, s2, c, 1.0 / K if K > 0 else math.nan, center, scale, eps)


@inline_helper
def _row_affine(seg, out, w, bb, mu, f64, dd):
    """out = (seg − μ)·(f·γ) + (γ·d + β) in the input's precision T, computed as
    (x − hi)·(f·γ) + (γ·(d − lo·f) + β) (see _split)."""
    T = out.dtype.type
    hi, lo = _split(mu, T)
    f, dm = T(f64), T(dd - lo * f64)
    for k in range(seg.shape[0]):
        out[k] = (seg[k] - hi) * (f * w[k]) + (w[k] * dm + bb[k])


@inline_helper
def _row_grad_sums(gseg, xseg, w, tdw, tdb, hi, c1, c0):
    """One pass over a row in the input's precision T: adds g to the dβ partials
    tdb and g·((x − hi)·c1 + c0) = g·(r·x̂ + d) to the dγ partials tdw, and returns
    (Σ g·γ, Σ g·γ·(x − hi)) as float64 totals of T-precision sums of FLUSH elements."""
    T = xseg.dtype.type
    h = 0.0
    hxc = 0.0
    for k0 in range(0, xseg.shape[0], FLUSH):
        gs, xs, ws = gseg[k0:k0 + FLUSH], xseg[k0:k0 + FLUSH], w[k0:k0 + FLUSH]
        # NOTE: block slices of the partials too: with whole-row partials the loop did not vectorise
        tb, tw = tdb[k0:k0 + FLUSH], tdw[k0:k0 + FLUSH]
        th = T(0.0)
        thx = T(0.0)
        for k in range(gs.shape[0]):
            gk = gs[k]
            xc = xs[k] - hi
            gw = gk * ws[k]
            th += gw
            thx += gw * xc
            tb[k] += gk
            tw[k] += gk * (xc * c1 + c0)
        h += th
        hxc += thx
    return h, hxc


@inline_helper
def _row_dx(gseg, xseg, dxseg, w, hi, f, k, b):
    """dx = f·γ·g − k·(x − hi) − b over one row, in the input's precision."""
    for j in range(xseg.shape[0]):
        dxseg[j] = f * w[j] * gseg[j] - k * (xseg[j] - hi) - b


# Columns: N > 1 and S == K == 1 (BatchNorm1d on (N, C)): statistic m is the column
# x[:, m], so runs, statistics and positions coincide. Each pass is a short-run pass
# of the block path; what differs is ONE loop over the statistics between them (the
# block path's many small loops cost ~15 ns per statistic forward, ~19 backward).

@helper
def _columns_forward(x, y, m0, m1, weight, bias, ref_mean, ref_rstd, mean, var, rstd, r, d,
                     eps, center, scale, batch_stats, r_max, d_max, inv_count, shift, sums, sums2, pos):
    """Statistics m0..m1 and their columns of y: float64 moments about each column's
    first value (_shifted_moments), one loop for μ, v, rstd, r, d and the output's
    coefficients, one output pass (_affine_positions)."""
    T = y.dtype.type
    G = weight.shape[0]
    width = m1 - m0
    if batch_stats != 0.0:
        for j in range(width):
            shift[j] = np.float64(x[0, m0 + j]) if center != 0.0 else 0.0
        _shifted_moments(x, m0, width, 1, shift, sums, sums2, pos)
    coef = np.empty((3, width), y.dtype)   # per column: hi, a, b − lo·a
    grp = m0 % G
    for j in range(width):
        m = m0 + j
        if batch_stats != 0.0:
            mu, v, rs = _statistics(sums[j], sums2[j], shift[j], inv_count, center, scale, eps)
            rm, dm = _correction(mu, rs, ref_mean[m], ref_rstd[m], scale, r_max, d_max)
        else:
            mu, v, rs, rm, dm = ref_mean[m], math.nan, ref_rstd[m], 1.0, 0.0
        mean[m], var[m], rstd[m], r[m], d[m] = mu, v, rs, rm, dm
        a = rm * rs * weight[grp, 0]
        hi, lo = _split(mu, T)
        coef[0, j], coef[1, j], coef[2, j] = hi, T(a), T(weight[grp, 0] * dm + bias[grp, 0] - lo * a)
        grp = grp + 1 if grp + 1 < G else 0
    _affine_positions(x, y, m0, coef)


@helper
def _columns_backward(g, x, dx, m0, m1, weight, mean, rstd, r, d, dwc, dbc,
                      inv_count, with_mean, with_var, need_dx, sg, sgx, pos):
    """dγ, dβ partials and the columns m0..m1 of dx: one pass for Σ g and Σ g·x̂_B
    (_grad_moments), one loop for dγ, dβ and the coefficients of dx, one dx pass."""
    T = x.dtype.type
    G = weight.shape[0]
    width = m1 - m0
    _grad_moments(g, x, m0, width, 1, mean[m0:m1], rstd[m0:m1], sg, sgx, pos)
    coef = np.empty((4, width), x.dtype)   # per column: hi, −kappa, lo·kappa − beta, alpha
    grp = m0 % G
    for j in range(width):
        m = m0 + j
        rm, dm, w = r[m], d[m], weight[grp, 0]
        dbc[grp, 0] += sg[j]
        dwc[grp, 0] += rm * sgx[j] + dm * sg[j]
        f = rm * rstd[m]
        bm = f * w * sg[j] * inv_count if with_mean else 0.0               # mean(h)
        km = f * rstd[m] * w * sgx[j] * inv_count if with_var else 0.0      # mean(h·x̂_B)·rstd
        hi, lo = _split(mean[m], T)
        coef[0, j], coef[1, j], coef[2, j], coef[3, j] = hi, T(-km), T(lo * km - bm), T(f * w)
        grp = grp + 1 if grp + 1 < G else 0
    if need_dx != 0.0:
        _grad_affine_positions(g, x, dx, m0, coef)


@helper
def _flush(tdw, tdb, dw, db):
    """dw += tdw, db += tdb (float64 totals of working-precision partials), then zero the partials."""
    for grp in range(tdw.shape[0]):
        for k in range(tdw.shape[1]):
            dw[grp, k] += tdw[grp, k]
            db[grp, k] += tdb[grp, k]
            tdw[grp, k] = 0.0
            tdb[grp, k] = 0.0


@helper
def _units(c, n_blocks, n_chunk, N):
    """Blocks of chunk c, and how many of them make one unit of work (all passes
    of a unit run before the next unit starts): a single block when N == 1, so
    its data is still in cache for the next pass; the whole chunk when N > 1,
    so every pass walks rows in memory order over the chunk's columns (walking
    BatchNorm2d channel by channel, 4 KiB per row at power-of-two strides, is up
    to 3× slower: the prefetcher restarts on every page, cache sets collide)."""
    lo, hi = c * n_blocks // n_chunk, (c + 1) * n_blocks // n_chunk
    return lo, hi, (1 if N == 1 else max(hi - lo, 1))


# ----------------------------------------------------------------------- references

def _dims(x, weight, n_stats):
    N, P = x.shape
    G, K = weight.shape
    M = n_stats
    S = P // (M * K) if M * K else 0
    return N, M, K, S, G


def _ref_forward(x, weight, bias, ref_mean, ref_rstd, eps, center, scale, batch_stats, r_max, d_max,
                 n_chunk=1):
    # (the work split n_chunk does not change the result)
    N, M, K, S, G = _dims(x, weight, ref_mean.shape[0])
    x4 = x.astype(np.float64).reshape(N, M, K, S)
    axes = (0, 2, 3)
    if batch_stats:
        mean = x4.mean(axis=axes) if center else np.zeros(M)
        dev = x4 - mean[:, None, None]
        var = (dev ** 2).mean(axis=axes) if scale else np.full(M, np.nan)
        rstd = 1 / np.sqrt(var + eps) if scale else np.ones(M)
        r = np.ones(M) if (r_max == 1 or not scale) else np.clip(ref_rstd / rstd, 1 / r_max, r_max)
        d = np.zeros(M) if d_max == 0 else np.clip((mean - ref_mean) * ref_rstd, -d_max, d_max)
    else:
        mean, var, rstd = ref_mean.astype(np.float64), np.full(M, np.nan), ref_rstd.astype(np.float64)
        r, d = np.ones(M), np.zeros(M)
    w = np.tile(weight, (M // G, 1))[:, :, None]
    b = np.tile(bias, (M // G, 1))[:, :, None]
    xhat = (x4 - mean[:, None, None]) * (r * rstd)[:, None, None] + d[:, None, None]
    y = (w * xhat + b).reshape(N, -1).astype(x.dtype)
    return y, mean, var, rstd, r, d


def _example_forward(rng, dtype):
    # N=3 rows, M=4 statistics, K=2, S=3, G=2 groups of affine parameters.
    x = (rng.standard_normal((3, 24)) * 2 + 5).astype(dtype)
    weight = rng.uniform(0.5, 2, (2, 2)).astype(dtype)
    bias = rng.standard_normal((2, 2)).astype(dtype)
    return x, weight, bias, rng.uniform(4, 6, 4), rng.uniform(0.3, 0.8, 4)


def _ref_backward(g, x, weight, mean, rstd, r, d, center, scale, batch_stats, need_dx):
    N, M, K, S, G = _dims(x, weight, mean.shape[0])
    x4 = x.astype(np.float64).reshape(N, M, K, S)
    g4 = g.astype(np.float64).reshape(N, M, K, S)
    col = lambda v: v[:, None, None]  # noqa: E731  (per-m vector against (N, M, K, S))
    xb = (x4 - col(mean)) * col(rstd)
    h = g4 * np.tile(weight, (M // G, 1))[:, :, None]
    dx = h.copy()
    if batch_stats:
        if center:
            dx -= col(h.mean(axis=(0, 2, 3)))
        if scale:
            dx -= xb * col((h * xb).mean(axis=(0, 2, 3)))
    dx = (col(r * rstd) * dx).reshape(N, -1).astype(x.dtype)
    dw = (g4 * (col(r) * xb + col(d))).sum(axis=(0, 3)).reshape(M // G, G, K).sum(axis=0)
    db = g4.sum(axis=(0, 3)).reshape(M // G, G, K).sum(axis=0)
    return dx, dw[None], db[None]


def _example_backward(rng, dtype):
    x, weight, _, mean, rstd = _example_forward(rng, dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    return g, x, weight, mean, rstd, rng.uniform(0.5, 2, 4), rng.uniform(-1, 1, 4)


# -------------------------------------------------------------------------- forward
# Each kernel is a parallel loop over chunks; the chunk function holds the
# algorithm. NOTE: keeping the body out of the prange loop makes the parallel
# twin compile in a fraction of the time, and both twins share one compiled body.

@helper
def _layout(x, n_stats, weight):
    """(N, M, K, S, G, L) of the (N, M·K·S) view."""
    N, P = x.shape
    G, K = weight.shape
    L = P // n_stats if n_stats > 0 else 0
    return N, n_stats, K, (L // K if K > 0 else 0), G, L


@helper
def _forward_chunk(c, n_chunk, x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d,
                   eps, center, scale, batch_stats, r_max, d_max):
    N, M, K, S, G, L = _layout(x, mean.shape[0], weight)
    per_block, n_blocks = blocking(M, L)
    # NOTE: K > 1: a "row" of one element (BatchNorm1d on one sample, in eval) costs
    # ~170 ns per row here, the short-run path ~20 ns per statistic
    rows = N == 1 and S == 1 and K > 1   # LayerNorm, RMSNorm: no per-run scratch (see _row_statistics)
    cols = N > 1 and S == 1 and K == 1   # BatchNorm1d on (N, C): see _columns_forward
    # NOTE: for rows the scratch below is not allocated: 5 arrays per chunk cost
    # LayerNorm on 256×1024 about a tenth of its forward
    runs_max = 0 if rows else (1 if N == 1 else -(-n_blocks // n_chunk)) * per_block * K
    inv_count = 1.0 / (N * L) if N * L > 0 else math.nan
    sums = np.empty(runs_max)   # per run: Σ (x − shift), or Σ x, or Σ x²
    sums2 = np.empty(runs_max)  # per run: Σ (x − shift)²
    mu = np.empty(runs_max)     # per run: μ of its statistic
    a = np.empty(runs_max)      # per run: r·rstd·γ
    b = np.empty(runs_max)      # per run: γ·d + β
    pos = np.empty((3, runs_max * S if S < RUN_MIN and not cols else 0))   # short runs: per-position scratch
    lo, hi, unit = _units(c, n_blocks, n_chunk, N)
    for u0 in range(lo, hi, unit):
        u1 = min(hi, u0 + unit)
        m_lo, m_hi = u0 * per_block, min(M, u1 * per_block)
        if cols:
            _columns_forward(x, y, m_lo, m_hi, weight, bias, ref_mean, ref_rstd, mean, var, rstd, r, d,
                             eps, center, scale, batch_stats, r_max, d_max, inv_count, mu, sums, sums2, pos)
            continue
        if rows:
            # NOTE: the row helpers take row slices and scalars and return scalars; the
            # statistics arrays are written here. Passing them into an inlined helper
            # behind the flag branches left ~10 atomic reference-count updates per row
            # that numba could not prune (LayerNorm 256×1024: 76 µs instead of 58).
            for m in range(m_lo, m_hi):
                seg = x[0, m * K:(m + 1) * K]
                if batch_stats != 0.0:
                    mean[m], var[m], rstd[m] = _row_statistics(seg, center, scale, eps)
                    r[m], d[m] = _correction(mean[m], rstd[m], ref_mean[m], ref_rstd[m], scale, r_max, d_max)
                else:
                    mean[m], var[m], rstd[m], r[m], d[m] = ref_mean[m], math.nan, ref_rstd[m], 1.0, 0.0
                _row_affine(seg, y[0, m * K:(m + 1) * K], weight[m % G], bias[m % G],
                            mean[m], r[m] * rstd[m], d[m])
            continue
        # passes 1 and 2: the statistics
        if batch_stats != 0.0:
            _block_statistics(x, m_lo, m_hi, K, S, eps, center, scale, r_max, d_max,
                              ref_mean, ref_rstd, inv_count, mean, var, rstd, r, d, sums, sums2, mu, pos)
        else:
            for m in range(m_lo, m_hi):
                mean[m], var[m], rstd[m] = ref_mean[m], math.nan, ref_rstd[m]
                r[m], d[m] = 1.0, 0.0
        # pass 3: the output, with per-run scale and shift
        _per_run(mean, m_lo, m_hi, K, mu)
        q = 0
        grp = m_lo % G
        for m in range(m_lo, m_hi):
            f, dm = r[m] * rstd[m], d[m]
            if K == 1:  # NOTE: no inner loop for one run per statistic (see _backward_chunk)
                a[q] = f * weight[grp, 0]
                b[q] = weight[grp, 0] * dm + bias[grp, 0]
                q += 1
            else:
                for k in range(K):
                    a[q] = f * weight[grp, k]
                    b[q] = weight[grp, k] * dm + bias[grp, k]
                    q += 1
            grp = grp + 1 if grp + 1 < G else 0
        _affine(x, y, m_lo * L, (m_hi - m_lo) * K, S, mu, a, b)


@kernel(_ref_forward, n_in=5, n_out=6, scalars=(1e-5, 1.0, 1.0, 1.0, 1.5, 0.5, 3),
        reassociate=True, example=_example_forward)
def norm_forward(x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d,
                 eps, center, scale, batch_stats, r_max, d_max, n_chunk):
    """y = γ·(r·(x − μ)·rstd + d) + β on the (N, M·K·S) view; writes the statistics
    used (mean, var, rstd: length M, float64) and the Renorm correction r, d.
    var is nan where it was not computed (given statistics, or no scaling).
    n_chunk: the number of work units (n_chunks)."""
    for c in prange(n_chunk):
        _forward_chunk(c, n_chunk, x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d,
                       eps, center, scale, batch_stats, r_max, d_max)


# ------------------------------------------------------------------------- backward

@helper
def _backward_chunk(c, n_chunk, g, x, weight, mean, rstd, r, d, dx, dweight, dbias,
                    center, scale, batch_stats, need_dx):
    N, M, K, S, G, L = _layout(x, mean.shape[0], weight)
    per_block, n_blocks = blocking(M, L)
    rows = N == 1 and S == 1 and K > 1   # LayerNorm, RMSNorm: no per-run scratch (as in _forward_chunk)
    cols = N > 1 and S == 1 and K == 1   # BatchNorm1d on (N, C): see _columns_backward
    runs_max = 0 if rows else (1 if N == 1 else -(-n_blocks // n_chunk)) * per_block * K
    inv_count = 1.0 / (N * L) if N * L > 0 else math.nan
    with_mean = batch_stats != 0.0 and center != 0.0
    with_var = batch_stats != 0.0 and scale != 0.0
    T = x.dtype.type
    dweight[c] = 0.0
    dbias[c] = 0.0
    mu = np.empty(runs_max)      # per run: μ
    rs = np.empty(runs_max)      # per run: rstd
    sg = np.empty(runs_max)      # per run: Σ g
    sgx = np.empty(runs_max)     # per run: Σ g·x̂_B
    alpha = np.empty(runs_max)   # dx = alpha·g − beta − kappa·(x − μ)
    beta = np.empty(runs_max)
    kappa = np.empty(runs_max)
    pos = np.empty((3, runs_max * S if S < RUN_MIN else 0))   # short runs: per-position scratch
    # rows: dγ, dβ partials in the input's precision, added into float64 every FLUSH_ROWS rows
    tdw = np.zeros((G, K if rows else 0), x.dtype)
    tdb = np.zeros((G, K if rows else 0), x.dtype)
    rows_done = 0
    lo, hi, unit = _units(c, n_blocks, n_chunk, N)
    for u0 in range(lo, hi, unit):
        u1 = min(hi, u0 + unit)
        m_lo, m_hi = u0 * per_block, min(M, u1 * per_block)
        if cols:
            _columns_backward(g, x, dx, m_lo, m_hi, weight, mean, rstd, r, d, dweight[c], dbias[c],
                              inv_count, with_mean, with_var, need_dx, sg, sgx, pos)
            continue
        if rows:  # LayerNorm, RMSNorm: every pass over a row reads it from L1
            for m in range(m_lo, m_hi):
                row = slice(m * K, (m + 1) * K)
                grp = m % G
                mu_hi, mu_lo = _split(mean[m], T)
                rm, rsm = r[m], rstd[m]
                # dγ += g·(r·x̂ + d) with x̂ = (x − hi)·rstd − lo·rstd, μ = hi + lo
                h, hxc = _row_grad_sums(g[0, row], x[0, row], weight[grp], tdw[grp], tdb[grp],
                                        mu_hi, T(rm * rsm), T(d[m] - rm * rsm * mu_lo))
                if need_dx != 0.0:
                    # dx = f·γ·g − km·(x − hi) − (bm − km·lo), see the module docstring
                    f = rm * rsm
                    bm = f * h * inv_count if with_mean else 0.0
                    km = f * rsm * ((hxc - mu_lo * h) * rsm) * inv_count if with_var else 0.0  # Σ g·γ·x̂_B
                    _row_dx(g[0, row], x[0, row], dx[0, row], weight[grp], mu_hi, T(f), T(km),
                           T(bm - km * mu_lo))
                rows_done += 1
                if rows_done % FLUSH_ROWS == 0:
                    _flush(tdw, tdb, dweight[c], dbias[c])
            continue
        _per_run(mean, m_lo, m_hi, K, mu)
        _per_run(rstd, m_lo, m_hi, K, rs)
        # pass 1: Σ g and Σ g·x̂_B per run
        _grad_moments(g, x, m_lo * L, (m_hi - m_lo) * K, S, mu, rs, sg, sgx, pos)
        # per statistic: the dγ, dβ partials and the coefficients of dx
        # NOTE: one run per statistic (K == 1: BatchNorm, InstanceNorm) skips the inner
        # loops: LLVM sets each of them up for vectorising, which cost more than the
        # work (BatchNorm1d(1024) backward: 9 µs of this loop, 3 µs without them; measured
        # before (N, C) moved to the columns path, which (N, C, L) and InstanceNorm did not)
        dwc, dbc = dweight[c], dbias[c]
        q0 = 0
        grp = m_lo % G
        for m in range(m_lo, m_hi):
            rm, dm = r[m], d[m]
            if K == 1:
                h = weight[grp, 0] * sg[q0]     # Σ g·γ
                hx = weight[grp, 0] * sgx[q0]   # Σ g·γ·x̂_B
                dbc[grp, 0] += sg[q0]
                dwc[grp, 0] += rm * sgx[q0] + dm * sg[q0]
            else:
                h = 0.0
                hx = 0.0
                for k in range(K):
                    q = q0 + k
                    h += weight[grp, k] * sg[q]
                    hx += weight[grp, k] * sgx[q]
                    dbc[grp, k] += sg[q]
                    dwc[grp, k] += rm * sgx[q] + dm * sg[q]
            f = rm * rstd[m]
            bm = f * h * inv_count if with_mean else 0.0
            km = f * rstd[m] * hx * inv_count if with_var else 0.0
            if K == 1:
                alpha[q0], beta[q0], kappa[q0] = f * weight[grp, 0], bm, km
            else:
                for k in range(K):
                    alpha[q0 + k] = f * weight[grp, k]
                    beta[q0 + k] = bm
                    kappa[q0 + k] = km
            q0 += K
            grp = grp + 1 if grp + 1 < G else 0
        # pass 2: dx
        if need_dx != 0.0:
            _grad_affine(g, x, dx, m_lo * L, (m_hi - m_lo) * K, S, mu, alpha, beta, kappa)
    if rows:
        _flush(tdw, tdb, dweight[c], dbias[c])


@kernel(_ref_backward, n_in=7, n_out=3, scalars=(1.0, 1.0, 1.0, 1.0),
        reassociate=True, example=_example_backward)
def norm_backward(g, x, weight, mean, rstd, r, d, dx, dweight, dbias,
                  center, scale, batch_stats, need_dx):
    """dx (when need_dx) and one partial dγ, dβ per chunk: dweight[c], dbias[c]
    of shape (G, K), float64; the caller sums over c. See the module docstring."""
    n_chunk = dweight.shape[0]
    for c in prange(n_chunk):
        _backward_chunk(c, n_chunk, g, x, weight, mean, rstd, r, d, dx, dweight, dbias,
                        center, scale, batch_stats, need_dx)
