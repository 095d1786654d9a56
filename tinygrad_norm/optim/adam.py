"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as in `torch.optim`.

For each parameter p with gradient g, at step t = 1, 2, ...:

    g ← −g                              if maximize
    p ← p·(1 − lr·λ)                    AdamW (decoupled weight decay)
    g ← g + λ·p                         Adam with weight_decay λ ≠ 0 (L2 in the gradient)
    m ← m + (1 − β₁)·(g − m)            first moment   (= β₁·m + (1 − β₁)·g)
    v ← β₂·v + (1 − β₂)·g²              second moment
    v̂ ← max(v̂, v)                       amsgrad only; v̂ replaces v below
    p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)

NOTE: ε is added to √v *after* dividing by √(1 − β₂ᵗ), as PyTorch does (not to
the bias-corrected v̂ under the root, and not before the correction): early in
training, when 1 − β₂ᵗ is tiny, the two placements give visibly different steps.
"""
import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer


class Adam(Optimizer):
    """`Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
    maximize=False, decoupled_weight_decay=False)`.

    State per parameter: "step" (a float32 scalar Tensor, as in PyTorch),
    "exp_avg" (m), "exp_avg_sq" (v) and, with amsgrad, "max_exp_avg_sq" (v̂).
    `decoupled_weight_decay=True` is AdamW.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        decoupled = group.get("decoupled_weight_decay", False)
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad._data
            if maximize:
                g = -g
            state = self.state[p]
            if len(state) == 0:  # lazy initialisation, at the first step with a gradient
                state["step"] = Tensor._wrap(np.zeros((), np.float32))
                state["exp_avg"] = Tensor._wrap(np.zeros_like(p._data))
                state["exp_avg_sq"] = Tensor._wrap(np.zeros_like(p._data))
                if amsgrad:
                    state["max_exp_avg_sq"] = Tensor._wrap(np.zeros_like(p._data))
            step_t = _step_tensor(state)
            step_t._data += 1
            step = float(step_t._data)

            if weight_decay != 0:
                if decoupled:
                    _scale(p, 1 - lr * weight_decay)
                else:
                    g = g + weight_decay * p._data  # a new array: .grad stays untouched

            m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
            _lerp_(m, g, 1 - beta1)             # torch: exp_avg.lerp_(grad, 1 - beta1)
            v *= beta2
            v += ((1 - beta2) * g) * g          # torch: exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)

            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2 ** 0.5
            if amsgrad:
                vmax = state["max_exp_avg_sq"]._data
                np.maximum(vmax, v, out=vmax)
                v = vmax
            denom = np.sqrt(v) / bias_correction2_sqrt + eps
            delta = (-step_size * m) / denom  # torch: param.addcdiv_(exp_avg, denom, value=-step_size)
            if p._data.flags.writeable:
                p._data += delta
            else:
                p._data = p._data + delta


class AdamW(Adam):
    """`AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
    maximize=False)`: Adam with decoupled weight decay, p ← p·(1 − lr·λ) before the Adam step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW is always decoupled, whatever the dict says
            group["decoupled_weight_decay"] = True


def _lerp_(start, end, weight):
    """start ← start + weight·(end − start), in place, with PyTorch's two forms:
    for weight ≥ 0.5 it computes end − (end − start)·(1 − weight), which is
    exact at weight = 1 (β₁ = 0 makes m the gradient, bit for bit)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def _step_tensor(state):
    """state["step"] as a float32 scalar Tensor (older checkpoints may hold a number)."""
    step = state["step"]
    if not isinstance(step, Tensor):
        step = state["step"] = Tensor._wrap(np.array(float(step), np.float32))
    elif step._data.dtype != np.float32 or step._data.ndim != 0 or not step._data.flags.writeable:
        step = state["step"] = Tensor._wrap(np.array(float(step._data), np.float32))
    return step


def _scale(p, factor):
    """p ← p·factor, in place when the parameter's array allows it."""
    if p._data.flags.writeable:
        p._data *= factor
    else:
        p._data = p._data * factor
