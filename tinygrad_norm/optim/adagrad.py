"""Adagrad (Duchi, Hazan & Singer 2011), as `torch.optim.Adagrad`.

For each parameter p with gradient g, at step t = 1, 2, ...:

    g ← −g                               if maximize
    g ← g + λ·p                          if weight_decay λ ≠ 0
    clr = lr / (1 + (t − 1)·lr_decay)
    s ← s + g²                           the sum of squared gradients
    p ← p − clr · g / (√s + ε)

NOTE: ε is added after the root (√s + ε), as in PyTorch; s starts at
`initial_accumulator_value`, and the state is created at construction, not
at the first step (PyTorch does the same, so a state_dict taken before any
step already holds "sum").
"""
import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer
from .sgd import _apply


class Adagrad(Optimizer):
    """`Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
    *, maximize=False)`. State per parameter: "step" (float32 scalar Tensor), "sum"."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False):
        for name, value in (("learning rate", lr), ("lr_decay value", lr_decay),
                            ("weight_decay value", weight_decay),
                            ("initial_accumulator_value value", initial_accumulator_value),
                            ("epsilon value", eps)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {name}: {value}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = Tensor._wrap(np.zeros((), np.float32))
                state["sum"] = Tensor._wrap(np.full_like(p._data, group["initial_accumulator_value"]))

    def _update(self, group):
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        for p, g, state in self._steps(group):
            clr = lr / (1 + (float(state["step"]._data) - 1) * lr_decay)
            s = state["sum"]._data
            s += g * g
            _apply(p, -clr * (g / (np.sqrt(s) + eps)))
