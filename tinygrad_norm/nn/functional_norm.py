"""Normalization: ONE core Function, and the functional forms built on it.

    import tinygrad_norm.nn.functional as F
    y = F.batch_norm(x, running_mean, running_var, training=True)   # (N, C, *)
    y = F.layer_norm(x, (512,))                                     # (*, 512)

Every layer is the same computation on a different view of its input
(kernels/norm/reference.py has the table and the math): x viewed as (N, M, K, S), one mean and
variance per m taken over n, k and s, an affine weight/bias per
(m mod G, k). `Normalize` runs it with one fused numba forward (statistics,
normalization and affine in one sweep per block) and one fused numba
backward (closed-form dx, dγ, dβ). `normalize_composed` is the same math
written with primitive Tensor ops; the tests hold the two against each other.

NOTE on the statistics (as PyTorch; docs/api/normalization.md lists them):
  * the batch is normalized with the *biased* variance (÷ n), ε inside the
    square root: x̂ = (x − μ) / √(σ² + ε);
  * `running_var` receives the *unbiased* variance (÷ (n − 1)), as PyTorch
    does (Ioffe & Szegedy Alg. 2); the two differ by n/(n − 1), 2× at n = 2;
  * momentum weights the NEW batch: running = (1 − momentum)·running +
    momentum·batch (Keras' momentum is 1 − this one);
  * running statistics are updated in training mode even under `no_grad`
    (as in PyTorch: the update is not part of the graph).
"""
import math
from typing import NamedTuple

import numpy as np

from ..kernels import norm as KN
from ..kernels.jit import PARALLEL_MIN
from ..tensor import FLOAT_DTYPES, Function, Tensor, cat

__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "rms_norm",
           "local_response_norm", "batch_renorm", "mean_only_batch_norm",
           "Normalize", "NormSpec", "normalize", "normalize_composed"]


# ======================================================================= the core

class NormSpec(NamedTuple):
    """What a Normalize node is, declared for readers such as tn.viz.

    kind: the functional that made it ("batch_norm", "layer_norm", ...).
    layout: (N, M, K, S), the view of x (kernels/norm/reference.py).
    axes: the dims of x each statistic reduces over.  groups: G of GroupNorm
    (None for the other layers).  batch_stats: statistics of this input (False:
    given ones, eval mode).  running: (buffer name, Tensor) pairs, the running
    statistics this call updates (training) or uses (eval).
    """
    kind: str
    layout: tuple
    axes: tuple
    groups: object = None
    batch_stats: bool = True
    running: tuple = ()


class Normalize(Function):
    """y = γ·x̂ + β, x̂ = r·(x − μ)·rstd + d over the (N, M, K, S) view of x.

    Options: layout=(N, M, K, S), groups=G (weight and bias are (G, K) when
    reshaped), eps, center (subtract μ), scale (divide by √(σ² + ε)),
    batch_stats (statistics of x; otherwise `reference` = (μ, rstd) are used
    as given: eval mode), reference (length-M float64 arrays, also what Batch
    Renorm corrects towards), r_max, d_max (Batch Renorm; 1 and 0 = plain
    normalization), affine=(has_weight, has_bias), spec (the fields of a
    NormSpec: what the node is, read as `ctx.norm` by tn.viz; `grad_fn`
    prints its kind: <normalize: batch_norm>).

    Backward (kernels/norm/reference.py): dx = r·rstd·(h − mean(h) − x̂_B·mean(h·x̂_B)),
    h = g·γ, with batch statistics; dx = rstd·h with given ones (an affine
    map); dγ = Σ g·x̂, dβ = Σ g. r and d are constants (stop-gradient).
    After forward, the Function holds the statistics it used: mean, var
    (biased; nan when not computed), rstd, r, d (float64, length M).
    """
    name = "normalize"

    def forward(self, x, *params, layout, groups, eps, affine=(False, False), center=True,
                scale=True, batch_stats=True, reference=None, r_max=1.0, d_max=0.0, spec=None):
        self._spec = spec
        N, M, K, S = layout
        G = groups
        dtype = x.dtype
        x2 = np.ascontiguousarray(x).reshape(N, M * K * S)
        self.x_shape, self.affine = x.shape, affine
        self.param_shapes = [p.shape for p in params]
        params = iter(params)
        w2 = (np.ascontiguousarray(next(params), dtype).reshape(G, K) if affine[0]
              else np.ones((G, K), dtype))
        b2 = (np.ascontiguousarray(next(params), dtype).reshape(G, K) if affine[1]
              else np.zeros((G, K), dtype))
        if reference is None:
            ref_mean, ref_rstd = np.zeros((2, M))   # (0, 1): one allocation, not two
            ref_rstd[:] = 1.0
        else:
            ref_mean, ref_rstd = (np.ascontiguousarray(a, np.float64).reshape(M) for a in reference)
        y = np.empty(x.shape, dtype)
        self.mean, self.var, self.rstd, self.r, self.d = np.empty((5, M))
        self.parallel = x2.size >= PARALLEL_MIN   # the multi-threaded twins, in chunks
        kernel = KN.norm_forward.parallel if self.parallel else KN.norm_forward.serial
        # the fields of a kernels.norm.NormOptions, as the plain tuple the kernels take
        self.options = (float(eps), float(center), float(scale), float(batch_stats), float(r_max), float(d_max))
        kernel(x2, w2, b2, ref_mean, ref_rstd, y.reshape(x2.shape), self.mean, self.var, self.rstd,
               self.r, self.d, self.options, KN.n_chunks(M, x2.shape[1] // M if M else 0, self.parallel))
        self.x2, self.w2 = x2, w2
        return y

    def backward(self, g):
        x2, w2 = self.x2, self.w2
        M = self.mean.shape[0]
        G, K = w2.shape
        L = x2.shape[1] // M if M else 0
        g2 = np.ascontiguousarray(g, x2.dtype).reshape(x2.shape)
        need_dx = self.needs_input_grad[0]
        # NOTE: dx is allocated in x's shape (the kernel writes through a 2-D view):
        # a fresh array, not a view, is handed to autograd without another copy.
        dx = np.empty(self.x_shape, x2.dtype) if need_dx else None
        chunks = KN.n_chunks(M, L, self.parallel)
        dw, db = np.empty((chunks, G, K)), np.empty((chunks, G, K))
        kernel = KN.norm_backward.parallel if self.parallel else KN.norm_backward.serial
        kernel(g2, x2, w2, self.mean, self.rstd, self.r, self.d,
               dx.reshape(x2.shape) if need_dx else np.empty((0, 0), x2.dtype),
               dw, db, self.options, float(need_dx))
        grads = [dx]
        partials = [dw, db]
        for i, has in enumerate(self.affine):
            if has:
                k = len(grads)
                part = partials[i]  # one partial sum per chunk of the kernel
                total = part[0] if part.shape[0] == 1 else part.sum(axis=0)
                grads.append(total.reshape(self.param_shapes[k - 1]) if self.needs_input_grad[k] else None)
        return tuple(grads)

    @property
    def norm(self):
        """What this node is, a NormSpec (built when asked: most graphs are never drawn)."""
        spec = self.__dict__.get("_spec")
        if spec is None:
            return None
        kind, layout, axes, groups, batch_stats, running = spec
        return NormSpec(kind, layout, tuple(axes), groups, batch_stats,
                        tuple([pair for pair in running if pair[1] is not None]))

    def __repr__(self):
        spec = self.__dict__.get("_spec")
        return f"<normalize: {spec[0]}>" if spec is not None else "<normalize>"


def normalize(x, weight, bias, layout, groups, eps, kind="normalize", axes=None, running=(),
              **options):
    """Run the fused core on Tensors; returns (y, ctx) where ctx holds the
    statistics used (ctx.mean, ctx.var, ctx.rstd, ctx.r, ctx.d) and ctx.norm
    (a NormSpec built from kind, axes, running and the options)."""
    params = [p for p in (weight, bias) if p is not None]
    layout = tuple(map(int, layout))
    # the fields of a NormSpec, as a plain tuple (Normalize.norm builds the record)
    spec = (kind, layout, axes if axes is not None else (), int(groups) if kind == "group_norm" else None,
            bool(options.get("batch_stats", True)), running)
    return Normalize.apply_with_ctx(x, *params, layout=layout, groups=int(groups), eps=eps,
                                    affine=(weight is not None, bias is not None), spec=spec, **options)


def normalize_composed(x, weight, bias, layout, groups, eps, center=True, scale=True,
                       batch_stats=True, reference=None, r_max=1.0, d_max=0.0):
    """The core written with primitive Tensor ops (mean, var, sqrt, ...): slow,
    obviously right, and the reference the fused kernels are tested against."""
    N, M, K, S = layout
    G = groups
    # (N, M/G, G, K, S): statistic m = (m // G, m % G); affine broadcasts over axes 0, 1, 4
    x5 = x.reshape(N, M // G, G, K, S)
    axes = (0, 3, 4)
    if batch_stats:
        mean = x5.mean(dim=axes, keepdim=True) if center else None
        xc = x5 - mean if center else x5
        if scale:
            var = (x5.var(dim=axes, correction=0, keepdim=True) if center
                   else (x5 * x5).mean(dim=axes, keepdim=True))
            std = (var + eps).sqrt()
            xhat = xc / std
        else:
            xhat = xc
        if reference is not None and (r_max != 1 or d_max != 0):
            ref_mean, ref_rstd = (Tensor(np.asarray(a, np.float64).reshape(1, M // G, G, 1, 1),
                                         dtype=x.dtype) for a in reference)
            if scale and r_max != 1:
                # NOTE: r and d are computed from detached statistics: stop-gradient.
                xhat = xhat * (std.detach() * ref_rstd).clamp(1.0 / r_max, r_max)
            if d_max != 0:
                mu = mean.detach() if center else 0.0
                xhat = xhat + ((mu - ref_mean) * ref_rstd).clamp(-d_max, d_max)
    else:
        ref_mean, ref_rstd = (Tensor(np.asarray(a, np.float64).reshape(1, M // G, G, 1, 1),
                                     dtype=x.dtype) for a in reference)
        xhat = (x5 - ref_mean) * ref_rstd
    y = xhat
    if weight is not None:
        y = y * weight.reshape(1, 1, G, K, 1)
    if bias is not None:
        y = y + bias.reshape(1, 1, G, K, 1)
    return y.reshape(x.shape)


# ================================================================== input checks

def _check_input(input, fname, min_dim=1):
    if not isinstance(input, Tensor):
        raise TypeError(f"{fname}: expected a Tensor, got {type(input).__name__}")
    if input.dtype not in FLOAT_DTYPES:
        raise RuntimeError(f"{fname}: expected a floating point input (float32 or float64), "
                           f"got dtype {input.dtype}; cast it with .float()")
    if input.ndim < min_dim:
        raise ValueError(f"{fname}: expected an input with at least {min_dim} dims, "
                         f"got shape {tuple(input.shape)}")


def _check_vector(t, name, input, fname):
    size = input.shape[1]
    if t is not None and tuple(t.shape) != (size,):
        raise RuntimeError(f"{fname}: {name} should contain {size} elements (one per channel of "
                           f"the input, shape {tuple(input.shape)}), got shape {tuple(t.shape)}")


def _check_same_dtype(fname, input, **tensors):
    for name, t in tensors.items():
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"{fname}: expected {name} to have the input's dtype {input.dtype}, "
                               f"got {t.dtype}; convert the input (x.float() / x.double()) or "
                               f"the module (model.float() / model.double())")


def _verify_batch_size(shape):
    """PyTorch's check: training statistics need more than one value per channel."""
    values = shape[0] * math.prod(shape[2:])
    if values == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, "
                         f"got input size {tuple(shape)}")


def _check_eps(eps, training, fname):
    if training and eps <= 0.0:
        raise ValueError(f"{fname} eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"{fname} eps must be non-negative, but got {eps}")


def _channels_layout(shape):
    """(N, C, *) -> N, C, prod(*)."""
    return shape[0], shape[1], math.prod(shape[2:])


def _check_per_channel(fname, input, weight, bias, vectors, eps=None, training=False):
    """The checks of every per-channel layer (BatchNorm, its variants, InstanceNorm):
    an (N, C, *) float input, each of `vectors` ((name, Tensor or None) pairs), weight
    and bias of C elements and the input's dtype, eps (when given) valid.
    Returns (N, C, prod(*)) and the dims of x that are not N or C."""
    _check_input(input, fname, min_dim=2)
    for name, t in vectors + (("weight", weight), ("bias", bias)):
        _check_vector(t, name, input, fname)
    _check_same_dtype(fname, input, weight=weight, bias=bias)
    if eps is not None:
        _check_eps(eps, training, fname)
    return _channels_layout(input.shape), tuple(range(2, input.ndim))


def _update(input, buffer, batch_value, momentum, scale=1.0):
    """In place: buffer ← (1 − momentum)·buffer + momentum·scale·batch_value.
    NOTE: an empty batch (its statistics are nan) leaves the buffer alone, as in PyTorch."""
    if buffer is not None and input.numel() > 0:
        KN.running_update(buffer._data, batch_value, float(momentum), float(scale))


def _rstd(running_var, eps):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 / np.sqrt(running_var._data.astype(np.float64) + eps)


# ==================================================================== batch norm

def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over (N, *) per channel of an (N, C, *) input (see nn.BatchNorm1d).

    training=True: batch statistics (biased variance); running_mean/var, when
    given, are updated in place with the unbiased variance and `momentum`.
    training=False: the running statistics are used (an affine map).
    """
    running = (("running_mean", running_mean), ("running_var", running_var))
    (N, C, S), spatial = _check_per_channel("batch_norm", input, weight, bias, running, eps, training)
    layout, axes = (N, C, 1, S), (0,) + spatial
    if training:
        _verify_batch_size(input.shape)
        y, ctx = normalize(input, weight, bias, layout, C, eps, kind="batch_norm", axes=axes,
                           running=running)
        n = N * S
        _update(input, running_mean, ctx.mean, momentum)
        # NOTE: unbiased variance into the running estimate (PyTorch), biased to normalize.
        _update(input, running_var, ctx.var, momentum, n / (n - 1))
        return y
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm: running_mean and running_var must be given when "
                           "training=False (or pass training=True to use batch statistics)")
    reference = (running_mean._data, _rstd(running_var, eps))
    return normalize(input, weight, bias, layout, C, eps, kind="batch_norm", axes=axes, running=running,
                     batch_stats=False, reference=reference)[0]


def batch_renorm(input, running_mean, running_std, weight=None, bias=None, training=False,
                 momentum=0.01, eps=1e-5, r_max=1.0, d_max=0.0):
    """Batch Renormalization (Ioffe 2017, Alg. 1) per channel of an (N, C, *) input.

    Training: σ_B = √(var_B + ε) (biased), r = clip(σ_B/σ, 1/r_max, r_max),
    d = clip((μ_B − μ)/σ, −d_max, d_max), both constants for backward;
    y = γ·((x − μ_B)/σ_B·r + d) + β; then μ ← μ + momentum·(μ_B − μ) and
    σ ← σ + momentum·(σ_B − σ) in place. NOTE: the running average is of σ
    (the std, ε included), not of σ². Eval: y = γ·(x − μ)/σ + β.
    r_max = 1, d_max = 0 is exactly batch_norm in training.
    """
    running = (("running_mean", running_mean), ("running_std", running_std))
    (N, C, S), spatial = _check_per_channel("batch_renorm", input, weight, bias, running, eps, training)
    if r_max < 1.0 or d_max < 0.0:
        raise ValueError(f"batch_renorm: need r_max >= 1 and d_max >= 0, got r_max={r_max}, "
                         f"d_max={d_max}")
    layout, axes = (N, C, 1, S), (0,) + spatial
    with np.errstate(divide="ignore"):
        reference = (running_mean._data, 1.0 / running_std._data.astype(np.float64))
    if training:
        _verify_batch_size(input.shape)
        y, ctx = normalize(input, weight, bias, layout, C, eps, kind="batch_renorm", axes=axes,
                           running=running, reference=reference, r_max=r_max, d_max=d_max)
        _update(input, running_mean, ctx.mean, momentum)
        _update(input, running_std, 1.0 / ctx.rstd, momentum)
        return y
    return normalize(input, weight, bias, layout, C, eps, kind="batch_renorm", axes=axes,
                     running=running, batch_stats=False, reference=reference)[0]


def mean_only_batch_norm(input, running_mean, weight=None, bias=None, training=False,
                         momentum=0.1):
    """Mean-only batch normalization (Salimans & Kingma 2016): y = x − μ_B (+ β),
    no division; the running mean is used in eval. dx = g − mean(g) per channel."""
    running = (("running_mean", running_mean),)
    (N, C, S), spatial = _check_per_channel("mean_only_batch_norm", input, weight, bias, running)
    layout, axes = (N, C, 1, S), (0,) + spatial
    if training:
        y, ctx = normalize(input, weight, bias, layout, C, 0.0, kind="mean_only_batch_norm", axes=axes,
                           running=running, scale=False)
        _update(input, running_mean, ctx.mean, momentum)
        return y
    if running_mean is None:
        raise RuntimeError("mean_only_batch_norm: running_mean must be given when training=False")
    reference = (running_mean._data, np.ones(C))
    return normalize(input, weight, bias, layout, C, 0.0, kind="mean_only_batch_norm", axes=axes,
                     running=running, scale=False, batch_stats=False, reference=reference)[0]


# ================================================================= instance norm

def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalization over the spatial dims of each sample and channel of an
    (N, C, *) input (see nn.InstanceNorm1d). With running stats and
    use_input_stats, they are updated with the batch average of the
    per-instance statistics (unbiased variance); use_input_stats=False uses them."""
    running = (("running_mean", running_mean), ("running_var", running_var))
    (N, C, S), axes = _check_per_channel("instance_norm", input, weight, bias, running)
    layout = (1, N * C, 1, S)
    if use_input_stats:
        if S == 1:
            raise ValueError(f"Expected more than 1 spatial element when training, "
                             f"got input size {tuple(input.shape)}")
        y, ctx = normalize(input, weight, bias, layout, C, eps, kind="instance_norm", axes=axes,
                           running=running)
        # NOTE: as PyTorch: every (n, c) updates a copy of the channel's running
        # stats, and the copies are averaged over the batch.
        _update(input, running_mean, ctx.mean.reshape(N, C).mean(axis=0), momentum)
        _update(input, running_var, ctx.var.reshape(N, C).mean(axis=0), momentum, S / (S - 1))
        return y
    if running_mean is None or running_var is None:
        raise ValueError("instance_norm: expected running_mean and running_var to be defined "
                         "when use_input_stats is False")
    reference = (np.tile(running_mean._data.astype(np.float64), N), np.tile(_rstd(running_var, eps), N))
    return normalize(input, weight, bias, layout, C, eps, kind="instance_norm", axes=axes,
                     running=running, batch_stats=False, reference=reference)[0]


# ==================================================================== group norm

def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalization over (C/G, *) of each sample and group of an (N, C, *)
    input, with per-channel weight and bias (see nn.GroupNorm)."""
    _check_input(input, "group_norm")
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")
    N, C, S = _channels_layout(input.shape)
    G = int(num_groups)
    if G <= 0 or C % G:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {list(input.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of "
                               f"channels in input, but got {name} of shape {list(t.shape)} and "
                               f"input of shape {list(input.shape)}")
    _check_same_dtype("group_norm", input, weight=weight, bias=bias)
    _verify_batch_size((N * C // G, G) + tuple(input.shape[2:]))  # PyTorch's own check
    return normalize(input, weight, bias, (1, N * G, C // G, S), G, eps, kind="group_norm",
                     axes=tuple(range(1, input.ndim)))[0]


# ==================================================================== layer norms

def _trailing_layout(input, normalized_shape, fname, params):
    shape = ((int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer))
             else tuple(int(s) for s in normalized_shape))
    D = len(shape)
    if D == 0 or input.ndim < D or tuple(input.shape[input.ndim - D:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size"
                           f"{list(input.shape)}")
    for name, t in params.items():
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"{fname}: expected {name} to be of same shape as normalized_shape, "
                               f"but got {name} of shape {list(t.shape)} and normalized_shape = "
                               f"{list(shape)}")
    K = math.prod(shape)
    M = input.numel() // K if K else 0
    return (1, M, K, 1), tuple(range(input.ndim - D, input.ndim))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalization over the trailing `normalized_shape` dims, elementwise
    weight and bias of that shape (see nn.LayerNorm)."""
    _check_input(input, "layer_norm")
    layout, axes = _trailing_layout(input, normalized_shape, "layer_norm", {"weight": weight, "bias": bias})
    _check_same_dtype("layer_norm", input, weight=weight, bias=bias)
    return normalize(input, weight, bias, layout, 1, eps, kind="layer_norm", axes=axes)[0]


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """y = x / √(mean(x²) + ε) · γ over the trailing dims, no centering, no bias;
    eps=None means the machine epsilon of the input's dtype (see nn.RMSNorm)."""
    _check_input(input, "rms_norm")
    layout, axes = _trailing_layout(input, normalized_shape, "rms_norm", {"weight": weight})
    _check_same_dtype("rms_norm", input, weight=weight)
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    return normalize(input, weight, None, layout, 1, eps, kind="rms_norm", axes=axes, center=False)[0]


# ============================================================ local response norm

def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """b_c = a_c / (k + α/n·Σ_{c'} a_{c'}²)^β over a window of n = `size`
    channels [c − n//2, c + (n−1)//2], zero-padded at the edges (PyTorch's
    formula: an average over the window, always divided by n). Composed from
    Tensor ops, so autograd derives its backward."""
    _check_input(input, "local_response_norm")
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input
    C = input.shape[1]
    sq = input * input
    front, back = size // 2, (size - 1) // 2

    def zeros(n):
        return Tensor._wrap(np.zeros((input.shape[0], n) + input.shape[2:], input.dtype))

    padded = cat([t for t in (zeros(front) if front else None, sq, zeros(back) if back else None)
                  if t is not None], dim=1)
    window = padded[:, 0:C]
    for j in range(1, size):
        window = window + padded[:, j:j + C]
    div = (window / float(size) * alpha + k) ** beta
    return input / div
