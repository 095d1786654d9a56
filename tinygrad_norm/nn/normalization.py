"""Normalization layers (torch.nn's, plus Batch Renorm and mean-only BatchNorm).

    bn = nn.BatchNorm1d(100)
    x = tn.randn(60, 100) * 3 + 5
    y = bn(x)                      # training: batch statistics
    y.mean(0), y.std(0)            # ≈ 0 and ≈ 1 per feature
    bn.running_mean                # 0.1·(batch mean): momentum weights the NEW batch

Every layer calls one core (functional_norm.Normalize: a fused numba forward
and backward over the input viewed as (N, M, K, S)); the classes only hold
parameters, buffers and PyTorch's conventions:

    layer            statistics over          affine            running stats
    BatchNorm1d/2d   N and spatial, per C     per channel       yes (eval uses them)
    InstanceNorm     spatial, per (N, C)      per channel, off  off by default
    GroupNorm        (C/G, spatial) per (N,G) per channel       never
    LayerNorm        trailing dims            per element       never
    RMSNorm          trailing dims, no mean   per element, no β never
    BatchRenorm1d/2d like BatchNorm, + r, d   per channel       mean and σ (not σ²)
    MeanOnlyBatchNorm  like BatchNorm, no ÷σ  bias only         mean

NOTE (as PyTorch): BatchNorm normalizes with the biased batch variance but
stores the unbiased one in `running_var`; `momentum` weights the new batch
(PyTorch's convention, the reverse of Keras'); momentum=None is a cumulative
average over `num_batches_tracked`; running statistics are updated by every
training-mode forward, under `no_grad` too.
"""
import numbers
import warnings

import numpy as np

from ..tensor import Tensor, float32
from . import functional_norm as FN
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "InstanceNorm1d", "InstanceNorm2d", "LayerNorm",
           "GroupNorm", "RMSNorm", "LocalResponseNorm", "BatchRenorm1d", "BatchRenorm2d",
           "MeanOnlyBatchNorm1d", "MeanOnlyBatchNorm2d"]


def _full(shape, value, dtype):
    return Tensor._wrap(np.full(shape, value, np.dtype(dtype) if dtype is not None else float32))


def _affine_parameters(module, shape, affine, bias, dtype, weight=True):
    """Register γ (ones) and β (zeros) of `shape`; None for β when not `bias`,
    None for γ when not `weight`, None for both when not `affine` (PyTorch's
    attributes either way)."""
    module.register_parameter("weight", Parameter(_full(shape, 1.0, dtype)) if affine and weight else None)
    module.register_parameter("bias", Parameter(_full(shape, 0.0, dtype)) if affine and bias else None)


def _reset_affine(module):
    """γ ← 1, β ← 0, in place (whichever of them exists)."""
    if module.weight is not None:
        module.weight._data[...] = 1
    if module.bias is not None:
        module.bias._data[...] = 0


def _counter():
    """num_batches_tracked: an int64 scalar buffer, as in PyTorch."""
    return Tensor._wrap(np.zeros((), np.int64))


def _average_factor(module):
    """Count a training batch; the running-average weight of this batch:
    `momentum`, or 1/num_batches_tracked for a cumulative average (momentum=None)."""
    module.num_batches_tracked._data += 1
    if module.momentum is None:
        return 1.0 / float(module.num_batches_tracked._data)
    return module.momentum


def _check_ndim(input, allowed, label):
    if input.ndim not in allowed:
        raise ValueError(f"expected {label} input (got {input.ndim}D input)")


# ==================================================================== batch norm

class _NormBase(Module):
    """Parameters, buffers, reset and repr of every per-channel layer (PyTorch's
    _NormBase): BatchNorm, InstanceNorm, BatchRenorm, mean-only BatchNorm.

    Subclasses say which running buffers they keep (`_running`: name and
    initial value) and whether they have a γ (`_weight`)."""
    _running = (("running_mean", 0.0), ("running_var", 1.0))
    _weight = True

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_parameters(self, (self.num_features,), affine, bias, dtype, self._weight)
        for name, value in self._running:
            self.register_buffer(name, _full((self.num_features,), value, dtype)
                                 if track_running_stats else None)
        self.register_buffer("num_batches_tracked", _counter() if track_running_stats else None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            for name, value in self._running:
                getattr(self, name)._data[...] = value
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _dims, _label = (), ""

    def forward(self, input):
        _check_ndim(input, self._dims, self._label)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            factor = _average_factor(self)
        # Batch statistics in training, and in eval when there are no running stats.
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        # Buffers are passed only when they are to be updated (training and tracked)
        # or used (eval).
        keep = not self.training or self.track_running_stats
        return FN.batch_norm(input, self.running_mean if keep else None,
                             self.running_var if keep else None, self.weight, self.bias,
                             use_batch, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    r"""Batch Normalization over a 2D (N, C) or 3D (N, C, L) input (Ioffe & Szegedy 2015,
    https://arxiv.org/abs/1502.03167).

        y = (x − E[x]) / √(Var[x] + ε) · γ + β

    Mean and variance are taken per channel C over N (and L). Training uses
    the batch's biased variance (`var(correction=0)`) and updates
    `running_mean`/`running_var` (the latter with the unbiased variance,
    `var(correction=1)`): running = (1 − momentum)·running + momentum·batch.
    Eval uses the running estimates; with track_running_stats=False the
    buffers are None and batch statistics are used in eval too.

    Args:
        num_features: C. eps: added to the variance. Default: 1e-5.
        momentum: weight of the new batch, or None for a cumulative average
            (1/num_batches_tracked). Default: 0.1.
        affine: learn γ (`weight`, ones) and β (`bias`, zeros). Default: True.
        track_running_stats: keep running_mean, running_var (zeros, ones) and
            num_batches_tracked (int64). Default: True.

    Shape: (N, C) or (N, C, L) -> same shape. Training needs more than one
    value per channel.

    Example::

        >>> bn = nn.BatchNorm1d(3)
        >>> bn(tn.tensor([[1., 2, 3], [3, 6, 9]]))   # each column -> [-1, 1] (up to ε)
    """
    _dims, _label = (2, 3), "2D or 3D"


class BatchNorm2d(_BatchNorm):
    r"""Batch Normalization over a 4D (N, C, H, W) input: statistics per channel
    over (N, H, W); otherwise exactly BatchNorm1d (see there).

    Shape: (N, C, H, W) -> same shape.
    """
    _dims, _label = (4,), "4D"


# ================================================================= instance norm

class _InstanceNorm(_NormBase):
    _batched = 3

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def forward(self, input):
        nb = self._batched
        _check_ndim(input, (nb - 1, nb), f"{nb - 1}D or {nb}D")
        feature_dim = input.ndim - (nb - 1)
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={feature_dim} to match num_features "
                                 f"({self.num_features}), but got: {input.shape[feature_dim]}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can "
                          f"silence this warning by not passing in num_features, which is not used "
                          f"because affine=False", stacklevel=2)
        unbatched = input.ndim == nb - 1
        x = input.unsqueeze(0) if unbatched else input
        # NOTE: as PyTorch, momentum=None means 0 here (no cumulative average) and
        # num_batches_tracked is never incremented by instance norm.
        y = FN.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             self.training or not self.track_running_stats,
                             self.momentum if self.momentum is not None else 0.0, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    r"""Instance Normalization (Ulyanov et al. 2016, https://arxiv.org/abs/1607.08022)
    over a (N, C, L) or unbatched (C, L) input: statistics per sample and
    channel over L (biased variance), in training *and* eval by default.

    Unlike BatchNorm, affine=False and track_running_stats=False by default.
    With track_running_stats=True, training updates running_mean/running_var
    (batch average of the instance statistics, unbiased variance) and eval
    uses them.
    """
    _batched = 3


class InstanceNorm2d(_InstanceNorm):
    r"""Instance Normalization over a (N, C, H, W) or unbatched (C, H, W) input:
    statistics per sample and channel over (H, W). See InstanceNorm1d."""
    _batched = 4


# ============================================================ layer & group norms

class LayerNorm(Module):
    r"""Layer Normalization (Ba et al. 2016, https://arxiv.org/abs/1607.06450).

        y = (x − E[x]) / √(Var[x] + ε) · γ + β

    over the trailing dims given by `normalized_shape` (biased variance), the
    same in training and eval; γ (ones) and β (zeros) have shape
    `normalized_shape` (per element, not per channel).

    Args: normalized_shape (int or tuple), eps=1e-5, elementwise_affine=True,
    bias=True.  Shape: (*, *normalized_shape) -> same shape.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, dtype)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return FN.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    r"""Group Normalization (Wu & He 2018, https://arxiv.org/abs/1803.08494).

    The C channels are split into `num_groups` groups; each sample is
    normalized over (C/G, *spatial) of each group (biased variance), the same
    in training and eval; γ (ones) and β (zeros) are per channel.

    Args: num_groups, num_channels (divisible by num_groups), eps=1e-5,
    affine=True.  Shape: (N, C, *) -> same shape.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None,
                 *, bias=True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, (self.num_channels,), affine, bias, dtype)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return FN.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    r"""Root Mean Square Layer Normalization (Zhang & Sennrich 2019,
    https://arxiv.org/abs/1910.07467).

        y = x / √(mean(x²) + ε) · γ

    over the trailing `normalized_shape` dims: no mean subtraction, no bias.
    eps=None means the machine epsilon of the input's dtype
    (1.19e-7 in float32, 2.2e-16 in float64), as in PyTorch.

    Example::

        >>> nn.RMSNorm(4)(tn.tensor([1., 2, 3, 4]))   # [0.3651, 0.7303, 1.0954, 1.4606]
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_full(self.normalized_shape, 1.0, dtype))
        else:
            self.register_parameter("weight", None)

    def reset_parameters(self):
        if self.elementwise_affine:
            self.weight._data[...] = 1

    def forward(self, x):
        return FN.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    r"""Local Response Normalization across channels (Krizhevsky et al. 2012):

        b_c = a_c · (k + α/n · Σ_{c'} a_{c'}²)^(−β)

    the sum over the n = `size` channels c − n//2 … c + (n−1)//2, zero-padded
    (PyTorch's formula: α divides by n even at the edges).

    Args: size, alpha=1e-4, beta=0.75, k=1.0.  Shape: (N, C, *) -> same shape.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return FN.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


# ============================================================== beyond PyTorch

class _BatchRenorm(_NormBase):
    _dims, _label = (), ""
    _running = (("running_mean", 0.0), ("running_std", 1.0))   # σ, not σ²

    def __init__(self, num_features, eps=1e-5, momentum=0.01, affine=True, r_max=1.0, d_max=0.0,
                 device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, True, device, dtype)
        self.r_max, self.d_max = r_max, d_max

    def forward(self, input):
        _check_ndim(input, self._dims, self._label)
        factor = _average_factor(self) if self.training else 0.0
        return FN.batch_renorm(input, self.running_mean, self.running_std, self.weight, self.bias,
                               self.training, factor, self.eps, self.r_max, self.d_max)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, r_max={self.r_max}, d_max={self.d_max}")


class BatchRenorm1d(_BatchRenorm):
    r"""Batch Renormalization (Ioffe 2017, https://arxiv.org/abs/1702.03275, Alg. 1)
    over a (N, C) or (N, C, L) input.

    Training, per channel (σ_B = √(Var_B[x] + ε), biased):

        r = clip(σ_B / σ, 1/r_max, r_max),   d = clip((μ_B − μ) / σ, −d_max, d_max)
        y = γ·((x − μ_B)/σ_B · r + d) + β

    with r and d treated as constants by backward (stop-gradient); then
    μ ← μ + momentum·(μ_B − μ) and σ ← σ + momentum·(σ_B − σ). Eval:
    y = γ·(x − μ)/σ + β. With r_max = 1 and d_max = 0 (the defaults, the
    start of the paper's schedule) it is exactly BatchNorm in training.

    `r_max` and `d_max` are plain attributes: set them during training to
    follow a schedule (paper: r_max 1 → 3, d_max 0 → 5, after 5k steps).

    Buffers (state_dict): `running_mean` (μ, zeros), `running_std` (σ, ones —
    NOTE: the running average of the standard deviation *including ε*, not of
    the variance as in BatchNorm's running_var), `num_batches_tracked`.

    Args: num_features, eps=1e-5, momentum=0.01 (the paper's α; None for a
    cumulative average), affine=True, r_max=1.0, d_max=0.0.
    """
    _dims, _label = (2, 3), "2D or 3D"


class BatchRenorm2d(_BatchRenorm):
    r"""Batch Renormalization over a (N, C, H, W) input. See BatchRenorm1d."""
    _dims, _label = (4,), "4D"


class _MeanOnlyBatchNorm(_NormBase):
    _dims, _label = (), ""
    _running = (("running_mean", 0.0),)
    _weight = False   # β only: the scale comes from the layer before (weight norm)

    def __init__(self, num_features, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None):
        # NOTE: no division, so no ε (the attribute exists, unused)
        super().__init__(num_features, 0.0, momentum, affine, track_running_stats, device, dtype)

    def forward(self, input):
        _check_ndim(input, self._dims, self._label)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            factor = _average_factor(self)
        use_batch = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return FN.mean_only_batch_norm(input, self.running_mean if keep else None, None, self.bias,
                                       use_batch, factor)

    def extra_repr(self):
        return (f"{self.num_features}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class MeanOnlyBatchNorm1d(_MeanOnlyBatchNorm):
    r"""Mean-only Batch Normalization (Salimans & Kingma 2016,
    https://arxiv.org/abs/1602.07868, Sec. 3) over a (N, C) or (N, C, L) input:

        y = x − μ_B[x] + β

    per channel, no division by the standard deviation; `running_mean` is
    kept (momentum as in BatchNorm) and used in eval. Backward centres the
    gradient: dx = g − mean(g). There is a learned bias β but no scale, as in
    the paper, where the scale comes from weight normalization of the layer
    before it (`nn.utils.weight_norm`).
    """
    _dims, _label = (2, 3), "2D or 3D"


class MeanOnlyBatchNorm2d(_MeanOnlyBatchNorm):
    r"""Mean-only Batch Normalization over a (N, C, H, W) input. See MeanOnlyBatchNorm1d."""
    _dims, _label = (4,), "4D"
