"""Autograd: gradcheck (float64 central differences) of every differentiable op,
closed-form numpy references, and the semantics of backward, hooks and grad mode."""
import gc

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.autograd import GradcheckError, gradcheck
from tinygrad_norm.tensor import Function, Tensor


def leaf(*shape, low=-1.0, high=1.0, seed=0):
    return tn.tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


def positive(*shape, seed=0):
    return leaf(*shape, low=0.5, high=2.0, seed=seed)


# One entry per differentiable op: (name, function, inputs). Broadcast operands
# check that gradients are summed back to the operand's shape.
CASES = [
    ("neg", lambda a: -a, [leaf(3, 4)]),
    ("exp", lambda a: a.exp(), [leaf(3, 4)]),
    ("log", lambda a: a.log(), [positive(3, 4)]),
    ("sqrt", lambda a: a.sqrt(), [positive(3, 4)]),
    ("abs", lambda a: a.abs(), [leaf(3, 4)]),
    ("tanh", lambda a: a.tanh(), [leaf(3, 4)]),
    ("sigmoid", lambda a: a.sigmoid(), [leaf(3, 4, low=-4, high=4)]),
    ("relu", lambda a: a.relu(), [leaf(3, 4)]),
    ("clamp", lambda a: a.clamp(-0.5, 0.3), [leaf(3, 4)]),
    ("clamp_min_only", lambda a: a.clamp(min=0.1), [leaf(3, 4)]),
    ("clamp_tensor_bounds", lambda a, lo: a.clamp(min=lo), [leaf(3, 4), leaf(4, seed=1)]),
    ("pow_scalar", lambda a: a ** 3, [leaf(3, 4)]),
    ("pow_fractional", lambda a: a ** 0.5, [positive(3, 4)]),
    ("square", lambda a: a.square(), [leaf(3, 4)]),
    ("add", lambda a, b: a + b, [leaf(3, 4), leaf(3, 4, seed=1)]),
    ("add_broadcast", lambda a, b: a + b, [leaf(3, 4), leaf(4, seed=1)]),
    ("add_broadcast_both", lambda a, b: a + b, [leaf(3, 1), leaf(1, 4, seed=1)]),
    ("sub_broadcast", lambda a, b: a - b, [leaf(2, 3, 4), leaf(3, 1, seed=1)]),
    ("rsub_scalar", lambda a: 1.5 - a, [leaf(3)]),
    ("mul", lambda a, b: a * b, [leaf(3, 4), leaf(3, 4, seed=1)]),
    ("mul_broadcast", lambda a, b: a * b, [leaf(2, 3, 4), leaf(1, 4, seed=1)]),
    ("mul_same_tensor", lambda a: a * a, [leaf(3, 4)]),
    ("div", lambda a, b: a / b, [leaf(3, 4), positive(3, 4, seed=1)]),
    ("div_broadcast", lambda a, b: a / b, [leaf(3, 4), positive(3, 1, seed=1)]),
    ("rdiv_scalar", lambda a: 2.0 / a, [positive(5)]),
    ("pow_tensor", lambda a, b: a ** b, [positive(3, 4), leaf(3, 4, seed=1)]),
    ("pow_tensor_broadcast", lambda a, b: a ** b, [positive(3, 4), leaf(4, seed=1)]),
    ("rpow", lambda a: 2.0 ** a, [leaf(4)]),
    ("maximum", lambda a, b: a.maximum(b), [leaf(3, 4), leaf(3, 4, seed=1)]),
    ("minimum_broadcast", lambda a, b: a.minimum(b), [leaf(3, 4), leaf(4, seed=1)]),
    ("where", lambda a, b: tn.where(a > 0, a, b), [leaf(3, 4), leaf(4, seed=1)]),
    ("matmul", lambda a, b: a @ b, [leaf(3, 4), leaf(4, 2, seed=1)]),
    ("matmul_vec_vec", lambda a, b: a @ b, [leaf(4), leaf(4, seed=1)]),
    ("matmul_vec_mat", lambda a, b: a @ b, [leaf(4), leaf(4, 2, seed=1)]),
    ("matmul_mat_vec", lambda a, b: a @ b, [leaf(3, 4), leaf(4, seed=1)]),
    ("matmul_batched", lambda a, b: a @ b, [leaf(2, 3, 4), leaf(2, 4, 2, seed=1)]),
    ("matmul_broadcast_batch", lambda a, b: a @ b, [leaf(2, 1, 3, 4), leaf(3, 4, 2, seed=1)]),
    ("matmul_batch_times_matrix", lambda a, b: a @ b, [leaf(2, 3, 4), leaf(4, 2, seed=1)]),
    ("sum_all", lambda a: a.sum(), [leaf(3, 4)]),
    ("sum_dim", lambda a: a.sum(1), [leaf(3, 4, 2)]),
    ("sum_dims_keepdim", lambda a: a.sum((0, 2), keepdim=True), [leaf(3, 4, 2)]),
    ("sum_negative_dim", lambda a: a.sum(-1), [leaf(3, 4)]),
    ("mean_all", lambda a: a.mean(), [leaf(3, 4)]),
    ("mean_dims", lambda a: a.mean((0, 2)), [leaf(3, 4, 2)]),
    ("var_all", lambda a: a.var(), [leaf(3, 4)]),
    ("var_dim_biased", lambda a: a.var(0, correction=0), [leaf(3, 4)]),
    ("var_dims_keepdim", lambda a: a.var((0, 2), keepdim=True), [leaf(3, 4, 2)]),
    ("std_dim", lambda a: a.std(1), [leaf(3, 4)]),
    ("max_all", lambda a: a.max(), [leaf(3, 4)]),
    ("max_dim", lambda a: a.max(1).values, [leaf(3, 4)]),
    ("min_dim_keepdim", lambda a: a.min(0, keepdim=True)[0], [leaf(3, 4)]),
    ("amax_dims", lambda a: a.amax((0, 2)), [leaf(3, 4, 2)]),
    ("reshape", lambda a: a.reshape(4, 3) * tn.arange(12.0).reshape(4, 3).double(), [leaf(3, 4)]),
    ("permute", lambda a: a.permute(2, 0, 1) * tn.arange(24.0).reshape(2, 3, 4).double(), [leaf(3, 4, 2)]),
    ("transpose", lambda a: a.transpose(0, 1) @ a, [leaf(3, 4)]),
    ("T", lambda a: a.T @ a, [leaf(3, 4)]),
    ("expand", lambda a: a.expand(3, 4) * tn.arange(12.0).reshape(3, 4).double(), [leaf(3, 1)]),
    ("squeeze_unsqueeze", lambda a: a.unsqueeze(0).squeeze(0).flatten(), [leaf(3, 4)]),
    ("getitem_slice", lambda a: a[1:, ::2], [leaf(3, 4)]),
    ("getitem_int", lambda a: a[1], [leaf(3, 4)]),
    ("getitem_repeated_indices", lambda a: a[np.array([0, 2, 0, 0])], [leaf(3, 4)]),
    ("getitem_pairs", lambda a: a[np.array([0, 2, 2]), np.array([1, 1, 1])], [leaf(3, 4)]),
    ("getitem_mask", lambda a: a[a > 0], [leaf(3, 4)]),
    ("cat", lambda a, b: tn.cat([a, b, a], dim=1), [leaf(3, 4), leaf(3, 2, seed=1)]),
    ("stack", lambda a, b: tn.stack([a, b], dim=1), [leaf(3, 4), leaf(3, 4, seed=1)]),
    ("repeat", lambda a: a.repeat(2, 3), [leaf(2, 2)]),
    ("split", lambda a: a.split(2, dim=1)[1] * 3, [leaf(3, 5)]),
    ("clone", lambda a: a.clone() * a, [leaf(3)]),
    ("chain", lambda a, b: ((a @ b).sigmoid() * 2 - 1).tanh().mean(0), [leaf(5, 4), leaf(4, 3, seed=1)]),
]


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(name, fn, inputs):
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_non_contiguous_inputs(name, fn, inputs):
    """The same ops on transposed (non-contiguous) copies of their 2-D inputs."""
    def flipped(x):
        if x.ndim != 2:
            return x
        arr = np.ascontiguousarray(x.detach().numpy().T).T  # same values, Fortran order
        assert not arr.flags.c_contiguous or min(arr.shape) == 1
        return tn.from_numpy(arr).requires_grad_()
    assert gradcheck(fn, [flipped(x) for x in inputs])


def test_cast_roundtrip_gradient():
    # Through float32, central differences need a step well above float32 rounding.
    assert gradcheck(lambda a: (a.float() * 2).double(), [leaf(3)], eps=1e-3)
    x = leaf(3)
    (x.float() * 2).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.numpy().tolist() == [2, 2, 2]
    assert not tn.tensor([1.5, 2.5], requires_grad=True).long().requires_grad


def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(Function):
        name = "wrong_square"

        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return g * self.x  # should be 2·g·x

    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3,\)\).*numerical"):
        gradcheck(lambda a: WrongSquare.apply(a), [leaf(3)])


def test_gradcheck_requires_float64():
    with pytest.raises(ValueError, match="float64.*float32"):
        gradcheck(lambda a: a * 2, [tn.ones(3, requires_grad=True)])


# ------------------------------------------------------ closed-form references

def test_mlp_gradients_match_hand_derivation():
    rng = np.random.default_rng(3)
    x, w1, w2 = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    tw1, tw2 = tn.tensor(w1, requires_grad=True), tn.tensor(w2, requires_grad=True)
    h = (tn.tensor(x) @ tw1).sigmoid()
    loss = ((h @ tw2) ** 2).mean()
    loss.backward()
    # numpy by hand
    hh = 1 / (1 + np.exp(-(x @ w1)))
    out = hh @ w2
    dout = 2 * out / out.size
    dw2 = hh.T @ dout
    dh = dout @ w2.T
    dw1 = x.T @ (dh * hh * (1 - hh))
    np.testing.assert_allclose(tw2.grad.numpy(), dw2, rtol=1e-12)
    np.testing.assert_allclose(tw1.grad.numpy(), dw1, rtol=1e-12)


def test_closed_forms_of_reductions():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((4, 6))
    t = tn.tensor(a, requires_grad=True)
    t.var(1).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), 2 * (a - a.mean(1, keepdims=True)) / 5, rtol=1e-12)
    t.grad = None
    t.std(0, correction=0).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), (a - a.mean(0)) / (4 * a.std(0)), rtol=1e-10)


def test_ties_follow_pytorch():
    t = tn.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    t.max().backward()  # full reduction: evenly shared among ties
    assert t.grad.numpy().tolist() == [0, 0.5, 0.5, 0]
    t.grad = None
    t.max(0).values.backward()  # along a dim: to the returned (first) index
    assert t.grad.numpy().tolist() == [0, 1, 0, 0]
    a, b = tn.tensor([1.0, 2.0], requires_grad=True), tn.tensor([1.0, 1.0], requires_grad=True)
    a.maximum(b).sum().backward()
    assert a.grad.numpy().tolist() == [0.5, 1] and b.grad.numpy().tolist() == [0.5, 0]


def test_kinks_follow_pytorch():
    x = tn.tensor([0.0, -1.0, 1.0], requires_grad=True)
    x.relu().sum().backward()
    assert x.grad.numpy().tolist() == [0, 0, 1]
    x.grad = None
    x.abs().sum().backward()
    assert x.grad.numpy().tolist() == [0, -1, 1]
    x.grad = None
    x.clamp(-1.0, 0.0).sum().backward()  # bounds included
    assert x.grad.numpy().tolist() == [1, 1, 0]
    x.grad = None
    (x ** 0).sum().backward()
    assert x.grad.numpy().tolist() == [0, 0, 0]


# -------------------------------------------------------------- backward semantics

def test_gradients_accumulate_until_zeroed():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.numpy().tolist() == [5, 7]
    x.grad.zero_()
    assert x.grad.numpy().tolist() == [0, 0]


def test_shared_gradient_arrays_are_not_aliased():
    a, b = tn.ones(3, requires_grad=True), tn.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.mul_(10)  # must not change b.grad
    assert b.grad.numpy().tolist() == [1, 1, 1]


class _ViewsOfOneArray(Function):
    """Test op: y = a + b, whose backward hands both inputs a view of ONE new array
    (two view objects over the same memory)."""

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        fresh = g * 1
        return fresh[:], fresh.reshape(fresh.shape)


class _ReshapedFresh(Function):
    """Test op: y = 2x, backward returns a reshape (a view) of a fresh array,
    optionally keeping the fresh array in `kept`."""
    kept = []

    def forward(self, x, keep=False):
        self.keep, self.shape = keep, x.shape
        return 2 * x

    def backward(self, g):
        fresh = (2 * g).reshape(-1)
        if self.keep:
            _ReshapedFresh.kept.append(fresh)
        return fresh.reshape(self.shape)


def test_gradient_views_of_shared_memory_are_copied_and_sole_views_are_not():
    """A returned view becomes `.grad` without a copy only when nothing else holds its
    memory (tensor.py `_fresh`); otherwise `.grad` must be an independent array."""
    a, b = tn.ones(3, requires_grad=True), tn.ones(3, requires_grad=True)
    _ViewsOfOneArray.apply(a, b).backward(np.ones(3, np.float32))
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.mul_(10)
    assert b.grad.numpy().tolist() == [1, 1, 1]

    class _SameArrayTwice(Function):   # backward returns ONE new array for both inputs
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            fresh = g * 1
            return fresh, fresh

    c, d = tn.ones(3, requires_grad=True), tn.ones(3, requires_grad=True)
    _SameArrayTwice.apply(c, d).backward(np.ones(3, np.float32))
    assert not np.shares_memory(c.grad.numpy(), d.grad.numpy())
    c.grad.mul_(10)
    assert d.grad.numpy().tolist() == [1, 1, 1]

    x = tn.ones(2, 3, requires_grad=True)
    _ReshapedFresh.apply(x, keep=True).backward(np.ones((2, 3), np.float32))
    kept = _ReshapedFresh.kept.pop()
    assert not np.shares_memory(x.grad.numpy(), kept)   # the Function kept the memory: copied
    x.grad.mul_(10)
    assert kept.tolist() == [2.0] * 6

    y = tn.ones(2, 3, requires_grad=True)
    _ReshapedFresh.apply(y).backward(np.ones((2, 3), np.float32))
    assert y.grad.numpy().base is not None               # the sole view: used as it is
    assert y.grad.numpy().tolist() == [[2.0] * 3] * 2

    class _Broadcast(Function):   # backward returns a read-only stride-0 view of a new array
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return np.broadcast_to(g.sum(0, keepdims=True) * 0 + 1, g.shape)

    v = tn.ones(3, 2, requires_grad=True)
    _Broadcast.apply(v).backward(np.ones((3, 2), np.float32))
    v.grad.mul_(5)                                       # a copy of its own: writeable, no shared elements
    assert v.grad.numpy().tolist() == [[5.0, 5.0]] * 3

    z, g = tn.ones(4, 3, requires_grad=True), np.ones(4, np.float32)
    z.sum(1).backward(g)                                 # sum's backward: a reshaped new array
    z.grad.mul_(3)
    assert g.tolist() == [1.0] * 4 and z.grad.numpy().tolist() == [[3.0] * 3] * 4


def test_backward_with_gradient_and_errors():
    x = tn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * 2).backward(tn.tensor([1.0, 0.0, -1.0]))
    assert x.grad.numpy().tolist() == [2, 0, -2]
    with pytest.raises(RuntimeError, match=r"implicitly created only for scalar outputs.*\(3,\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match=r"gradient has shape \(2,\) but the tensor has shape \(3,\)"):
        (x * 2).backward(tn.ones(2))
    with pytest.raises(RuntimeError, match="does not require grad"):
        tn.ones(3).sum().backward()


def test_second_backward_through_freed_graph_raises():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    z = (x.exp() * 2).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * np.exp([1.0, 2.0]) + 2 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_grad_mode():
    x = tn.ones(2, requires_grad=True)
    with tn.no_grad():
        assert not tn.is_grad_enabled()
        y = x * 2
        with tn.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None and z.requires_grad
    assert tn.is_grad_enabled()

    @tn.no_grad()
    def infer(t):
        return t * 2
    assert not infer(x).requires_grad and tn.is_grad_enabled()
    tn.set_grad_enabled(False)
    assert not tn.is_grad_enabled()
    tn.set_grad_enabled(True)
    with tn.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tn.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = tn.tensor([2.0], requires_grad=True)
    y = x * x.detach()
    y.backward()
    assert x.grad.item() == 2.0
    d = x.detach()
    assert not d.requires_grad and np.shares_memory(d.detach().numpy(), x.detach().numpy())


def test_hooks_see_and_replace_gradients():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x.register_hook(lambda g: seen.append(g.numpy().copy()))
    y = x * 3
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    assert seen[0].tolist() == [30, 30] and x.grad.numpy().tolist() == [30, 30]
    h.remove()
    x.grad = None
    (x * 1).sum().backward()
    assert len(seen) == 1
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        tn.ones(2).register_hook(lambda g: g)


def test_retain_grad_on_non_leaf():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward()
    assert y.grad.numpy().tolist() == [4, 8]


def test_autograd_grad_leaves_dot_grad_alone():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    w = tn.tensor([3.0, 4.0], requires_grad=True)
    (gx,) = tn.autograd.grad((x * w).sum(), [x])
    assert gx.numpy().tolist() == [3, 4] and x.grad is None and w.grad is None
    with pytest.raises(RuntimeError, match="was not used"):
        tn.autograd.grad((x * 2).sum(), [w])
    assert tn.autograd.grad((x * 2).sum(), [w], allow_unused=True) == (None,)


def test_chain_of_ten_thousand_ops_has_no_recursion_error():
    x = tn.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-3)


def test_graph_is_released_and_memory_does_not_grow():
    """1,000 training steps: the number of live graph nodes (Functions) and
    Tensors stays constant; nothing but the parameters survives a step."""
    rng = np.random.default_rng(0)
    w1 = tn.tensor(rng.standard_normal((8, 16)) * 0.3, requires_grad=True)
    w2 = tn.tensor(rng.standard_normal((16, 1)) * 0.3, requires_grad=True)
    x, target = tn.tensor(rng.standard_normal((32, 8))), tn.tensor(rng.standard_normal((32, 1)))

    def live():
        gc.collect()
        objs = gc.get_objects()
        return (sum(isinstance(o, Function) for o in objs), sum(isinstance(o, Tensor) for o in objs))

    counts = []
    for step in range(1000):
        loss = (((x @ w1).tanh() @ w2 - target) ** 2).mean()
        for p in (w1, w2):
            p.grad = None
        loss.backward()
        with tn.no_grad():
            for p in (w1, w2):
                p -= 0.05 * p.grad
        if step in (10, 500, 999):
            counts.append(live())
    assert counts[0] == counts[1] == counts[2], counts
    # after backward the graph holds no arrays: only the loss tensor's own
    last_ctx = loss.grad_fn
    assert last_ctx.parents is None and not [k for k in vars(last_ctx) if k != "parents"]


@pytest.mark.parametrize("which", ["max", "min"])
def test_max_min_propagate_nan_like_pytorch(which):
    """torch.tensor([1., nan, 3.]).max() is nan; max(dim) returns nan and its index;
    the reduction over several dims is nan exactly where a reduced slice holds one."""
    x = tn.tensor([[1.0, np.nan, 3.0], [4.0, 5.0, -6.0]], requires_grad=True)
    assert np.isnan(getattr(x, which)().item())
    values, indices = getattr(x, which)(dim=1)
    assert np.isnan(values.detach().numpy()[0]) and indices.detach().numpy()[0] == 1
    assert values.detach().numpy()[1] == (5.0 if which == "max" else -6.0) and indices.detach().numpy()[1] == (1 if which == "max" else 2)
    y = tn.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    y._data[1, 2, 3] = np.nan
    reduced = (y.amax if which == "max" else y.amin)(dim=(0, 2)).numpy()
    assert np.isnan(reduced[2]) and reduced[:2].tolist() == ([15.0, 19.0] if which == "max" else [0.0, 4.0])
    getattr(x, which)().backward()  # the gradient goes to the nan entries, as in PyTorch
    assert x.grad.numpy().tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    z = tn.tensor([[np.nan, np.nan, 3.0]], requires_grad=True)
    getattr(z, which)().backward()
    assert z.grad.numpy().tolist() == [[0.5, 0.5, 0.0]]
