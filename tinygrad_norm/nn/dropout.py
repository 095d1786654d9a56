"""Dropout (Srivastava et al. 2014), inverted: scaled at training time, identity in eval."""
from . import functional as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """In training, zero each element with probability p and multiply the others
    by 1/(1 − p), so the expected output equals the input; in eval mode (after
    `model.eval()`), return the input unchanged. Masks come from the library's
    generator: `tn.manual_seed` reproduces them.

    Args: p (default 0.5), inplace (accepted for porting; a new tensor is returned).
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
