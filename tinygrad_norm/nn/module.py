"""`Module` and `Parameter`: the building blocks of every network (torch.nn.Module).

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)                          # a submodule
            self.scale = nn.Parameter(tn.ones(2))              # a parameter
            self.register_buffer("calls", tn.zeros((), dtype=tn.int64))  # a buffer
        def forward(self, x):
            return self.fc(x) * self.scale

Assigning a `Parameter` or a `Module` to an attribute registers it (through
`__setattr__`), so `parameters()`, `state_dict()`, `train()/eval()`, `zero_grad()`
and `repr()` find it, exactly as in PyTorch. Buffers are tensors that are part of
the state (saved in `state_dict`) but not trained: running statistics, counters.
"""
import itertools
import sys
import weakref
from collections import OrderedDict, namedtuple

import numpy as np

from ..devices import check_device, parse_to
from ..tensor import FLOAT_DTYPES, RemovableHandle, Tensor, _as_array, float32, float64

# NOTE: the module object, not `from .. import tensor`: the package attribute
# `tinygrad_norm.tensor` is the factory function tn.tensor(...).
_tensor = sys.modules[Tensor.__module__]

__all__ = ["Module", "Parameter"]

# Every Function records the modules it was made in (Function.scope) as serial
# numbers, not as the Modules: the graph holds no nn objects and keeps no module
# alive. tn.viz turns the numbers back into modules with `module_of`.
_LIVE = weakref.WeakValueDictionary()   # serial number -> Module
_SERIALS = itertools.count(1)


def module_of(serial):
    """The live Module with this serial number (an entry of Function.scope), or None."""
    return _LIVE.get(serial)


def _serial(module):
    """The module's serial number, given on its first call. NOTE: kept with the
    module's id: a copy (copy.deepcopy) carries its original's pair in __dict__
    and gets a number of its own because its id differs."""
    entry = module.__dict__.get("_serial")
    if entry is None or entry[0] != id(module):
        entry = (id(module), next(_SERIALS))
        object.__setattr__(module, "_serial", entry)
        _LIVE[entry[1]] = module
    return entry[1]


# ---------------------------------------------------------------------- Parameter

class Parameter(Tensor):
    """A Tensor that a Module registers as a trainable parameter.

    `Parameter(data=None, requires_grad=True)`. A Tensor argument is *shared*
    (the parameter uses the same array, like torch.nn.Parameter); an ndarray or a
    list is copied. `Parameter()` is an empty float32 tensor.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            array = np.empty((0,), float32)
        elif isinstance(data, Tensor):
            array = data._data
        else:
            array = _as_array(data, None)
        Tensor.__init__(self, array, requires_grad=False)
        self._data = array  # NOTE: Tensor.__init__ copied it; keep the shared array
        self.requires_grad = requires_grad

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        # Rebuild as a Parameter (copy.deepcopy of a module keeps parameter types).
        return (_rebuild_parameter, (self._data, self._requires_grad, self.grad))


def _rebuild_parameter(data, requires_grad, grad):
    p = Parameter(Tensor._wrap(data), requires_grad)
    p.grad = grad
    return p


# ------------------------------------------------------------------------- Module

class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What `load_state_dict(strict=False)` returns, as in PyTorch."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def _addindent(text, spaces):
    """Indent every line of `text` but the first (for nested reprs)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module:
    """Base class of all layers and models (torch.nn.Module).

    Subclasses call `super().__init__()` first, assign parameters, buffers and
    submodules as attributes, and implement `forward`. Call the module
    (`model(x)`), not `forward`, so that hooks run.
    """

    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments; "
                            f"Module.__init__ takes none")
        # NOTE: object.__setattr__ because our __setattr__ needs these dicts.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  f'"forward" function')

    # ------------------------------------------------------------ calling
    def __call__(self, *args, **kwargs):
        """Run the forward pre-hooks, `forward`, then the forward hooks.

        While `forward` runs, this module's serial number is pushed onto
        `tinygrad_norm.tensor._module_scope`, so every op records which modules
        it was made in (tn.viz draws one cluster per module; `module_of`).
        """
        if args and isinstance(args[0], np.ndarray):  # NOTE: only the input; losses take array targets
            raise TypeError(f"{type(self).__name__}: argument 0 (input) must be a Tensor, not "
                            f"numpy.ndarray of shape {args[0].shape}; wrap it with tn.tensor(x) "
                            f"or tn.from_numpy(x)")
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        previous = _tensor._module_scope
        _tensor._module_scope = previous + (_serial(self),)
        try:
            output = self.forward(*args, **kwargs)
        finally:
            _tensor._module_scope = previous
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_pre_hook(self, hook):
        """`hook(module, args) -> None or new args` runs before each forward.
        Returns a handle; `handle.remove()` unregisters the hook."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook):
        """`hook(module, args, output) -> None or new output` runs after each
        forward. Returns a handle; `handle.remove()` unregisters the hook."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------- registration
    def _check_ready(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")

    def _check_name(self, name, kind, allow_existing):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if hasattr(self, name) and name not in allow_existing:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name, param):
        """Add a parameter (a `Parameter`, or None for an optional one like `bias`)."""
        self._check_ready("parameters")
        self._check_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            f"(tinygrad_norm.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(f"cannot assign non-leaf Tensor to parameter '{name}': model parameters "
                             f"must be created explicitly (wrap a detached tensor in Parameter)")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: state that is saved in `state_dict` (when `persistent`)
        but is not a parameter, e.g. BatchNorm's running statistics. None is
        allowed (the buffer is then skipped by `state_dict`)."""
        self._check_ready("buffers")
        self._check_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            f"(Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Add a submodule (or None) under `name`."""
        self._check_ready("child modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module", self._modules)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._check_ready("parameters")
            self._remove_from(name, self.__dict__, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                f"(tinygrad_norm.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_ready("child modules")
            self._remove_from(name, self.__dict__, self._parameters, self._buffers)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                f"(Module or None expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _remove_from(self, name, *dicts):
        for d in dicts:
            if name in d:
                del d[name]
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name):
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # -------------------------------------------------------------- walking
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Yield (name, module) for this module and every descendant, depth first;
        a module reachable twice is yielded once (unless remove_duplicate=False)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """Yield (name, module) for the direct submodules."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                   if recurse else [(prefix, self)])
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield (dotted name, Parameter); a shared parameter is yielded once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield (dotted name, buffer) for every buffer that is not None."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        """The submodule at dotted path `target` ("" is self)."""
        module = self
        if target == "":
            return module
        walked = []
        for item in target.split("."):
            if item not in module._modules or module._modules[item] is None:
                where = ".".join(walked) or type(self).__name__
                raise AttributeError(f"{type(module).__name__} ({where}) has no submodule `{item}` "
                                     f"(looking up '{target}')")
            module = module._modules[item]
            walked.append(item)
        return module

    def get_parameter(self, target):
        """The Parameter at dotted path `target`, e.g. "fc.weight"."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if module._parameters.get(name) is None:
            raise AttributeError(f"{type(module).__name__} has no parameter `{name}` "
                                 f"(looking up '{target}')")
        return module._parameters[name]

    def get_buffer(self, target):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._buffers:
            raise AttributeError(f"{type(module).__name__} has no buffer `{name}` (looking up '{target}')")
        return module._buffers[name]

    # -------------------------------------------------------------- modes
    def train(self, mode=True):
        """Set training mode on this module and every descendant (Dropout and
        BatchNorm behave differently in training and evaluation)."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {type(mode).__name__}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Same as `train(False)`."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the `.grad` of every parameter: to None (default) or to zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = Tensor._wrap(np.zeros_like(p._data))

    def apply(self, fn):
        """Call `fn(module)` on every submodule (children first), then on self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- dtype
    def _apply_to_floats(self, dtype):
        """Cast every floating point parameter, gradient and buffer to `dtype`,
        in place: the Parameter objects stay the same (optimizers keep working)."""
        for module in self.modules():
            for p in module._parameters.values():
                if p is not None and p.dtype in FLOAT_DTYPES:
                    p._data = p._data.astype(dtype, copy=False)
                    if p.grad is not None:
                        p.grad = Tensor._wrap(p.grad._data.astype(dtype, copy=False))
            for name, b in module._buffers.items():
                if b is not None and b.dtype in FLOAT_DTYPES:
                    b._data = b._data.astype(dtype, copy=False)
        return self

    def double(self):
        """Cast floating point parameters and buffers to float64 (integer buffers stay)."""
        return self._apply_to_floats(float64)

    def float(self):
        """Cast floating point parameters and buffers to float32."""
        return self._apply_to_floats(float32)

    def to(self, *args, **kwargs):
        """`to(device)`, `to(dtype)`, `to(device, dtype)`, `to(tensor)`, in place, as in
        PyTorch: a dtype casts floating point parameters and buffers; the device must
        be the CPU (a GPU raises DeviceError). Returns self."""
        dtype, _ = parse_to(args, kwargs, "Module.to")
        if dtype is None:
            return self
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired "
                            f"dtype={dtype}")
        return self._apply_to_floats(dtype)

    def cpu(self):
        return self

    def cuda(self, device=None):
        """Raises DeviceError: there is no GPU (see tn.cuda.is_available())."""
        check_device("cuda" if device is None else device)

    def type(self, dtype):
        return self.to(dtype)

    # ----------------------------------------------------------- state_dict
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """This module's own parameters, then its persistent buffers (not None)."""
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An OrderedDict `dotted name -> Tensor` of parameters and persistent
        buffers, module by module (each module's parameters, then its buffers,
        then its children), as in PyTorch. Tensors are detached but share memory
        with the module (copy them if you keep them while training)."""
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Copy this module's own entries of `state_dict` (keys `prefix + name`)
        into its parameters and buffers. Subclasses may override it to convert
        old checkpoints (PyTorch's signature)."""
        persistent = {k: v for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set}
        local = [(k, v) for k, v in list(self._parameters.items()) + list(persistent.items())
                 if v is not None]
        for name, target in local:
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = state_dict[key]
            array = value._data if isinstance(value, Tensor) else np.asarray(value)
            if array.shape != target.shape:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{tuple(array.shape)} from checkpoint, the shape in current "
                                  f"model is {tuple(target.shape)}.")
                continue
            # NOTE: in place, so the Parameter objects (held by optimizers) stay the same;
            # values are cast to the parameter's dtype as torch's copy_ does.
            target._data[...] = array
        if strict:
            own = {name for name, _ in local}
            for key in state_dict:
                if key.startswith(prefix):
                    first = key[len(prefix):].split(".", 1)[0]
                    if first not in self._modules and first not in own:
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict=True):
        """Copy parameters and buffers from `state_dict` into this module.

        With strict=True (default) the keys must match exactly; otherwise the
        error lists every missing and unexpected key. Shapes must always match
        (also with strict=False); a mismatch names both shapes. Nothing is
        changed when an error is raised. Returns a named tuple
        `(missing_keys, unexpected_keys)`.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}")
        missing_keys, unexpected_keys, error_msgs = [], [], []
        metadata = getattr(state_dict, "_metadata", None) or {}
        # NOTE: back up every tensor first so a failing load leaves the module untouched.
        backup = [(t, t._data.copy()) for t in self._all_state_tensors()]
        for name, module in self.named_modules():
            prefix = name + "." if name else ""
            module._load_from_state_dict(state_dict, prefix, metadata.get(name, {}), True,
                                         missing_keys, unexpected_keys, error_msgs)
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: "
                                  + ", ".join(f'"{k}"' for k in unexpected_keys) + ". ")
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: "
                                  + ", ".join(f'"{k}"' for k in missing_keys) + ". ")
        if error_msgs:
            for t, array in backup:
                t._data[...] = array
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(error_msgs))
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    def _all_state_tensors(self):
        seen, out = set(), []
        for module in self.modules():
            for t in list(module._parameters.values()) + list(module._buffers.values()):
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    out.append(t)
        return out

    # ----------------------------------------------------------------- repr
    def extra_repr(self):
        """The text inside `Name(...)`; layers override it (e.g. "in_features=4, ...")."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra_lines = self.extra_repr().split("\n") if self.extra_repr() else []
        child_lines = [f"({name}): " + _addindent(repr(module), 2)
                       for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"
