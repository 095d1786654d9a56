"""Loss modules: CrossEntropyLoss, NLLLoss, MSELoss (reduction='mean'|'sum'|'none').

    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    loss = loss_fn(logits, labels)      # logits (N, C), labels int (N,)

The math is in F.cross_entropy / F.nll_loss / F.mse_loss; class weights are
registered as a buffer named `weight`, as in PyTorch.
"""
from . import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss"]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = F._reduction(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """log_softmax over the class dim, then negative log likelihood.

    Args:
        weight: a (C,) tensor of class weights. Default: None.
        ignore_index: targets with this value contribute nothing (and do not
            count in the mean). Default: -100.
        reduction: 'mean' (the weighted mean: divides by the sum of the weights
            of the non-ignored targets), 'sum' or 'none'. Default: 'mean'.
        label_smoothing: ε in [0, 1]; the target becomes (1 − ε)·one_hot + ε/C.

    Shape: input (N, C) or (N, C, d1, ...) logits (or (C,)); target class indices
    (N,) / (N, d1, ...) of an integer dtype, or probabilities of the input's shape.
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log likelihood of class indices under log-probabilities
    (e.g. the output of LogSoftmax): loss_i = −weight[t_i]·input[i, t_i].
    Same arguments and shapes as CrossEntropyLoss, without label_smoothing."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """(input − target)², reduced by 'mean' (default), 'sum' or kept ('none')."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
