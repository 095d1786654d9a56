"""Optimizer update kernels: a parameter's whole update in one pass.

SGD with momentum written with numpy is four calls per parameter (b *= μ,
b += g, −lr·b, p += ...), each with its own temporary and ~1 µs of call cost;
for the small layers of the Ioffe MLP that cost was most of the optimizer step.
The kernel below does the same float operations in the same order, in the
parameter's precision (no contraction into FMA), so its results are bitwise
those of the numpy formula (tests/test_optim.py checks it).
"""

from .jit import kernel, prange


def _ref_sgd_momentum(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, sign, first):
    """PyTorch's SGD step with a momentum buffer, in numpy (see optim/sgd.py)."""
    T = p.dtype.type
    d = T(sign) * g
    if weight_decay != 0:
        d = d + T(weight_decay) * p
    if first:
        b = d.copy()
    else:
        b = buf * T(momentum) + (d if dampening == 0 else T(1 - dampening) * d)
    step = d + T(momentum) * b if nesterov else b
    return (p + T(-lr) * step).astype(p.dtype), b.astype(p.dtype)


@kernel(_ref_sgd_momentum, n_in=3, n_out=0, mutates=(0, 2), scalars=(0.1, 0.9, 0.1, 0.01, 1.0, -1.0, 0.0))
def sgd_momentum(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, sign, first):
    """One SGD step of a flat parameter p with gradient g and momentum buffer buf,
    updating p and buf in place:

        d = sign·g (+ λ·p);   b = d (first step) or μ·b + (1 − τ)·d;
        p ← p − lr·(d + μ·b if nesterov else b)

    sign = −1 maximizes. NOTE: in place on purpose: with separate output arrays
    that alias the inputs, LLVM's overlap check fails and the loop runs scalar
    (5x slower on a 784×100 weight)."""
    T = p.dtype.type
    mu, keep, wd, neg_lr, s = T(momentum), T(1.0 - dampening), T(weight_decay), T(-lr), T(sign)
    for i in prange(p.size):
        d = s * g[i]
        if weight_decay != 0.0:
            d = d + wd * p[i]
        if first != 0.0:
            b = d
        elif dampening == 0.0:
            b = buf[i] * mu + d
        else:
            b = buf[i] * mu + keep * d
        buf[i] = b
        step = d + mu * b if nesterov != 0.0 else b
        p[i] = p[i] + neg_lr * step
