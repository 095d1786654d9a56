"""nn.functional: softmax/log_softmax and the losses, against numpy formulas (every
reduction × ignore_index × label_smoothing × weight), float64 gradcheck, a few
PyTorch reference values, and error messages."""
import itertools
import math
import warnings

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.autograd import gradcheck
from tinygrad_norm.nn import functional as F

RNG = np.random.default_rng(0)


def T(a, grad=True):
    return tn.Tensor(np.asarray(a, np.float64), requires_grad=grad)


def check_grad(fn, *inputs):
    """gradcheck of ⟨R, fn(inputs)⟩ for a fixed random R (one output projection)."""
    out_shape = fn(*inputs).shape
    r = tn.Tensor(np.random.default_rng(7).standard_normal(out_shape))
    return gradcheck(lambda *xs: (fn(*xs) * r).sum(), inputs)


def np_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ========================================================================== softmax

@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_softmax_and_log_softmax_along_any_dim(dim):
    x = T(RNG.standard_normal((3, 4, 5)) * 3)
    ls = np_log_softmax(x.detach().numpy(), dim)
    np.testing.assert_allclose(F.log_softmax(x, dim).detach().numpy(), ls, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(F.softmax(x, dim).detach().numpy(), np.exp(ls), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(x.softmax(dim).detach().numpy().sum(axis=dim), 1.0, rtol=1e-13)
    assert check_grad(lambda x: F.softmax(x, dim), x)
    assert check_grad(lambda x: F.log_softmax(x, dim), x)


def test_softmax_backward_matches_closed_form():
    x = T(RNG.standard_normal((4, 6)))
    g = RNG.standard_normal((4, 6))
    y = F.softmax(x, 1)
    y.backward(g)
    s = y.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), s * (g - (g * s).sum(1, keepdims=True)), rtol=1e-12)
    x2 = T(x.detach().numpy())
    F.log_softmax(x2, 1).backward(g)
    np.testing.assert_allclose(x2.grad.numpy(), g - s * g.sum(1, keepdims=True), rtol=1e-12)


def test_softmax_is_stable_for_huge_logits_in_float32():
    x = tn.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -1002.0]])
    y = F.softmax(x, 1).numpy()
    assert y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(y[0], np.exp(np_log_softmax(np.array([0.0, 1.0, -1.0]), 0)), rtol=1e-6)
    ls = F.log_softmax(x, -1).numpy()
    np.testing.assert_allclose(ls[1], np_log_softmax(np.array([0.0, -1.0, -2.0]), 0), rtol=1e-6)


def test_softmax_implicit_dim_warns_and_picks_pytorchs_dim():
    x = tn.randn(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = F.softmax(x)
    np.testing.assert_allclose(y.numpy().sum(1), 1.0, rtol=1e-6)  # 2-d: dim 1


def test_softmax_dtype_argument_and_integer_error():
    x = tn.tensor(np.array([[1, 2, 3]]))
    assert F.softmax(x, 1, dtype=tn.float64).dtype == np.float64
    with pytest.raises(RuntimeError, match="softmax: expected a floating point input.*int64"):
        F.softmax(x, 1)
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.softmax(tn.randn(2, 3), 2)


# ============================================================ losses: numpy formulas

def np_cross_entropy(x, t, w, ignore_index, reduction, eps):
    """PyTorch's definition, written out: x (N, C, ...), integer t (N, ...)."""
    C = x.shape[1]
    logp = np.moveaxis(np_log_softmax(x, 1), 1, -1).reshape(-1, C)  # (M, C)
    t = t.reshape(-1)
    w = np.ones(C) if w is None else w
    valid = t != ignore_index
    ts = np.where(valid, t, 0)
    wt = w[ts] * valid
    nll = -wt * logp[np.arange(len(t)), ts]
    smooth = -(logp * w).sum(1) * valid
    if reduction == "none":
        shape = (x.shape[0],) + x.shape[2:]
        return ((1 - eps) * nll + eps / C * smooth).reshape(shape)
    if reduction == "sum":
        return (1 - eps) * nll.sum() + eps / C * smooth.sum()
    return ((1 - eps) * nll.sum() + eps / C * smooth.sum()) / wt.sum()


SHAPES = {"NC": ((6, 5), (6,)), "NCdd": ((2, 5, 3, 2), (2, 3, 2))}


def _targets(t_shape, ignore_index):
    t = RNG.integers(0, 5, t_shape)
    t.reshape(-1)[1] = ignore_index  # one ignored entry
    t.reshape(-1)[2] = 4
    return t


@pytest.mark.parametrize("shape, reduction, ignore_index, eps, weighted",
                         list(itertools.product(SHAPES, ["mean", "sum", "none"], [-100, 4], [0.0, 0.25],
                                                [False, True])))
def test_cross_entropy_matches_numpy_formula(shape, reduction, ignore_index, eps, weighted):
    x_shape, t_shape = SHAPES[shape]
    x = T(RNG.standard_normal(x_shape) * 2)
    t = _targets(t_shape, ignore_index)
    w = RNG.uniform(0.5, 2.0, 5) if weighted else None
    out = F.cross_entropy(x, t, weight=None if w is None else tn.Tensor(w), ignore_index=ignore_index,
                          reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(out.detach().numpy(), np_cross_entropy(x.detach().numpy(), t, w, ignore_index, reduction, eps),
                               rtol=1e-12, atol=1e-14)
    if reduction != "sum" or eps == 0.25:  # gradcheck a representative half of the grid
        assert check_grad(lambda x: F.cross_entropy(x, t, weight=None if w is None else tn.Tensor(w),
                                                    ignore_index=ignore_index, reduction=reduction,
                                                    label_smoothing=eps), x)


@pytest.mark.parametrize("shape, reduction, weighted",
                         list(itertools.product(SHAPES, ["mean", "sum", "none"], [False, True])))
def test_nll_loss_matches_numpy_formula(shape, reduction, weighted):
    x_shape, t_shape = SHAPES[shape]
    logp = T(np_log_softmax(RNG.standard_normal(x_shape), 1))
    t = _targets(t_shape, -100)
    w = RNG.uniform(0.5, 2.0, 5) if weighted else None
    out = F.nll_loss(logp, t, weight=None if w is None else tn.Tensor(w), reduction=reduction)
    # nll_loss(log_softmax(x)) == cross_entropy(x) and logp is already normalised
    expected = np_cross_entropy(logp.detach().numpy(), t, w, -100, reduction, 0.0)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-14)
    assert check_grad(lambda lp: F.nll_loss(lp, t, weight=None if w is None else tn.Tensor(w),
                                            reduction=reduction), logp)


def test_nll_loss_weighted_mean_divides_by_the_weights_of_the_targets():
    logp = tn.tensor(np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [0.2, 0.3, 0.5]])))
    t = np.array([0, 2, -100])
    w = tn.tensor(np.array([2.0, 7.0, 3.0]))
    expected = -(2 * math.log(0.5) + 3 * math.log(0.8)) / (2 + 3)
    assert F.nll_loss(logp, t, weight=w).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("reduction, eps, weighted",
                         list(itertools.product(["mean", "sum", "none"], [0.0, 0.3], [False, True])))
def test_cross_entropy_probability_targets(reduction, eps, weighted):
    x = T(RNG.standard_normal((2, 4, 3)))
    q = RNG.dirichlet(np.ones(4), (2, 3)).transpose(0, 2, 1)  # (N, C, d)
    w = RNG.uniform(0.5, 2.0, 4) if weighted else None
    out = F.cross_entropy(x, tn.Tensor(q), weight=None if w is None else tn.Tensor(w), reduction=reduction,
                          label_smoothing=eps)
    qs = q * (1 - eps) + eps / 4
    per = -(np_log_softmax(x.detach().numpy(), 1) * qs * (np.ones(4) if w is None else w)[None, :, None]).sum(1)
    expected = {"none": per, "sum": per.sum(), "mean": per.mean()}[reduction]  # mean over N·d, not weights
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12)
    assert check_grad(lambda x: F.cross_entropy(x, tn.Tensor(q), reduction=reduction, label_smoothing=eps), x)


def test_cross_entropy_agrees_with_pytorch_reference_values():
    # printed by torch 2.x (float64) for these inputs
    x = tn.tensor(np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 0.1, -0.3, 2.0], [4.0, 1.0, -1.0, 0.0]]))
    t = np.array([3, -100, 0])
    w = tn.tensor(np.array([0.5, 1.0, 2.0, 1.5]))
    assert F.cross_entropy(x, t).item() == pytest.approx(0.1372129348363345, rel=1e-12)
    assert F.cross_entropy(x, t, weight=w, label_smoothing=0.2).item() == pytest.approx(0.9200897867153581,
                                                                                        rel=1e-12)
    np.testing.assert_allclose(F.cross_entropy(x, t, weight=w, label_smoothing=0.2, reduction="none").numpy(),
                               [0.84326749913506, 0.0, 0.9969120742956563], rtol=1e-12)
    assert F.nll_loss(F.log_softmax(x, 1), t, weight=w).item() == pytest.approx(0.1697331912578431, rel=1e-12)
    p = tn.tensor(np.array([[0.1, 0.2, 0.3, 0.4], [1, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]]))
    assert F.cross_entropy(x, p, weight=w, label_smoothing=0.1).item() == pytest.approx(3.00642770003359,
                                                                                        rel=1e-12)


def test_cross_entropy_is_stable_and_unbatched_input_works():
    x = tn.tensor([[1000.0, 0.0, -1000.0]])
    assert F.cross_entropy(x, np.array([0])).item() == pytest.approx(0.0, abs=1e-6)
    assert F.cross_entropy(x, np.array([2])).item() == pytest.approx(2000.0, rel=1e-6)
    v = T([0.5, 1.5, -1.0])
    expected = -np_log_softmax(v.detach().numpy(), 0)[1]
    assert F.cross_entropy(v, np.array(1)).item() == pytest.approx(expected, rel=1e-12)
    assert F.cross_entropy(v, np.array(1), reduction="none").shape == ()


def test_all_targets_ignored_gives_nan_mean_like_pytorch():
    x = T(RNG.standard_normal((2, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.cross_entropy(x, np.array([-100, -100]))
    assert math.isnan(out.item())
    assert F.cross_entropy(x, np.array([-100, -100]), reduction="sum").item() == 0.0


def test_mse_loss_reductions_and_gradcheck():
    a, b = T(RNG.standard_normal((3, 4))), T(RNG.standard_normal((3, 4)))
    d2 = (a.detach().numpy() - b.detach().numpy()) ** 2
    assert F.mse_loss(a, b).item() == pytest.approx(d2.mean(), rel=1e-12)
    assert F.mse_loss(a, b, reduction="sum").item() == pytest.approx(d2.sum(), rel=1e-12)
    np.testing.assert_allclose(F.mse_loss(a, b, reduction="none").detach().numpy(), d2, rtol=1e-12)
    assert check_grad(lambda a, b: F.mse_loss(a, b), a, b)
    with pytest.warns(UserWarning, match=r"target size \(4,\) that is different to the input size \(3, 4\)"):
        F.mse_loss(a, T(np.ones(4)))


def test_legacy_size_average_and_reduce_arguments():
    x, t = T(RNG.standard_normal((3, 4))), np.array([0, 1, 2])
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        s = F.cross_entropy(x, t, size_average=False)
    assert s.item() == pytest.approx(F.cross_entropy(x, t, reduction="sum").item(), rel=1e-12)


# ========================================================================== errors

def test_loss_errors_name_the_bad_value_and_shapes():
    x = tn.randn(3, 5)
    with pytest.raises(IndexError, match=r"Target 7 is out of bounds.*\[0, 4\] for C = 5 classes"):
        F.cross_entropy(x, np.array([0, 7, 1]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        F.nll_loss(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(RuntimeError, match=r"size mismatch \(got input: \(2, 5, 3\), target: \(2, 4\)\)"):
        F.cross_entropy(tn.randn(2, 5, 3), np.zeros((2, 4), np.int64))
    with pytest.raises(RuntimeError, match=r"weight tensor should be defined either for all 5 classes"
                                           r".*\[4\]"):
        F.cross_entropy(x, np.array([0, 1, 2]), weight=tn.ones(4))
    with pytest.raises(RuntimeError, match=r"expected target of an integer dtype.*got float32: "
                                           r"cast it with target\.long\(\)"):
        F.nll_loss(x, tn.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(RuntimeError, match=r"must have the input's shape \(3, 5\), got \(3, 4\); for "
                                           r"class indices pass an integer tensor of shape \(3,\)"):
        F.cross_entropy(x, tn.rand(3, 4))
    # the porting trap: class indices built with the float32 class constructor
    with pytest.raises(RuntimeError, match=r"looks like class indices, but its dtype is float32.*"
                                           r"target\.long\(\)"):
        F.cross_entropy(x, tn.Tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(x, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="'max' is not a valid value for reduction|max is not a valid"):
        F.nll_loss(x, np.array([0, 1, 2]), reduction="max")


def test_losses_take_tn_tensor_int_lists_as_class_indices():
    logits = tn.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    target = tn.tensor([0, 2])                       # int64, as torch.tensor([0, 2])
    # torch.nn.functional.cross_entropy / nll_loss on the same numbers
    assert abs(F.cross_entropy(logits, target).item() - 0.6216270923614502) < 1e-6
    assert abs(F.nll_loss(F.log_softmax(logits, 1), target).item() - 0.6216270923614502) < 1e-6


def test_activations_functional_forms():
    x = T(RNG.standard_normal((3, 4)))
    np.testing.assert_array_equal(F.relu(x).detach().numpy(), np.maximum(x.detach().numpy(), 0))
    xv = x.detach().numpy()
    np.testing.assert_allclose(F.leaky_relu(x, 0.3).detach().numpy(), np.where(xv > 0, xv, 0.3 * xv))
    np.testing.assert_allclose(F.sigmoid(x).detach().numpy(), 1 / (1 + np.exp(-x.detach().numpy())), rtol=1e-13)
    np.testing.assert_allclose(F.tanh(x).detach().numpy(), np.tanh(x.detach().numpy()), rtol=1e-13)
    assert F.gelu(x, approximate="tanh").shape == (3, 4)
    assert check_grad(lambda x: F.leaky_relu(x, 0.3), x)


def test_linear_functional_matches_numpy():
    x, w, b = T(RNG.standard_normal((2, 3, 4))), T(RNG.standard_normal((5, 4))), T(RNG.standard_normal(5))
    np.testing.assert_allclose(F.linear(x, w, b).detach().numpy(), x.detach().numpy() @ w.detach().numpy().T + b.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(F.linear(x, w).detach().numpy(), x.detach().numpy() @ w.detach().numpy().T, rtol=1e-12)
    with pytest.raises(RuntimeError, match=r"bias of shape \(4,\) does not match the 5 output features"):
        F.linear(x, w, T(np.ones(4)))
