"""The general path: runs of S contiguous values (BatchNorm2d, BatchNorm1d on
(N, C, L), GroupNorm, InstanceNorm, and LayerNorm/BatchNorm shapes the other
two paths do not take).

A block is n_runs runs, one per (m, k), of S contiguous elements sharing μ,
rstd, γ and β, starting at column p0 of every row; per-run coefficients are
vectors of length n_runs. Consecutive m are grouped into blocks so that a row
segment x[n, block] has at least BLOCK contiguous elements (common.blocking).
Long runs (S >= RUN_MIN) are walked with scalar coefficients; short ones with
per-position copies of them (scratch `pos`: one row per vector), so every
inner loop is contiguous and vectorised.

    forward:   pass 1+2  the moments of every run (shifted_moments, or _moment)
               pass 3    y = (x − μ)·a + b per run (_affine)
    backward:  pass 1    Σ g and Σ g·x̂_B per run (grad_moments)
               pass 2    dx = α·g − β − κ·(x − μ) per run (_grad_affine)

columns.py reuses the short-run passes (S == 1).
"""

import numpy as np

from .common import FLUSH, FLUSH_ROWS, RUN_MIN, batch_statistic, dx_coefficients, helper, layout, split


# ------------------------------------------------------------------ the two chunks

@helper
def blocks_forward(x, weight, bias, ref_mean, ref_rstd, y, mean, var, rstd, r, d, opt, inv_count,
                   m_lo, m_hi, unit):
    """Statistics m_lo..m_hi (with batch statistics) and their part of y, `unit`
    statistics at a time: all passes over a unit run before the next starts."""
    N, M, K, S, G, L = layout(x, mean.shape[0], weight)
    runs = min(unit, m_hi - m_lo) * K
    sums = np.empty(runs)    # per run: Σ (x − shift), or Σ x, or Σ x²
    sums2 = np.empty(runs)   # per run: Σ (x − shift)²
    mu = np.empty(runs)      # per run: μ of its statistic
    a = np.empty(runs)       # per run: r·rstd·γ
    b = np.empty(runs)       # per run: γ·d + β
    pos = np.empty((3, runs * S if S < RUN_MIN else 0))   # short runs: per-position scratch
    for m0 in range(m_lo, m_hi, unit):
        m1 = min(m_hi, m0 + unit)
        if opt.batch_stats != 0.0:   # passes 1 and 2: the statistics
            _block_statistics(x, m0, m1, K, S, opt, ref_mean, ref_rstd, inv_count,
                              mean, var, rstd, r, d, sums, sums2, mu, pos)
        # pass 3: the output, with per-run scale and shift
        _per_run(mean, m0, m1, K, mu)
        q = 0
        grp = m0 % G
        for m in range(m0, m1):
            f, dm = r[m] * rstd[m], d[m]
            if K == 1:  # NOTE: no inner loop for one run per statistic (see blocks_backward)
                a[q] = f * weight[grp, 0]
                b[q] = weight[grp, 0] * dm + bias[grp, 0]
                q += 1
            else:
                for k in range(K):
                    a[q] = f * weight[grp, k]
                    b[q] = weight[grp, k] * dm + bias[grp, k]
                    q += 1
            grp = grp + 1 if grp + 1 < G else 0
        _affine(x, y, m0 * L, (m1 - m0) * K, S, mu, a, b)


@helper
def blocks_backward(g, x, weight, mean, rstd, r, d, dx, dwc, dbc, opt, inv_count, need_dx,
                    m_lo, m_hi, unit):
    """dx for statistics m_lo..m_hi (when need_dx) and their dγ, dβ added to the
    chunk's partials dwc, dbc, `unit` statistics at a time."""
    N, M, K, S, G, L = layout(x, mean.shape[0], weight)
    runs = min(unit, m_hi - m_lo) * K
    mu = np.empty(runs)      # per run: μ
    rs = np.empty(runs)      # per run: rstd
    sg = np.empty(runs)      # per run: Σ g
    sgx = np.empty(runs)     # per run: Σ g·x̂_B
    alpha = np.empty(runs)   # dx = alpha·g − beta − kappa·(x − μ)
    beta = np.empty(runs)
    kappa = np.empty(runs)
    pos = np.empty((3, runs * S if S < RUN_MIN else 0))   # short runs: per-position scratch
    for m0 in range(m_lo, m_hi, unit):
        m1 = min(m_hi, m0 + unit)
        _per_run(mean, m0, m1, K, mu)
        _per_run(rstd, m0, m1, K, rs)
        # pass 1: Σ g and Σ g·x̂_B per run
        grad_moments(g, x, m0 * L, (m1 - m0) * K, S, mu, rs, sg, sgx, pos)
        # per statistic: the dγ, dβ partials and the coefficients of dx
        # NOTE: one run per statistic (K == 1: BatchNorm, InstanceNorm) skips the inner
        # loops: LLVM sets each of them up for vectorising, which costs more than the work.
        q0 = 0
        grp = m0 % G
        for m in range(m0, m1):
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
            f, bm, km = dx_coefficients(h, hx, rm, rstd[m], inv_count, opt)
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
            _grad_affine(g, x, dx, m0 * L, (m1 - m0) * K, S, mu, alpha, beta, kappa)


@helper
def _block_statistics(x, m0, m1, K, S, opt, ref_mean, ref_rstd, inv_count, mean, var, rstd, r, d,
                      sums, sums2, mu, pos):
    """μ, v, rstd, r, d of statistics m0..m1 (common.batch_statistic) from one pass
    over their data: Σ (x − c) and Σ (x − c)² about each statistic's first value c
    (shifted_moments); the sum alone (mean-only), or Σ x² alone (RMSNorm).
    `sums`, `sums2`, `mu`: scratch of (m1 − m0)·K runs. Until the last loop,
    mean, var and rstd hold c, Σ (x − c) and Σ (x − c)²."""
    n_runs, p0 = (m1 - m0) * K, m0 * K * S
    if opt.center != 0.0 and opt.scale != 0.0:
        empty = x.shape[0] == 0 or K * S == 0
        for m in range(m0, m1):
            # the shift: a value of the statistic's own data (nothing to read when empty)
            mean[m] = 0.0 if empty else x[0, m * K * S]
        _per_run(mean, m0, m1, K, mu)
        shifted_moments(x, p0, n_runs, S, mu, sums, sums2, pos)
        _per_statistic(sums, m0, m1, K, var)
        _per_statistic(sums2, m0, m1, K, rstd)
    else:
        mean[m0:m1] = 0.0
        var[m0:m1] = 0.0
        rstd[m0:m1] = 0.0
        if opt.center != 0.0:      # mean only: Σ x
            _moment(x, p0, n_runs, S, mu, False, sums, pos)
            _per_statistic(sums, m0, m1, K, var)
        elif opt.scale != 0.0:     # RMSNorm: Σ x², about 0
            mu[:n_runs] = 0.0
            _moment(x, p0, n_runs, S, mu, True, sums, pos)
            _per_statistic(sums, m0, m1, K, rstd)
    for m in range(m0, m1):
        mean[m], var[m], rstd[m], r[m], d[m] = batch_statistic(var[m], rstd[m], mean[m], inv_count,
                                                               ref_mean[m], ref_rstd[m], opt)


# ------------------------------------------------------------------------ the passes

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
        hi, lo = split(shift[q], T)
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
def shifted_moments(x, p0, n_runs, S, c, out, out2, pos):
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
    # per four rows, not once per row
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
                hi, lo = split(mu[q], T)
                aq, bq = T(a[q]), T(b[q] - lo * a[q])
                for s in range(S):
                    dst[s] = (seg[s] - hi) * aq + bq
        return
    coef = np.empty((3, width), x.dtype)  # per position: hi, a, b − lo·a
    _per_position_affine(mu, a, b, n_runs, S, T, coef)
    affine_positions(x, y, p0, coef)


@helper
def affine_positions(x, y, p0, coef):
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
def grad_moments(g, x, p0, n_runs, S, mu, rs, sg, sgx, pos):
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
                hi, lo = split(mu[q], T)
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
        hi, lo = split(mu[q], T)
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
        for n in range(n0, n4, 4):  # four rows per sweep, as in shifted_moments
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
                hi, lo = split(mu[q], T)
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
    grad_affine_positions(g, x, dx, p0, coef)


@helper
def grad_affine_positions(g, x, dx, p0, coef):
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
def _per_statistic(run_sums, m0, m1, K, out):
    """out[m] = Σ_k run_sums[(m − m0)·K + k]."""
    q = 0
    for m in range(m0, m1):
        t = 0.0
        for _ in range(K):
            t += run_sums[q]
            q += 1
        out[m] = t


