"""What the measuring tools share: probing a model without leaving a trace.

    with preserved(model):            # BN in training mode, running stats restored afterwards
        loss, grads = loss_and_grads(model, loss_fn, batch, params)

`ics` and `landscape_probe` evaluate the loss and its gradient at other points
of parameter space. They must not disturb the training they observe (docs/lab.md,
"No trace"): after them, parameters, `.grad`, running buffers, train/eval flags and the
library's random generator are exactly what they were before.
"""
from contextlib import contextmanager

import numpy as np

from ..autograd import grad
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor, enable_grad

__all__ = ["preserved", "loss_and_grads", "trainable", "flat", "call_loss"]


@contextmanager
def preserved(model, train=True):
    """Run probes on `model` and restore everything afterwards.

    Inside the block, with `train=True`, every module is in training mode (BatchNorm
    normalizes with the statistics of the probe batch, as during training) and
    the buffers are private copies, so BatchNorm's running-statistics updates go
    nowhere. On exit (also after an exception) the original parameter arrays,
    gradients, buffers, training flags and the random generator's state are put
    back: the model is bitwise what it was.
    """
    params = list(model.parameters())
    saved_params = [(p, p._data, p.grad) for p in params]
    saved_buffers = []
    for module in model.modules():
        for name, b in module._buffers.items():
            if b is not None:
                saved_buffers.append((module, name, b, b._data))
                b._data = b._data.copy()   # NOTE: in-place running-stat updates hit the copy
    saved_modes = [(m, m.training) for m in model.modules()]
    rng = get_rng_state()
    try:
        if train:
            model.train()
        yield
    finally:
        for p, data, g in saved_params:
            p._data, p.grad = data, g
        for module, name, b, data in saved_buffers:
            b._data = data
            module._buffers[name] = b
        for m, mode in saved_modes:
            object.__setattr__(m, "training", mode)
        set_rng_state(rng)


def trainable(model):
    """[(name, parameter)] of the parameters that require grad, in registration order."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def call_loss(model, loss_fn, batch):
    """loss_fn(model(x), *rest) for batch = (x, *rest); loss_fn(model(x)) for a bare Tensor x."""
    if isinstance(batch, Tensor):
        return loss_fn(model(batch))
    x, *rest = batch
    return loss_fn(model(x), *rest)


def loss_and_grads(model, loss_fn, batch, params, rng_state=None):
    """(loss as a float, [gradient ndarray per parameter]) at the model's current parameters.

    Uses `tn.autograd.grad`, so no `.grad` is touched. `rng_state`: the random
    generator is reset to it first, so that every evaluation of a probe draws the
    same dropout masks (the loss is then one deterministic function of θ).
    An unused parameter gets a zero gradient.
    """
    if rng_state is not None:
        set_rng_state(rng_state)
    with enable_grad():
        loss = call_loss(model, loss_fn, batch)
        if loss.numel() != 1:
            raise ValueError(f"loss_fn must return a scalar loss, got shape {loss.shape}")
        grads = grad(loss, params, allow_unused=True)
    return float(loss.item()), [np.zeros_like(p._data) if g is None else g._data
                                for p, g in zip(params, grads)]


def flat(arrays):
    """One float64 vector of all the arrays (a gradient or a parameter vector)."""
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])
