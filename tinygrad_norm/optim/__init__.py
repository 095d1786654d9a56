"""`tn.optim`: optimizers and learning-rate schedules (PyTorch's names, defaults and numerics).

    opt = tn.optim.Adam(model.parameters(), lr=1e-3)
    sched = tn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)

Optimizer (base, state_dict/load_state_dict) · SGD · Adam · AdamW · Adadelta · Adagrad · RMSprop ·
lr_scheduler.
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adadelta", "Adagrad", "RMSprop", "lr_scheduler"]
