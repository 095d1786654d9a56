"""Test accuracy, the one evaluation every experiment shares, and when a curve reaches a level.

    acc = accuracy(model, x_test, y_test)               # a float in [0, 1]
    first_step_reaching(steps, accuracies, 0.95)        # when a curve first reaches a level
    ok = predictions_correct(model, x_test, y_test)     # bool per image
"""
import numpy as np

from ..tensor import Tensor, no_grad

__all__ = ["accuracy", "predictions_correct", "first_step_reaching"]


def predictions_correct(model, x, y, chunk=5000):
    """Which rows of `x` (ndarray (N, ...)) the model classifies as `y` (N,): a bool array (N,).

    Runs in eval mode (BatchNorm with its running statistics) under `no_grad`, `chunk`
    rows at a time, and leaves the model in training mode. A row with a non-finite logit
    counts as wrong (a diverged net scores 0, not the index of its first NaN).
    """
    model.eval()
    out = []
    with no_grad(), np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, len(x), chunk):
            logits = model(Tensor(x[start:start + chunk])).numpy()
            out.append(np.isfinite(logits).all(1) & (logits.argmax(1) == y[start:start + chunk]))
    model.train()
    return np.concatenate(out)


def accuracy(model, x, y, chunk=5000):
    """The fraction of rows of `x` classified correctly (see `predictions_correct`)."""
    return float(predictions_correct(model, x, y, chunk).mean())


def first_step_reaching(steps, values, level):
    """The first step at which `values` ≥ `level`, or None."""
    for s, v in zip(steps, values):
        if v is not None and v >= level:
            return s
    return None
