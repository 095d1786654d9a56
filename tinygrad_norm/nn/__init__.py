"""tinygrad_norm.nn: modules, layers, losses, `functional` (as F) and `init` (torch.nn).

    from tinygrad_norm import nn
    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    loss = nn.CrossEntropyLoss()(model(x), labels)
"""
from . import functional, init
from .module import Module, Parameter
from .container import Identity, ModuleDict, ModuleList, Sequential
from .linear import Flatten, Linear, Unflatten
from .conv import Conv1d, Conv2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .dropout import Dropout
from .sparse import Embedding
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .normalization import (BatchNorm1d, BatchNorm2d, BatchRenorm1d, BatchRenorm2d, GroupNorm,
                            InstanceNorm1d, InstanceNorm2d, LayerNorm, LocalResponseNorm,
                            MeanOnlyBatchNorm1d, MeanOnlyBatchNorm2d, RMSNorm)
from . import utils  # noqa: E402  (nn.utils.weight_norm, nn.utils.spectral_norm)
