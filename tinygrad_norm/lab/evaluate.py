"""Test accuracy, the one evaluation every experiment shares.

    acc = accuracy(model, x_test, y_test)     # a float in [0, 1]
"""
import numpy as np

from ..tensor import Tensor, no_grad

__all__ = ["accuracy"]


def accuracy(model, x, y, chunk=5000):
    """The fraction of rows of `x` (ndarray (N, ...)) whose argmax logit is the label in `y` (N,).

    Runs in eval mode (BatchNorm with its running statistics) under `no_grad`, `chunk`
    rows at a time, and leaves the model in training mode. A row with a non-finite logit
    counts as wrong (a diverged net scores 0, not the index of its first NaN).
    """
    model.eval()
    correct = 0
    with no_grad(), np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, len(x), chunk):
            logits = model(Tensor(x[start:start + chunk])).numpy()
            ok = np.isfinite(logits).all(1) & (logits.argmax(1) == y[start:start + chunk])
            correct += int(ok.sum())
    model.train()
    return correct / len(x)
