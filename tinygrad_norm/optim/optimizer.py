"""`Optimizer`: the base of SGD, Adam and AdamW (PyTorch's `torch.optim.Optimizer`).

    opt = tn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in loader:
        opt.zero_grad()                 # .grad = None for every parameter
        F.cross_entropy(model(x), y).backward()
        opt.step()                      # p ← p − lr·update(p.grad, state[p])

An optimizer holds `param_groups`, a list of dicts, each with its "params"
(a list of Tensors) and its hyperparameters ("lr", "momentum", ...): change
`group["lr"]` and the next step uses it (that is what the schedulers in
`lr_scheduler.py` do). `state[p]` holds per-parameter buffers (momentum,
moment estimates) as Tensors.

`state_dict()` has PyTorch's layout, with parameters replaced by their index
in the order they appear across the groups:

    {"state": {0: {"momentum_buffer": Tensor}, 1: {...}},
     "param_groups": [{"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1]}]}

Subclasses implement `_update(group)` (one step for the parameters of one
group); `step()` runs it for every group under `no_grad`.
NOTE: updates change parameter arrays in place (`p._data`), never `.grad`:
a gradient array may be shared, and the user may still be reading it.
"""
import functools
from collections import defaultdict

import numpy as np

from ..tensor import Tensor, enable_grad, no_grad


class _RequiredParameter:
    """Marks a hyperparameter without default (every group must set it)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _mark_called(step):
    """Wrap a subclass's `step` so schedulers can tell it has run at least once."""
    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        self._opt_called = True
        return step(self, *args, **kwargs)
    wrapper._marks_called = True
    return wrapper


class Optimizer:
    """Base class: `Optimizer(params, defaults)`.

    `params` is an iterable of Tensors, or of dicts (parameter groups) with a
    "params" entry and per-group hyperparameters overriding `defaults`.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_marks_called", False):
            cls.step = _mark_called(step)

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        self._opt_called = False
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors "
                            "or dicts, but got a Tensor (use [tensor] or model.parameters())")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list instead.")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group (a dict with "params" and optional hyperparameters); missing
        hyperparameters take the optimizer's defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group.get("params")
        if params is None:
            raise ValueError("a parameter group needs a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list instead.")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        param_group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization "
                                 f"parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in params]
        if len(ids) != len(set(ids)):
            raise ValueError("a parameter group contains the same parameter more than once")
        existing = {id(p) for group in self.param_groups for p in group["params"]}
        if existing.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ----------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none=True):
        """Forget the gradients: `.grad = None` (default), or a fresh array of zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    # NOTE: a new array rather than zeroing in place: the old gradient
                    # may be referenced elsewhere (a hook's result, a user's variable).
                    p.grad = Tensor._wrap(np.zeros_like(p.grad._data))

    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure`, if given,
        re-evaluates the model and returns the loss (it runs with grad enabled)."""
        self._opt_called = True  # schedulers check it (subclasses overriding step are wrapped)
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update(group)
        return loss

    def _update(self, group):
        """Update the parameters of one group from their `.grad` (subclasses)."""
        raise NotImplementedError

    def _steps(self, group, init=None):
        """(p, g, state) for each parameter of `group` that has a gradient, as the
        PyTorch optimizers without decoupled decay start their step: g ← −g with
        `maximize`, g ← g + λ·p with `weight_decay` λ (new arrays: `.grad` stays
        untouched); state["step"] (a float32 0-d Tensor) counted up, created with
        the rest of the state by `init(p, state)` when the state is empty."""
        maximize, weight_decay = group.get("maximize", False), group.get("weight_decay", 0)
        for p in group["params"]:
            if p.grad is None:
                continue
            g = -p.grad._data if maximize else p.grad._data
            state = self.state[p]
            if not state:
                state["step"] = Tensor._wrap(np.zeros((), np.float32))
                if init is not None:
                    init(p, state)
            state["step"]._data += 1
            if weight_decay != 0:
                g = g + weight_decay * p._data
            yield p, g, state

    # ---------------------------------------------------------------- state dict
    def state_dict(self):
        """`{"state": {index: {name: value}}, "param_groups": [{..., "params": [indices]}]}`.

        Parameters are numbered in their order across groups. Tensors in the
        state are copies, so the dict stays as it was when taken (handy for
        keeping a "best so far" snapshot in memory).
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for key, value in self.state.items():
            if isinstance(key, Tensor):
                if id(key) not in index:
                    continue  # state of a parameter no longer optimized
                key = index[id(key)]
            state[key] = _copy_state(value)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a `state_dict()` taken from an optimizer over parameters of the
        same shapes, in the same groups and order. Hyperparameters come from the dict."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict expects a dict with 'state' and 'param_groups' "
                             "(the result of optimizer.state_dict())")
        groups, saved_groups = self.param_groups, state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer ({len(groups)})")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            _check_same_kind(self, i, s)
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size "
                                 f"of optimizer's group: group {i} has {len(s['params'])} parameters in the "
                                 f"dict and {len(g['params'])} in the optimizer")
        id_map = {}
        for g, s in zip(groups, saved_groups):
            for p, k in zip(g["params"], s["params"]):
                id_map[k] = p
        state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if isinstance(key, str) and key.isdigit():
                key = int(key)  # a dict that went through a format with string keys
            if key not in id_map:
                state[key] = _copy_state(value)
                continue
            p = id_map[key]
            state[p] = {name: _cast_like(p, name, v) for name, v in value.items()}
        self.state = state
        new_groups = []
        for g, s in zip(groups, saved_groups):
            group = {k: v for k, v in s.items() if k != "params"}
            for k, v in self.defaults.items():  # a dict saved before a hyperparameter existed
                group.setdefault(k, v)
            group["params"] = g["params"]
            new_groups.append(group)
        self.param_groups = new_groups

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


# keys a scheduler adds to a parameter group (not hyperparameters of the optimizer)
_SCHEDULER_KEYS = {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}


def _check_same_kind(optimizer, i, saved):
    """Raise if group `i` of a loaded state dict holds another optimizer's hyperparameters
    (Adam's betas and eps loaded into SGD, say): its state would fail at step()."""
    expected = set(optimizer.defaults)
    missing = sorted(expected - set(saved))
    extra = sorted(set(saved) - expected - _SCHEDULER_KEYS - {"params"})
    if missing and extra:
        raise ValueError(
            f"loaded state dict is not from a {type(optimizer).__name__}: its parameter group {i} has "
            f"{', '.join(extra)} but no {', '.join(missing)} (the hyperparameters of "
            f"{type(optimizer).__name__}); load a state dict saved from the same optimizer class")


def _copy_state(value):
    """A copy of a state entry: Tensors and arrays copied, containers rebuilt."""
    if isinstance(value, Tensor):
        return Tensor._wrap(value._data.copy())
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy_state(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_state(v) for v in value)
    return value


def _cast_like(param, name, value):
    """A loaded state entry, copied; floating-point buffers take the parameter's
    dtype (as in PyTorch), and buffers shaped like the parameter must match it."""
    if isinstance(value, np.ndarray):
        value = Tensor._wrap(value)
    if not isinstance(value, Tensor):
        return _copy_state(value)
    data = value._data
    if name != "step" and data.dtype.kind == "f":
        if data.ndim and data.shape != param.shape:
            raise ValueError(f"loaded optimizer state '{name}' has shape {data.shape} but its parameter "
                             f"has shape {param.shape}")
        return Tensor._wrap(data.astype(param.dtype, copy=True))
    return Tensor._wrap(data.copy())
