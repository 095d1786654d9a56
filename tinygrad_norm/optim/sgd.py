"""Stochastic gradient descent with momentum, exactly as `torch.optim.SGD`.

For each parameter p with gradient g, at step t (λ = weight_decay, μ = momentum,
τ = dampening):

    g ← −g                      if maximize
    g ← g + λ·p                 if λ ≠ 0
    b ← g                       at the first step (NOTE: no dampening here)
    b ← μ·b + (1 − τ)·g         afterwards
    g ← g + μ·b   (nesterov)    or   g ← b
    p ← p − lr·g

This is PyTorch's form (Sutskever et al. 2013 rewritten with lr outside the
buffer): changing lr mid-run rescales the step at once, and the buffer is a
running sum of gradients, not of steps.
"""
import numpy as np

from ..kernels import optim as KO
from ..tensor import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    """`SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False)`.

    State per parameter (when momentum ≠ 0): "momentum_buffer".

        >>> w = tn.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = tn.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward(); opt.step()
        >>> w                                    # w − 0.1·2w
        tensor([0.8, 1.6])
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad._data
            if momentum != 0 and _fused_sgd(self.state[p], p, g, lr, momentum, dampening, weight_decay,
                                            nesterov, maximize):
                continue
            if maximize:
                g = -g
            if weight_decay != 0:
                g = g + weight_decay * p._data  # a new array: .grad stays untouched
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = Tensor._wrap(np.array(g, dtype=p.dtype, copy=True))
                else:
                    b = buf._data
                    b *= momentum
                    b += g if dampening == 0 else (1 - dampening) * g
                g = g + momentum * buf._data if nesterov else buf._data
            _apply(p, -lr * g)


def _fused_sgd(state, p, g, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """The momentum step above in one numba pass (kernels/optim.py), in place.
    Returns False, leaving the work to the numpy path, when the parameter's array
    cannot be updated through a flat view (not contiguous, read-only) or the
    gradient's dtype differs."""
    data = p._data
    buf = state.get("momentum_buffer")
    first = buf is None
    if not (_updatable_in_place(data, g) and (first or _updatable_in_place(buf._data, data))):
        return False
    if first:
        buf = state["momentum_buffer"] = Tensor._wrap(np.empty_like(data))
    flat, b = data.reshape(-1), buf._data.reshape(-1)
    KO.sgd_momentum(flat, np.ascontiguousarray(g).reshape(-1), b, float(lr), float(momentum),
                    float(dampening), float(weight_decay), float(nesterov), -1.0 if maximize else 1.0,
                    float(first))
    return True


def _updatable_in_place(a, like):
    """Whether the kernel can update `a` through a flat view: C-contiguous, writeable,
    and of `like`'s dtype and shape."""
    return a.flags.c_contiguous and a.flags.writeable and a.dtype == like.dtype and a.shape == like.shape


def _apply(p, delta):
    """p ← p + delta, in place when the parameter's array allows it."""
    if p._data.flags.writeable:
        p._data += delta
    else:
        p._data = p._data + delta
