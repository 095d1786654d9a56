"""Rows: N == 1, S == 1, K > 1, LayerNorm and RMSNorm.

Statistic m is the contiguous row x[0, m·K:(m+1)·K] and the affine parameters
vary along it (the weight row). No per-run arrays are needed: every pass over
a row reads it from L1.

    forward:   per row, one pass for Σ (x − c), Σ (x − c)² (_row_sums), one for y
    backward:  per row, one pass for Σ g·γ, Σ g·γ·(x − hi) and the dγ, dβ
               partials (_row_grad_sums), one for dx

NOTE: the row helpers take row slices and scalars and return scalars; the
statistics arrays are written by rows_forward/rows_backward. Passing them into
an inlined helper behind the option branches left ~10 atomic reference-count
updates per row that numba could not prune (docs/engine.md, "Reference counts").
"""

import numpy as np

from .common import FLUSH, FLUSH_ROWS, batch_statistic, dx_coefficients, helper, inline_helper, split


@helper
def rows_forward(x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, opt, inv_count, m0, m1):
    """Rows m0..m1: their statistics (with batch statistics) and their part of y."""
    G, K = weight.shape
    for m in range(m0, m1):
        seg = x[0, m * K:(m + 1) * K]
        if opt.batch_stats != 0.0:
            c, s1, s2 = _row_sums(seg, opt.center)
            mean[m], var[m], rstd[m], r[m], d[m] = batch_statistic(s1, s2, c, inv_count,
                                                                   ref_mean[m], ref_rstd[m], opt)
        _row_affine(seg, y[0, m * K:(m + 1) * K], weight[m % G], bias[m % G],
                    mean[m], r[m] * rstd[m], d[m])


@helper
def rows_backward(g, x, weight, mean, rstd, r, d, dx, dwc, dbc, opt, inv_count, need_dx, m0, m1):
    """dx of rows m0..m1 (when need_dx) and their dγ, dβ added to the chunk's partials
    dwc, dbc (through T-precision partials flushed into them every FLUSH_ROWS rows)."""
    G, K = weight.shape
    T = x.dtype.type
    tdw = np.zeros((G, K), x.dtype)
    tdb = np.zeros((G, K), x.dtype)
    for m in range(m0, m1):
        row = slice(m * K, (m + 1) * K)
        grp = m % G
        mu_hi, mu_lo = split(mean[m], T)
        rm, rsm = r[m], rstd[m]
        # dγ += g·(r·x̂ + d) with x̂ = (x − hi)·rstd − lo·rstd, μ = hi + lo
        h, hxc = _row_grad_sums(g[0, row], x[0, row], weight[grp], tdw[grp], tdb[grp],
                                mu_hi, T(rm * rsm), T(d[m] - rm * rsm * mu_lo))
        if need_dx != 0.0:
            # Σ g·γ·x̂_B = (Σ g·γ·(x − hi) − lo·Σ g·γ)·rstd
            f, bm, km = dx_coefficients(h, (hxc - mu_lo * h) * rsm, rm, rsm, inv_count, opt)
            # dx = f·γ·g − km·(x − hi) − (bm − km·lo)
            _row_dx(g[0, row], x[0, row], dx[0, row], weight[grp], mu_hi, T(f), T(km), T(bm - km * mu_lo))
        if (m - m0 + 1) % FLUSH_ROWS == 0:
            _flush(tdw, tdb, dwc, dbc)
    _flush(tdw, tdb, dwc, dbc)


@inline_helper
def _row_sums(seg, center):
    """(c, Σ (x − c), Σ (x − c)²) of one row in float64, c its first value (0 when
    not centering): one pass (see common.batch_statistic)."""
    K = seg.shape[0]
    c = np.float64(seg[0]) if (center != 0.0 and K > 0) else 0.0
    s1 = 0.0
    s2 = 0.0
    for k in range(K):
        dev = np.float64(seg[k]) - c
        s1 += dev
        s2 += dev * dev
    return c, s1, s2


@inline_helper
def _row_affine(seg, out, w, bb, mu, f64, dd):
    """out = (seg − μ)·(f·γ) + (γ·d + β) in the input's precision T, computed as
    (x − hi)·(f·γ) + (γ·(d − lo·f) + β) (see common.split)."""
    T = out.dtype.type
    hi, lo = split(mu, T)
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
        # NOTE: block slices of the partials too: with whole-row partials the loop does not vectorise
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


@helper
def _flush(tdw, tdb, dw, db):
    """dw += tdw, db += tdb (float64 totals of working-precision partials), then zero the partials."""
    for grp in range(tdw.shape[0]):
        for k in range(tdw.shape[1]):
            dw[grp, k] += tdw[grp, k]
            db[grp, k] += tdb[grp, k]
            tdw[grp, k] = 0.0
            tdb[grp, k] = 0.0
