"""Columns: N > 1 and S == K == 1, BatchNorm1d on (N, C).

Statistic m is the column x[:, m], so runs, statistics and positions
coincide. Each pass is a short-run pass of blocks.py; what differs is ONE loop
over the statistics between them, where the block path has many small ones
(with thousands of statistics of one value each, their cost dominates).

    forward:   Σ (x − c), Σ (x − c)² per column (blocks.shifted_moments)
               one loop: μ, v, rstd, r, d and the output's coefficients
               y = (x − hi)·a + b (blocks.affine_positions)
    backward:  Σ g, Σ g·x̂_B per column (blocks.grad_moments)
               one loop: dγ, dβ and the coefficients of dx
               dx (blocks.grad_affine_positions)
"""
import numpy as np

from .blocks import affine_positions, grad_affine_positions, grad_moments, shifted_moments
from .common import batch_statistic, dx_coefficients, helper, split


@helper
def columns_forward(x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, opt, inv_count,
                    m0, m1):
    """Statistics m0..m1 (with batch statistics) and their columns of y."""
    T = y.dtype.type
    G = weight.shape[0]
    width = m1 - m0
    if opt.batch_stats != 0.0:
        shift = np.empty(width)   # per column: its first value (0 when not centering)
        sums = np.empty(width)
        sums2 = np.empty(width)
        for j in range(width):
            shift[j] = np.float64(x[0, m0 + j]) if opt.center != 0.0 else 0.0
        shifted_moments(x, m0, width, 1, shift, sums, sums2, np.empty((3, 0)))
        for j in range(width):
            m = m0 + j
            mean[m], var[m], rstd[m], r[m], d[m] = batch_statistic(sums[j], sums2[j], shift[j], inv_count,
                                                                   ref_mean[m], ref_rstd[m], opt)
    coef = np.empty((3, width), y.dtype)   # per column: hi, a, b − lo·a
    grp = m0 % G
    for j in range(width):
        m = m0 + j
        a = r[m] * rstd[m] * weight[grp, 0]
        hi, lo = split(mean[m], T)
        coef[0, j], coef[1, j], coef[2, j] = hi, T(a), T(weight[grp, 0] * d[m] + bias[grp, 0] - lo * a)
        grp = grp + 1 if grp + 1 < G else 0
    affine_positions(x, y, m0, coef)


@helper
def columns_backward(g, x, weight, mean, rstd, r, d, dx, dwc, dbc, opt, inv_count, need_dx, m0, m1):
    """dx of the columns m0..m1 (when need_dx) and their dγ, dβ added to the chunk's partials."""
    T = x.dtype.type
    G = weight.shape[0]
    width = m1 - m0
    sg = np.empty(width)    # per column: Σ g
    sgx = np.empty(width)   # per column: Σ g·x̂_B
    grad_moments(g, x, m0, width, 1, mean[m0:m1], rstd[m0:m1], sg, sgx, np.empty((3, width)))
    coef = np.empty((4, width), x.dtype)   # per column: hi, −kappa, lo·kappa − beta, alpha
    grp = m0 % G
    for j in range(width):
        m = m0 + j
        rm, w = r[m], weight[grp, 0]
        dbc[grp, 0] += sg[j]
        dwc[grp, 0] += rm * sgx[j] + d[m] * sg[j]
        f, bm, km = dx_coefficients(w * sg[j], w * sgx[j], rm, rstd[m], inv_count, opt)
        hi, lo = split(mean[m], T)
        coef[0, j], coef[1, j], coef[2, j], coef[3, j] = hi, T(-km), T(lo * km - bm), T(f * w)
        grp = grp + 1 if grp + 1 < G else 0
    if need_dx != 0.0:
        grad_affine_positions(g, x, dx, m0, coef)
