"""Gradient clipping: `clip_grad_norm_` and `clip_grad_value_` (torch.nn.utils).

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # ‖all grads‖₂ ≤ 1
    opt.step()

NOTE: each clipped gradient becomes a new array (`p.grad` is replaced, never
written into): a gradient array may be shared with another tensor or a user's variable.
"""
import math

import numpy as np

from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in params if p.grad is not None]


def _norm(a, norm_type):
    a = np.abs(a.astype(np.float64, copy=False)).ravel()
    if norm_type == math.inf:
        return float(a.max()) if a.size else 0.0
    if norm_type == -math.inf:
        return float(a.min()) if a.size else 0.0
    return float(np.sum(a ** norm_type) ** (1.0 / norm_type))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients by min(1, max_norm / (total + 1e-6)), where total is the
    norm_type-norm of the vector of every gradient entry (the norm of the per-parameter
    norms, as PyTorch computes it; norm_type=inf: the largest |g|). Returns total, a
    0-d Tensor of the first gradient's dtype (0.0 when there are no gradients)."""
    params = _grads(parameters)
    norm_type = float(norm_type)
    if not params:
        return Tensor._wrap(np.zeros((), np.float32))
    norms = np.array([_norm(p.grad._data, norm_type) for p in params])
    total = _norm(norms, norm_type)
    dtype = params[0].grad.dtype
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is "
                           f"non-finite, so it cannot be clipped. To disable this error and scale the "
                           f"gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = min(float(max_norm) / (total + 1e-6), 1.0)
    if coef < 1.0 or not math.isfinite(total):
        for p in params:
            g = p.grad._data
            p.grad = Tensor._wrap((g * g.dtype.type(coef)).astype(g.dtype, copy=False))
    return Tensor._wrap(np.asarray(total, dtype))


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient entry to [−clip_value, clip_value]."""
    clip_value = float(clip_value)
    for p in _grads(parameters):
        p.grad = Tensor._wrap(np.clip(p.grad._data, -clip_value, clip_value))
