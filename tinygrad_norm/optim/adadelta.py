"""Adadelta (Zeiler 2012), as `torch.optim.Adadelta`.

For each parameter p with gradient g (ρ = rho):

    g ← −g                               if maximize
    g ← g + λ·p                          if weight_decay λ ≠ 0
    v ← ρ·v + (1 − ρ)·g²                 mean square of gradients
    Δ = √(u + ε) / √(v + ε) · g          the step, in the units of p
    u ← ρ·u + (1 − ρ)·Δ²                 mean square of steps
    p ← p − lr·Δ

NOTE: PyTorch keeps a learning rate (default 1.0, Zeiler's method has none)
and puts ε inside both roots.
"""
import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer
from .sgd import _apply


class Adadelta(Optimizer):
    """`Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False)`.
    State per parameter: "step", "square_avg" (v), "acc_delta" (u)."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, group):
        lr, rho, eps = group["lr"], group["rho"], group["eps"]

        def init(p, state):
            state["square_avg"] = Tensor._wrap(np.zeros_like(p._data))
            state["acc_delta"] = Tensor._wrap(np.zeros_like(p._data))

        for p, g, state in self._steps(group, init):
            v, u = state["square_avg"]._data, state["acc_delta"]._data
            v *= rho
            v += (1 - rho) * g * g
            delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
            u *= rho
            u += (1 - rho) * delta * delta
            _apply(p, -lr * delta)
