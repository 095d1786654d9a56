"""Tensor: a numpy array that records how it was made, and reverse-mode autograd.

    x = tn.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()          # y._ctx is a `Sum` Function whose parent is x * x
    y.backward()               # walks the graph from y back to the leaves
    x.grad                     # tensor([2., 4.])

The graph is made of `Function` objects (one per primitive op, in ops.py):
each remembers its input Tensors (`parents`) and whatever arrays its backward
needs. A Tensor made by an op points to its Function through `_ctx`; leaves
(tensors you create) have `_ctx = None`.

`backward()` sorts the graph topologically with an explicit stack (a chain of
100,000 ops does not hit Python's recursion limit), walks it from the output
to the leaves, and then *releases* it: every Function drops its parents and
saved arrays, so activations are freed as soon as the caller drops the output.
"""
import sys

import numpy as np

from . import devices as _device

# ---------------------------------------------------------------------- grad mode

_grad_enabled = True

# The modules whose forward is running, outermost first, as opaque serial numbers:
# nn.Module.__call__ sets it, every Function records it (`scope`), and tn.viz
# draws one cluster per module (nn.module.module_of turns a number into its module).
_module_scope = ()


def is_grad_enabled():
    """True when new operations are recorded for backward."""
    return _grad_enabled


class _GradMode:
    """Base of no_grad / enable_grad / set_grad_enabled / inference_mode.

    A context manager (`with tn.no_grad():`) and a decorator (`@tn.no_grad()`,
    or bare `@tn.no_grad`): the decorated function runs in the mode, and the
    mode in force outside the call is left alone. Each call (and each resumption
    of a decorated generator) enters a fresh copy, so nesting and recursion work.
    """

    mode = True

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        if cls._takes_function and len(args) == 1 and callable(args[0]) and not kwargs:
            self.__init__()
            return self(args[0])  # the bare decorator @tn.no_grad
        return self

    _takes_function = True  # no_grad / enable_grad accept the bare-decorator form

    def __enter__(self):
        global _grad_enabled
        # NOTE: a stack, so that one object can be entered again inside its own block
        self.__dict__.setdefault("_prevs", []).append(_grad_enabled)
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prevs.pop()

    def _clone(self):
        clone = _GradMode.__new__(_GradMode)
        clone.mode = self.mode
        return clone

    def __call__(self, fn):
        import functools
        import inspect
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                gen = fn(*args, **kwargs)
                try:
                    with self._clone():
                        response = gen.send(None)
                    while True:  # NOTE: the mode holds while the generator runs, not between yields
                        try:
                            request = yield response
                        except GeneratorExit:
                            with self._clone():
                                gen.close()
                            raise
                        except BaseException as error:  # noqa: BLE001  (passed into the generator)
                            with self._clone():
                                response = gen.throw(error)
                        else:
                            with self._clone():
                                response = gen.send(request)
                except StopIteration as stop:
                    return stop.value
            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._clone():
                return fn(*args, **kwargs)
        return wrapper

    def __repr__(self):
        return f"{type(self).__name__}()"


class no_grad(_GradMode):
    """`with tn.no_grad():` (or `@tn.no_grad()`) — ops inside build no graph."""

    mode = False


class enable_grad(_GradMode):
    """`with tn.enable_grad():` — record again inside a no_grad block."""

    mode = True


class set_grad_enabled(_GradMode):
    """`tn.set_grad_enabled(False)` switches now (a function call); as a context
    manager the previous mode comes back on exit; as a decorator
    (`@tn.set_grad_enabled(False)`) the mode holds only inside each call."""

    _takes_function = False

    def __init__(self, mode):
        global _grad_enabled
        self.mode = bool(mode)
        self.prev, _grad_enabled = _grad_enabled, self.mode

    def __enter__(self):
        self.__dict__.setdefault("_prevs", []).append(self.prev)  # __init__ has switched already
        return self

    def __call__(self, fn):
        global _grad_enabled
        _grad_enabled = self.prev  # applying the decorator must not change the mode
        return super().__call__(fn)

    def __repr__(self):
        return f"set_grad_enabled(mode={self.mode})"


class inference_mode(_GradMode):
    """`with tn.inference_mode():` (or `@tn.inference_mode()`): as `no_grad` here (PyTorch
    also makes its results "inference tensors", faster on its side; this engine has no
    such distinction). `inference_mode(False)` switches gradients on inside."""

    def __init__(self, mode=True):
        self.mode = not mode

    def __repr__(self):
        return f"inference_mode(mode={not self.mode})"


# ----------------------------------------------------------------------- Function

class Function:
    """One differentiable primitive: `forward` on arrays, `backward` right under it.

    Subclasses implement
        forward(self, *arrays, **options) -> ndarray
        backward(self, grad) -> one ndarray (or None) per parent, as a tuple
    and save on `self` whatever backward needs. `self.needs_input_grad[i]`
    tells whether parent i wants a gradient (return None for it otherwise).
    NOTE: backward must never modify `grad` in place: the same array may be
    handed to several parents (add passes it through unchanged).
    """

    name = None  # the op's name as users know it ("add", "matmul"), shown in graphs

    def __init__(self, *parents):
        self.parents = parents
        try:
            self.needs_input_grad = tuple([p._requires_grad for p in parents])
        except AttributeError:
            bad = next(p for p in parents if not isinstance(p, Tensor))
            raise TypeError(f"{self.name or type(self).__name__}(): expected Tensor arguments, got "
                            f"{type(bad).__module__}.{type(bad).__name__}; wrap arrays with "
                            f"tn.tensor(x) (a copy) or tn.from_numpy(x)") from None
        self.scope = _module_scope

    @classmethod
    def apply(cls, *parents, **options):
        """Run forward on the parents' arrays; record the op if a gradient is needed."""
        return cls.apply_with_ctx(*parents, **options)[0]

    @classmethod
    def apply_with_ctx(cls, *parents, **options):
        """`apply`, also returning the Function (for ops with non-differentiable
        extra outputs kept on it, such as max's indices)."""
        ctx = cls(*parents)
        out = ctx.forward(*[p._data for p in parents], **options)
        requires_grad = _grad_enabled and any(ctx.needs_input_grad)
        result = Tensor._wrap(out, requires_grad)
        if requires_grad:
            result._ctx = ctx
        return result, ctx

    def release(self):
        """Drop parents and saved arrays (called by backward unless retain_graph)."""
        self.__dict__.clear()
        self.parents = None

    def __repr__(self):
        return f"<{self.name or type(self).__name__}>"


# ------------------------------------------------------------------------- dtypes

float32, float64 = np.dtype(np.float32), np.dtype(np.float64)
int32, int64, uint8, bool_ = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint8), np.dtype(bool)
FLOAT_DTYPES = (float32, float64)


def _as_array(data, dtype, infer=False):
    """Convert constructor input to an ndarray following the dtype rules.

    Python scalars and lists: float32 (bools too) for the class
    `Tensor(data)`, as `torch.Tensor`; with `infer` (that is `tn.tensor`),
    PyTorch's inference: ints -> int64, bools -> bool, floats (or a mix of
    ints and floats) -> float32. numpy arrays keep float32/float64/integer/bool
    (float16 becomes float32)."""
    if isinstance(data, Tensor):
        arr = data._data.copy()
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data)  # a copy: later changes to the user's array don't leak in
    else:
        arr = np.array(data)
        if dtype is None:
            if arr.dtype.kind not in "iufb":
                raise TypeError(f"cannot make a Tensor from {type(data).__name__} "
                                f"(numpy made dtype {arr.dtype} of it)")
            if not (infer and arr.dtype == bool_):
                arr = arr.astype(int64 if infer and arr.dtype.kind in "iu" else float32)
    if dtype is not None:
        return arr.astype(np.dtype(dtype), copy=False)
    if arr.dtype.kind == "f" and arr.dtype not in FLOAT_DTYPES:
        arr = arr.astype(float32)
    elif arr.dtype.kind not in "iufb":
        raise TypeError(f"unsupported dtype {arr.dtype}: tensors hold float32, float64, integers or bool")
    return arr


def _check_can_require_grad(dtype):
    if dtype not in FLOAT_DTYPES:
        raise RuntimeError(f"only Tensors of floating point dtype can require gradients, "
                           f"got dtype {dtype} (integer tensors hold labels and indices)")


# ------------------------------------------------------------------------- Tensor

class Tensor:
    """An n-dimensional array with autograd. `Tensor(data, requires_grad=False, dtype=None)`."""

    __slots__ = ("_data", "grad", "_requires_grad", "_ctx", "_hooks", "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # numpy defers `ndarray * Tensor` to Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None):
        if not isinstance(requires_grad, (bool, np.bool_)):
            # NOTE: catches PyTorch's legacy size form, torch.Tensor(3, 4) (an uninitialized 3×4)
            raise TypeError(f"Tensor(data, requires_grad=False, dtype=None): requires_grad must be a bool, "
                            f"got {requires_grad!r}; for a tensor of a given shape, as torch.Tensor(3, 4) "
                            f"makes, write tn.empty(3, 4) (or tn.zeros)")
        self._data = _as_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._hooks = None
        self._retains_grad = False
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array, requires_grad=False):
        """Fast internal constructor: takes `array` as is (no copy, no checks)."""
        t = cls.__new__(cls)
        t._data, t.grad, t._ctx, t._hooks, t._retains_grad = array, None, None, None, False
        t._requires_grad = requires_grad
        return t

    # --------------------------------------------------------------- attributes
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag:
            _check_can_require_grad(self._data.dtype)
        elif self._ctx is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf tensors; "
                               "use .detach() to get a tensor without history")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def device(self):
        """Always `tn.device("cpu")` (equal to the string "cpu" too)."""
        return _device.CPU

    @property
    def data(self):
        """A Tensor sharing this tensor's array, without history (as in PyTorch)."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value):
        value = value._data if isinstance(value, Tensor) else np.asarray(value)
        if value.shape != self.shape:
            raise RuntimeError(f"data shape {value.shape} does not match tensor shape {self.shape}")
        self._data = value.astype(self.dtype, copy=False)

    def numel(self):
        return int(self._data.size)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numpy(self, force=False):
        """The underlying ndarray (no copy). As in PyTorch, a tensor that requires
        grad raises (numpy operations would not be recorded): call
        `.detach().numpy()`, or pass `force=True` (then a copy)."""
        if self._requires_grad:
            if not force:
                raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                                   "tensor.detach().numpy() instead.")
            return self._data.copy()
        return self._data

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"a Tensor with {self._data.size} elements cannot be converted to "
                             f"a Python scalar (shape {self.shape})")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def detach(self):
        """The same data (shared), cut from the graph."""
        return Tensor._wrap(self._data)

    def detach_(self):
        self._ctx, self._requires_grad = None, False
        return self

    def clone(self):
        return ops.Copy.apply(self)

    def contiguous(self):
        return self if self._data.flags.c_contiguous else ops.Copy.apply(self)

    def to(self, *args, **kwargs):
        """`to(dtype)`, `to(device)`, `to(device, dtype)`, `to(other)` (its dtype), as in
        PyTorch; the device must be the CPU (a GPU raises DeviceError). Returns self
        when nothing changes, unless `copy=True`."""
        dtype, copy = _device.parse_to(args, kwargs, "Tensor.to")
        out = self if dtype is None else self.type(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self):
        return self

    def cuda(self, device=None, non_blocking=False):
        """Raises DeviceError: there is no GPU (see tn.cuda.is_available())."""
        _device.check_device("cuda" if device is None else device)

    def type(self, dtype):
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else ops.Cast.apply(self, dtype=dtype)

    def float(self):
        return self.type(float32)

    def double(self):
        return self.type(float64)

    def long(self):
        return self.type(int64)

    def int(self):
        return self.type(int32)

    def bool(self):
        return self.type(bool_)

    def __repr__(self):
        body = np.array2string(self._data, separator=", ", prefix="tensor(", precision=4)
        extra = ""
        if self.dtype not in (float32, int64, bool_):
            extra += f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn={self._ctx!r}"
        elif self._requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous "
                               f"(shape {self.shape})")
        return bool(self._data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data)

    __hash__ = object.__hash__  # Tensors compare elementwise but hash by identity

    # ----------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into the `.grad` of every leaf that requires grad.

        `gradient` is d(loss)/d(self) for a non-scalar `self`; for a scalar it
        defaults to 1. The graph is released afterwards unless `retain_graph`.
        """
        _backward([self], [_root_gradient(self, gradient, 0, "backward(gradient)")], retain_graph)

    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; a returned
        Tensor replaces the gradient. Returns a handle with `.remove()`."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def retain_grad(self):
        """Also store the gradient of this non-leaf tensor in `.grad`."""
        if self._ctx is not None:
            self._retains_grad = True

    # ----------------------------------------------------------------- in-place
    def _inplace(self, value, opname):
        """Overwrite this tensor's values (no graph is recorded)."""
        if _grad_enabled and self._requires_grad:
            raise RuntimeError(f"{opname}: a tensor that requires grad is being used in an in-place "
                               f"operation; wrap the update in `with tn.no_grad():`")
        value = value._data if isinstance(value, Tensor) else value
        self._data[...] = value
        return self

    def zero_(self):
        return self._inplace(0, "zero_")

    def fill_(self, value):
        return self._inplace(value, "fill_")

    def copy_(self, src):
        src = src._data if isinstance(src, Tensor) else np.asarray(src)
        np.broadcast_shapes(src.shape, self.shape)  # raises naming both shapes
        return self._inplace(src, "copy_")

    def add_(self, other, alpha=1):
        return self._inplace(self._data + alpha * _array_of(other), "add_")

    def sub_(self, other, alpha=1):
        return self._inplace(self._data - alpha * _array_of(other), "sub_")

    def mul_(self, other):
        return self._inplace(self._data * _array_of(other), "mul_")

    def div_(self, other):
        return self._inplace(self._data / _array_of(other), "div_")

    def clamp_(self, min=None, max=None):
        return self._inplace(np.clip(self._data, min, max), "clamp_")

    def uniform_(self, a=0.0, b=1.0):
        from .random import generator
        return self._inplace(generator().uniform(a, b, self.shape), "uniform_")

    def normal_(self, mean=0.0, std=1.0):
        from .random import generator
        return self._inplace(generator().normal(mean, std, self.shape), "normal_")

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __setitem__(self, index, value):
        self._inplace_index(index, value)

    def _inplace_index(self, index, value):
        if _grad_enabled and self._requires_grad:
            raise RuntimeError("index assignment on a tensor that requires grad is not recorded; "
                               "wrap it in `with tn.no_grad():` or build the tensor with tn.where/cat")
        self._data[_index_of(index)] = _array_of(value)

    # ---------------------------------------------------------- arithmetic ops
    def __add__(self, other):
        return ops.Add.apply(*_operands(self, other))

    def __radd__(self, other):
        return ops.Add.apply(*_operands(other, self))

    def __sub__(self, other):
        return ops.Sub.apply(*_operands(self, other))

    def __rsub__(self, other):
        return ops.Sub.apply(*_operands(other, self))

    def __mul__(self, other):
        return ops.Mul.apply(*_operands(self, other))

    def __rmul__(self, other):
        return ops.Mul.apply(*_operands(other, self))

    def __truediv__(self, other):
        return ops.Div.apply(*_operands(self, other, true_divide=True))

    def __rtruediv__(self, other):
        return ops.Div.apply(*_operands(other, self, true_divide=True))

    def __pow__(self, exponent):
        if isinstance(exponent, (int, float, np.integer, np.floating)) and not isinstance(exponent, bool):
            if self.dtype not in FLOAT_DTYPES:
                return Tensor._wrap(self._data ** exponent)
            return ops.PowScalar.apply(self, p=float(exponent))
        return ops.Pow.apply(*_operands(self, exponent))

    def __rpow__(self, base):
        return ops.Pow.apply(*_operands(base, self))

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return ops.MatMul.apply(*_operands(self, other))

    def __rmatmul__(self, other):
        return ops.MatMul.apply(*_operands(other, self))

    def matmul(self, other):
        return self @ other

    def maximum(self, other):
        return ops.Maximum.apply(*_operands(self, other))

    def minimum(self, other):
        return ops.Minimum.apply(*_operands(self, other))

    # comparisons: no gradient, bool result
    def _compare(self, other, fn):
        return Tensor._wrap(fn(self._data, _array_of(other)))

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def eq(self, other):
        return self == other

    def __and__(self, other):
        return self._compare(other, np.logical_and)

    def __or__(self, other):
        return self._compare(other, np.logical_or)

    def __invert__(self):
        return Tensor._wrap(~self._data)

    # ------------------------------------------------------------ unary math
    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def sqrt(self):
        return ops.Sqrt.apply(self)

    def abs(self):
        return ops.Abs.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def sigmoid(self):
        return ops.Sigmoid.apply(self)

    def relu(self):
        return ops.Relu.apply(self)

    def square(self):
        return ops.PowScalar.apply(self, p=2.0)

    def rsqrt(self):
        return self.sqrt().reciprocal()

    def reciprocal(self):
        return 1.0 / self

    def clamp(self, min=None, max=None):
        """Limit values to [min, max]; the gradient passes where min <= x <= max."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self if min is None else self.maximum(min)
            return out if max is None else out.minimum(max)
        lo = -np.inf if min is None else float(min)
        hi = np.inf if max is None else float(max)
        return ops.Clamp.apply(self, lo=lo, hi=hi)

    clip = clamp

    def softmax(self, dim):
        return ops.softmax(self, dim)

    def log_softmax(self, dim):
        return ops.softmax(self, dim, log=True)

    # ------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False):
        return ops.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        if self.dtype not in FLOAT_DTYPES:
            raise RuntimeError(f"mean(): could not infer output dtype: input dtype is {self.dtype}; "
                               f"cast with .float() first")
        return ops.Mean.apply(self, dim=dim, keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, correction=None):
        """Σ(x − mean)² / (N − correction); correction=1 (Bessel) by default, as in PyTorch."""
        if correction is None:
            correction = 1 if unbiased is None else int(bool(unbiased))
        return ops.Var.apply(self, dim=dim, correction=correction, keepdim=keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return self.var(dim, unbiased, keepdim, correction).sqrt()

    def _extremum(self, which, dim, keepdim):
        if dim is None or not isinstance(dim, (int, np.integer)):
            return ops.Extremum.apply(self, which=which, dim=dim, keepdim=keepdim)
        values, ctx = ops.ExtremumAlongDim.apply_with_ctx(self, which=which, dim=dim, keepdim=keepdim)
        return MinMaxResult(values, Tensor._wrap(ctx.indices))

    def max(self, dim=None, keepdim=False):
        """`max()` -> the largest value; `max(dim)` -> (values, indices) as in PyTorch;
        `max(dim=(0, 1))` -> values over several dims (like amax)."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        return self._extremum("max", dim, keepdim)

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        return self._extremum("min", dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        return ops.Extremum.apply(self, which="max", dim=dim, keepdim=keepdim)

    def amin(self, dim=None, keepdim=False):
        return ops.Extremum.apply(self, which="min", dim=dim, keepdim=keepdim)

    def argmax(self, dim=None, keepdim=False):
        return Tensor._wrap(_arg_extremum(np.argmax, self._data, dim, keepdim))

    def argmin(self, dim=None, keepdim=False):
        return Tensor._wrap(_arg_extremum(np.argmin, self._data, dim, keepdim))

    # ---------------------------------------------------------- shape ops
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        return ops.Reshape.apply(self, shape=_resolve_reshape(self.shape, shape))

    def view(self, *shape):
        return self.reshape(*shape)

    def view_as(self, other):
        return self.reshape(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = start_dim % self.ndim, end_dim % self.ndim
        if s > e:
            raise RuntimeError(f"flatten() has invalid args: start_dim {start_dim} cannot come after "
                               f"end_dim {end_dim} (ndim {self.ndim})")
        shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1], dtype=np.int64)),) + self.shape[e + 1:]
        return self.reshape(shape)

    def unflatten(self, dim, sizes):
        dim = dim % self.ndim
        return self.reshape(self.shape[:dim] + tuple(sizes) + self.shape[dim + 1:])

    def permute(self, *dims):
        dims = _shape_arg(dims)
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise RuntimeError(f"permute(sparse_coo): number of dims don't match in permute: "
                               f"dims {dims} for a tensor of shape {self.shape}")
        return ops.Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0, dim1):
        if self.ndim < 2 and self.ndim > 0 and dim0 % self.ndim == dim1 % self.ndim:
            return self
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(*dims)

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def unsqueeze(self, dim):
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dims = {d % max(self.ndim, 1) for d in ((dim,) if isinstance(dim, int) else dim)}
        return self.reshape(tuple(s for d, s in enumerate(self.shape) if not (d in dims and s == 1)))

    def expand(self, *sizes):
        sizes = _shape_arg(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or "
                               f"equal to the number of dimensions in the tensor ({self.ndim})")
        shape = tuple(self.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(sizes))
        try:
            np.broadcast_shapes(self.shape, shape)
            if np.broadcast_shapes(self.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise RuntimeError(f"expand: the expanded size {sizes} is not compatible with the "
                               f"tensor's shape {self.shape}") from None
        return ops.Expand.apply(self, shape=shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def repeat(self, *sizes):
        sizes = _shape_arg(sizes)
        x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
        parts = x
        for d, n in enumerate(sizes):
            if n != 1:
                parts = cat([parts] * n, dim=d)
        return parts

    def split(self, split_size, dim=0):
        n = self.shape[dim]
        sizes = ([split_size] * (n // split_size) + ([n % split_size] if n % split_size else [])
                 if isinstance(split_size, int) else list(split_size))
        out, start = [], 0
        for s in sizes:
            index = [slice(None)] * self.ndim
            index[dim] = slice(start, start + s)
            out.append(self[tuple(index)])
            start += s
        return tuple(out)

    def chunk(self, chunks, dim=0):
        return self.split(-(-self.shape[dim] // chunks), dim)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=_index_of(index))

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """‖self‖_p over `dim` (all entries by default); "fro" is 2 (see tn.linalg.vector_norm)."""
        from .linalg import vector_norm
        if p in ("fro", None):
            p = 2
        elif isinstance(p, str):
            raise RuntimeError(f"norm: p={p!r} is not supported (matrix norms); use 'fro' or a number")
        return vector_norm(self, p, dim, keepdim, dtype)

    def isnan(self):
        return Tensor._wrap(np.isnan(self._data))

    def isinf(self):
        return Tensor._wrap(np.isinf(self._data))

    def isfinite(self):
        return Tensor._wrap(np.isfinite(self._data))

    def new_tensor(self, data, dtype=None, requires_grad=False):
        """A new tensor of `data`, with this tensor's dtype unless `dtype` is given."""
        return Tensor(data, requires_grad=requires_grad, dtype=dtype or self.dtype)

    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return Tensor._wrap(np.zeros(_shape_arg(size), dtype or self.dtype)).requires_grad_(requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False):
        return Tensor._wrap(np.ones(_shape_arg(size), dtype or self.dtype)).requires_grad_(requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        data = np.full(_shape_arg((size,)), fill_value, dtype or self.dtype)
        return Tensor._wrap(data).requires_grad_(requires_grad)

    def masked_fill(self, mask, value):
        """`value` where the bool `mask` (broadcast to self's shape) is True, self elsewhere;
        the gradient flows to self where the mask is False (and to a Tensor `value`
        where it is True)."""
        m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
        if m.dtype != bool_:
            raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype "
                               f"{m.dtype}; build it with a comparison (x > 0) or .bool()")
        if np.broadcast_shapes(m.shape, self.shape) != self.shape:
            raise RuntimeError(f"masked_fill: the mask of shape {m.shape} does not broadcast to the "
                               f"tensor's shape {self.shape}")
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but got "
                                   f"tensor with {value.ndim} dimension(s)")
            value = value if value.dtype == self.dtype else value.type(self.dtype)
        else:
            value = Tensor._wrap(np.asarray(value, self.dtype))
        return ops.Where.apply(value, self, condition=m)

    def masked_fill_(self, mask, value):
        """In place (no graph): the values of masked_fill."""
        with no_grad():
            out = self.masked_fill(mask, value)
        return self._inplace(out, "masked_fill_")


class MinMaxResult(tuple):
    """`(values, indices)` of `max(dim)`/`min(dim)`, like torch.return_types.max."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


class RemovableHandle:
    """Returned by hook registrations; `.remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks_dict):
        self.hooks_dict = hooks_dict
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self.hooks_dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


# ------------------------------------------------------------------- backward walk

class GraphReleasedError(RuntimeError):
    """The graph behind a tensor was released by an earlier backward()."""


def _root_gradient(root, gradient, i, argument):
    """The array a backward walk starts from at `root` (output i of the walk):
    `gradient` (a Tensor or array) of root's shape cast to its dtype, or ones
    for a scalar root; `argument` names where a gradient is passed, for errors.
    Tensor.backward and autograd.grad both check their roots here."""
    if not root._requires_grad:
        raise RuntimeError(f"element {i} of tensors does not require grad and does not have a "
                           f"grad_fn: nothing that requires grad was used to compute it")
    if gradient is None:
        if root._data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs, but output {i} "
                               f"has shape {root.shape}: pass {argument} with a gradient of that shape")
        return np.ones(root.shape, root.dtype)
    grad = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient)
    if grad.shape != root.shape:
        raise RuntimeError(f"{argument}: gradient has shape {grad.shape} but the tensor has shape "
                           f"{root.shape}")
    return grad.astype(root.dtype, copy=False)


def _toposort(roots, include_constants=False):
    """Tensors of the graph behind `roots`, inputs before outputs: those that
    require grad, or every one with `include_constants` (tn.viz draws them).

    Iterative depth-first search with an explicit stack: each tensor is pushed
    once to be expanded and once more to be emitted after its parents.
    """
    order, seen = [], set()
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        ctx = t._ctx
        if ctx is None:
            continue
        if ctx.parents is None:
            raise GraphReleasedError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed): the graph was released by the first "
                "backward(); specify retain_graph=True if you need to backward twice")
        for p in reversed(ctx.parents):
            if (include_constants or p._requires_grad) and id(p) not in seen:
                stack.append((p, False))
    return order


def _accumulate(t, grad, owned):
    """t.grad += grad, without ever writing into an existing array.

    NOTE: a gradient array may be shared: add hands the same array to both of
    its inputs, reshape hands out a view, the caller of backward(gradient)
    keeps theirs. Such an array (`owned` False) is copied before it becomes a
    `.grad`, so that `a.grad.mul_(2)` can never change `b.grad`.
    """
    if t.grad is None:
        t.grad = Tensor._wrap(grad.astype(t.dtype, copy=not owned))
    else:
        t.grad = Tensor._wrap((t.grad._data + grad).astype(t.dtype, copy=False))


def _fresh(a):
    """Whether no one but the backward walk holds `a`'s memory: an array that owns
    it, or a view (a reshape of a new array, say) whose base is referenced by
    that view alone.
    NOTE: sys.getrefcount counts its own argument, so 2 means "only `a`" (no
    local name may hold the base here); a base also held by the Function (a
    saved output) or by a second returned view counts more, and the gradient
    is then copied before it becomes a `.grad`. A read-only view (np.broadcast_to
    makes them, with repeated elements) is always copied."""
    if a.base is None:
        return True
    return (a.flags.writeable and type(a.base) is np.ndarray and a.base.base is None
            and sys.getrefcount(a.base) == 2)


def _backward(roots, root_grads, retain_graph, capture=None):
    """Propagate `root_grads` from `roots` to every tensor behind them.

    Leaves (and tensors that called retain_grad) accumulate into `.grad`;
    with `capture` (a dict keyed by id(tensor)), the gradients of those
    tensors are stored there instead and no `.grad` is touched
    (that is `tn.autograd.grad`).
    """
    order = _toposort(roots)
    grads, owned = {}, {}  # id(tensor) -> pending gradient, and whether no one else holds it
    for r, g in zip(roots, root_grads):
        grads[id(r)] = g if id(r) not in grads else grads[id(r)] + g
        owned[id(r)] = False  # the caller's array
    for t in reversed(order):
        g = grads.pop(id(t), None)
        g_owned = owned.pop(id(t), False)
        if g is None:
            continue
        if t._hooks:
            for hook in list(t._hooks.values()):
                new = hook(Tensor._wrap(g))
                if new is not None:
                    g, g_owned = (new._data if isinstance(new, Tensor) else np.asarray(new)), False
        ctx = t._ctx
        if capture is not None:
            if id(t) in capture:
                capture[id(t)] = g
        elif ctx is None or t._retains_grad:
            _accumulate(t, g, g_owned and ctx is None)
        if ctx is None:
            continue
        parent_grads = ctx.backward(g)
        if not isinstance(parent_grads, tuple):
            parent_grads = (parent_grads,)
        for p, pg in zip(ctx.parents, parent_grads):
            if pg is None or not p._requires_grad:
                continue
            if pg.shape != p.shape:  # an op's backward is wrong: say which
                raise RuntimeError(f"internal error: backward of {ctx!r} returned a gradient of shape "
                                   f"{pg.shape} for an input of shape {p.shape}")
            converted = pg.dtype != p.dtype
            if converted:  # a new array that no one else holds
                pg = pg.astype(p.dtype)
            key = id(p)
            if key in grads:
                grads[key], owned[key] = grads[key] + pg, True
            else:
                grads[key] = pg
                # an array returned for two parents is shared
                owned[key] = converted or (pg is not g and _fresh(pg)
                                           and (len(parent_grads) == 1
                                                or sum(q is pg for q in parent_grads) == 1))
        if not retain_graph:
            ctx.release()


# ------------------------------------------------------------------------ helpers

def _array_of(x):
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def _index_of(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray([i.item() if isinstance(i, Tensor) else i for i in index])
    return index


def _shape_arg(shape):
    """Accept both f(2, 3) and f((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _resolve_reshape(old, new):
    size = int(np.prod(old, dtype=np.int64))
    if new.count(-1) > 1:
        raise RuntimeError(f"reshape: only one dimension can be inferred, got shape {new}")
    known = int(np.prod([s for s in new if s != -1], dtype=np.int64))
    if -1 in new:
        if known == 0 or size % known:
            raise RuntimeError(f"shape {new} is invalid for input of size {size} (shape {old})")
        new = tuple(size // known if s == -1 else s for s in new)
    elif known != size:
        raise RuntimeError(f"shape {new} is invalid for input of size {size} (shape {old})")
    return new


def _arg_extremum(fn, data, dim, keepdim):
    if dim is None:
        out = np.asarray(fn(data))
        return out.reshape((1,) * data.ndim) if keepdim else out
    out = fn(data, axis=dim)
    return np.expand_dims(out, dim) if keepdim else out


def _promote(a, b):
    """PyTorch's promotion for two array dtypes: floats win over integers,
    the wider float wins, integers promote among themselves."""
    fa, fb = a.kind == "f", b.kind == "f"
    if fa and fb:
        return np.promote_types(a, b)
    if fa or fb:
        return a if fa else b
    if a == bool_ and b == bool_:
        return bool_
    return np.promote_types(a, b)


def _operands(x, y, true_divide=False):
    """Turn the two operands of a binary op into Tensors of one dtype.

    A Python scalar takes the tensor's dtype when it can (`x_float32 * 2.0` stays
    float32), otherwise float32 for a float scalar with an integer tensor."""
    x_is, y_is = isinstance(x, Tensor), isinstance(y, Tensor)
    if not x_is:
        x = _lift(x, y)
    if not y_is:
        y = _lift(y, x)
    dtype = _promote(x.dtype, y.dtype)
    if true_divide and dtype.kind != "f":
        dtype = float32
    if x.dtype != dtype:
        x = x.type(dtype)
    if y.dtype != dtype:
        y = y.type(dtype)
    return x, y


def _lift(value, like):
    """A constant (no grad) Tensor for the non-Tensor operand of a binary op."""
    if isinstance(value, (bool, np.bool_)):
        return Tensor._wrap(np.asarray(value, like.dtype if like.dtype != bool_ else bool_))
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.ndarray):
        return Tensor._wrap(np.asarray(value, like.dtype if like.dtype != bool_ else int64))
    if isinstance(value, (float, np.floating)) and not isinstance(value, np.ndarray):
        dtype = like.dtype if like.dtype.kind == "f" else float32
        if isinstance(value, np.floating) and like.dtype.kind != "f":
            dtype = value.dtype if value.dtype in FLOAT_DTYPES else float32
        return Tensor._wrap(np.asarray(value, dtype))
    if isinstance(value, np.ndarray):
        return Tensor(value)
    if isinstance(value, (list, tuple)):
        return Tensor(value, dtype=like.dtype if like.dtype.kind == "f" else None)
    raise TypeError(f"unsupported operand type for a Tensor operation: {type(value).__name__}")


def cat(tensors, dim=0):
    """Concatenate along an existing dim; shapes must agree elsewhere."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = _promote(dtype, t.dtype)
    tensors = [t.type(dtype) for t in tensors]
    ref = tensors[0].shape
    d = dim % max(len(ref), 1)
    for i, t in enumerate(tensors):
        if t.ndim != len(ref) or any(a != b for k, (a, b) in enumerate(zip(t.shape, ref)) if k != d):
            raise RuntimeError(f"cat(): sizes of tensors must match except in dimension {dim}: "
                               f"tensor 0 has shape {ref}, tensor {i} has shape {t.shape}")
    return ops.Cat.apply(*tensors, dim=d)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {tensors[0].shape} "
                               f"at entry 0 and {t.shape} at entry {i}")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim % (tensors[0].ndim + 1))


def where(condition, input, other):
    """`input` where condition is true, else `other` (broadcasting); grads flow to both."""
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        return Tensor(np.where(cond, input, other))
    a, b = _operands(input, other)
    return ops.Where.apply(a, b, condition=cond.astype(bool))


from . import ops  # noqa: E402  (ops needs Function and Tensor defined above)
