"""`tn.autograd`: gradients without `.grad` (`grad`) and the finite-difference check (`gradcheck`)."""
import numpy as np

from .tensor import Tensor, _backward, _root_gradient, float64, no_grad


def _as_list(x):
    return [x] if isinstance(x, Tensor) else list(x)


def grad(outputs, inputs, grad_outputs=None, retain_graph=False, allow_unused=False):
    """d(outputs)/d(inputs) as a tuple of Tensors, like `torch.autograd.grad`.

    Unlike `backward()`, no `.grad` attribute is read or written anywhere.
    `grad_outputs` (one per output) is required for non-scalar outputs.
    An input the outputs do not depend on raises, unless `allow_unused`
    (then its gradient is None).
    """
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    grad_outputs = _as_list(grad_outputs) if not isinstance(grad_outputs, list) else grad_outputs
    root_grads = [_root_gradient(out, g, i, f"grad(grad_outputs[{i}])")
                  for i, (out, g) in enumerate(zip(outputs, grad_outputs))]
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    capture = {id(t): None for t in inputs}
    _backward(outputs, root_grads, retain_graph, capture=capture)
    result = []
    for i, t in enumerate(inputs):
        g = capture[id(t)]
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used to compute the "
                               f"outputs; pass allow_unused=True to get None for it")
        result.append(None if g is None else Tensor._wrap(np.array(g, copy=True)))
    return tuple(result)


class GradcheckError(RuntimeError):
    """Raised by gradcheck when analytic and numerical gradients disagree."""


def _flat_output(fn, inputs):
    out = fn(*inputs)
    outs = _as_list(out) if not isinstance(out, Tensor) else [out]
    return outs


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, projections=3):
    """Check autograd against float64 central differences.

    `fn(*inputs)` returns a Tensor (or a tuple of them). For every input that
    requires grad, the gradient of ⟨v, fn(inputs)⟩ is compared, entry by entry,
    with (⟨v, fn(x + eps·e_i)⟩ − ⟨v, fn(x − eps·e_i)⟩) / 2eps, where v runs
    over the output's basis vectors (outputs of at most 64 entries: the full
    Jacobian) or over `projections` random Gaussian directions.

    Returns True, or raises GradcheckError naming the input, the entry and both
    values. Inputs must be float64; their `.grad` is left untouched.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != float64:
            raise ValueError(f"gradcheck needs float64 inputs (finite differences in float32 are "
                             f"too coarse): input {i} has dtype {inputs[i].dtype}")
    with no_grad():
        base = [o._data.copy() for o in _flat_output(fn, inputs)]
    n_out = sum(b.size for b in base)
    if n_out <= 64:
        directions = []
        for k in range(n_out):
            flat = np.zeros(n_out)
            flat[k] = 1.0
            directions.append(flat)
    else:
        rng = np.random.default_rng(1234)
        directions = [rng.standard_normal(n_out) for _ in range(projections)]

    def split(flat):
        parts, start = [], 0
        for b in base:
            parts.append(flat[start:start + b.size].reshape(b.shape))
            start += b.size
        return parts

    def projected(v_parts):
        with no_grad():
            outs = _flat_output(fn, inputs)
        return sum(float(np.sum(o._data.astype(np.float64) * v)) for o, v in zip(outs, v_parts))

    for k, v in enumerate(directions):
        v_parts = split(v)
        outs = _flat_output(fn, inputs)
        diff = [o for o in outs if o.requires_grad]
        if not diff:
            raise GradcheckError("gradcheck: the output does not require grad (no graph was built)")
        used = [v_parts[j] for j, o in enumerate(outs) if o.requires_grad]
        analytic = grad(diff, [inputs[i] for i in checked],
                        grad_outputs=[Tensor(u) for u in used], allow_unused=True)
        for i, a in zip(checked, analytic):
            x = inputs[i]._data
            a = np.zeros(x.shape) if a is None else a._data
            numeric = np.zeros(x.shape)
            for idx in np.ndindex(x.shape):
                old = x[idx]
                x[idx] = old + eps
                plus = projected(v_parts)
                x[idx] = old - eps
                minus = projected(v_parts)
                x[idx] = old
                numeric[idx] = (plus - minus) / (2 * eps)
            err = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
            if np.any(err > 0) or not np.all(np.isfinite(a) == np.isfinite(numeric)):
                worst = np.unravel_index(np.argmax(np.where(np.isnan(err), np.inf, err)), x.shape)
                what = (f"output entry {k}" if n_out <= 64 else f"random projection {k}")
                raise GradcheckError(
                    f"gradcheck: Jacobian mismatch for input {i} (shape {x.shape}) at index "
                    f"{tuple(int(j) for j in worst)} ({what}): numerical {numeric[worst]:.8g}, "
                    f"analytical {a[worst]:.8g}, |diff| {abs(a[worst] - numeric[worst]):.3g} > "
                    f"atol + rtol·|numerical| = {atol + rtol * abs(numeric[worst]):.3g}")
    return True
