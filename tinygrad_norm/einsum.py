"""`tn.einsum(equation, *operands)`: Einstein summation, differentiable (as torch.einsum).

    tn.einsum("ij,jk->ik", a, b)     # matmul
    tn.einsum("ii->", a)             # trace;  "ii->i": the diagonal
    tn.einsum("bij,bjk->bik", a, b)  # batched matmul;  "i,j->ij": outer product

Forward: numpy's einsum. Backward for operand k, written with letters s_k
(a letter may repeat: a diagonal):

    G = einsum(g, other operands -> the distinct letters of s_k that the output
        or another operand has)
    letters only operand k has (summed out in forward) get G broadcast along them;
    a repeated letter puts G on that diagonal of a zero array of operand k's shape.

Without "->" the output letters are those that appear once, sorted (numpy and
PyTorch's rule). "..." (broadcast dims) is not supported: write the dims out.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .tensor import Function, Tensor, _promote

__all__ = ["einsum"]


def _parse(equation, operands):
    eq = equation.replace(" ", "")
    if "." in eq:
        raise ValueError(f"einsum: '...' (broadcast dims) is not supported here, got {equation!r}; "
                         f"write the dims out with letters")
    inputs, arrow, output = eq.partition("->")
    subs = inputs.split(",")
    if len(subs) != len(operands):
        raise ValueError(f"einsum: the equation {equation!r} has {len(subs)} operand(s) but "
                         f"{len(operands)} tensor(s) were given")
    if not arrow:
        letters = "".join(subs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    sizes = {}
    for i, (s, t) in enumerate(zip(subs, operands)):
        if not all(c.isalpha() for c in s):
            raise ValueError(f"einsum: operand subscripts must be letters, got {s!r} in {equation!r}")
        if len(s) != t.ndim:
            raise ValueError(f"einsum: operand {i} has {t.ndim} dims (shape {tuple(t.shape)}) but "
                             f"subscripts {s!r} name {len(s)}")
        for c, n in zip(s, t.shape):
            if sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum: letter {c!r} has size {sizes[c]} in one place and {n} in "
                                 f"another (operand {i}, shape {tuple(t.shape)})")
    for c in output:
        if c not in sizes:
            raise ValueError(f"einsum: output letter {c!r} appears in no operand of {equation!r}")
        if output.count(c) > 1:
            raise ValueError(f"einsum: output letter {c!r} appears more than once in {equation!r}")
    return subs, output, sizes


class Einsum(Function):
    """See the module docstring for the backward rule."""
    name = "einsum"

    def forward(self, *arrays, subs, output, sizes):
        self.arrays, self.subs, self.output, self.sizes = arrays, subs, output, sizes
        return np.asarray(np.einsum(",".join(subs) + "->" + output, *arrays, optimize=len(arrays) > 2))

    def _grad(self, k, g):
        subs, sk = self.subs, self.subs[k]
        others = [i for i in range(len(subs)) if i != k]
        present = set(self.output).union(*[set(subs[i]) for i in others])
        distinct = "".join(dict.fromkeys(sk))                     # letters of s_k, first-appearance order
        kept = "".join(c for c in distinct if c in present)
        G = np.einsum(",".join([self.output] + [subs[i] for i in others]) + "->" + kept,
                      g, *[self.arrays[i] for i in others], optimize=len(others) > 1)
        # broadcast along the letters only operand k has, then order as `distinct`
        G = G.reshape(G.shape + (1,) * (len(distinct) - len(kept)))
        order = kept + "".join(c for c in distinct if c not in present)
        G = np.broadcast_to(np.transpose(G, [order.index(c) for c in distinct]),
                            [self.sizes[c] for c in distinct])
        x = self.arrays[k]
        if len(distinct) == len(sk):
            return np.ascontiguousarray(G, dtype=x.dtype)
        dx = np.zeros(x.shape, x.dtype)
        strides = [sum(dx.strides[j] for j, c2 in enumerate(sk) if c2 == c) for c in distinct]
        as_strided(dx, shape=G.shape, strides=strides, writeable=True)[...] = G  # the diagonal
        return dx

    def backward(self, g):
        return tuple(self._grad(k, g) if need else None for k, need in enumerate(self.needs_input_grad))


def einsum(equation, *operands):
    """Sum of products over the letters the output omits, e.g. "ij,jk->ik" (see module doc).
    Operands may also be passed as one list: einsum(eq, [a, b])."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): must provide at least one operand")
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum(): operand {i} must be a Tensor, not {type(t).__name__}")
    dtype = operands[0].dtype
    for t in operands[1:]:
        dtype = _promote(dtype, t.dtype)
    operands = [t if t.dtype == dtype else t.type(dtype) for t in operands]
    subs, output, sizes = _parse(equation, operands)
    return Einsum.apply(*operands, subs=subs, output=output, sizes=sizes)
