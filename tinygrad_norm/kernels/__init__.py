"""Numba kernels on plain numpy arrays (no Tensor in here).

    jit.py          the `kernel` decorator: lazy, cached, serial + parallel twins
    elementwise.py  unary/binary forward kernels and their fused backward
    reduce.py       sum/max/min/var over the middle axis of (A, R, B) + backward
    optim.py        fused optimizer updates (SGD with momentum)

Every kernel is registered in `REGISTRY` with the numpy reference it is tested
against.
"""
from . import elementwise, reduce  # noqa: F401  (registers the kernels)
from . import conv  # noqa: F401  (im2col/col2im, pooling)
from . import softmax  # noqa: F401  (fused softmax / log_softmax)
from . import norm  # noqa: F401  (fused normalization forward / backward)
from . import optim  # noqa: F401  (fused optimizer updates)
from .elementwise import map_elementwise
from .jit import PARALLEL_MIN, REGISTRY, kernel

__all__ = ["REGISTRY", "PARALLEL_MIN", "kernel", "map_elementwise", "elementwise", "reduce"]
