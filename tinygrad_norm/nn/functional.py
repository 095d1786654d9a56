"""`tinygrad_norm.nn.functional` (import as F): the stateless form of every layer.

    import tinygrad_norm.nn.functional as F
    y = F.conv2d(x, weight, bias, stride=1, padding=1)
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)

Signatures, defaults and numerics are PyTorch's. This file has two layers:
the autograd `Function`s that are new here (linear, conv, pooling, softmax,
nll, dropout; each backward right under its forward, on the numba kernels of
kernels/conv.py and kernels/softmax.py plus BLAS matmuls), and the public
functions, which validate their arguments (errors name the shapes) and
dispatch. Activations reuse the Functions of ops.py; losses built from those
pieces (label smoothing, probability targets, MSE) are compositions.

Sections: activations · softmax · linear · convolution · pooling · dropout ·
losses · normalization (see the marked spot).
"""
import threading
import warnings

import numpy as np

from .. import ops
from ..kernels import conv as CK
from ..kernels import elementwise as K
from ..kernels import threads as TH
from ..ops import reduce_sum, run
from ..tensor import FLOAT_DTYPES, Function, Tensor

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax", "linear",
           "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "dropout",
           "cross_entropy", "nll_loss", "mse_loss"]


def _check_float(x, fname):
    if x.dtype not in FLOAT_DTYPES:
        raise RuntimeError(f"{fname}: expected a floating point input (float32 or float64), "
                           f"got dtype {x.dtype}; cast it with .float()")


def _tuple(value, n, name):
    """An int or a sequence of n ints -> a tuple of n ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value}")
    return value


# ==================================================================== activations
# The Functions live in ops.py (one fused numba kernel each way).
# NOTE: `inplace=True` is accepted for porting but returns a new tensor: an
# in-place op would break the saved values that backward needs.

def relu(input, inplace=False):
    """max(x, 0) elementwise (see nn.ReLU)."""
    return ops.Relu.apply(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x if x > 0 else negative_slope·x (see nn.LeakyReLU)."""
    return ops.LeakyRelu.apply(input, slope=float(negative_slope))


def sigmoid(input):
    """1 / (1 + e⁻ˣ) (see nn.Sigmoid)."""
    return ops.Sigmoid.apply(input)


def tanh(input):
    """tanh x (see nn.Tanh)."""
    return ops.Tanh.apply(input)


def gelu(input, approximate="none"):
    """x·Φ(x), or PyTorch's tanh approximation with approximate='tanh' (see nn.GELU)."""
    return ops.Gelu.apply(input, approximate=approximate)


# ======================================================================= softmax

# The Function is ops.Softmax (below nn: Tensor.softmax needs it too).
Softmax = ops.Softmax


def _softmax_dim(ndim):
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the call to "
                  "include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax(input, dim, dtype, log):
    if dtype is not None:
        input = input.type(dtype)
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return ops.softmax(input, dim, log)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """e^x / Σ e^x along `dim`, computed stably in one fused kernel (see nn.Softmax)."""
    return _softmax(input, dim, dtype, log=False)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x − log Σ e^x along `dim`, stable and fused (see nn.LogSoftmax)."""
    return _softmax(input, dim, dtype, log=True)


# ======================================================================== linear

class Linear(Function):
    """y = x Wᵀ + b for x (*, in), W (out, in), b (out,);
    dx = g W,  dW = Σ gᵀ x  and  db = Σ g  over all leading dims.  BLAS."""
    name = "linear"

    def forward(self, x, w, b=None):
        self.x_shape = x.shape
        self.x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        self.w = w
        # NOTE: OpenBLAS multiplies by a C-contiguous Wᵀ 1.3-1.6x faster than by the
        # transposed view (60×100 @ 100×100: 12 vs 18 µs); the copy pays for itself
        # on small weights (3 µs for 100×100), not on large ones (26 µs for 100×784).
        y = np.matmul(self.x2, np.ascontiguousarray(w.T) if w.size <= 1 << 14 else w.T)
        if b is not None:
            y += b
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, g):
        g2 = g if g.ndim == 2 else g.reshape(-1, self.w.shape[0])
        dx = None
        if self.needs_input_grad[0]:
            dx = np.matmul(g2, self.w)
            dx = dx if len(self.x_shape) == 2 else dx.reshape(self.x_shape)
        dw = np.matmul(g2.T, self.x2) if self.needs_input_grad[1] else None
        if len(self.needs_input_grad) == 2:
            return dx, dw
        db = reduce_sum(g2, (0,)) if self.needs_input_grad[2] else None
        return dx, dw, db


def _check_same_dtype(fname, **tensors):
    for name, t in tensors.items():
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{fname}(): argument '{name}' must be Tensor, not "
                            f"{type(t).__module__}.{type(t).__name__}; wrap arrays with tn.tensor(x)")
    dtypes = {name: t.dtype for name, t in tensors.items() if t is not None}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} {dt}" for name, dt in dtypes.items())
        raise RuntimeError(f"{fname}: expected input, weight and bias to have the same dtype, got "
                           f"{listed}; convert the input (x.float() / x.double()) or the module "
                           f"(model.float() / model.double())")


def linear(input, weight, bias=None):
    """y = x Wᵀ + b (see nn.Linear). input (*, in_features), weight (out_features,
    in_features), bias (out_features,)."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor) or not isinstance(bias, (Tensor, type(None))):
        _check_same_dtype("linear", input=input, weight=weight, bias=bias)   # names a non-Tensor argument
    x, w = input._data, weight._data
    # NOTE: the checks read the arrays directly (Tensor properties cost ~0.1 µs each,
    # and this runs on every layer of every step); the messages are built only to raise.
    if w.dtype != x.dtype or (bias is not None and bias._data.dtype != x.dtype):
        _check_same_dtype("linear", input=input, weight=weight, bias=bias)
    if x.dtype not in FLOAT_DTYPES:
        _check_float(input, "linear")
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise RuntimeError(f"linear: input of shape {input.shape} cannot be multiplied with weight "
                           f"of shape {weight.shape} (expected the input's last dim to be "
                           f"{weight.shape[1] if weight.ndim == 2 else '?'})")
    if bias is not None and bias._data.shape != (w.shape[0],):
        raise RuntimeError(f"linear: bias of shape {bias.shape} does not match the "
                           f"{weight.shape[0]} output features of weight {weight.shape}")
    return Linear.apply(input, weight) if bias is None else Linear.apply(input, weight, bias)


# =================================================================== convolution

class Conv(Function):
    """Cross-correlation, as in PyTorch (no kernel flip), via im2col + BLAS:

        cols = im2col(x)                  (C·kh·kw, N·Ho·Wo), one block per group
        y    = W_g @ cols_g  (+ b)         per group g
        dW_g = g_g @ cols_gᵀ,  db = Σ g
        dx   = correlation of g with W flipped, channels swapped   (stride 1)
             = col2im(W_gᵀ @ g_g)                                  (otherwise)

    x (N, C, H, W), W (O, C/groups, kh, kw); a 1-d conv is the same with H = kh = 1.
    `padding` is (top, bottom, left, right), so "same" with an even kernel works.
    The matmuls work on (channels, N·Ho·Wo) matrices; `channels_to_batch` and
    `batch_to_channels` move results and gradients to and from NCHW, adding the
    bias and summing its gradient on the way.

    NOTE: with stride 1, dx is im2col of g and one matmul (C, O·kh·kw) @
    (O·kh·kw, N·H·W). The col2im way multiplies (C·kh·kw, O) @ (O, N·Ho·Wo),
    whose inner dimension is only O, and then reads that kh·kw times larger
    product back to scatter-add it.
    NOTE: cols (kh·kw copies of the input) are built in chunks of samples in one
    reused buffer of at most CHUNK_ELEMENTS (`_chunks`); backward rebuilds them
    instead of keeping them alive from forward, so a deep CNN holds only its
    inputs until backward. The batch is split once over the cores
    (kernels/threads.py), each part running serial kernels and BLAS.
    """
    name = "conv2d"

    def forward(self, x, w, b=None, *, stride, padding, dilation, groups):
        self.one_d = x.ndim == 3
        if self.one_d:
            self.name = "conv1d"
            x, w = x[:, :, None, :], w[:, :, None, :]
        N, C, H, W = x.shape
        O, _, kh, kw = w.shape
        self.geometry = (kh, kw, stride[0], stride[1], padding[0], padding[2], dilation[0], dilation[1])
        Ho = (H + padding[0] + padding[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        Wo = (W + padding[2] + padding[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        self.x, self.w, self.groups, self.out_hw = np.ascontiguousarray(x), w, groups, (Ho, Wo)
        self.wg = w.reshape(groups, O // groups, -1)  # (groups, O/groups, C/groups·kh·kw)
        y = np.empty((N, O, Ho, Wo), x.dtype)
        _correlate(self.x, self.wg, np.zeros(O, x.dtype) if b is None else b, self.geometry, y)
        return y.reshape(N, O, Wo) if self.one_d else y

    def backward(self, g):
        x, wg, groups = self.x, self.wg, self.groups
        N, C, H, W = x.shape
        O = wg.shape[0] * wg.shape[1]
        kh, kw, sh, sw = self.geometry[:4]
        P = self.out_hw[0] * self.out_hw[1]
        g3 = np.ascontiguousarray(g).reshape(N, O, P)
        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.needs_input_grad) == 3 and self.needs_input_grad[2]
        stride1 = (sh, sw) == (1, 1)
        col2im = need_x and not stride1
        dx = np.empty_like(x) if need_x else None

        def part(n0, n1):
            """(dWᵀ, db) of samples n0:n1; with col2im, also their dx."""
            dwT = np.zeros((groups, wg.shape[2], wg.shape[1]), x.dtype) if need_w else None
            db, db_chunk = np.zeros(O, np.float64), np.empty(O, np.float64)
            for m0, m1, cols in _chunks(x, self.geometry, self.out_hw, groups, n0, n1, build=need_w):
                gT = _scratch("out", (O, m1 - m0, P), x.dtype)
                TH.twin(CK.batch_to_channels)(g3[m0:m1], gT, db_chunk)
                db += db_chunk
                gTg = gT.reshape(groups, O // groups, -1)
                if need_w:
                    # NOTE: as cols @ gᵀ, not g @ colsᵀ: OpenBLAS was measured faster on
                    # this orientation (the output is tiny for the length of the products).
                    dwT += np.matmul(cols, gTg.transpose(0, 2, 1))
                if col2im:
                    dcols = np.matmul(wg.transpose(0, 2, 1), gTg)
                    TH.twin(CK.col2im)(dcols.reshape((C, kh, kw, m1 - m0) + self.out_hw), dx[m0:m1], H, W,
                                       *self.geometry[2:])
            return dwT, db

        dwT = db = None
        if need_w or need_b or col2im:
            results = TH.run_parts(part, TH.split(N, x.size * kh * kw))
            dwT = sum(r[0] for r in results[1:]) + results[0][0] if need_w else None
            db = sum(r[1] for r in results)
        if need_x and stride1:
            self._input_grad_stride1(g3.reshape((N, O) + self.out_hw), dx)
        dw = None
        if need_w:
            dw = np.ascontiguousarray(dwT.transpose(0, 2, 1)).reshape(self.w.shape)
            dw = dw.reshape(dw.shape[:2] + dw.shape[3:]) if self.one_d else dw
        if self.one_d and need_x:
            dx = dx.reshape(N, C, W)
        if len(self.needs_input_grad) == 2:
            return dx, dw
        return dx, dw, db.astype(x.dtype) if need_b else None

    def _input_grad_stride1(self, g4, dx):
        """dx = the correlation of g with W flipped in space and with its channel axes
        swapped, per group: dx[n, c, h, w] = Σ_{o,i,j} g[n, o, h − ph' + i·dh, w − pw' + j·dw]
        · W[o, c, kh−1−i, kw−1−j], ph' = dh·(kh − 1) − ph, pw' likewise (g is 0 outside)."""
        kh, kw, _, _, ph, pw, dh, dw = self.geometry
        O, Cg = self.w.shape[:2]
        groups, C = self.groups, dx.shape[1]
        wt = (self.w[:, :, ::-1, ::-1].reshape(groups, O // groups, Cg, kh, kw)
              .transpose(0, 2, 1, 3, 4).reshape(groups, Cg, -1))  # (groups, Cg, Og·kh·kw)
        geometry = (kh, kw, 1, 1, dh * (kh - 1) - ph, dw * (kw - 1) - pw, dh, dw)
        _correlate(g4, np.ascontiguousarray(wt), np.zeros(C, dx.dtype), geometry, dx)


def _correlate(x, wg, bias, geometry, y):
    """y = W ⋆ x + bias: per part of the batch (threads.run_parts), chunk by chunk:
    im2col, one matmul per group, channels_to_batch.
    x (N, C, H, W), wg (groups, O/groups, C/groups·kh·kw), y (N, O, Ho, Wo)."""
    groups, O = wg.shape[0], y.shape[1]
    Ho, Wo = y.shape[2:]

    def part(n0, n1):
        for m0, m1, cols in _chunks(x, geometry, (Ho, Wo), groups, n0, n1):
            out = np.matmul(wg, cols, out=_scratch("out", (groups, O // groups, cols.shape[2]), y.dtype))
            TH.twin(CK.channels_to_batch)(out.reshape(O, m1 - m0, Ho * Wo), bias,
                                        y[m0:m1].reshape(m1 - m0, O, Ho * Wo))
    TH.run_parts(part, TH.split(x.shape[0], y.size * geometry[0] * geometry[1]))


def _chunks(x, geometry, out_hw, groups, n0, n1, build=True):
    """Yield (m0, m1, cols) for chunks m0:m1 of the samples n0:n1 of x and, when
    `build`, their im2col (geometry kh, kw, sh, sw, ph, pw, dh, dw; output size
    out_hw) viewed as (groups, C/groups·kh·kw, m·Ho·Wo). The cols array is
    overwritten by the next chunk."""
    C = x.shape[1]
    kh, kw = geometry[:2]
    per_sample = C * kh * kw * out_hw[0] * out_hw[1]
    step = _chunk_step(n1 - n0, per_sample)
    buffer = _scratch("cols", per_sample * step, x.dtype) if build else None
    for m0 in range(n0, n1, step):
        m1 = min(n1, m0 + step)
        if not build:
            yield m0, m1, None
            continue
        cols = buffer[:per_sample * (m1 - m0)].reshape((C, kh, kw, m1 - m0) + out_hw)
        TH.twin(CK.im2col)(x[m0:m1], cols, *geometry)
        yield m0, m1, cols.reshape(groups, C // groups * kh * kw, -1)


_SCRATCH = threading.local()


def _scratch(name, shape, dtype):
    """A scratch array of `shape`, in memory kept for reuse by the calling thread
    under `name` (grown when too small). Its contents are garbage, and the next
    `_scratch(name, ...)` of this thread overwrites them.
    NOTE: im2col matrices reach 100+ MB; allocated afresh each time they were
    page-faulted in again on every call (~2,500 faults, ~40 ms per conv layer
    step), which is what PyTorch's caching allocator avoids too."""
    pool = _SCRATCH.__dict__
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = pool.get(name)
    if buf is None or buf.size < size:
        pool[name] = buf = None  # let the old one go before allocating the new
        pool[name] = buf = np.empty(size, np.uint8)
    return buf[:size].view(dtype).reshape(shape)


def _chunk_step(N, per_sample):
    """How many samples go into one im2col chunk."""
    return max(1, min(N, CHUNK_ELEMENTS // max(per_sample, 1)))


# im2col matrices are built for at most this many elements at a time per thread
# (16 MB of float32; at least one sample): the kernels run serially inside a
# part of the batch (kernels/threads.py), so a chunk costs only a few Python
# calls, and the matrices of the lab's CNN layers took as long in chunks of
# 1 MB as in one piece of 115 MB (measured single-threaded, CPU time).
CHUNK_ELEMENTS = 1 << 22


def _conv_padding(padding, kernel, dilation, stride, n):
    """PyTorch's padding argument -> (top, bottom, left, right) (1-d: only left/right)."""
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * n
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                # NOTE: an odd total puts the extra zero on the right/bottom, like PyTorch.
                pads.append((total // 2, total - total // 2))
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                             f"{{'valid', 'same'}}")
    else:
        pads = [(p, p) for p in _tuple(padding, n, "padding")]
        if any(p < 0 for p, _ in pads):
            raise RuntimeError(f"negative padding is not supported, got padding={padding}")
    if n == 1:
        pads = [(0, 0)] + pads
    return pads[0] + pads[1]


def _conv(input, weight, bias, stride, padding, dilation, groups, n):
    fname = f"conv{n}d"
    _check_same_dtype(fname, input=input, weight=weight, bias=bias)
    _check_float(input, fname)
    if weight.ndim != n + 2:
        raise RuntimeError(f"{fname}: expected a {n + 2}-d weight (out_channels, in_channels/groups, "
                           f"*kernel_size), got weight of shape {weight.shape}")
    unbatched = input.ndim == n + 1
    if input.ndim not in (n + 1, n + 2):
        raise RuntimeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {fname}, "
                           f"but got input of size: {list(input.shape)}")
    if unbatched:
        input = input.unsqueeze(0)
    groups = int(groups)
    O, Cg = weight.shape[:2]
    kernel = weight.shape[2:]
    if groups < 1 or O % groups:
        raise RuntimeError(f"{fname}: groups={groups} must be positive and divide the "
                           f"{O} output channels of weight {tuple(weight.shape)}")
    if input.shape[1] != Cg * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input{list(input.shape)} to have {Cg * groups} channels, but got "
                           f"{input.shape[1]} channels instead")
    if bias is not None and bias.shape != (O,):
        raise RuntimeError(f"{fname}: bias of shape {tuple(bias.shape)} does not match the {O} "
                           f"output channels of weight {tuple(weight.shape)}")
    stride, dilation = _tuple(stride, n, "stride"), _tuple(dilation, n, "dilation")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise RuntimeError(f"{fname}: stride {stride} and dilation {dilation} must be positive")
    pads = _conv_padding(padding, kernel, dilation, stride, n)
    spatial = (1,) * (2 - n) + tuple(input.shape[2:])
    kernel2 = (1,) * (2 - n) + tuple(kernel)
    dil2 = (1,) * (2 - n) + dilation
    padded = (spatial[0] + pads[0] + pads[1], spatial[1] + pads[2] + pads[3])
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel2, dil2))
    if padded[0] < eff[0] or padded[1] < eff[1]:
        shown = lambda t: " x ".join(str(v) for v in t[2 - n:])  # noqa: E731
        raise RuntimeError(f"Calculated padded input size per channel: ({shown(padded)}). Kernel "
                           f"size: ({shown(eff)}). Kernel size can't be greater than actual input "
                           f"size")
    stride2 = (1,) * (2 - n) + stride
    parents = (input, weight) if bias is None else (input, weight, bias)
    out = Conv.apply(*parents, stride=stride2, padding=pads, dilation=dil2, groups=groups)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation (see nn.Conv1d). input (N, C_in, L) or (C_in, L),
    weight (C_out, C_in/groups, k); padding an int, a 1-tuple, 'valid' or 'same'."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation (see nn.Conv2d). input (N, C_in, H, W) or (C_in, H, W),
    weight (C_out, C_in/groups, kh, kw); padding an int, a pair, 'valid' or 'same'."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


# ======================================================================= pooling
# The kernels work on planes (P, H, W), P = N·C (or C for unbatched input).

def _planes(x):
    return np.ascontiguousarray(x).reshape((-1,) + x.shape[-2:])


class MaxPool2d(Function):
    """y = max over each window (padding counts as −∞); the gradient goes to the
    first maximum of each window and adds up where windows overlap."""
    name = "max_pool2d"

    def forward(self, x, kernel_size, stride, padding, dilation, ceil_mode, out_hw):
        planes = _planes(x)
        out = np.empty((planes.shape[0],) + out_hw, x.dtype)
        self.indices = np.empty(out.shape, np.int64)  # flat h·W + w, as PyTorch's return_indices
        CK.max_pool2d(planes, out, self.indices, *kernel_size, *stride, *padding, *dilation,
                      int(ceil_mode))
        self.in_shape = x.shape
        self.indices = self.indices.reshape(x.shape[:-2] + out_hw)
        return out.reshape(x.shape[:-2] + out_hw)

    def backward(self, g):
        H, W = self.in_shape[-2:]
        dx = np.empty((int(np.prod(self.in_shape[:-2])), H, W), g.dtype)
        CK.max_pool2d_backward(_planes(g), _planes(self.indices), dx, H, W)
        return dx.reshape(self.in_shape)


class AvgPool2d(Function):
    """y = Σ window / divisor (see avg_pool2d for the divisor);
    dx[window] += g / divisor for every window."""
    name = "avg_pool2d"

    def forward(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, out_hw):
        self.args = (*kernel_size, *stride, *padding)
        self.flags = (int(count_include_pad), int(divisor_override or 0))
        planes = _planes(x)
        out = np.empty((planes.shape[0],) + out_hw, x.dtype)
        CK.avg_pool2d(planes, out, *self.args, int(ceil_mode), *self.flags)
        self.in_shape = x.shape
        return out.reshape(x.shape[:-2] + out_hw)

    def backward(self, g):
        H, W = self.in_shape[-2:]
        g3 = _planes(g)
        dx = np.empty((g3.shape[0], H, W), g.dtype)
        CK.avg_pool2d_backward(g3, dx, H, W, *self.args, *self.flags)
        return dx.reshape(self.in_shape)


class AdaptiveAvgPool2d(Function):
    """Output cell (i, j) of (Ho, Wo) averages rows ⌊i·H/Ho⌋ .. ⌈(i+1)·H/Ho⌉ − 1
    and the same columns;  dx[cell] += g / |cell|."""
    name = "adaptive_avg_pool2d"

    def forward(self, x, output_size):
        planes = _planes(x)
        out = np.empty((planes.shape[0],) + output_size, x.dtype)
        CK.adaptive_avg_pool2d(planes, out, *output_size)
        self.in_shape = x.shape
        return out.reshape(x.shape[:-2] + output_size)

    def backward(self, g):
        H, W = self.in_shape[-2:]
        g3 = _planes(g)
        dx = np.empty((g3.shape[0], H, W), g.dtype)
        CK.adaptive_avg_pool2d_backward(g3, dx, H, W)
        return dx.reshape(self.in_shape)


def _check_pool_input(input, fname):
    _check_float(input, fname)
    if input.ndim not in (3, 4):
        raise RuntimeError(f"{fname}: Expected 3D or 4D (batch mode) tensor for input, but got "
                           f"input of shape {tuple(input.shape)}")
    if any(s == 0 for s in input.shape[-3:]):
        raise RuntimeError(f"{fname}: Expected input's non-batch dimensions to have positive "
                           f"length, but got input of shape {tuple(input.shape)}")


def _pool_geometry(fname, input, kernel_size, stride, padding, dilation, ceil_mode):
    k = _tuple(kernel_size, 2, "kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else _tuple(stride, 2, "stride")
    p, d = _tuple(padding, 2, "padding"), _tuple(dilation, 2, "dilation")
    if min(k) < 1 or min(s) < 1 or min(d) < 1:
        raise RuntimeError(f"{fname}: kernel_size {k}, stride {s} and dilation {d} must be positive")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2 or min(p) < 0:
        raise RuntimeError(f"{fname}: pad should be at most half of effective kernel size, but got "
                           f"pad={p}, kernel_size={k} and dilation={d}")
    H, W = input.shape[-2:]
    out_hw = (CK.pool_output_size(H, k[0], s[0], p[0], d[0], ceil_mode),
              CK.pool_output_size(W, k[1], s[1], p[1], d[1], ceil_mode))
    if min(out_hw) < 1:
        raise RuntimeError(f"{fname}: Given input size: ({'x'.join(map(str, input.shape[-3:]))}). "
                           f"Calculated output size: ({input.shape[-3]}x{out_hw[0]}x{out_hw[1]}). "
                           f"Output size is too small")
    return k, s, p, d, out_hw


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over kernel_size windows (see nn.MaxPool2d); with return_indices also the
    flat index h·W + w of each maximum in its input plane."""
    _check_pool_input(input, "max_pool2d")
    k, s, p, d, out_hw = _pool_geometry("max_pool2d", input, kernel_size, stride, padding, dilation,
                                        ceil_mode)
    out, ctx = MaxPool2d.apply_with_ctx(input, kernel_size=k, stride=s, padding=p, dilation=d,
                                        ceil_mode=bool(ceil_mode), out_hw=out_hw)
    return (out, Tensor._wrap(ctx.indices)) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kernel_size windows (see nn.AvgPool2d). The divisor is the window
    size including the zero padding it covers (count_include_pad=True) or only
    the input elements it covers, or `divisor_override`."""
    _check_pool_input(input, "avg_pool2d")
    k, s, p, _, out_hw = _pool_geometry("avg_pool2d", input, kernel_size, stride, padding, 1,
                                        ceil_mode)
    if divisor_override is not None and int(divisor_override) == 0:
        raise RuntimeError("avg_pool2d: divisor must be not zero")
    return AvgPool2d.apply(input, kernel_size=k, stride=s, padding=p, ceil_mode=bool(ceil_mode),
                           count_include_pad=bool(count_include_pad),
                           divisor_override=divisor_override, out_hw=out_hw)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed (Ho, Wo) whatever the input size (see
    nn.AdaptiveAvgPool2d); None in output_size keeps that input dimension."""
    _check_pool_input(input, "adaptive_avg_pool2d")
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size, output_size)
    out_hw = tuple(int(input.shape[-2 + i] if o is None else o) for i, o in enumerate(output_size))
    if len(out_hw) != 2 or min(out_hw) < 1:
        raise RuntimeError(f"adaptive_avg_pool2d: output_size must be 2 positive ints, got "
                           f"{output_size}")
    return AdaptiveAvgPool2d.apply(input, output_size=out_hw)


# ======================================================================= dropout

class Dropout(Function):
    """y = x · m / (1 − p) with m ~ Bernoulli(1 − p) (inverted dropout, so that
    E[y] = x and evaluation needs no rescaling);  dx = g · m / (1 − p)"""
    name = "dropout"

    def forward(self, x, p):
        from ..random import generator
        keep = generator().random(x.shape) >= p
        # NOTE: p = 1 drops everything; 1/(1 − p) would be inf and 0·inf = nan.
        scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
        self.mask = keep.astype(x.dtype) * x.dtype.type(scale)
        return run(K.mul, x, self.mask)

    def backward(self, g):
        return run(K.mul, g, self.mask)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1 − p) (see
    nn.Dropout). Identity when not training. The mask comes from the library's
    generator, so tn.manual_seed reproduces it. `inplace` is accepted but a new
    tensor is returned."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    _check_float(input, "dropout")
    return Dropout.apply(input, p=float(p))


# ======================================================================== losses

def _reduction(size_average, reduce, reduction):
    """PyTorch's legacy size_average/reduce arguments -> a reduction string."""
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      "reduction='mean'|'sum'|'none' instead.", stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        return "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction "
                         f"(expected 'mean', 'sum' or 'none')")
    return reduction


class NLLLoss(Function):
    """loss_i = −w[t_i] · logp[i, t_i] (0 where t_i == ignore_index);
    mean = Σ loss_i / Σ w[t_i] over non-ignored i, sum = Σ loss_i;
    d logp[i, t_i] = −w[t_i] · g (/ Σ w[t_i] for mean), 0 elsewhere."""
    name = "nll_loss"

    def forward(self, logp, target, weight, ignore_index, reduction):
        N, C = logp.shape[:2]
        self.reduction = reduction
        self.rows = None
        if weight is None and logp.ndim == 2 and N > 0 and not (target == ignore_index).any():
            # NOTE: the common case (no class weights, no extra dims, nothing ignored)
            # in three numpy calls; the general path below costs ~30 µs per call.
            self.rows, self.t, self.in_shape = np.arange(N), target, logp.shape
            picked = logp[self.rows, target]
            if reduction == "none":
                return -picked
            total = -picked.sum(dtype=np.float64)
            return np.asarray(total if reduction == "sum" else total / N, logp.dtype)
        lp = logp.reshape(N, C, -1)
        t = target.reshape(N, -1)
        valid = t != ignore_index
        self.t_safe = np.where(valid, t, 0)[:, None, :]
        w = np.ones(C, logp.dtype) if weight is None else weight.astype(logp.dtype, copy=False)
        self.wt = np.where(valid, w[self.t_safe[:, 0, :]], 0).astype(logp.dtype)
        picked = np.take_along_axis(lp, self.t_safe, axis=1)[:, 0, :]
        # NOTE: np.where, not wt·picked: an ignored entry may hold −inf (0·−inf = nan).
        losses = np.where(valid, -self.wt * picked, 0).astype(logp.dtype)
        self.shape, self.in_shape = lp.shape, logp.shape
        if reduction == "none":
            return losses.reshape(target.shape)
        total = losses.sum(dtype=np.float64)
        if reduction == "sum":
            return np.asarray(total, logp.dtype)
        self.den = self.wt.sum(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: nan, as in PyTorch
            return np.asarray(total / self.den, logp.dtype)

    def backward(self, g):
        if self.rows is not None:  # the common case of forward
            N = self.in_shape[0]
            grad = np.zeros(self.in_shape, g.dtype)
            grad[self.rows, self.t] = -g if self.reduction != "mean" else -g / N
            return grad
        if self.reduction == "none":
            scale = g.reshape(self.wt.shape)
        elif self.reduction == "sum":
            scale = g
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = g / self.den
        grad = np.zeros(self.shape, g.dtype)
        np.put_along_axis(grad, self.t_safe, (-self.wt * scale)[:, None, :].astype(g.dtype), axis=1)
        return grad.reshape(self.in_shape)


def _check_class_target(input, target, weight, ignore_index, fname):
    """Validate (input, target) for class-index losses; returns the target array."""
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"{fname}: expected target of an integer dtype (class indices), got "
                           f"{t.dtype}: cast it with target.long() (tn.tensor([1, 2]) is int64, "
                           f"tn.Tensor([1, 2]) float32); for class probabilities use cross_entropy "
                           f"with a float target of the input's shape {tuple(input.shape)}")
    if input.ndim < 2:
        raise RuntimeError(f"{fname}: input must be (N, C) or (N, C, d1, ...), got {tuple(input.shape)}")
    if t.shape[:1] != input.shape[:1]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({t.shape[0] if t.ndim else 'a 0-d target'}) (input {tuple(input.shape)}, "
                         f"target {tuple(t.shape)})")
    if t.shape != input.shape[:1] + input.shape[2:]:
        raise RuntimeError(f"{fname}: size mismatch (got input: {tuple(input.shape)}, target: "
                           f"{tuple(t.shape)}); the target must be the input's shape without the "
                           f"class dim 1")
    C = input.shape[1]
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if bad.any():
        raise IndexError(f"{fname}: Target {int(t[bad].flat[0])} is out of bounds: class indices "
                         f"must be in [0, {C - 1}] for C = {C} classes (or ignore_index="
                         f"{ignore_index})")
    if weight is not None and tuple(weight.shape) != (C,):
        raise RuntimeError(f"{fname}: weight tensor should be defined either for all {C} classes or "
                           f"no classes but got weight tensor of shape: {list(weight.shape)}")
    return t


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log likelihood of class indices under log-probabilities `input`
    (N, C) or (N, C, d1, ...) (see nn.NLLLoss). The weighted mean divides by
    the total weight of the non-ignored targets."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_float(input, "nll_loss")
    unbatched = input.ndim == 1
    if unbatched:  # (C,) with a 0-d target
        input, target = input.unsqueeze(0), np.asarray(_array(target)).reshape(1)
    t = _check_class_target(input, target, weight, ignore_index, "nll_loss")
    out = NLLLoss.apply(input, target=t, weight=None if weight is None else _array(weight),
                        ignore_index=int(ignore_index), reduction=reduction)
    return out.squeeze(0) if unbatched and reduction == "none" else out


def _array(x):
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def _class_shaped(weight, input):
    """weight (C,) as a constant Tensor broadcastable against input (N, C, d1, ...)."""
    w = _array(weight).astype(input.dtype, copy=False)
    return Tensor._wrap(w.reshape((1, -1) + (1,) * (input.ndim - 2)))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """log_softmax over the class dim 1, then the negative log likelihood (see
    nn.CrossEntropyLoss). `target`: class indices (N,) / (N, d1, ...), or class
    probabilities of the input's shape (float). With label smoothing ε the target
    is (1 − ε)·one_hot + ε/C, computed as PyTorch does (weights included)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_float(input, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim == 1:  # unbatched (C,)
        t = _array(target)
        t = t[None] if t.dtype.kind == "f" else np.asarray(t).reshape(1)
        out = cross_entropy(input.unsqueeze(0), Tensor._wrap(t) if t.dtype.kind == "f" else t,
                            weight, None, ignore_index, None, reduction, label_smoothing)
        return out.squeeze(0) if reduction == "none" else out
    if input.ndim == 0:
        raise RuntimeError("cross_entropy: input must have a class dimension, got a 0-d tensor")
    C = input.shape[1]
    logp = log_softmax(input, 1)
    t = _array(target)
    if t.dtype.kind == "f":
        return _cross_entropy_probs(logp, target, weight, reduction, label_smoothing)
    t = _check_class_target(input, t, weight, ignore_index, "cross_entropy")
    nll = NLLLoss.apply(logp, target=t, weight=None if weight is None else _array(weight),
                        ignore_index=int(ignore_index), reduction=reduction)
    if label_smoothing == 0:
        return nll
    # PyTorch's formula: (1 − ε)·nll + ε/C · smooth, smooth_i = −Σ_c w_c·logp[i, c]
    ignored = t == ignore_index
    weighted = logp if weight is None else logp * _class_shaped(weight, logp)
    smooth = -weighted.sum(1) * Tensor._wrap((~ignored).astype(logp.dtype))
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        if weight is None:
            den = float((~ignored).sum())
        else:  # NOTE: normalised by the weights of the targets, consistent with nll_loss
            den = float(_array(weight)[np.where(ignored, 0, t)][~ignored].sum(dtype=np.float64))
        smooth = smooth.sum() / den if den else smooth.sum() * np.nan
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / C)


def _cross_entropy_probs(logp, target, weight, reduction, label_smoothing):
    """loss_i = −Σ_c w_c · q[i, c] · logp[i, c], q the (smoothed) probabilities;
    the mean divides by the number of samples N·d1·... (not by the weights)."""
    if not isinstance(target, Tensor):
        target = Tensor(target)
    if target.shape != logp.shape:
        if target.shape == logp.shape[:1] + logp.shape[2:]:  # class indices in a float tensor
            raise RuntimeError(
                f"cross_entropy: target of shape {tuple(target.shape)} looks like class indices, "
                f"but its dtype is {target.dtype}: class indices must be an integer tensor; cast "
                f"it with target.long() (tn.tensor([1, 2]) is int64, tn.Tensor([1, 2]) float32)")
        raise RuntimeError(f"cross_entropy: a float target ({target.dtype}) holds class "
                           f"probabilities and must have the input's shape {tuple(logp.shape)}, "
                           f"got {tuple(target.shape)}; for class indices pass an integer tensor "
                           f"of shape {tuple(logp.shape[:1] + logp.shape[2:])}")
    C = logp.shape[1]
    if target.dtype != logp.dtype:
        target = target.type(logp.dtype)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / C
    prod = logp * target
    if weight is not None:
        prod = prod * _class_shaped(weight, logp)
    losses = -prod.sum(1)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """(input − target)², averaged, summed or kept per element (see nn.MSELoss)."""
    reduction = _reduction(size_average, reduce, reduction)
    if not isinstance(target, Tensor):
        target = Tensor(target, dtype=input.dtype)
    if target.shape != input.shape:
        warnings.warn(f"Using a target size {tuple(target.shape)} that is different to the input "
                      f"size {tuple(input.shape)}. This will likely lead to incorrect results due "
                      f"to broadcasting. Please ensure they have the same size.", stacklevel=2)
    diff = input - target
    sq = diff * diff
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()


# ====================================================================== indices
from .functional_sparse import embedding, one_hot  # noqa: E402,F401  (one_hot, embedding: functional_sparse.py)
__all__ += ["one_hot", "embedding"]


# ================================================================= normalization
# batch_norm, layer_norm, group_norm, instance_norm, rms_norm, local_response_norm
# live in functional_norm.py (written separately); they are re-exported here:
# ---- normalization functionals: BEGIN (import line added by the normalization work)
from .functional_norm import batch_norm, layer_norm, group_norm, instance_norm, rms_norm, local_response_norm  # noqa: E402,F401,E501
__all__ += ["batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "local_response_norm"]
# ---- normalization functionals: END
