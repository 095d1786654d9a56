"""Weight Normalization (Salimans & Kingma 2016, https://arxiv.org/abs/1602.07868).

    w = g · v / ‖v‖

`weight_norm(module, name="weight", dim=0)` replaces the parameter `weight` by
`weight_g` (the magnitude, shape (out, 1, ...) for dim=0: one norm per output
row/channel) and `weight_v` (the direction, the old weight's array), and
recomputes `module.weight` from them before every forward (a forward pre-hook).
g starts at ‖v‖, so the module's output is unchanged at wrap time; there is no
data-dependent initialization (as in PyTorch). Autograd derives the paper's
gradients from the composition: ∇g = ∇w·v/‖v‖, ∇v = (g/‖v‖)·(I − ww'/‖w‖²)∇w.
"""
from ..module import Parameter
from ._hooks import check_not_applied, remove_hook

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm", "norm_except_dim"]


def norm_except_dim(v, pow=2, dim=0):
    """‖v‖ over every dim but `dim`, keeping dims (shape 1 except at `dim`);
    dim=-1 (or None) gives the norm of the whole tensor (a 0-d tensor), as in
    PyTorch's norm_except_dim."""
    if pow != 2:
        raise NotImplementedError("norm_except_dim: only the 2-norm is implemented")
    if dim is None or dim == -1:
        return (v * v).sum().sqrt()
    dim = dim % v.ndim
    axes = tuple(d for d in range(v.ndim) if d != dim)
    squares = v * v
    return (squares.sum(dim=axes, keepdim=True) if axes else squares).sqrt()


class WeightNorm:
    """The forward pre-hook: sets `module.<name> = g · v / ‖v‖` before each call."""

    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / norm_except_dim(v, 2, self.dim))

    @staticmethod
    def apply(module, name, dim):
        check_not_applied(module, WeightNorm, name, "weight_norm")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        if not isinstance(weight, Parameter):
            raise ValueError(f"weight_norm: module has no parameter named '{name}'")
        del module._parameters[name]
        # NOTE: g = ‖v‖ computed exactly as compute_weight computes it, so g/‖v‖ is
        # exactly 1 and the wrapped module's output is bit-for-bit unchanged.
        module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim).detach()))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """Reparameterize `module.<name>` as g · v/‖v‖ (parameters `<name>_g`,
    `<name>_v`); the norm is over every dim but `dim` (dim=None: the whole
    tensor). Returns the module.

    Example::

        >>> m = nn.utils.weight_norm(nn.Linear(20, 40))
        >>> m.weight_g.shape, m.weight_v.shape
        ((40, 1), (40, 20))
    """
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo weight_norm: `module.<name>` becomes a plain Parameter again
    (holding g · v/‖v‖)."""
    return remove_hook(module, WeightNorm, name, "weight_norm")
