"""Containers: Sequential, ModuleList, ModuleDict, Identity (as in torch.nn).

    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    model[0]            # Linear(in_features=784, out_features=100, bias=True)
    model.state_dict()  # keys "0.weight", "0.bias", "2.weight", "2.bias"
"""
from collections import OrderedDict

from .module import Module, _addindent

__all__ = ["Sequential", "ModuleList", "ModuleDict", "Identity"]


def _index(i, n, kind):
    """Normalise an integer index into range(n), or raise IndexError."""
    i = int(i)
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of range for a {kind} of length {n}")
    return i % n


class Identity(Module):
    """Returns its input unchanged; accepts and ignores any constructor arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class _ModuleSequence(Module):
    """The list methods Sequential and ModuleList share (PyTorch's semantics):
    modules in order, named "0".."n-1" (a Sequential may carry its own names,
    which `insert` and `del` renumber)."""
    _kind = "sequence"          # for error messages
    _insert_in_range = False    # Sequential.insert raises IndexError outside [-n, n]

    def _key(self, idx):
        keys = list(self._modules)
        return keys[_index(idx, len(keys), self._kind)]

    def __setitem__(self, idx, module):
        setattr(self, self._key(idx), module)

    def __delitem__(self, idx):
        keys = list(self._modules)
        targets = keys[idx] if isinstance(idx, slice) else [self._key(idx)]
        for key in targets:
            del self._modules[key]
        if all(k.isdigit() for k in keys):   # NOTE: keep the names 0..n-1 contiguous, as PyTorch does
            self._renumber(list(self._modules.values()))

    def _renumber(self, modules):
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        """Put `module` before position `index` (list.insert's rule for negative ones)."""
        n = len(self._modules)
        if self._insert_in_range and not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for a {self._kind} of length {n}")
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)
        return self


class Sequential(_ModuleSequence):
    """Chain modules: `forward(x)` feeds x through each module in order.

    `Sequential(m0, m1, ...)` names them "0", "1", ...;
    `Sequential(OrderedDict([("fc", m0), ("act", m1)]))` uses the given names.
    """
    _kind, _insert_in_range = "Sequential", True

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key(idx)]


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered (a plain Python list
    would hide them from `parameters()` and `state_dict()`). No forward."""
    _kind = "ModuleList"

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._key(idx)]

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def __repr__(self):
        """Like PyTorch: runs of identical children are shown once, e.g. `(0-2): 3 x Linear(...)`."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        lines, start = [], 0
        for i in range(1, len(reprs) + 1):
            if i == len(reprs) or reprs[i] != reprs[start]:
                body = _addindent(reprs[start], 2)
                if i - start == 1:
                    lines.append(f"({start}): {body}")
                else:
                    lines.append(f"({start}-{i - 1}): {i - start} x {body}")
                start = i
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """A dict of modules whose parameters are registered; keeps insertion order."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key):
        module = self._modules[key]
        del self._modules[key]
        return module

    def clear(self):
        self._modules.clear()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module
