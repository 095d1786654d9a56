"""tinygrad_norm: a small autograd engine for seeing what normalization does.

    import tinygrad_norm as tn
    x = tn.randn(60, 784)
    w = tn.randn(784, 100, requires_grad=True)
    loss = (x @ w).sigmoid().mean()
    loss.backward()            # w.grad now holds d(loss)/dw

The public API mirrors PyTorch (see docs/api/index.md): `tn.Tensor`, factories,
`tn.no_grad`, `tn.nn`, `tn.optim`, `tn.data`, `tn.viz`, `tn.lab`.
"""
__version__ = "0.1.0"

from . import _malloc

_malloc.configure()  # reuse freed memory instead of page-faulting it in again (see _malloc.py)

from . import autograd
from .factory import (arange, empty, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand,
                      rand_like, randint, randn, randn_like, randperm, tensor, zeros, zeros_like)
from .random import Generator, get_rng_state, manual_seed, seed, set_rng_state
from .serialization import load, save
from .tensor import (Function, Tensor, bool_, cat, enable_grad, float32, float64, inference_mode, int32,
                     int64, is_grad_enabled, no_grad, set_grad_enabled, stack, uint8, where)
from . import accelerator, backends, cuda  # noqa: E402  (porting: no GPU; tn.cuda.is_available() is False)
from .devices import DeviceError, device
from .einsum import einsum
from . import linalg  # noqa: E402  (tn.linalg.vector_norm)

from . import nn  # noqa: E402  (after Tensor: modules and layers build on it)
from . import optim  # noqa: E402  (after Tensor: optimizers import it)
from . import data, utils, viz  # noqa: E402  (viz imports graphviz only when drawing)
from . import lab  # noqa: E402  (measuring tools; matplotlib is imported only to draw figures)

float = float32  # noqa: A001  (torch.float)
double = float64
long = int64
int = int32  # noqa: A001
bool = bool_  # noqa: A001

# Function forms of Tensor methods, as in torch.exp(x) etc.
exp, log, sqrt, abs, tanh, sigmoid, relu = (Tensor.exp, Tensor.log, Tensor.sqrt, Tensor.abs,  # noqa: A001
                                            Tensor.tanh, Tensor.sigmoid, Tensor.relu)
clamp, maximum, minimum, matmul = Tensor.clamp, Tensor.maximum, Tensor.minimum, Tensor.matmul
sum, mean, var, std, max, min = (Tensor.sum, Tensor.mean, Tensor.var, Tensor.std,  # noqa: A001
                                 Tensor.max, Tensor.min)
argmax, argmin, amax, amin = Tensor.argmax, Tensor.argmin, Tensor.amax, Tensor.amin
reshape, flatten, transpose, permute = Tensor.reshape, Tensor.flatten, Tensor.transpose, Tensor.permute
squeeze, unsqueeze, numel = Tensor.squeeze, Tensor.unsqueeze, Tensor.numel
softmax, log_softmax = Tensor.softmax, Tensor.log_softmax
clip, norm, isnan, isinf, isfinite = Tensor.clip, Tensor.norm, Tensor.isnan, Tensor.isinf, Tensor.isfinite


def is_tensor(obj):
    return isinstance(obj, Tensor)


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    """|a − b| ≤ atol + rtol·|b| elementwise (broadcasting), as torch.allclose: a Python bool."""
    import builtins

    import numpy as np
    # NOTE: this module rebinds `bool`, `abs`, `sum`, ... to torch-style aliases; use the builtins
    return builtins.bool(np.allclose(a._data, b._data, rtol=rtol, atol=atol, equal_nan=equal_nan))
