"""RMSprop (Hinton's lecture 6e; centered form of Graves 2013), as `torch.optim.RMSprop`.

For each parameter p with gradient g (α = alpha, μ = momentum):

    g ← −g                               if maximize
    g ← g + λ·p                          if weight_decay λ ≠ 0
    v ← α·v + (1 − α)·g²                 the mean square
    ḡ ← α·ḡ + (1 − α)·g                  centered only: the mean gradient
    d = √(v − ḡ²) + ε   (centered)   or   √v + ε
    b ← μ·b + g / d;   p ← p − lr·b      if μ > 0
    p ← p − lr · g / d                   otherwise

NOTE: ε is added after the root, as in PyTorch (Keras adds it inside).
"""
import numpy as np

from ..tensor import Tensor
from .adam import _lerp_
from .optimizer import Optimizer
from .sgd import _apply


class RMSprop(Optimizer):
    """`RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
    *, maximize=False)`. State per parameter: "step", "square_avg", and "momentum_buffer"
    (momentum > 0), "grad_avg" (centered)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, *, maximize=False):
        for name, value in (("learning rate", lr), ("epsilon value", eps), ("momentum value", momentum),
                            ("weight_decay value", weight_decay), ("alpha value", alpha)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {name}: {value}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, group):
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        centered = group["centered"]

        def init(p, state):
            state["square_avg"] = Tensor._wrap(np.zeros_like(p._data))
            if momentum > 0:
                state["momentum_buffer"] = Tensor._wrap(np.zeros_like(p._data))
            if centered:
                state["grad_avg"] = Tensor._wrap(np.zeros_like(p._data))

        for p, g, state in self._steps(group, init):
            v = state["square_avg"]._data
            v *= alpha
            v += (1 - alpha) * g * g
            if centered:
                m = state["grad_avg"]._data
                _lerp_(m, g, 1 - alpha)
                d = np.sqrt(v - m * m) + eps
            else:
                d = np.sqrt(v) + eps
            if momentum > 0:
                b = state["momentum_buffer"]._data
                b *= momentum
                b += g / d
                _apply(p, -lr * b)
            else:
                _apply(p, -lr * (g / d))
