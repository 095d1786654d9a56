"""Tensor factories: zeros, ones, full, arange, randn, rand, ... (PyTorch's signatures).

Shapes are given as `*sizes` or one tuple; the default dtype is float32; random
draws come from the library's generator (`tn.manual_seed`). `device=` is
accepted for porting: None or the CPU (a GPU raises DeviceError).
"""
import numpy as np

from .devices import check_device
from .random import generator
from .tensor import Tensor, _as_array, _shape_arg, float32


def _on_cpu(device):
    """`device=` of every factory: None or the CPU (a GPU raises DeviceError)."""
    if device is not None:
        check_device(device)


def _make(array, dtype, requires_grad):
    if dtype is not None:
        array = array.astype(np.dtype(dtype), copy=False)
    t = Tensor._wrap(array)
    t.requires_grad = requires_grad  # checks the dtype can require grad
    return t


def zeros(*size, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return _make(np.zeros(_shape_arg(size), dtype or float32), None, requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return _make(np.ones(_shape_arg(size), dtype or float32), None, requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    if dtype is None:
        dtype = np.dtype(bool) if isinstance(fill_value, bool) else (
            np.int64 if isinstance(fill_value, int) else float32)
    return _make(np.full(_shape_arg((size,)), fill_value, dtype), None, requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return _make(np.eye(n, m, dtype=dtype or float32), None, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    """Like torch.arange: integer arguments give int64, any float gives float32."""
    _on_cpu(device)
    if end is None:
        start, end = 0, start
    if dtype is None:
        integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if integral else float32
    return _make(np.arange(start, end, step, dtype=np.float64).astype(dtype), None, requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return _make(np.linspace(start, end, steps, dtype=np.float64), dtype or float32, requires_grad)


def randn(*size, dtype=None, requires_grad=False, device=None):
    """Standard normal draws."""
    _on_cpu(device)
    dtype = np.dtype(dtype or float32)
    return _make(generator().standard_normal(_shape_arg(size), dtype=dtype), None, requires_grad)


def rand(*size, dtype=None, requires_grad=False, device=None):
    """Uniform draws on [0, 1)."""
    _on_cpu(device)
    dtype = np.dtype(dtype or float32)
    return _make(generator().random(_shape_arg(size), dtype=dtype), None, requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None):
    """Integers uniform on [low, high) (int64)."""
    _on_cpu(device)
    if high is None:
        low, high = 0, low
    return _make(generator().integers(low, high, size=_shape_arg((size,))), dtype or np.int64, False)


def randperm(n, dtype=None, device=None):
    _on_cpu(device)
    return _make(generator().permutation(n), dtype or np.int64, False)



def zeros_like(t, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn_like(t, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return randn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad=False, device=None):
    _on_cpu(device)
    return rand(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def tensor(data, dtype=None, requires_grad=False, device=None):
    """`tn.tensor(data)`: a copy of data, with PyTorch's dtype inference for Python
    data: `tn.tensor([1, 2])` is int64, `[True]` bool, `[1.0, 2]` float32 (the class
    `Tensor([1, 2])` is float32). numpy arrays and Tensors keep their dtype."""
    _on_cpu(device)
    return _make(_as_array(data, dtype, infer=True), None, requires_grad)


def from_numpy(array):
    """A Tensor sharing memory with `array` (no copy; dtype rules as for Tensor)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects an np.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array)
