"""Linear (fully connected) layer, and Flatten/Unflatten to get to and from it.

    fc = nn.Linear(784, 100)      # weight (100, 784), bias (100,)
    y = fc(x)                      # x (N, 784) -> (N, 100); any leading dims work
"""

import numpy as np

from ..devices import check_device
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Flatten", "Unflatten"]


def _empty(shape, dtype):
    """An uninitialised (zero) parameter array; reset_parameters fills it."""
    from ..tensor import Tensor, float32
    return Tensor._wrap(np.zeros(shape, np.dtype(dtype) if dtype is not None else float32))


class Linear(Module):
    """y = x Wᵀ + b.

    Args:
        in_features: size of each input sample (the last dim).
        out_features: size of each output sample.
        bias: learn an additive bias. Default: True.
        dtype: float32 (default) or float64.

    Shape: input (*, in_features) -> output (*, out_features).

    Attributes: weight (out_features, in_features) and bias (out_features,),
    both drawn from U(−1/√in_features, 1/√in_features), as in PyTorch
    (kaiming_uniform_ with a=√5).
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        if device is not None:
            check_device(device)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(_empty((self.out_features, self.in_features), dtype))
        if bias:
            self.bias = Parameter(_empty((self.out_features,), dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init._layer_default_(self.weight, self.bias, draw_bias_at_zero_fan_in=True)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one: (N, C, H, W) -> (N, C·H·W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim `dim` into `unflattened_size`: (N, 784) -> (N, 1, 28, 28)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
