"""`tn.linalg.vector_norm` and `Tensor.norm` (PyTorch's), differentiable.

    w.grad.norm()                         # ‖g‖₂, e.g. to log gradient norms
    tn.linalg.vector_norm(x, 1, dim=1)    # Σ|x| per row

‖x‖_p = (Σ|x|^p)^(1/p) over `dim` (all entries by default); p = inf: max |x|,
p = −inf: min |x|, p = 0: the number of non-zeros (no gradient).
Gradient: sign(x)·|x|^(p−1) / ‖x‖^(p−1) (p = 2: x / ‖x‖, p = 1: sign(x)); for
±inf the entries where |x| reaches the extremum share g equally.
NOTE: where ‖x‖ = 0, or x = 0, the gradient is 0, as in PyTorch (the formula would give 0/0,
or 0·∞ for p < 1).
"""
import math

import numpy as np

from .kernels.reduce import normalize_dims
from .tensor import FLOAT_DTYPES, Function, Tensor

__all__ = ["vector_norm"]


class VectorNorm(Function):
    """See the module docstring."""
    name = "norm"

    def forward(self, x, ord, axes, keepdim):
        self.x, self.ord, self.axes = x, ord, axes
        a = np.abs(x)
        if ord == math.inf:
            n = a.max(axis=axes, keepdims=True)
        elif ord == -math.inf:
            n = a.min(axis=axes, keepdims=True)
        elif ord == 0:
            n = (a != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
        elif ord == 1:
            n = a.sum(axis=axes, keepdims=True)
        elif ord == 2:
            n = np.sqrt((x * x).sum(axis=axes, keepdims=True))
        else:
            n = (a ** ord).sum(axis=axes, keepdims=True) ** (1.0 / ord)
        self.n = n
        return n if keepdim else n.reshape([s for i, s in enumerate(n.shape) if i not in axes])

    def backward(self, g):
        x, n, p = self.x, self.n, self.ord
        g = g.reshape(n.shape)
        if p == 0:
            return np.zeros_like(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p in (math.inf, -math.inf):
                hit = np.abs(x) == n
                dx = np.sign(x) * hit * (g / hit.sum(axis=self.axes, keepdims=True))
            elif p == 1:
                dx = np.sign(x) * g
            elif p == 2:
                dx = x * (g / n)
            else:
                dx = np.sign(x) * np.abs(x) ** (p - 1) * (g / n ** (p - 1))
        return np.where((n == 0) | (x == 0), 0, dx).astype(x.dtype, copy=False)


def vector_norm(x, ord=2, dim=None, keepdim=False, dtype=None):
    """‖x‖_ord over `dim` (an int, a tuple, or None: all), as torch.linalg.vector_norm."""
    if not isinstance(x, Tensor):
        raise TypeError(f"vector_norm(): argument 'input' must be Tensor, not {type(x).__name__}")
    if dtype is not None:
        x = x.type(dtype)
    if x.dtype not in FLOAT_DTYPES:
        raise RuntimeError(f"linalg.vector_norm: expected a floating point tensor, got {x.dtype}; "
                           f"cast it with .float()")
    ord = float(ord)
    return VectorNorm.apply(x, ord=ord, axes=normalize_dims(dim, x.ndim), keepdim=keepdim)
