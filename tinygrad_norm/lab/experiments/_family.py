"""What the normalization-family experiments share (docs/protocols.md §9–13).

    model = family_mlp("gn", cfg)                     # 784-256-256-256-10, Linear (no bias) → norm → ReLU
    data = mnist_subset(cfg)                          # {"train": (x, y), "test": (x, y)}
    batches = Batches(x, y, 4, seed, hooks=[lr_hook(optimizer, schedule)])
    result = train_arm(lab, cfg, "bn_4", model, optimizer, batches, steps, data)

Norms are named by short keys (NORMS): "bn" BatchNorm1d, "bn_unbiased" BatchNorm1d
normalizing with the unbiased batch variance (Ba et al. §6.6), "brn"
BatchRenorm1d, "gn" GroupNorm(groups, width), "ln" LayerNorm, "rms" RMSNorm,
"none" the identity.

The evaluations: `eval_error` (eval mode: BN with its running statistics),
`batch_stats_error` (BN in training mode on test batches, buffers untouched) and
`population_statistics` (Ioffe & Szegedy Alg. 2: the running statistics
recomputed over a data set, restored on exit).
"""
import math
from contextlib import contextmanager

import numpy as np

from ... import nn
from ...data import mnist_arrays
from ...models import make_norm
from ...nn.normalization import _average_factor
from ...nn import functional as F
from ...random import manual_seed
from ...tensor import Tensor, no_grad
from ..evaluate import predictions_correct
from ..experiment import sub_seed
from ..probe import preserved

NORMS = {"bn": "BatchNorm1d", "bn_unbiased": "BatchNorm1d (unbiased batch variance)", "brn": "BatchRenorm1d",
         "gn": "GroupNorm", "ln": "LayerNorm", "rms": "RMSNorm", "none": "no normalization"}
LABELS = {"bn": "BN", "bn_unbiased": "BN (unbiased)", "brn": "BRN", "gn": "GN", "ln": "LN", "rms": "RMSNorm",
          "none": "none"}
COLORS = {"bn": "tab:blue", "bn_unbiased": "tab:blue", "brn": "tab:purple", "gn": "tab:green", "ln": "tab:orange",
          "rms": "tab:red", "none": "tab:gray"}
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchRenorm1d)


# ------------------------------------------------------------------ the net

class UnbiasedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that normalizes a training batch with the unbiased variance (÷ (n − 1)):

        y = γ·(x − μ_B)/√(s² + ε) + β,  s² = σ²_B·n/(n − 1)

    (Ba et al. 2016 §6.6 for small batches). Eval and the running statistics are BatchNorm1d's
    (running_var already stores s²). Computed as √((n−1)/n)·BN(x) with ε·(n−1)/n, then γ, β.
    """

    def forward(self, input):
        if not self.training:
            return super().forward(input)
        n = input.shape[0]
        shrink = (n - 1) / n
        factor = _average_factor(self)
        x_hat = F.batch_norm(input, self.running_mean, self.running_var, None, None, True, factor,
                             self.eps * shrink) * math.sqrt(shrink)
        return x_hat * self.weight + self.bias


def make_family_norm(norm, width, groups=32):
    """The norm layer named `norm` (a key of NORMS) for `width` features."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")
    if norm == "bn_unbiased":
        return UnbiasedBatchNorm1d(width)
    kind = {"bn": "batch", "brn": "batch_renorm", "gn": "group", "ln": "layer", "rms": "rms", "none": None}[norm]
    return make_norm(kind, width, dims=1, groups=groups)


def family_mlp(norm, hidden=(256, 256, 256), groups=32, seed=None, norm_factory=make_family_norm):
    """784-hidden…-10 MLP: each hidden layer Linear (no bias unless norm is "none") → norm → ReLU,
    then a Linear to the 10 logits (docs/protocols.md §9). PyTorch's default init, drawn from `seed`."""
    if seed is not None:
        manual_seed(seed)
    layers, n_in = [], 784
    for width in hidden:
        layers += [nn.Linear(n_in, width, bias=norm == "none"), norm_factory(norm, width, groups), nn.ReLU()]
        n_in = width
    layers.append(nn.Linear(n_in, 10))
    return nn.Sequential(*layers)


# ------------------------------------------------------------------ data

def mnist_subset(cfg):
    """{"train": (x, y), "test": (x, y)}: `n_train` training images drawn without replacement by the
    "data" seed (all 60,000 when n_train is None), and the 10,000 test images; pixels / 255."""
    x, y = mnist_arrays("train")
    n = cfg.get("n_train")
    if n is not None and n < len(x):
        pick = np.sort(np.random.default_rng(sub_seed(cfg, "data")).choice(len(x), n, replace=False))
        x, y = x[pick], y[pick]
    return {"train": (x, y), "test": mnist_arrays("test")}


class Batches:
    """`batches(step)` -> (x, y) Tensors for `lab.train`: a pure function of (seed, step), so resuming works.

    i.i.d.: epoch e visits the samples in a permutation drawn from (seed, e), `batch_size` at a time
    (the last partial batch dropped). classes_per_batch=c (non-i.i.d., Ioffe 2017 §4.2): every batch
    holds batch_size/c images of each of c classes; per epoch each class's images are shuffled and cut
    into chunks, and each batch takes a chunk of each of the c classes with the most chunks left.
    hooks: functions hook(step) called before each batch is returned (learning rate, BRN clips).
    """

    def __init__(self, x, y, batch_size, seed, classes_per_batch=None, hooks=()):
        if classes_per_batch is not None and batch_size % classes_per_batch:
            raise ValueError(f"batch_size {batch_size} is not a multiple of classes_per_batch {classes_per_batch}")
        self.x, self.y, self.batch_size, self.seed = x, np.asarray(y), int(batch_size), int(seed)
        self.classes_per_batch, self.hooks = classes_per_batch, list(hooks)
        self._epoch, self._order = None, None
        self.per_epoch = len(self._epoch_order(0))

    def _epoch_order(self, epoch):
        if self._epoch != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            if self.classes_per_batch is None:
                perm = rng.permutation(len(self.y))
                k = len(perm) // self.batch_size
                self._order = perm[:k * self.batch_size].reshape(k, self.batch_size)
            else:
                self._order = self._non_iid(rng)
            self._epoch = epoch
        return self._order

    def _non_iid(self, rng):
        c = self.classes_per_batch
        per_class = self.batch_size // c
        chunks = {}
        for label in np.unique(self.y):
            idx = rng.permutation(np.flatnonzero(self.y == label))
            k = len(idx) // per_class
            chunks[int(label)] = list(idx[:k * per_class].reshape(k, per_class))
        batches = []
        while sum(len(v) > 0 for v in chunks.values()) >= c:
            left = np.array([len(chunks[label]) for label in chunks])
            tie = rng.random(len(left))
            labels = np.array(list(chunks))[np.lexsort((tie, -left))[:c]]
            batches.append(np.concatenate([chunks[int(label)].pop() for label in labels]))
        return np.stack(batches)[rng.permutation(len(batches))]

    def __call__(self, step):
        for hook in self.hooks:
            hook(step)
        epoch, i = divmod(int(step), self.per_epoch)
        idx = self._epoch_order(epoch)[i]
        return Tensor(self.x[idx]), Tensor(self.y[idx])


def step_lr(lr, steps, drops=(0.6, 0.85), factor=0.1):
    """lr(step): `lr`, divided by 1/factor at each fraction of `steps` in `drops` (Wu & He's ÷10 steps)."""
    marks = [int(round(f * steps)) for f in drops]
    return lambda step: lr * factor ** sum(step >= m for m in marks)


def lr_hook(optimizer, schedule):
    """A Batches hook that sets every parameter group's lr to schedule(step)."""
    def hook(step):
        for group in optimizer.param_groups:
            group["lr"] = schedule(step)
    return hook


def renorm_schedule(steps, r_max, d_max, start=0.1, r_end=0.6, d_end=0.4):
    """(r_max(step), d_max(step)) of Batch Renorm (Ioffe 2017 §4, scaled to `steps`): 1 and 0 (plain BN)
    up to start·steps, then linear ramps reaching r_max at r_end·steps and d_max at d_end·steps."""
    def ramp(step, end, top, rest):
        a, b = start * steps, end * steps
        t = min(max((step - a) / max(b - a, 1), 0.0), 1.0)
        return rest + t * (top - rest)
    return lambda step: ramp(step, r_end, r_max, 1.0), lambda step: ramp(step, d_end, d_max, 0.0)


def renorm_hook(model, schedule):
    """A Batches hook that sets r_max and d_max of every BatchRenorm1d of `model` from `schedule`."""
    r_of, d_of = schedule
    layers = [m for m in model.modules() if isinstance(m, nn.BatchRenorm1d)]

    def hook(step):
        for m in layers:
            m.r_max, m.d_max = r_of(step), d_of(step)
    return hook


# ------------------------------------------------------------------ evaluations

def eval_error(model, x, y):
    """The fraction of (x, y) misclassified in eval mode (BN: running statistics); a diverged net scores 1."""
    return float(1.0 - predictions_correct(model, x, y).mean())


def batch_stats_error(model, x, y, batch=500):
    """The error with every norm in training mode on consecutive test batches of `batch` images
    (BN normalizes each with its own statistics); running buffers and the model are left untouched."""
    wrong = 0
    with preserved(model), no_grad(), np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, len(x), batch):
            logits = model(Tensor(x[start:start + batch])).numpy()
            wrong += int((~(np.isfinite(logits).all(1) & (logits.argmax(1) == y[start:start + batch]))).sum())
    return wrong / len(x)


@contextmanager
def population_statistics(model, x, batch, seed=0):
    """Inside the block, every BatchNorm1d's running statistics are the population statistics of
    Ioffe & Szegedy Alg. 2 over `x`: E[μ_B] and E[s²_B] (unbiased, n/(n−1)·σ²_B) averaged over the
    batches of `batch` samples of one shuffled pass (cumulative average, momentum=None). On exit the
    buffers, momenta and modes are restored. BatchRenorm1d keeps its own (running σ) statistics."""
    layers = [m for m in model.modules() if type(m) in (nn.BatchNorm1d, UnbiasedBatchNorm1d)]
    saved = [(m, m.momentum, {k: b._data.copy() for k, b in m._buffers.items()}) for m in layers]
    modes = [(m, m.training) for m in model.modules()]
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        perm = np.random.default_rng(seed).permutation(len(x))
        with no_grad():
            for start in range(0, len(x) - batch + 1, batch):
                model(Tensor(x[perm[start:start + batch]]))
        model.eval()
        yield model
    finally:
        for m, momentum, buffers in saved:
            m.momentum = momentum
            for k, data in buffers.items():
                m._buffers[k]._data[...] = data
        for m, mode in modes:
            object.__setattr__(m, "training", mode)


# ------------------------------------------------------------------ training

def train_arm(lab, cfg, arm, model, optimizer, batches, steps, data, eval_steps=None, extra=None,
              checkpoint_every=None):
    """Train one arm with cross-entropy through `lab.train`, recording at `eval_steps` (default: the end)
    the test error in eval mode ("test_error") and whatever extra(model, step, batch) returns (a dict of numbers,
    appended under its keys). Returns lab.train's result."""
    x_test, y_test = data["test"]
    curves = {"step": [], "test_error": []}

    def evaluate(step, batch):
        curves["step"].append(step)
        curves["test_error"].append(eval_error(model, x_test, y_test))
        for key, value in (extra(model, step, batch) if extra is not None else {}).items():
            curves.setdefault(key, []).append(value)

    return lab.train(arm, model, optimizer, batches, steps=steps,
                     loss_fn=lambda x, y: F.cross_entropy(model(x), y),
                     evaluate=evaluate, eval_steps=[steps] if eval_steps is None else eval_steps, curves=curves,
                     checkpoint_every=checkpoint_every or cfg.get("checkpoint_every", 2000),
                     log_every=cfg.get("log_every", 50))


def final(result, key="test_error"):
    """The last value of curve `key` of an arm, or None when the arm diverged (or never evaluated)."""
    if result["diverged_at"] is not None or not result["curves"].get(key):
        return None
    return result["curves"][key][-1]


def pct(value):
    """An error as a percentage string, "—" for None."""
    return "—" if value is None else f"{100 * value:.2f} %"
