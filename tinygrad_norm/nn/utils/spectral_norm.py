"""Spectral Normalization (Miyato et al. 2018, https://arxiv.org/abs/1802.05957).

    W_SN = W / σ(W),   σ(W) ≈ uᵀ W v

`spectral_norm(module)` keeps the original weight as the parameter
`weight_orig`, and two buffers `weight_u` (height h) and `weight_v` (width w)
of the weight viewed as an h × w matrix (dim `dim` first). Before every
forward (a pre-hook), in training mode only, `n_power_iterations` steps of
power iteration update u and v in place (without gradient):

    v ← normalize(Wᵀu),   u ← normalize(W v),   normalize(x) = x / max(‖x‖, eps)

then σ = uᵀ W v is formed with u, v as constants (the gradient flows through
W only) and `module.weight = weight_orig / σ`. In eval mode the stored u, v are
used as they are. u, v start as normalized N(0, 1) draws (the library's
generator). As in PyTorch, `module.weight` stays the original weight until
the first forward.
"""
import numpy as np

from ...random import generator
from ...tensor import Tensor, no_grad
from ..module import Parameter
from ._hooks import check_not_applied, remove_hook

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]


def _normalize(x, eps):
    return x / max(float(np.linalg.norm(x)), eps)


class SpectralNorm:
    """The forward pre-hook: sets `module.<name> = <name>_orig / σ` before each call."""

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        """The weight as an (h, w) matrix: dim `dim` first, the rest flattened."""
        mat = weight
        if self.dim != 0:
            mat = mat.permute(self.dim, *[d for d in range(mat.ndim) if d != self.dim])
        return mat.reshape(mat.shape[0], -1)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            W = weight_mat.detach().numpy()
            u_arr, v_arr = u._data, v._data
            for _ in range(self.n_power_iterations):
                # NOTE: in place, so the buffers (and state_dict) carry the new vectors.
                v_arr[...] = _normalize(W.T @ u_arr, self.eps)
                u_arr[...] = _normalize(W @ v_arr, self.eps)
        # u, v enter σ as constants (copies: later in-place updates can't reach the graph).
        u_const, v_const = Tensor._wrap(u._data.copy()), Tensor._wrap(v._data.copy())
        sigma = (u_const * (weight_mat @ v_const)).sum()
        return weight / sigma

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        check_not_applied(module, SpectralNorm, name, "spectral_norm")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        h, w = fn.reshape_weight_to_matrix(weight.detach()).shape
        rng = generator()
        u = _normalize(rng.standard_normal(h).astype(weight.dtype), fn.eps)
        v = _normalize(rng.standard_normal(w).astype(weight.dtype), fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", Tensor._wrap(u))
        module.register_buffer(fn.name + "_v", Tensor._wrap(v))
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divide `module.<name>` by its spectral norm, estimated by power iteration
    (parameter `<name>_orig`, buffers `<name>_u`, `<name>_v`); dim=None means 0.
    Returns the module.

    Example::

        >>> m = nn.utils.spectral_norm(nn.Linear(20, 40))
        >>> m.weight_u.shape, m.weight_v.shape
        ((40,), (20,))
    """
    SpectralNorm.apply(module, name, n_power_iterations, 0 if dim is None else dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo spectral_norm: `module.<name>` becomes a Parameter holding
    <name>_orig / σ with the stored u, v."""
    return remove_hook(module, SpectralNorm, name, "spectral_norm")
