"""What the three paths share: sizes, precision helpers, and the per-statistic formulas.

Each formula of reference.py that is not a loop over data lives here, once:
the statistics from float64 sums (`batch_statistic`: μ, v, rstd and Batch
Renorm's r, d) and the coefficients of dx (`dx_coefficients`).

Precision. Statistics are accumulated in float64 (float32 inputs too).
Elementwise work runs in the input's precision T (16 float32 lanes per
AVX-512 vector instead of 8 float64): μ is split as hi + lo with hi = T(μ),
x − hi is exact or within one rounding, and lo is folded into a per-run
constant (`split`), so float32 keeps the float64 centring. The backward's
sums add T-precision partials of FLUSH elements (or FLUSH_ROWS rows) into
float64.
"""
import math

import numpy as np

from ..jit import device

BLOCK = 256       # a block of statistics spans at least this many positions per row
RUN_MIN = 16      # runs at least this long use scalar coefficients (blocks.py)
MAX_CHUNKS = 16   # parallel work units (also the number of partial dγ/dβ rows)
FLUSH = 256       # T-precision partial sums are added into float64 every FLUSH elements
FLUSH_ROWS = 16   # ... or every FLUSH_ROWS rows (short runs)

# NOTE: helpers (`@helper`: numba functions called from the kernels, compiled when
# the first kernel is built) are compiled on their own, so they need the kernels'
# `reassoc` flag themselves (without it every running sum is a serial chain).
helper = device(reassociate=True)
# Small helpers called once per row or per statistic: inlined into their callers
inline_helper = device(reassociate=True, inline=True)


@device
def blocking(M, L):
    """(statistics per block, number of blocks) for M statistics of L positions per row."""
    per_block = max(1, min(M, -(-BLOCK // max(L, 1))))
    return per_block, (M + per_block - 1) // per_block


@inline_helper
def rsqrt(v):
    # NOTE: explicit, whatever numba's error model: 1/√0 = inf, 1/√(negative) = nan.
    if v > 0.0:
        return 1.0 / math.sqrt(v)
    return math.inf if v == 0.0 else math.nan


@inline_helper
def split(v, T):
    """v (float64) as hi + lo in the working precision T, hi = T(v). NOTE: the
    elementwise loops compute x − v as (x − hi), exact or within one rounding,
    and fold lo into a per-run constant. A second subtraction `(x − hi) − lo`
    in the loop would not survive `reassoc`."""
    hi = T(v)
    return hi, v - np.float64(hi)


@inline_helper
def batch_statistic(s1, s2, c, inv_count, ref_mu, ref_rs, opt):
    """(μ, v, rstd, r, d) of one statistic from the float64 sums s1 = Σ (x − c) and
    s2 = Σ (x − c)² of its values, inv_count = 1/their number.

    c is a value of the statistic's own data (0 when not centering), so
    v = mean(d²) − mean(d)² cancels only what |μ − c| adds: a 1e5 offset costs
    nothing, a constant channel gives exactly 0. Without centering μ = 0 and v
    is the mean square; without scaling v = nan and rstd = 1. r, d: Batch
    Renorm's correction against the reference (ref_mu, ref_rs), exactly (1, 0)
    when r_max == 1 and d_max == 0 (every layer but BatchRenorm)."""
    md = s1 * inv_count
    mu = c + md if opt.center != 0.0 else 0.0
    if opt.scale == 0.0:
        v, rs = math.nan, 1.0
    else:
        v = max(s2 * inv_count - md * md, 0.0) if opt.center != 0.0 else s2 * inv_count
        rs = rsqrt(v + opt.eps)
    r = 1.0
    if opt.r_max != 1.0 and opt.scale != 0.0:
        r = min(max(ref_rs / rs, 1.0 / opt.r_max), opt.r_max)
    d = 0.0
    if opt.d_max != 0.0:
        d = min(max((mu - ref_mu) * ref_rs, -opt.d_max), opt.d_max)
    return mu, v, rs, r, d


@inline_helper
def dx_coefficients(h, hx, r, rs, inv_count, opt):
    """(f, b, k) with dx = f·γ·g − b − k·(x − μ) for one statistic (reference.backward),
    from h = Σ g·γ and hx = Σ g·γ·x̂_B over its values: f = r·rstd,
    b = f·mean(h) (batch statistics, centering), k = f·rstd·mean(h·x̂_B)
    (batch statistics, scaling); b = k = 0 for given statistics."""
    f = r * rs
    b = f * h * inv_count if opt.batch_stats != 0.0 and opt.center != 0.0 else 0.0
    k = f * rs * hx * inv_count if opt.batch_stats != 0.0 and opt.scale != 0.0 else 0.0
    return f, b, k


@device
def layout(x, n_stats, weight):
    """(N, M, K, S, G, L) of the (N, M·K·S) view x with M = n_stats statistics
    and a (G, K) weight; L = K·S positions per statistic and row."""
    N, P = x.shape
    G, K = weight.shape
    L = P // n_stats if n_stats > 0 else 0
    return N, n_stats, K, (L // K if K > 0 else 0), G, L
