"""Convolution and pooling kernels (numba), forward and backward.

Convolution is im2col + one BLAS matmul per group (done by the caller):

    im2col   x (N, C, H, W)  ->  cols (C, kh, kw, N, Ho, Wo)
             cols[c, i, j, n, oh, ow] = x[n, c, oh·sh − ph + i·dh, ow·sw − pw + j·dw]
             (0 where that position falls in the zero padding)
    col2im   the adjoint: scatter-add cols back into an (N, C, H, W) gradient.

The cols layout puts (c, i, j) first, so that `cols.reshape(groups, C/groups·kh·kw,
N·Ho·Wo)` is the right-hand side of one matmul per group, with no transpose.

Pooling kernels work on planes: x (P, H, W) with P = N·C; each plane is
independent, so the outer `prange` runs over planes and backward kernels
scatter-add without races (overlapping windows accumulate correctly).

Every kernel carries a plain-numpy reference (slicing and np.add.at; the tests
also compare with an explicit loop implementation).
"""
import numpy as np

from .jit import device, kernel, prange


# ----------------------------------------------------------------- output sizes

def conv_output_size(size, k, stride, pad, dilation):
    """⌊(size + 2·pad − dilation·(k − 1) − 1) / stride⌋ + 1"""
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def pool_output_size(size, k, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling_output_shape: like conv, optionally rounding up, but the
    last window must start inside the input or the left padding."""
    span = size + 2 * pad - dilation * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


# ------------------------------------------------------------------- im2col

def _ref_im2col(x, kh, kw, sh, sw, ph, pw, dh, dw):
    N, C, H, W = x.shape
    Ho = conv_output_size(H, kh, sh, ph, dh)
    Wo = conv_output_size(W, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((C, kh, kw, N, Ho, Wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh, j * dw: j * dw + sw * (Wo - 1) + 1: sw]
            cols[:, i, j] = patch.transpose(1, 0, 2, 3)
    return cols


def _example_x(rng, dtype):
    return (rng.standard_normal((2, 3, 7, 6)).astype(dtype),)


# example scalars: kh, kw, sh, sw, ph, pw, dh, dw (asymmetric on purpose)
_CONV_SCALARS = (3, 2, 2, 1, 1, 2, 1, 2)


@kernel(_ref_im2col, scalars=_CONV_SCALARS, example=_example_x)
def im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw):
    """cols[c, i, j, n, oh, ow] = x[n, c, oh·sh − ph + i·dh, ow·sw − pw + j·dw] or 0."""
    N, C, H, W = x.shape
    Ho, Wo = cols.shape[4], cols.shape[5]
    for r in prange(C * kh * kw):
        c, i, j = r // (kh * kw), (r // kw) % kh, r % kw
        off_w = j * dw - pw
        # output columns whose input column is inside the image: [lo, hi)
        lo = max(0, -(off_w // sw))
        hi = 0 if W - 1 - off_w < 0 else min(Wo, (W - 1 - off_w) // sw + 1)
        lo = min(lo, hi)
        for n in range(N):
            src, dst = x[n, c], cols[c, i, j, n]
            for oh in range(Ho):
                h = oh * sh - ph + i * dh
                row = dst[oh]
                if h < 0 or h >= H:  # a row of padding
                    row[:] = 0.0
                    continue
                row[:lo] = 0.0
                if sw == 1:  # NOTE: a contiguous slice copy (vectorised) in the common case
                    row[lo:hi] = src[h, lo + off_w:hi + off_w]
                else:
                    for ow in range(lo, hi):
                        row[ow] = src[h, ow * sw + off_w]
                row[hi:] = 0.0


def _ref_col2im(cols, H, W, sh, sw, ph, pw, dh, dw):
    C, kh, kw, N, Ho, Wo = cols.shape
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh,
                j * dw: j * dw + sw * (Wo - 1) + 1: sw] += cols[:, i, j].transpose(1, 0, 2, 3)
    return dxp[:, :, ph: ph + H, pw: pw + W]


def _example_cols(rng, dtype):
    x, = _example_x(rng, np.float64)
    return (_ref_im2col(x, *_CONV_SCALARS).astype(dtype),)


@kernel(_ref_col2im, scalars=(7, 6) + _CONV_SCALARS[2:], example=_example_cols)
def col2im(cols, dx, H, W, sh, sw, ph, pw, dh, dw):
    """The adjoint of im2col: dx[n, c, h, w] = Σ of the cols entries that read x[n, c, h, w].
    (H, W are dx's spatial size, also read from dx.shape.)"""
    C, kh, kw, N, Ho, Wo = cols.shape
    H, W = dx.shape[2], dx.shape[3]
    for p in prange(N * C):  # each (n, c) plane is written by one thread: no races
        n, c = p // C, p % C
        plane = dx[n, c]
        plane[:, :] = 0.0
        for i in range(kh):
            for j in range(kw):
                off_w = j * dw - pw
                lo = max(0, -(off_w // sw))
                hi = 0 if W - 1 - off_w < 0 else min(Wo, (W - 1 - off_w) // sw + 1)
                lo = min(lo, hi)
                src = cols[c, i, j, n]
                for oh in range(Ho):
                    h = oh * sh - ph + i * dh
                    if h < 0 or h >= H:
                        continue
                    if sw == 1:  # a unit-stride loop LLVM can vectorise
                        for ow in range(lo, hi):
                            plane[h, ow + off_w] += src[oh, ow]
                    else:
                        for ow in range(lo, hi):
                            plane[h, ow * sw + off_w] += src[oh, ow]


# ------------------------------------------------------- layout of the matmuls
# The matmuls of im2col convolution work on (channels, N·P) matrices (P = Ho·Wo);
# activations and gradients are NCHW, (N, channels, P). These two passes move
# between the layouts and fold the per-channel work (bias, its gradient) in.

def _ref_channels_to_batch(src, bias):
    return np.ascontiguousarray((src + bias[:, None, None]).transpose(1, 0, 2))


@kernel(_ref_channels_to_batch, n_in=2, example=lambda rng, dt: (
        rng.standard_normal((3, 4, 5)).astype(dt), rng.standard_normal(3).astype(dt)))
def channels_to_batch(src, bias, dst):
    """dst[n, o, p] = src[o, n, p] + bias[o]: a matmul's (O, N·P) output to NCHW, plus the bias."""
    O, N, P = src.shape
    for r in prange(N * O):
        n, o = r // O, r % O
        b = bias[o]
        for p in range(P):
            dst[n, o, p] = src[o, n, p] + b


def _ref_batch_to_channels(g):
    return np.ascontiguousarray(g.transpose(1, 0, 2)), g.astype(np.float64).sum(axis=(0, 2))


@kernel(_ref_batch_to_channels, n_out=2, reassociate=True,
        example=lambda rng, dt: (rng.standard_normal((4, 3, 5)).astype(dt),))
def batch_to_channels(g, dst, db):
    """dst[o, n, p] = g[n, o, p] and db[o] = Σ_{n,p} g[n, o, p] (in float64):
    an NCHW gradient to the (O, N·P) layout of the matmuls, with the bias's
    gradient from the same pass."""
    N, O, P = g.shape
    for o in prange(O):
        s = 0.0
        for n in range(N):
            for p in range(P):
                v = g[n, o, p]
                dst[o, n, p] = v
                s += v
        db[o] = s


# ------------------------------------------------------------------ max pooling

def _example_planes(rng, dtype):
    # rounded values make ties frequent: the first maximum must win
    return (np.round(rng.standard_normal((3, 7, 8)) * 2).astype(dtype),)


# example scalars: kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode (overlapping windows)
_POOL_SCALARS = (3, 2, 2, 1, 1, 1, 1, 2, 1)


def _ref_max_pool2d(x, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode):
    P, H, W = x.shape
    Ho = pool_output_size(H, kh, sh, ph, dh, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, dw, ceil_mode)
    out = np.empty((P, Ho, Wo), x.dtype)
    idx = np.empty((P, Ho, Wo), np.int64)
    for oh in range(Ho):
        for ow in range(Wo):
            hs = [oh * sh - ph + i * dh for i in range(kh)]
            ws = [ow * sw - pw + j * dw for j in range(kw)]
            flat = [h * W + w for h in hs for w in ws if 0 <= h < H and 0 <= w < W]
            window = x.reshape(P, H * W)[:, flat]
            k = np.argmax(window, axis=1)  # first maximum, as PyTorch
            out[:, oh, ow] = window[np.arange(P), k]
            idx[:, oh, ow] = np.asarray(flat)[k]
    return out, idx


@kernel(_ref_max_pool2d, n_out=2, scalars=_POOL_SCALARS, example=_example_planes)
def max_pool2d(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode):
    """out = max over each (dilated) window, idx = flat index h·W + w of the
    *first* maximum (padding is −∞; nan wins, as in PyTorch). The output size
    comes from out.shape (ceil_mode only matters to the reference)."""
    P, H, W = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    if kh == sh and kw == sw and ph == 0 and pw == 0 and dh == 1 and dw == 1 \
            and Ho * kh <= H and Wo * kw <= W:
        # NOTE: non-overlapping windows inside the input (MaxPool2d(2) and the like):
        # no bounds to test (1.5x faster on 4096 planes of 28x28, MaxPool2d(2)).
        for p in prange(P):
            for oh in range(Ho):
                for ow in range(Wo):
                    h0, w0 = oh * kh, ow * kw
                    best = x[p, h0, w0]
                    at = h0 * W + w0
                    for i in range(kh):
                        for j in range(kw):
                            v = x[p, h0 + i, w0 + j]
                            if v > best or (v != v and best == best):
                                best, at = v, (h0 + i) * W + w0 + j
                    out[p, oh, ow] = best
                    idx[p, oh, ow] = at
        return
    for p in prange(P):
        for oh in range(Ho):
            for ow in range(Wo):
                best = -np.inf
                at = -1
                for i in range(kh):
                    h = oh * sh - ph + i * dh
                    if h < 0 or h >= H:
                        continue
                    for j in range(kw):
                        w = ow * sw - pw + j * dw
                        if w < 0 or w >= W:
                            continue
                        v = x[p, h, w]
                        # NOTE: strict '>' keeps the first of equal maxima.
                        if at < 0 or v > best or (v != v and best == best):
                            best, at = v, h * W + w
                out[p, oh, ow] = best
                idx[p, oh, ow] = at


def _ref_max_pool2d_backward(g, idx, H, W):
    P = g.shape[0]
    dx = np.zeros((P, H * W), g.dtype)
    np.add.at(dx, (np.arange(P)[:, None], idx.reshape(P, -1)), g.reshape(P, -1))
    return dx.reshape(P, H, W)


def _example_max_backward(rng, dtype):
    x, = _example_planes(rng, dtype)
    _, idx = _ref_max_pool2d(x, *_POOL_SCALARS)
    return rng.standard_normal(idx.shape).astype(dtype), idx


@kernel(_ref_max_pool2d_backward, n_in=2, scalars=(7, 8), example=_example_max_backward)
def max_pool2d_backward(g, idx, dx, H, W):
    """dx[p, idx] += g: each output's gradient goes to its argmax; windows that
    overlap and share an argmax add up. (H, W are also read from dx.shape.)"""
    P, Ho, Wo = g.shape
    W = dx.shape[2]
    for p in prange(P):
        dx[p, :, :] = 0.0
        for oh in range(Ho):
            for ow in range(Wo):
                k = idx[p, oh, ow]
                if k >= 0:  # -1 only for a window entirely in the padding
                    dx[p, k // W, k % W] += g[p, oh, ow]


# ------------------------------------------------------------------ avg pooling

# example scalars: kh, kw, sh, sw, ph, pw, ceil_mode, count_include_pad, divisor_override
_AVG_SCALARS = (3, 2, 2, 1, 1, 1, 1, 0, 0)


@device(inline=True)
def _avg_window(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    """(h0, h1, w0, w1, divisor) of output (oh, ow), as in PyTorch's CPU kernel: the
    window clipped to the input, and the divisor that counts the zero padding inside
    it (count_include_pad; never the part of a ceil_mode window past the padding),
    only the input elements, or divisor_override when non-zero."""
    h0, w0 = oh * sh - ph, ow * sw - pw
    h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
    pool_size = (h1 - h0) * (w1 - w0)
    h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
    if divisor_override:
        div = divisor_override
    elif count_include_pad:
        div = pool_size
    else:
        div = (h1 - h0) * (w1 - w0)
    return h0, h1, w0, w1, div


def _avg_windows(H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    """For each output position: (oh, ow, h0, h1, w0, w1, divisor) (see _avg_window)."""
    for oh in range(Ho):
        for ow in range(Wo):
            yield (oh, ow) + tuple(_avg_window(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad,
                                               divisor_override))


def _ref_avg_pool2d(x, kh, kw, sh, sw, ph, pw, ceil_mode, count_include_pad, divisor_override):
    P, H, W = x.shape
    Ho = pool_output_size(H, kh, sh, ph, 1, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, 1, ceil_mode)
    out = np.empty((P, Ho, Wo), x.dtype)
    for oh, ow, h0, h1, w0, w1, div in _avg_windows(H, W, Ho, Wo, kh, kw, sh, sw, ph, pw,
                                                    count_include_pad, divisor_override):
        out[:, oh, ow] = x[:, h0:h1, w0:w1].sum(axis=(1, 2)) / div
    return out


@kernel(_ref_avg_pool2d, scalars=_AVG_SCALARS, example=_example_planes)
def avg_pool2d(x, out, kh, kw, sh, sw, ph, pw, ceil_mode, count_include_pad, divisor_override):
    """out = Σ window / divisor; the divisor counts the zero padding inside the
    window when count_include_pad (never the part of a ceil_mode window that
    hangs past the padding), or is divisor_override when non-zero."""
    P, H, W = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for p in prange(P):
        for oh in range(Ho):
            for ow in range(Wo):
                h0, h1, w0, w1, div = _avg_window(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad,
                                                  divisor_override)
                s = 0.0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        s += x[p, h, w]
                out[p, oh, ow] = s / div


def _ref_avg_pool2d_backward(g, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    P, Ho, Wo = g.shape
    dx = np.zeros((P, H, W), g.dtype)
    for oh, ow, h0, h1, w0, w1, div in _avg_windows(H, W, Ho, Wo, kh, kw, sh, sw, ph, pw,
                                                    count_include_pad, divisor_override):
        dx[:, h0:h1, w0:w1] += (g[:, oh, ow] / div)[:, None, None]
    return dx


def _example_avg_backward(rng, dtype):
    x, = _example_planes(rng, np.float64)
    out = _ref_avg_pool2d(x, *_AVG_SCALARS)
    return (rng.standard_normal(out.shape).astype(dtype),)


@kernel(_ref_avg_pool2d_backward, scalars=(7, 8) + _AVG_SCALARS[:6] + _AVG_SCALARS[7:],
        example=_example_avg_backward)
def avg_pool2d_backward(g, dx, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    """dx[window] += g / divisor for every window (overlaps accumulate)."""
    P, Ho, Wo = g.shape
    H, W = dx.shape[1], dx.shape[2]
    for p in prange(P):
        dx[p, :, :] = 0.0
        for oh in range(Ho):
            for ow in range(Wo):
                h0, h1, w0, w1, div = _avg_window(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad,
                                                  divisor_override)
                share = g[p, oh, ow] / div
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        dx[p, h, w] += share


# --------------------------------------------------------- adaptive avg pooling
# Output cell o of n_out over an input of size n covers [⌊o·n/n_out⌋, ⌈(o+1)·n/n_out⌉).

def _ref_adaptive_avg_pool2d(x, Ho, Wo):
    P, H, W = x.shape
    out = np.empty((P, Ho, Wo), x.dtype)
    for oh in range(Ho):
        h0, h1 = (oh * H) // Ho, -((-(oh + 1) * H) // Ho)
        for ow in range(Wo):
            w0, w1 = (ow * W) // Wo, -((-(ow + 1) * W) // Wo)
            out[:, oh, ow] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


@kernel(_ref_adaptive_avg_pool2d, scalars=(3, 5), example=_example_planes)
def adaptive_avg_pool2d(x, out, Ho, Wo):
    """out[oh, ow] = mean of x over rows [⌊oh·H/Ho⌋, ⌈(oh+1)·H/Ho⌉) and the same for columns."""
    P, H, W = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for p in prange(P):
        for oh in range(Ho):
            h0, h1 = (oh * H) // Ho, ((oh + 1) * H + Ho - 1) // Ho
            for ow in range(Wo):
                w0, w1 = (ow * W) // Wo, ((ow + 1) * W + Wo - 1) // Wo
                s = 0.0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        s += x[p, h, w]
                out[p, oh, ow] = s / ((h1 - h0) * (w1 - w0))


def _ref_adaptive_avg_pool2d_backward(g, H, W):
    P, Ho, Wo = g.shape
    dx = np.zeros((P, H, W), g.dtype)
    for oh in range(Ho):
        h0, h1 = (oh * H) // Ho, -((-(oh + 1) * H) // Ho)
        for ow in range(Wo):
            w0, w1 = (ow * W) // Wo, -((-(ow + 1) * W) // Wo)
            dx[:, h0:h1, w0:w1] += (g[:, oh, ow] / ((h1 - h0) * (w1 - w0)))[:, None, None]
    return dx


@kernel(_ref_adaptive_avg_pool2d_backward, scalars=(7, 8),
        example=lambda rng, dt: (rng.standard_normal((3, 3, 5)).astype(dt),))
def adaptive_avg_pool2d_backward(g, dx, H, W):
    """dx[cell] += g / |cell| for every output cell (cells may overlap)."""
    P, Ho, Wo = g.shape
    H, W = dx.shape[1], dx.shape[2]
    for p in prange(P):
        dx[p, :, :] = 0.0
        for oh in range(Ho):
            h0, h1 = (oh * H) // Ho, ((oh + 1) * H + Ho - 1) // Ho
            for ow in range(Wo):
                w0, w1 = (ow * W) // Wo, ((ow + 1) * W + Wo - 1) // Wo
                share = g[p, oh, ow] / ((h1 - h0) * (w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        dx[p, h, w] += share
