"""ActivationMonitor: statistics of what every layer outputs, and of the gradients flowing back.

    with tn.lab.ActivationMonitor(model, modules=nn.Tanh) as mon:
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            ...
    mon.history["2"]["output"]["saturated"]   # per forward call of module "2": the saturated fraction
    mon.history["2"]["grad"]["std"]           # ... and the std of the gradient that reached its output

The diagnostics of Karpathy's "Activations & Gradients" lecture (docs/protocols.md §8):
per module and per forward call, of the output y and of ∂L/∂y,

    p15, p50, p85   percentiles over all entries (batch and units together)
    mean, std       (std: population, ddof = 0)
    saturated       output only: the fraction of entries where the activation is flat
                    (its derivative is small), defined per activation:
                        Tanh      |y| > 0.97                       (Karpathy's threshold)
                        Sigmoid   y < 0.03 or y > 0.97             (σ' = y(1−y) < 0.03)
                        ReLU      y == 0                           (zero gradient: "dead")
                        Hardtanh-like others, Linear, norms ...   None (not defined)

The monitor only reads: its forward hooks return nothing and its gradient hooks
return nothing, so outputs, gradients, parameters and buffers are unchanged.
Entry k of "grad" belongs to forward call k; it stays None when no gradient
reached that output (a forward under `no_grad`, or before `backward()`).
"""
from contextlib import contextmanager

import numpy as np

from .. import nn
from ..tensor import Tensor, is_grad_enabled

__all__ = ["ActivationMonitor", "saturation", "SATURATION"]

STATS = ("p15", "p50", "p85", "mean", "std")

# Saturated fraction of an activation's output (see the module docstring).
SATURATION = {
    nn.Tanh: lambda y: np.abs(y) > 0.97,
    nn.Sigmoid: lambda y: (y < 0.03) | (y > 0.97),
    nn.ReLU: lambda y: y == 0,
}


def saturation(module, y):
    """The fraction of saturated entries of `y`, the output of `module`; None if undefined."""
    for kind, flat_region in SATURATION.items():
        if isinstance(module, kind):
            return float(np.mean(flat_region(y))) if y.size else float("nan")
    return None


def _stats(a):
    a = np.asarray(a, np.float64).ravel()
    if a.size == 0:
        return {k: float("nan") for k in STATS}
    p15, p50, p85 = np.percentile(a, [15, 50, 85])
    return {"p15": float(p15), "p50": float(p50), "p85": float(p85),
            "mean": float(a.mean()), "std": float(a.std())}


class ActivationMonitor:
    """`ActivationMonitor(model, modules=None)`: a context manager recording activation statistics.

    Args:
        model: the Module to watch.
        modules: which submodules: None = every leaf module (no children); a Module class
            or a tuple of classes (e.g. `nn.Tanh`); or a list of submodules or of their
            dotted names (as in `model.named_modules()`).

    Attributes:
        history: `{name: {"output": {stat: [...]}, "grad": {stat: [...]}}}` with the stats
            p15 p50 p85 mean std (and "saturated" for outputs; None when the module has no
            saturation defined), one entry per forward call, plain floats (JSON-ready).
        names: the watched module names, in model order.
    Use `paused()` to skip forward calls (e.g. evaluation), `clear()` to start over.
    Hooks are installed by `__enter__` (or `start()`) and removed by `__exit__` (`stop()`).
    """

    def __init__(self, model, modules=None):
        self.model = model
        self.modules = self._select(model, modules)
        self.names = [name for name, _ in self.modules]
        self.history = {}
        self.clear()
        self._handles = []
        self._paused = False

    @staticmethod
    def _select(model, modules):
        named = [(name or type(model).__name__, m) for name, m in model.named_modules()]
        if modules is None:
            chosen = [(n, m) for n, m in named if not m._modules]
        elif isinstance(modules, type) or (isinstance(modules, tuple) and all(isinstance(t, type) for t in modules)):
            chosen = [(n, m) for n, m in named if isinstance(m, modules)]
        else:
            wanted = list(modules)
            by_name = dict(named)
            by_id = {id(m): n for n, m in named}
            chosen = []
            for w in wanted:
                if isinstance(w, str):
                    if w not in by_name:
                        raise ValueError(f"ActivationMonitor: the model has no module named {w!r}; "
                                         f"names: {list(by_name)}")
                    chosen.append((w, by_name[w]))
                elif isinstance(w, nn.Module):
                    if id(w) not in by_id:
                        raise ValueError(f"ActivationMonitor: {type(w).__name__} is not a submodule of the model")
                    chosen.append((by_id[id(w)], w))
                else:
                    raise TypeError(f"ActivationMonitor: modules must be Modules, names or Module classes, "
                                    f"got {type(w).__name__}")
        if not chosen:
            raise ValueError("ActivationMonitor: no module to watch (check `modules`)")
        return chosen

    def clear(self):
        """Forget everything recorded so far."""
        self.history = {name: {"output": {k: [] for k in STATS + ("saturated",)},
                               "grad": {k: [] for k in STATS}} for name, _ in self.modules}

    # ------------------------------------------------------------------ hooks
    def start(self):
        if self._handles:
            return self
        for name, module in self.modules:
            self._handles.append(module.register_forward_hook(self._forward_hook(name)))
        return self

    def stop(self):
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @contextmanager
    def paused(self):
        """Forward calls inside this block are not recorded."""
        before, self._paused = self._paused, True
        try:
            yield self
        finally:
            self._paused = before

    def _forward_hook(self, name):
        def hook(module, args, output):
            if self._paused or not isinstance(output, Tensor):
                return None
            record = self.history      # NOTE: looked up per call; clear() replaces the dict
            out = record[name]["output"]
            y = output._data
            for k, v in _stats(y).items():
                out[k].append(v)
            out["saturated"].append(saturation(module, y))
            grads = record[name]["grad"]
            index = len(grads["mean"])
            for k in STATS:
                grads[k].append(None)
            if is_grad_enabled() and output.requires_grad:
                def grad_hook(g, index=index):
                    for k, v in _stats(g._data).items():
                        grads[k][index] = v
                    return None   # NOTE: never replaces the gradient
                output.register_hook(grad_hook)
            return None
        return hook

    # --------------------------------------------------------------- summaries
    def last(self, what="output"):
        """{name: {stat: value of the latest forward call}} for `what` in ("output", "grad")."""
        return {name: {k: (v[-1] if v else None) for k, v in h[what].items()} for name, h in self.history.items()}

    def table(self, what="output"):
        """A text table of the latest statistics, one row per module (for printing)."""
        rows = [f"{'module':24s} {'mean':>10s} {'std':>10s} {'p15':>10s} {'p50':>10s} {'p85':>10s} {'sat %':>7s}"]
        for name, s in self.last(what).items():
            sat = s.get("saturated")
            cells = [("%10.4g" % s[k]) if s[k] is not None else f"{'-':>10s}" for k in ("mean", "std", "p15", "p50", "p85")]
            rows.append(f"{name:24s} " + " ".join(cells) + " " + (f"{100 * sat:7.2f}" if sat is not None else f"{'-':>7s}"))
        return "\n".join(rows)
