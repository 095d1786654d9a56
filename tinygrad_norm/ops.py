"""One Function per primitive op: forward, and its backward right under it.

Forward and backward work on numpy arrays. Elementwise ops and reductions run
on the numba kernels of `kernels/` (through `run` and `reduce_view`); matmul
goes through numpy's BLAS. Each docstring states the math:  y = f(x) and the
gradient  dx = ...  given the incoming gradient g = dL/dy.

Sections: elementwise unary · elementwise binary · reductions · movement · matmul.
"""
import numpy as np

from .kernels import elementwise as K
from .kernels import reduce as R
from .kernels import softmax as SK
from .kernels.elementwise import map_elementwise
from .tensor import FLOAT_DTYPES, Function


def run(kern, *arrays, scalars=(), n_out=1):
    """Run an elementwise kernel (float32/float64), or its numpy reference for
    integer and bool arrays (they never need gradients)."""
    if arrays[0].dtype in FLOAT_DTYPES:
        return map_elementwise(kern, arrays, n_out=n_out, scalars=scalars)
    return kern.reference(*np.broadcast_arrays(*arrays), *scalars)


def sum_to_shape(grad, shape):
    """Undo broadcasting: sum `grad` over the axes broadcasting added or
    stretched, so that it has `shape` (the operand's shape)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and grad.shape[lead + i] != 1)
    return reduce_sum(grad, axes).reshape(shape)


def reduce_sum(x, axes):
    """Σ over `axes` (a sorted tuple) with the sum kernel; result drops those axes."""
    out_shape = R.kept_shape(x.shape, axes, keepdim=False)
    if x.dtype not in FLOAT_DTYPES:
        return np.sum(x, axis=axes, dtype=np.int64 if x.dtype.kind in "biu" else None)
    x3, _ = R.reduce_view(x, axes)
    out = np.empty((x3.shape[0], x3.shape[2]), x.dtype)
    R.sum_arb(x3, out)
    return out.reshape(out_shape)


# ============================================================ elementwise, unary

class Neg(Function):
    """y = −x;  dx = −g"""
    name = "neg"

    def forward(self, x):
        return run(K.neg, x)

    def backward(self, g):
        return run(K.neg, g)


class Exp(Function):
    """y = eˣ;  dx = g·y   (forward: numpy's SIMD exp, see kernels/elementwise.py)"""
    name = "exp"

    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, g):
        return run(K.exp_backward, g, self.y)


class Log(Function):
    """y = ln x;  dx = g / x   (forward: numpy's SIMD log)"""
    name = "log"

    def forward(self, x):
        self.x = x
        with np.errstate(divide="ignore", invalid="ignore"):  # log 0 = -inf, log(-1) = nan
            return np.log(x)

    def backward(self, g):
        return run(K.log_backward, g, self.x)


class Sqrt(Function):
    """y = √x;  dx = g / (2y)"""
    name = "sqrt"

    def forward(self, x):
        self.y = run(K.sqrt, x)
        return self.y

    def backward(self, g):
        return run(K.sqrt_backward, g, self.y)


class Abs(Function):
    """y = |x|;  dx = g·sign(x)  (0 at x = 0, as in PyTorch)"""
    name = "abs"

    def forward(self, x):
        self.x = x
        return run(K.abs_, x)

    def backward(self, g):
        return run(K.abs_backward, g, self.x)


class Tanh(Function):
    """y = tanh x;  dx = g·(1 − y²)  (from the saved output; forward: numpy's SIMD tanh)"""
    name = "tanh"

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g):
        return run(K.tanh_backward, g, self.y)


class Sigmoid(Function):
    """y = 1 / (1 + e⁻ˣ);  dx = g·y·(1 − y)  (fused, from the saved output)"""
    name = "sigmoid"

    def forward(self, x):
        self.y = K.sigmoid(x) if x.dtype in FLOAT_DTYPES else K.sigmoid(x.astype(np.float32))
        return self.y

    def backward(self, g):
        return run(K.sigmoid_backward, g, self.y)


class Relu(Function):
    """y = max(x, 0);  dx = g where y > 0 (so 0 at x = 0, as in PyTorch)"""
    name = "relu"

    def forward(self, x):
        self.y = run(K.relu, x)
        return self.y

    def backward(self, g):
        return run(K.relu_backward, g, self.y)


class LeakyRelu(Function):
    """y = x if x > 0 else slope·x;  dx = g or slope·g"""
    name = "leaky_relu"

    def forward(self, x, slope):
        self.x, self.slope = x, slope
        return run(K.leaky_relu, x, scalars=(slope,))

    def backward(self, g):
        return run(K.leaky_relu_backward, g, self.x, scalars=(self.slope,))


class Gelu(Function):
    """exact: y = x·Φ(x), dx = g·(Φ(x) + x·φ(x));  "tanh": PyTorch's approximation"""
    name = "gelu"

    def forward(self, x, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.x, self.tanh = x, approximate == "tanh"
        return run(K.gelu_tanh if self.tanh else K.gelu, x)

    def backward(self, g):
        return run(K.gelu_tanh_backward if self.tanh else K.gelu_backward, g, self.x)


class Clamp(Function):
    """y = min(max(x, lo), hi);  dx = g where lo ≤ x ≤ hi"""
    name = "clamp"

    def forward(self, x, lo, hi):
        self.x, self.lo, self.hi = x, lo, hi
        return run(K.clamp, x, scalars=(lo, hi))

    def backward(self, g):
        return run(K.clamp_backward, g, self.x, scalars=(self.lo, self.hi))


class PowScalar(Function):
    """y = xᵖ for a constant p;  dx = g·p·xᵖ⁻¹ (0 when p = 0)"""
    name = "pow"

    def forward(self, x, p):
        self.x, self.p = x, p
        return run(K.pow_scalar, x, scalars=(p,))

    def backward(self, g):
        return run(K.pow_scalar_backward, g, self.x, scalars=(self.p,))


class Cast(Function):
    """y = x converted to `dtype`;  dx = g converted back"""
    name = "cast"

    def forward(self, x, dtype):
        self.dtype = x.dtype
        if dtype.kind not in "fc":
            self.needs_input_grad = (False,)  # casting to integers cuts the graph
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.dtype)


class Copy(Function):
    """y = a contiguous copy of x;  dx = g"""
    name = "clone"

    def forward(self, x):
        return np.array(x, copy=True, order="C")

    def backward(self, g):
        return g


# =========================================================== elementwise, binary
# Operands arrive with one dtype (tensor._operands); shapes broadcast like numpy.
# Each backward sums its gradient back to its operand's shape (sum_to_shape).

def _broadcast_shape(a, b, opname):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise RuntimeError(f"{opname}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                           f"(sizes must match or be 1 in each trailing dimension)") from None


class _Binary(Function):
    def save_shapes(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        if a.shape != b.shape and not (b.size == 1 and b.ndim <= a.ndim):
            _broadcast_shape(a, b, self.name)  # raises naming both shapes


class Add(_Binary):
    """y = a + b;  da = g, db = g (each summed to its operand's shape)"""
    name = "add"

    def forward(self, a, b):
        self.save_shapes(a, b)
        return run(K.add, a, b)

    def backward(self, g):
        return sum_to_shape(g, self.a_shape), sum_to_shape(g, self.b_shape)


class Sub(_Binary):
    """y = a − b;  da = g, db = −g"""
    name = "sub"

    def forward(self, a, b):
        self.save_shapes(a, b)
        return run(K.sub, a, b)

    def backward(self, g):
        db = run(K.neg, sum_to_shape(g, self.b_shape)) if self.needs_input_grad[1] else None
        return sum_to_shape(g, self.a_shape), db


class Mul(_Binary):
    """y = a·b;  da = g·b, db = g·a  (one fused pass when both are needed)"""
    name = "mul"

    def forward(self, a, b):
        self.save_shapes(a, b)
        self.a, self.b = a, b
        return run(K.mul, a, b)

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        if need_a and need_b:
            da, db = run(K.mul_backward, g, self.a, self.b, n_out=2)
        else:
            da = run(K.mul, g, self.b) if need_a else None
            db = run(K.mul, g, self.a) if need_b else None
        return (sum_to_shape(da, self.a_shape) if need_a else None,
                sum_to_shape(db, self.b_shape) if need_b else None)


class Div(_Binary):
    """y = a / b;  da = g / b, db = −g·a / b²"""
    name = "div"

    def forward(self, a, b):
        self.save_shapes(a, b)
        self.a, self.b = a, b
        return run(K.div, a, b)

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        if need_b:
            da, db = run(K.div_backward, g, self.a, self.b, n_out=2)
            return (sum_to_shape(da, self.a_shape) if need_a else None), sum_to_shape(db, self.b_shape)
        return sum_to_shape(run(K.div, g, self.b), self.a_shape), None


class Pow(_Binary):
    """y = aᵇ;  da = g·b·aᵇ⁻¹, db = g·y·ln a  (PyTorch's zero conventions at a = 0, b = 0)"""
    name = "pow"

    def forward(self, a, b):
        self.save_shapes(a, b)
        self.a, self.b = a, b
        self.y = run(K.pow, a, b)
        return self.y

    def backward(self, g):
        da, db = run(K.pow_backward, g, self.a, self.b, self.y, n_out=2)
        return sum_to_shape(da, self.a_shape), sum_to_shape(db, self.b_shape)


class Maximum(_Binary):
    """y = max(a, b);  the gradient goes to the larger operand, half to each on a tie"""
    name = "maximum"

    def forward(self, a, b):
        self.save_shapes(a, b)
        self.a, self.b = a, b
        return run(K.maximum, a, b)

    def backward(self, g):
        da, db = run(K.maximum_backward, g, self.a, self.b, n_out=2)
        return sum_to_shape(da, self.a_shape), sum_to_shape(db, self.b_shape)


class Minimum(_Binary):
    """y = min(a, b);  the gradient goes to the smaller operand, half to each on a tie"""
    name = "minimum"

    def forward(self, a, b):
        self.save_shapes(a, b)
        self.a, self.b = a, b
        return run(K.minimum, a, b)

    def backward(self, g):
        da, db = run(K.minimum_backward, g, self.a, self.b, n_out=2)
        return sum_to_shape(da, self.a_shape), sum_to_shape(db, self.b_shape)


class Where(_Binary):
    """y = a where condition else b;  da = g where condition, db = g elsewhere"""
    name = "where"

    def forward(self, a, b, condition):
        shape = np.broadcast_shapes(condition.shape, _broadcast_shape(a, b, "where"))
        self.a_shape, self.b_shape, self.condition = a.shape, b.shape, condition
        return np.where(condition, a, b).reshape(shape)

    def backward(self, g):
        zero = np.zeros((), g.dtype)
        da = sum_to_shape(np.where(self.condition, g, zero), self.a_shape) if self.needs_input_grad[0] else None
        db = sum_to_shape(np.where(self.condition, zero, g), self.b_shape) if self.needs_input_grad[1] else None
        return da, db


# ==================================================================== reductions
# Each reduction views its input as (A, R, B) with the reduced axes in R
# (kernels/reduce.py) and runs one kernel over it.

class _Reduction(Function):
    def setup(self, x, dim, keepdim):
        self.in_shape = x.shape
        self.axes = R.normalize_dims(dim, x.ndim)
        self.out_shape = R.kept_shape(x.shape, self.axes, keepdim)

    def gradient_view(self, g):
        """The incoming gradient as the (A, B) array the kernels expect."""
        return np.ascontiguousarray(g).reshape(self.x3.shape[0], self.x3.shape[2])


class Sum(_Reduction):
    """y = Σ_dims x;  dx = g spread back over the summed dims"""
    name = "sum"

    def forward(self, x, dim=None, keepdim=False):
        self.setup(x, dim, keepdim)
        if x.dtype not in FLOAT_DTYPES:
            return reduce_sum(x, self.axes).reshape(self.out_shape)
        x3, self.perm = R.reduce_view(x, self.axes)
        self.x3_shape = x3.shape  # backward needs only the shape, not x
        out = np.empty((x3.shape[0], x3.shape[2]), x.dtype)
        R.sum_arb(x3, out)
        return out.reshape(self.out_shape)

    def backward(self, g):
        A, Rn, B = self.x3_shape
        out = np.empty((A, Rn, B), g.dtype)
        R.spread_arb(np.ascontiguousarray(g).reshape(A, B), out, out, 1.0)
        return R.unreduce_view(out, self.in_shape, self.perm)


class Mean(_Reduction):
    """y = Σ_dims x / n;  dx = g / n spread back over the averaged dims"""
    name = "mean"

    def forward(self, x, dim=None, keepdim=False):
        self.setup(x, dim, keepdim)
        x3, self.perm = R.reduce_view(x, self.axes)
        self.x3_shape = x3.shape
        # NOTE: sum into float64 and divide before rounding to float32 (one rounding).
        total = np.empty((x3.shape[0], x3.shape[2]), np.float64)
        R.sum_arb(x3, total)
        with np.errstate(invalid="ignore", divide="ignore"):  # mean of nothing is nan
            return (total / x3.shape[1]).astype(x.dtype).reshape(self.out_shape)

    def backward(self, g):
        A, Rn, B = self.x3_shape
        out = np.empty((A, Rn, B), g.dtype)
        R.spread_arb(np.ascontiguousarray(g).reshape(A, B), out, out, 1.0 / max(Rn, 1))
        return R.unreduce_view(out, self.in_shape, self.perm)


class Var(_Reduction):
    """y = Σ(x − x̄)² / (n − correction);  dx = g·2(x − x̄) / (n − correction)"""
    name = "var"

    def forward(self, x, dim=None, correction=1, keepdim=False):
        self.setup(x, dim, keepdim)
        self.x3, self.perm = R.reduce_view(x, self.axes)
        A, Rn, B = self.x3.shape
        self.mean, var = np.empty((A, B), x.dtype), np.empty((A, B), x.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):
            R.var_arb(self.x3, self.mean, var, float(correction))
        self.scale = 2.0 / (Rn - correction) if Rn != correction else np.inf
        return var.reshape(self.out_shape)

    def backward(self, g):
        out = np.empty(self.x3.shape, g.dtype)
        R.var_backward_arb(self.gradient_view(g), self.x3, self.mean, out, self.scale)
        return R.unreduce_view(out, self.in_shape, self.perm)


def _extremum(x3, which):
    """(values, first indices) of the max or min over R of an (A, R, B) array."""
    A, _, B = x3.shape
    values, idx = np.empty((A, B), x3.dtype), np.empty((A, B), np.int64)
    R.extremum_arb(x3, values, idx, which == "max")
    return values, idx


class Extremum(_Reduction):
    """y = max (or min) over dims;  dx = g shared evenly among the tied maxima"""
    name = "max"

    def forward(self, x, which="max", dim=None, keepdim=False):
        self.setup(x, dim, keepdim)
        self.name = which
        if x.size == 0:
            raise RuntimeError(f"{which}(): cannot reduce over an empty tensor (shape {x.shape})")
        if x.dtype not in FLOAT_DTYPES:
            return (np.max if which == "max" else np.min)(x, axis=self.axes).reshape(self.out_shape)
        self.x3, self.perm = R.reduce_view(x, self.axes)
        # NOTE: numpy's max/min (which propagate nan, as PyTorch does), not the numba
        # extremum_arb that max(dim) needs for its indices: LLVM does not vectorise
        # a float max reduction here, even with fastmath and 16 explicit lanes
        # (docs/engine.md, "Max and min").
        self.m = (np.max if which == "max" else np.min)(self.x3, axis=1)
        return self.m.reshape(self.out_shape)

    def backward(self, g):
        out = np.empty(self.x3.shape, g.dtype)
        R.extremum_backward_arb(self.gradient_view(g), self.x3, self.m, out)
        return R.unreduce_view(out, self.in_shape, self.perm)


class ExtremumAlongDim(_Reduction):
    """(values, indices) = max (or min) along one dim;  dx = g at the returned index"""
    name = "max"

    def forward(self, x, which="max", dim=0, keepdim=False):
        self.setup(x, dim, keepdim)
        self.name = which
        if x.ndim and x.shape[self.axes[0]] == 0:
            raise IndexError(f"{which}(): Expected reduction dim {dim} to have non-zero size "
                             f"(shape {x.shape})")
        if x.dtype not in FLOAT_DTYPES:
            idx = (np.argmax if which == "max" else np.argmin)(x, axis=self.axes[0] if x.ndim else None)
            self.indices = np.asarray(idx, np.int64).reshape(self.out_shape)
            return (np.max if which == "max" else np.min)(x, axis=self.axes).reshape(self.out_shape)
        self.x3, self.perm = R.reduce_view(x, self.axes)
        values, idx = _extremum(self.x3, which)
        self.idx = idx
        self.indices = idx.reshape(self.out_shape)
        return values.reshape(self.out_shape)

    def backward(self, g):
        out = np.empty(self.x3.shape, g.dtype)
        R.scatter_arb(self.gradient_view(g), out, self.idx, out)
        return R.unreduce_view(out, self.in_shape, self.perm)


# ====================================================================== movement

class Reshape(Function):
    """y = x with a new shape (same elements in C order);  dx = g reshaped back"""
    name = "reshape"

    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    """y = x with its axes reordered;  dx = g with the inverse order"""
    name = "permute"

    def forward(self, x, dims):
        self.dims = dims
        return np.transpose(x, dims)

    def backward(self, g):
        return np.transpose(g, np.argsort(self.dims))


class Expand(Function):
    """y = x broadcast to `shape` (a view);  dx = g summed over the broadcast axes"""
    name = "expand"

    def forward(self, x, shape):
        self.in_shape = x.shape
        return np.broadcast_to(x, shape)

    def backward(self, g):
        return sum_to_shape(g, self.in_shape)


def _has_advanced_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (np.ndarray, list)) for p in parts)


class GetItem(Function):
    """y = x[index];  dx = zeros with g added at index (repeated indices accumulate)"""
    name = "getitem"

    def forward(self, x, index):
        self.in_shape, self.index = x.shape, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"{e} (indexing a tensor of shape {x.shape} with {index!r})") from None

    def backward(self, g):
        dx = np.zeros(self.in_shape, g.dtype)
        if _has_advanced_index(self.index):
            # NOTE: x[[0, 0]] uses row 0 twice; np.add.at accumulates both
            # contributions where `dx[index] += g` would keep only one.
            np.add.at(dx, self.index, g)
        else:
            dx[self.index] = g
        return dx


class Cat(Function):
    """y = the inputs joined along `dim`;  each dx is its slice of g"""
    name = "cat"

    def forward(self, *xs, dim):
        self.dim = dim
        self.bounds = np.cumsum([0] + [x.shape[dim] for x in xs])
        return np.concatenate(xs, axis=dim)

    def backward(self, g):
        out = []
        for i, need in enumerate(self.needs_input_grad):
            index = [slice(None)] * g.ndim
            index[self.dim] = slice(self.bounds[i], self.bounds[i + 1])
            out.append(g[tuple(index)] if need else None)
        return tuple(out)


# ======================================================================== matmul

class MatMul(Function):
    """y = a @ b (batched, broadcast batch dims; 1-D operands as in numpy);
    da = g @ bᵀ, db = aᵀ @ g, each summed over broadcast batch dims.  BLAS."""
    name = "matmul"

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                               f"{a.shape} and {b.shape}")
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != k_b:
            raise RuntimeError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                               f"({a.shape[-1]} != {k_b})")
        if a.ndim > 2 or b.ndim > 2:
            try:
                np.broadcast_shapes(a.shape[:-2], b.shape[:-2] if b.ndim > 1 else ())
            except ValueError:
                raise RuntimeError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be "
                                   f"broadcast together") from None
        self.a, self.b = a, b
        return np.matmul(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a           # (..., n, k)
        b2 = b[:, None] if b.ndim == 1 else b           # (..., k, m)
        g2 = g
        if a.ndim == 1:
            g2 = g2[..., None, :] if b.ndim > 1 else g2[..., None]
        if b.ndim == 1:
            g2 = g2[..., None]
        da = db = None
        if self.needs_input_grad[0]:
            da = sum_to_shape(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            db = sum_to_shape(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return da, db


# ======================================================================= softmax

class Softmax(Function):
    """y = e^(x − m) / Σ_dim e^(x − m) (m = max along dim, for stability);
    dx = y · (g − Σ_dim g·y). With `log`: y = x − m − log Σ e^(x − m),
    dx = g − e^y · Σ_dim g. One fused kernel each (kernels/softmax.py)."""
    name = "softmax"

    def forward(self, x, dim, log=False):
        if log:
            self.name = "log_softmax"
        self.log = log
        x3, _ = R.reduce_view(x.reshape(x.shape or (1,)), (dim,))
        y = np.empty(x3.shape, x.dtype)
        (SK.log_softmax if log else SK.softmax)(x3, y)
        self.y3 = y
        return y.reshape(x.shape)

    def backward(self, g):
        y3 = self.y3
        g3 = np.ascontiguousarray(g).reshape(y3.shape)
        dx = np.empty(y3.shape, y3.dtype)
        (SK.log_softmax_backward if self.log else SK.softmax_backward)(g3, y3, dx)
        return dx.reshape(g.shape)


def softmax(x, dim, log=False):
    """Softmax (log-softmax with `log`) of the float Tensor x along the int `dim`:
    Tensor.softmax and nn.functional.softmax both call this."""
    fname = "log_softmax" if log else "softmax"
    if x.dtype not in FLOAT_DTYPES:
        raise RuntimeError(f"{fname}: expected a floating point input (float32 or float64), "
                           f"got dtype {x.dtype}; cast it with .float()")
    return Softmax.apply(x, dim=R.normalize_dims(dim, max(x.ndim, 1))[0], log=log)
