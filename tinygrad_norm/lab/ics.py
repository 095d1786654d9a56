"""Internal covariate shift as Santurkar et al. (2018, Def. 2.1) measure it.

    shift = tn.lab.ics(model, F.cross_entropy, (x, y), lr=0.1)
    shift["0"]   # {"l2": ‖G − G'‖, "cos": cos(G, G'), "norm": ‖G‖}  for layer "0" of a Sequential

For layer i at the current point θ_t = (W_1 … W_k) and one batch (x, y):

    G_i  = ∇_{W_i} L(W_1,        …, W_{i−1},        W_i, …, W_k)
    G'_i = ∇_{W_i} L(W_1 − lr·G_1, …, W_{i−1} − lr·G_{i−1}, W_i, …, W_k)

G'_i is the gradient layer i would see if the layers before it had already
taken their SGD step: the change of the *input distribution* of layer i, as
felt by its gradient. No shift gives G = G' (‖G − G'‖ = 0, cos = 1). The
paper's surprise (docs/protocols.md §2): BatchNorm does not make this smaller.
"""
import math

import numpy as np

from .probe import flat, loss_and_grads, preserved, trainable
from ..random import get_rng_state

__all__ = ["ics"]


def _layers(model, params):
    """[(module name, [indices into params])] for each module that owns trainable parameters,
    in registration order (the forward order of a Sequential)."""
    index = {id(p): i for i, (_, p) in enumerate(params)}
    layers = []
    for name, module in model.named_modules():
        own = [index[id(p)] for p in module._parameters.values() if p is not None and id(p) in index]
        if own:
            layers.append((name, own))
    return layers


def ics(model, loss_fn, batch, lr, layers=None):
    """Santurkar et al.'s internal covariate shift, per layer.

    Args:
        model: a Module. A "layer" is a module owning trainable parameters (a Linear,
            a Conv2d, a BatchNorm's γ and β ...); its G is the gradient of all its own
            parameters, flattened. The layers before it are those registered before it
            (for a Sequential: earlier in the forward pass).
        loss_fn: `loss_fn(model(x), *rest)` -> scalar, e.g. F.cross_entropy.
        batch: `(x, *rest)` (e.g. (x, y)) or a bare Tensor x (then `loss_fn(model(x))`).
        lr: the step size of the SGD step of the earlier layers.
        layers: None (all layers) or a list of module names to report.

    Returns: {layer name: {"l2": ‖G − G'‖₂, "cos": cos(G, G'), "norm": ‖G‖₂}} in layer
    order. The first layer has no predecessors (l2 = 0, cos = 1). cos is NaN when G or
    G' is zero.

    The probe runs in training mode (BatchNorm uses the statistics of `batch`) and
    restores everything: parameters, `.grad`, running buffers and the random state are
    bitwise unchanged (dropout draws the same mask in every evaluation). Costs one
    forward and backward pass per layer.
    """
    params_named = trainable(model)
    params = [p for _, p in params_named]
    all_layers = _layers(model, params_named)
    if layers is not None:
        known = [name for name, _ in all_layers]
        missing = [name for name in layers if name not in known]
        if missing:
            raise ValueError(f"ics: no layer named {missing}; layers with parameters: {known}")
    result = {}
    with preserved(model):
        rng = get_rng_state()
        _, G = loss_and_grads(model, loss_fn, batch, params, rng)
        originals = [p._data for p in params]
        updated = [(p._data - lr * g).astype(p.dtype) for p, g in zip(params, G)]
        for i, (name, own) in enumerate(all_layers):
            if layers is not None and name not in layers:
                continue
            earlier = {j for _, idx in all_layers[:i] for j in idx}
            for j, p in enumerate(params):   # W_1..W_{i-1} stepped, the rest at θ_t
                p._data = updated[j] if j in earlier else originals[j]
            if earlier:
                _, G_prime = loss_and_grads(model, loss_fn, batch, params, rng)
            else:
                G_prime = G
            g, g2 = flat([G[j] for j in own]), flat([G_prime[j] for j in own])
            result[name] = {"l2": float(np.linalg.norm(g - g2)), "cos": _cos(g, g2),
                            "norm": float(np.linalg.norm(g))}
    return result


def _cos(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0 or not (math.isfinite(na) and math.isfinite(nb)):
        return float("nan")
    # NOTE: rounding can put the quotient a hair outside [-1, 1] (1.0000000000000002).
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
