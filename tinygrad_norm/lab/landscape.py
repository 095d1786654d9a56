"""The loss landscape along the gradient (Santurkar et al. 2018, §3.2 and App. A.2.2).

    probe = tn.lab.landscape_probe(model, F.cross_entropy, (x, y), etas=[0.05, 0.1, 0.2, 0.4])
    probe["loss_range"], probe["gradient_predictiveness"], probe["beta_smoothness"]

At the current parameters θ, with g = ∇L(θ) on `batch`, the probe looks at the
points θ − η·g for each step size η (the same batch each time):

    loss range                = max_η L(θ − ηg) − min_η L(θ − ηg)
    gradient predictiveness   = max_η ‖∇L(θ − ηg) − ∇L(θ)‖₂
    effective β-smoothness    = max_η ‖∇L(θ − ηg) − ∇L(θ)‖₂ / ‖ηg‖₂

A smooth landscape has a small loss range (a step of any size η changes the loss
predictably), a small gradient change (the gradient at θ predicts the gradient a
step away) and a small β. The paper's claim (docs/protocols.md §3): BatchNorm makes the
first two smaller; the β medians are similar, the gap is in the spikes.
"""
import numpy as np

from .probe import flat, loss_and_grads, preserved, trainable
from ..random import get_rng_state

__all__ = ["landscape_probe"]


def landscape_probe(model, loss_fn, batch, etas):
    """Probe the loss and its gradient at θ − η·∇L(θ) for each η in `etas`.

    Args:
        model: a Module; all its trainable parameters move together (g is the full gradient).
        loss_fn: `loss_fn(model(x), *rest)` -> scalar.
        batch: `(x, *rest)` or a bare Tensor x.
        etas: step sizes (non-empty). Santurkar et al.: η ∈ [1/2, 4] × lr for VGG.

    Returns a dict (plain floats and lists, ready for JSON):
        "etas", "loss" (L(θ)), "grad_norm" (‖g‖), "losses" (L(θ − ηg) per η),
        "grad_changes" (‖∇L(θ − ηg) − g‖ per η), "betas" (grad_change / ‖ηg‖ per η),
        "loss_range" (max − min of "losses"), "loss_min", "loss_max",
        "gradient_predictiveness" (max of "grad_changes"; "grad_change_min" is the min),
        "beta_smoothness" (max of "betas").
    The ranges are over the given etas only (include 0 in `etas` to include L(θ)).

    Runs in training mode (BatchNorm on the statistics of `batch`) and leaves the model
    bitwise unchanged: parameters, `.grad`, buffers, random state. Costs one forward and
    backward pass per η, plus one.
    """
    etas = [float(e) for e in etas]
    if not etas:
        raise ValueError("landscape_probe: etas is empty; give at least one step size")
    params = [p for _, p in trainable(model)]
    with preserved(model):
        rng = get_rng_state()
        loss0, grads0 = loss_and_grads(model, loss_fn, batch, params, rng)
        g = flat(grads0)
        g_norm = float(np.linalg.norm(g))
        originals = [p._data for p in params]
        losses, changes, betas = [], [], []
        for eta in etas:
            for p, data, gp in zip(params, originals, grads0):
                p._data = (data - eta * gp).astype(p.dtype)
            loss, grads = loss_and_grads(model, loss_fn, batch, params, rng)
            change = float(np.linalg.norm(flat(grads) - g))
            step = abs(eta) * g_norm
            losses.append(loss)
            changes.append(change)
            betas.append(change / step if step > 0 else float("nan"))
    return {
        "etas": etas, "loss": loss0, "grad_norm": g_norm,
        "losses": losses, "grad_changes": changes, "betas": betas,
        "loss_min": min(losses), "loss_max": max(losses), "loss_range": max(losses) - min(losses),
        "gradient_predictiveness": max(changes), "grad_change_min": min(changes),
        "beta_smoothness": float(np.nanmax(betas)) if np.any(np.isfinite(betas)) else float("nan"),
    }
