"""Curvature of the loss in BatchNorm's training form: Hessian-vector products, the top
eigenvalue, the trace, and the effective learning rate of scale-invariant weights.

    hv = tn.lab.hessian_vector_product(model, F.cross_entropy, (x, y), v)        # v: one array per parameter
    top = tn.lab.top_eigenvalue(model, F.cross_entropy, (x, y), mode="train")   # Lanczos
    tr = tn.lab.hessian_trace(model, F.cross_entropy, (x, y), mode="eval")      # Hutchinson
    tn.lab.effective_lr(optimizer, model)        # per weight feeding a norm layer: η/‖w‖², angular step

In `mode="train"` BatchNorm normalizes with the statistics of `batch`, so the batch
statistics are part of the function whose Hessian is taken (the function SGD
descends); `mode="eval"` uses the running statistics (what PyHessian measures, since
it switches the model to eval mode). Both are float64 central differences of exact
(autograd) gradients:

    H v ≈ [∇L(θ + h·v) − ∇L(θ − h·v)] / 2h,     h = eps · max(‖θ‖, 1) / ‖v‖

The error is |Hv − estimate| ≤ (h²/6)·‖v‖·sup‖∇³L[v̂, v̂]‖ (truncation, relative
O(eps²)) + about 2⁻⁵²·‖∇L‖/h (rounding); with the default eps = 1e-5 the estimate
matches exact Hessians to ~1e-9 relative on the nets of tests/test_lab_curvature.py.
Like the other probes, the tools run inside `preserved`: parameters, `.grad`, running
buffers, train/eval flags and the random state come back bitwise (every evaluation
also starts from the same random state, so dropout masks are the same at θ ± hv).
"""
import math

import numpy as np

from .. import nn
from ..tensor import Tensor
from .probe import flat, loss_and_grads, preserved, trainable
from ..random import get_rng_state

__all__ = ["hessian_vector_product", "top_eigenvalue", "hessian_trace", "effective_lr"]

MODES = ("train", "eval")


def _float64_batch(batch):
    """The batch with its floating tensors in float64 (integer labels unchanged)."""
    def cast(t):
        if isinstance(t, Tensor) and np.issubdtype(t.dtype, np.floating) and t.dtype != np.float64:
            return Tensor(t._data.astype(np.float64))
        return t
    if isinstance(batch, Tensor):
        return cast(batch)
    return tuple(cast(t) for t in batch)


class _Probe:
    """The loss gradient as a function of the flat parameter vector, in float64, inside `preserved`.

    Used as a context manager: on entry the parameters and floating buffers are float64
    copies (the model's own arrays are put back by `preserved` on exit)."""

    def __init__(self, model, loss_fn, batch, mode):
        if mode not in MODES:
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        self.model, self.loss_fn, self.batch, self.mode = model, loss_fn, _float64_batch(batch), mode
        self.params = [p for _, p in trainable(model)]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.shapes = [p.shape for p in self.params]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self._guard = preserved(model, train=(mode == "train"))

    def __enter__(self):
        self._guard.__enter__()
        if self.mode == "eval":
            self.model.eval()
        for p in self.params:
            p._data = np.array(p._data, dtype=np.float64)
        for m in self.model.modules():
            for b in m._buffers.values():
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    b._data = np.array(b._data, dtype=np.float64)
        self.theta = flat([p._data for p in self.params])
        self.rng = get_rng_state()
        return self

    def __exit__(self, *exc):
        return self._guard.__exit__(*exc)

    def gradient(self, theta):
        """(loss, ∇L as one float64 vector) at the flat parameters `theta`."""
        for p, piece in zip(self.params, self.split(theta)):
            p._data = piece
        return self._gradient()

    def _gradient(self):
        loss, grads = loss_and_grads(self.model, self.loss_fn, self.batch, self.params, self.rng)
        return loss, flat(grads)

    def split(self, vector):
        """One array per parameter (with its shape) from a flat vector."""
        out, start = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            out.append(np.array(vector[start:start + size], dtype=np.float64).reshape(shape))
            start += size
        return out

    def hvp(self, v, eps):
        """H·v for a flat vector v (central differences of gradients)."""
        norm = float(np.linalg.norm(v))
        if norm == 0:
            return np.zeros_like(v)
        h = eps * max(float(np.linalg.norm(self.theta)), 1.0) / norm
        _, g_plus = self.gradient(self.theta + h * v)
        _, g_minus = self.gradient(self.theta - h * v)
        return (g_plus - g_minus) / (2 * h)

    def flat_vector(self, v):
        """`v` (one array per trainable parameter, or one flat vector) as one float64 vector."""
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.size == sum(self.sizes) and len(self.params) != 1:
            return v.astype(np.float64)
        arrays = [v] if isinstance(v, (np.ndarray, Tensor)) and len(self.params) == 1 else list(v)
        if len(arrays) != len(self.params):
            raise ValueError(f"v has {len(arrays)} arrays but the model has {len(self.params)} trainable "
                             f"parameters; give one array per parameter, in model.parameters() order")
        out = []
        for i, (a, shape) in enumerate(zip(arrays, self.shapes)):
            a = np.asarray(a._data if isinstance(a, Tensor) else a, dtype=np.float64)
            if a.shape != tuple(shape):
                raise ValueError(f"v[{i}] has shape {a.shape} but parameter {i} has shape {tuple(shape)}")
            out.append(a.ravel())
        return np.concatenate(out)


def hessian_vector_product(model, loss_fn, batch, v, mode="train", eps=1e-5):
    """H·v, the Hessian of the loss on `batch` at the current parameters times v.

    Args:
        model: a Module (float32 or float64: the products are computed in float64).
        loss_fn: `loss_fn(model(x), *rest)` -> scalar; batch: `(x, *rest)` or a bare Tensor x.
        v: one array (or Tensor) per trainable parameter, in `model.parameters()` order
           (for a single parameter, the array itself).
        mode: "train" (BatchNorm on the batch's statistics: they are part of the function)
              or "eval" (running statistics).
        eps: the relative step: h·‖v‖ = eps·max(‖θ‖, 1).

    Returns one float64 array per trainable parameter. Float64 central differences
    [∇L(θ + hv) − ∇L(θ − hv)] / 2h: error O(eps²) relative (truncation, bounded by
    h²‖v‖³·sup‖∇³L‖/6) plus about 1e-16·‖∇L‖/h (rounding), ~1e-9 relative at the default.
    Two gradient evaluations; the model is left bitwise unchanged.
    """
    with _Probe(model, loss_fn, batch, mode) as probe:
        return probe.split(probe.hvp(probe.flat_vector(v), eps))


def _lanczos(hvp, n, iters, tol, rng, start=None):
    """Lanczos with full reorthogonalization on a symmetric operator of size n, from `start`
    (a flat vector) or a Gaussian one.

    Returns (eigenvalue largest in magnitude, its Ritz vector, history of that Ritz value
    per iteration, residual bound per iteration, converged)."""
    iters = max(1, min(int(iters), n))
    q = rng.standard_normal(n) if start is None or not np.any(start) else np.array(start, dtype=np.float64)
    q /= np.linalg.norm(q)
    basis, alphas, betas = [q], [], []
    history, residuals = [], []
    theta, y, converged = 0.0, np.ones(1), False
    for k in range(iters):
        w = hvp(basis[-1])
        alpha = float(basis[-1] @ w)
        alphas.append(alpha)
        Q = np.array(basis)
        w = w - Q.T @ (Q @ w)                  # NOTE: twice, full reorthogonalization (the basis stays orthonormal)
        w = w - Q.T @ (Q @ w)
        beta = float(np.linalg.norm(w))
        T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        values, vectors = np.linalg.eigh(T)
        i = int(np.argmax(np.abs(values)))
        theta, y = float(values[i]), vectors[:, i]
        residual = abs(beta * y[-1])           # ‖H x − θ x‖ for the Ritz vector x = Q y
        history.append(theta)
        residuals.append(residual)
        if residual <= tol * max(abs(theta), 1e-300) or beta <= 1e-12 * max(abs(theta), 1e-300):
            converged = True
            break
        betas.append(beta)
        basis.append(w / beta)
    vector = np.array(basis[:len(y)]).T @ y
    return theta, vector, history, residuals, converged


def top_eigenvalue(model, loss_fn, batch, mode="train", iters=100, tol=1e-6, seed=0, eps=1e-5, init=None):
    """The Hessian's eigenvalue of largest magnitude, by Lanczos on Hessian-vector products.

    Lanczos (with full reorthogonalization) from `init` (one array per parameter, e.g. the
    "vector" of an earlier call: a warm start along training) or from a Gaussian start drawn
    by numpy with `seed` (the library's random state is not used). It stops when the residual bound
    ‖Hx − λx‖ ≤ tol·|λ| of the Ritz pair (λ, x), or after `iters` products.

    Returns {"eigenvalue": λ, "vector": x (one array per parameter, unit norm overall),
    "iterations", "converged", "history": λ's estimate after each iteration,
    "residuals": the residual bound after each iteration}. mode, eps: as in
    `hessian_vector_product`. Memory: `iters` vectors of the parameters' size.
    """
    with _Probe(model, loss_fn, batch, mode) as probe:
        n = sum(probe.sizes)
        start = None if init is None else probe.flat_vector(init)
        theta, vector, history, residuals, converged = _lanczos(
            lambda v: probe.hvp(v, eps), n, iters, tol, np.random.default_rng(seed), start)
        return {"eigenvalue": theta, "vector": probe.split(vector), "iterations": len(history),
                "converged": converged, "history": history, "residuals": residuals}


def hessian_trace(model, loss_fn, batch, mode="train", samples=100, seed=0, eps=1e-5):
    """tr H by Hutchinson's estimator: the mean of zᵀHz over Rademacher vectors z (±1 entries).

    z is drawn by numpy with `seed`. Returns {"trace", "stderr" (std of zᵀHz / √samples),
    "samples" (the zᵀHz values)}. mode, eps: as in `hessian_vector_product`.
    """
    samples = int(samples)
    if samples < 1:
        raise ValueError(f"samples must be ≥ 1, got {samples}")
    rng = np.random.default_rng(seed)
    with _Probe(model, loss_fn, batch, mode) as probe:
        n = sum(probe.sizes)
        values = []
        for _ in range(samples):
            z = rng.integers(0, 2, n) * 2.0 - 1.0
            values.append(float(z @ probe.hvp(z, eps)))
    stderr = float(np.std(values, ddof=1) / math.sqrt(samples)) if samples > 1 else float("nan")
    return {"trace": float(np.mean(values)), "stderr": stderr, "samples": values}


# ------------------------------------------------------------------ effective learning rate

# a weight whose output feeds one of these is scale-invariant: BN and InstanceNorm remove a
# per-channel shift (the bias too); the others only when the layer has no bias
_CANCELS_BIAS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm1d, nn.InstanceNorm2d)
_NEEDS_NO_BIAS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def scale_invariant_weights(model):
    """[(name, weight)] of the weights feeding a normalization layer: a Linear or Conv whose
    next leaf module (in registration order) is BatchNorm or InstanceNorm, or LayerNorm,
    GroupNorm or RMSNorm when it has no bias. Scaling such a weight by c > 0 leaves the
    training-mode output unchanged (up to the norm's ε)."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    found = []
    for (name, layer), (_, after) in zip(leaves, leaves[1:]):
        if not isinstance(layer, _WEIGHTED) or not layer.weight.requires_grad:
            continue
        if isinstance(after, _CANCELS_BIAS) or (isinstance(after, _NEEDS_NO_BIAS) and layer.bias is None):
            found.append((f"{name}.weight" if name else "weight", layer.weight))
    return found


def effective_lr(optimizer, model, weights=None):
    """Per scale-invariant weight w: the effective learning rate η/‖w‖² and the angular update.

    A weight feeding a normalization layer only matters through its direction w/‖w‖; a
    gradient step of lr η turns that direction as a step of η/‖w‖² would turn a unit
    vector (van Laarhoven 2017). `angular_update` is the angle (radians) between w and w
    after the step `optimizer.step()` would take now, with the current `.grad` (its
    momentum, weight decay, Adam moments included): call it after `backward()` and before
    `step()`. The step is simulated on copies; parameters and optimizer state are restored.

    Args:
        weights: None (found by `scale_invariant_weights`) or a list of parameter names.
    Returns {name: {"lr", "weight_decay", "norm": ‖w‖, "effective_lr": η/‖w‖²,
    "angular_update": angle or None (no gradient yet)}}.
    """
    named = dict(model.named_parameters())
    if weights is None:
        chosen = scale_invariant_weights(model)
    else:
        missing = [n for n in weights if n not in named]
        if missing:
            raise ValueError(f"effective_lr: no parameter named {', '.join(map(repr, missing))}; "
                             f"parameters: {', '.join(named)}")
        chosen = [(n, named[n]) for n in weights]
    group_of = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            group_of[id(p)] = group
    angles = _simulated_angles(optimizer, [p for _, p in chosen])
    out = {}
    for name, p in chosen:
        group = group_of.get(id(p))
        if group is None:
            raise ValueError(f"effective_lr: parameter {name!r} is not in the optimizer's param_groups")
        norm = float(np.linalg.norm(np.asarray(p._data, np.float64)))
        lr = float(group["lr"])
        out[name] = {"lr": lr, "weight_decay": float(group.get("weight_decay", 0.0)), "norm": norm,
                     "effective_lr": lr / norm ** 2 if norm > 0 else float("inf"),
                     "angular_update": angles.get(id(p))}
    return out


def _simulated_angles(optimizer, params):
    """{id(p): angle between p and p after one optimizer step} for the params with a gradient;
    every parameter and the optimizer's state are put back as they were."""
    if not any(p.grad is not None for p in params):
        return {}
    all_params = [p for g in optimizer.param_groups for p in g["params"]]
    saved = [(p, p._data) for p in all_params]
    saved_state = {}
    for p, entries in optimizer.state.items():
        saved_state[p] = {k: (v, _copy_of(v)) for k, v in entries.items()}
    had_state = set(optimizer.state.keys())
    called = getattr(optimizer, "_opt_called", None)
    try:
        for p in all_params:
            p._data = p._data.copy()        # NOTE: the step updates these copies in place
        before = {id(p): np.asarray(p._data, np.float64).ravel().copy() for p in params}
        optimizer.step()
        angles = {}
        for p in params:
            if p.grad is None:
                continue
            a, b = before[id(p)], np.asarray(p._data, np.float64).ravel()
            along = float(a @ b) / float(a @ a)
            # NOTE: atan2 of the parts of b along and across a keeps tiny angles exact (acos would not)
            angles[id(p)] = (math.atan2(float(np.linalg.norm(b - along * a)), along * float(np.linalg.norm(a)))
                              if a @ a > 0 else None)
        return angles
    finally:
        for p, data in saved:
            p._data = data
        for p in list(optimizer.state.keys()):
            if p not in had_state:
                del optimizer.state[p]
        for p, entries in saved_state.items():
            optimizer.state[p].clear()
            for k, (v, data) in entries.items():
                if isinstance(v, Tensor):
                    v._data = data
                elif isinstance(v, np.ndarray):
                    v[...] = data
                optimizer.state[p][k] = v
        if called is None:
            if hasattr(optimizer, "_opt_called"):
                del optimizer._opt_called
        else:
            optimizer._opt_called = called


def _copy_of(value):
    """A copy of an optimizer-state entry's array (Tensor or ndarray); None for scalars."""
    if isinstance(value, Tensor):
        return value._data.copy()
    return value.copy() if isinstance(value, np.ndarray) else None
