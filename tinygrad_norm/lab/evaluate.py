"""Test accuracy, the one evaluation every experiment shares.

    acc = accuracy(model, x_test, y_test)               # a float in [0, 1]
    ok = predictions_correct(model, x_test, y_test)     # bool per image
"""
import numpy as np

from ..tensor import Tensor, no_grad

__all__ = ["accuracy", "predictions_correct"]


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
