"""Tensor construction, dtype rules, factories, seeding, operators and error messages."""
import numpy as np
import pytest

import tinygrad_norm as tn


# ----------------------------------------------------------------- construction

def test_tensor_infers_dtypes_like_pytorch():
    # torch.tensor: ints -> int64, bools -> bool, floats (or ints mixed with floats) -> float32
    assert tn.tensor(3).dtype == np.int64
    assert tn.tensor(2.5).dtype == np.float32
    assert tn.tensor([[1, 2], [3, 4]]).dtype == np.int64
    assert tn.tensor([1, 2.0]).dtype == np.float32
    assert tn.tensor([True, False]).dtype == np.bool_
    assert tn.tensor([True, 1]).dtype == np.int64
    assert tn.tensor([]).dtype == np.float32
    np.testing.assert_array_equal(tn.tensor([1, 2, 3]).numpy(), [1, 2, 3])
    with pytest.raises(RuntimeError, match="floating point.*int64"):
        tn.tensor([1, 2], requires_grad=True)
    assert tn.tensor([1, 2], dtype=tn.float32, requires_grad=True).requires_grad


def test_tensor_class_makes_python_data_float32():
    # torch.Tensor([1, 2, 3]) is float32: the class constructor does not infer
    assert tn.Tensor(3).dtype == np.float32
    assert tn.Tensor([[1, 2], [3, 4]]).dtype == np.float32
    assert tn.Tensor([True, False]).dtype == np.float32
    assert tn.Tensor([1.0, 2.0]).shape == (2,)
    with pytest.raises(TypeError, match=r"as torch.Tensor\(3, 4\) makes, write tn.empty\(3, 4\)"):
        tn.Tensor(3, 4)                                # PyTorch's legacy size form


def test_numpy_arrays_keep_their_dtype():
    assert tn.tensor(np.zeros(3, np.float64)).dtype == np.float64
    assert tn.tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert tn.tensor(np.zeros(3, np.int64)).dtype == np.int64
    assert tn.tensor(np.zeros(3, np.uint8)).dtype == np.uint8
    assert tn.tensor(np.zeros(3, np.float16)).dtype == np.float32
    assert tn.tensor([1, 2], dtype=tn.int64).dtype == np.int64
    assert tn.tensor([1, 2], dtype="float64").dtype == np.float64


def test_constructor_copies_user_array():
    a = np.ones(3)
    t = tn.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 1.0
    shared = tn.from_numpy(a)
    a[1] = 7
    assert shared.numpy()[1] == 7


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point.*int64"):
        tn.tensor(np.arange(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        tn.arange(5, requires_grad=True)


def test_unsupported_data_is_rejected_with_its_type():
    with pytest.raises(TypeError, match="str"):
        tn.tensor("abc")


def test_attributes():
    t = tn.ones(2, 3, requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.numel() == 6 and t.size(1) == 3
    assert t.is_leaf and t.requires_grad and t.grad is None
    y = t * 2
    assert not y.is_leaf and y.grad_fn is not None
    assert tn.tensor(4.0).item() == 4.0
    with pytest.raises(ValueError, match="6 elements"):
        t.item()
    assert isinstance(t.detach().numpy(), np.ndarray)
    assert "requires_grad=True" in repr(t)
    assert "grad_fn=<mul>" in repr(y)


def test_data_is_a_detached_view_like_pytorch():
    p = tn.ones(3, requires_grad=True)
    d = p.data
    assert not d.requires_grad
    d.mul_(2)  # allowed: d does not require grad, and it shares p's storage
    assert p.detach().numpy().tolist() == [2.0, 2.0, 2.0]
    p.data = tn.zeros(3)
    assert p.detach().numpy().tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(RuntimeError, match=r"data shape \(4,\).*\(3,\)"):
        p.data = tn.zeros(4)


# --------------------------------------------------------------------- factories

def test_factories_shapes_and_dtypes():
    assert tn.zeros(2, 3).shape == (2, 3) and tn.zeros((2, 3)).shape == (2, 3)
    assert tn.ones(4, dtype=tn.float64).dtype == np.float64
    assert tn.full((2,), 7.0).numpy().tolist() == [7.0, 7.0]
    assert tn.arange(5).dtype == np.int64 and tn.arange(0, 1, 0.25).numpy().tolist() == [0, 0.25, 0.5, 0.75]
    assert tn.arange(5).numpy().tolist() == [0, 1, 2, 3, 4]
    assert tn.randn(3, 4).dtype == np.float32 and tn.rand(5).shape == (5,)
    x = tn.randn(2, 2, dtype=tn.float64)
    assert tn.zeros_like(x).dtype == np.float64 and tn.ones_like(x).numpy().sum() == 4
    assert tn.randn(3, requires_grad=True).requires_grad


def test_manual_seed_makes_every_draw_reproducible():
    def draws():
        tn.manual_seed(123)
        return (tn.randn(5).numpy(), tn.rand(3).numpy(), tn.randint(0, 10, (4,)).numpy(),
                tn.randperm(6).numpy(), tn.zeros(3).normal_().numpy())
    a, b = draws(), draws()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    tn.manual_seed(124)
    assert not np.array_equal(tn.randn(5).numpy(), a[0])


def test_rng_state_round_trip():
    tn.manual_seed(5)
    tn.randn(10)
    state = tn.get_rng_state()
    assert state.dtype == np.uint8
    first = tn.randn(4).numpy()
    tn.set_rng_state(state)
    np.testing.assert_array_equal(tn.randn(4).numpy(), first)
    with pytest.raises(ValueError, match="uint8"):
        tn.set_rng_state(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="not a state"):
        tn.set_rng_state(np.frombuffer(b"garbage", np.uint8))


# ------------------------------------------------------------- dtype promotion

def test_scalar_operands_keep_tensor_dtype():
    x = tn.ones(3)
    assert (x * 2.0).dtype == np.float32 and (2 * x).dtype == np.float32
    assert (tn.ones(3, dtype=tn.float64) + 1).dtype == np.float64
    assert (tn.arange(3) * 2).dtype == np.int64
    assert (tn.arange(3) * 2.5).dtype == np.float32
    assert (tn.arange(3) / tn.arange(1, 4)).dtype == np.float32  # true division
    assert (tn.ones(2) + tn.ones(2, dtype=tn.float64)).dtype == np.float64
    assert (tn.ones(2) * tn.arange(2)).dtype == np.float32
    assert (tn.ones(2) ** 2).dtype == np.float32


def test_mixed_precision_gradient_flows_back_in_each_dtype():
    a = tn.ones(2, requires_grad=True)
    b = tn.ones(2, dtype=tn.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_integer_arithmetic_stays_exact():
    a = tn.tensor(np.array([2**40, 3], np.int64))
    assert (a + 1).numpy().tolist() == [2**40 + 1, 4]
    assert tn.arange(6).sum().item() == 15 and tn.arange(6).sum().dtype == np.int64


# --------------------------------------------------------------------- operators

def test_operators_match_numpy_with_broadcasting():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2, (3, 1, 4)), rng.uniform(0.5, 2, (5, 1))
    ta, tb = tn.tensor(a), tn.tensor(b)
    for op in ["__add__", "__sub__", "__mul__", "__truediv__", "__pow__"]:
        np.testing.assert_allclose(getattr(ta, op)(tb).numpy(), getattr(a, op)(b), rtol=1e-12)
    np.testing.assert_allclose((-ta).numpy(), -a)
    np.testing.assert_allclose((2.0 - ta).numpy(), 2.0 - a)
    np.testing.assert_allclose((2.0 / ta).numpy(), 2.0 / a)
    np.testing.assert_allclose((2.0 ** ta).numpy(), 2.0 ** a)
    np.testing.assert_array_equal((ta > 1).numpy(), a > 1)
    np.testing.assert_array_equal((ta == ta).numpy(), np.ones(a.shape, bool))
    assert (ta > 1).dtype == np.bool_


def test_numpy_array_on_the_left_defers_to_tensor():
    t = tn.ones(3, requires_grad=True)
    y = np.full(3, 2.0, np.float32) * t
    assert isinstance(y, tn.Tensor) and y.requires_grad


def test_broadcast_error_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(3, 4\) and \(5,\)"):
        tn.ones(3, 4) + tn.ones(5)


def test_matmul_shapes_and_errors():
    assert (tn.ones(2, 3) @ tn.ones(3, 4)).shape == (2, 4)
    assert (tn.ones(3) @ tn.ones(3)).shape == ()
    assert (tn.ones(3) @ tn.ones(3, 4)).shape == (4,)
    assert (tn.ones(2, 3) @ tn.ones(3)).shape == (2,)
    assert (tn.ones(5, 2, 3) @ tn.ones(3, 4)).shape == (5, 2, 4)
    assert (tn.ones(5, 1, 2, 3) @ tn.ones(6, 3, 4)).shape == (5, 6, 2, 4)
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(4, 5\)"):
        tn.ones(2, 3) @ tn.ones(4, 5)
    with pytest.raises(RuntimeError, match=r"batch dimensions of \(2, 2, 3\) and \(3, 3, 4\)"):
        tn.ones(2, 2, 3) @ tn.ones(3, 3, 4)


def test_reductions_match_numpy():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4, 5))
    t = tn.tensor(a)
    for dim in [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2)]:
        for keepdim in [False, True]:
            axis = dim
            np.testing.assert_allclose(t.sum(dim, keepdim).numpy(), a.sum(axis, keepdims=keepdim), rtol=1e-12)
            np.testing.assert_allclose(t.mean(dim, keepdim).numpy(), a.mean(axis, keepdims=keepdim), rtol=1e-12)
            np.testing.assert_allclose(t.var(dim, keepdim=keepdim).numpy(),
                                       a.var(axis, ddof=1, keepdims=keepdim), rtol=1e-12)
            np.testing.assert_allclose(t.std(dim, keepdim=keepdim, correction=0).numpy(),
                                       a.std(axis, keepdims=keepdim), rtol=1e-12)
            np.testing.assert_allclose(t.amax(dim, keepdim).numpy(), a.max(axis, keepdims=keepdim))
            np.testing.assert_allclose(t.amin(dim, keepdim).numpy(), a.min(axis, keepdims=keepdim))
    values, indices = t.max(1)
    np.testing.assert_array_equal(values.numpy(), a.max(1))
    np.testing.assert_array_equal(indices.numpy(), a.argmax(1))
    assert t.max(dim=2, keepdim=True).values.shape == (3, 4, 1)
    assert t.min(0).indices.dtype == np.int64
    np.testing.assert_array_equal(t.argmax(-1).numpy(), a.argmax(-1))
    assert t.argmax().item() == a.argmax()
    assert t.max().item() == a.max()


def test_var_correction_and_unbiased():
    a = np.array([1.0, 2.0, 4.0, 7.0])
    t = tn.tensor(a)
    assert t.var().item() == pytest.approx(a.var(ddof=1))
    assert t.var(unbiased=False).item() == pytest.approx(a.var())
    assert t.var(correction=2).item() == pytest.approx(((a - a.mean()) ** 2).sum() / 2)


def test_float32_reductions_are_accurate():
    # mean of 1e5 + N(0, 1): a float32 naive sum drifts, float64 accumulation doesn't
    rng = np.random.default_rng(2)
    a = (1e5 + rng.standard_normal(1 << 20)).astype(np.float32)
    exact = a.astype(np.float64)
    assert tn.tensor(a).mean().item() == np.float32(exact.mean())  # correctly rounded
    assert tn.tensor(a).var().item() == pytest.approx(exact.var(ddof=1), rel=1e-5)
    assert tn.tensor(a).sum().item() == np.float32(exact.sum())


def test_reduction_dim_errors():
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got 2"):
        tn.ones(2, 3).sum(2)
    with pytest.raises(ValueError, match="multiple times"):
        tn.ones(2, 3).sum((1, -1))
    with pytest.raises(RuntimeError, match="empty tensor"):
        tn.ones(0).max()


def test_shape_ops():
    t = tn.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert t.reshape(6, 4).shape == (6, 4) and t.view(-1).shape == (24,)
    assert t.flatten().shape == (24,) and t.flatten(1).shape == (2, 12)
    assert t.transpose(0, 2).shape == (4, 3, 2) and t.permute(2, 0, 1).shape == (4, 2, 3)
    assert t.T.shape == (4, 3, 2) and t.unsqueeze(1).shape == (2, 1, 3, 4)
    assert t.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert tn.ones(1, 3, 1).squeeze().shape == (3,) and tn.ones(1, 3, 1).squeeze(0).shape == (3, 1)
    assert tn.ones(3, 1).expand(3, 4).shape == (3, 4) and tn.ones(3, 1).expand(2, -1, 5).shape == (2, 3, 5)
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1))
    with pytest.raises(RuntimeError, match=r"shape \(5, -1\) is invalid for input of size 24"):
        t.reshape(5, -1)
    with pytest.raises(RuntimeError, match="not compatible"):
        tn.ones(3, 2).expand(3, 4)


def test_indexing_matches_numpy():
    a = np.arange(20.0).reshape(4, 5)
    t = tn.tensor(a)
    idx = np.array([0, 2, 2])
    for index in [1, -1, slice(1, 3), (slice(None), 2), (1, slice(None, None, 2)), idx,
                  (idx, idx), a > 7, (Ellipsis, None)]:
        np.testing.assert_array_equal(t[index].numpy(), a[index])
    np.testing.assert_array_equal(t[tn.tensor(idx)].numpy(), a[idx])
    with pytest.raises(IndexError, match=r"shape \(4, 5\)"):
        t[7]


def test_cat_stack_where():
    a, b = tn.ones(2, 3), tn.zeros(2, 3)
    assert tn.cat([a, b]).shape == (4, 3) and tn.cat([a, b], dim=1).shape == (2, 6)
    assert tn.stack([a, b]).shape == (2, 2, 3) and tn.stack([a, b], dim=-1).shape == (2, 3, 2)
    w = tn.where(tn.tensor([True, False, True]), tn.ones(3), tn.zeros(3))
    assert w.numpy().tolist() == [1, 0, 1]
    with pytest.raises(RuntimeError, match=r"tensor 0 has shape \(2, 3\), tensor 1 has shape \(2, 4\)"):
        tn.cat([a, tn.ones(2, 4)])
    with pytest.raises(RuntimeError, match=r"\(2, 3\) at entry 0 and \(3, 3\) at entry 1"):
        tn.stack([a, tn.ones(3, 3)])


def test_clamp_needs_a_bound():
    with pytest.raises(RuntimeError, match="at least one of 'min' or 'max'"):
        tn.ones(2).clamp()


def test_in_place_update_rules():
    p = tn.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        p -= 1
    with tn.no_grad():
        p -= 1
        p[0] = 5
    assert p.detach().numpy().tolist() == [5, 0, 0] and p.requires_grad and p.is_leaf


def test_allclose_and_is_tensor_top_level_functions():
    a = tn.tensor([1.0, 2.0, 3.0])
    assert tn.allclose(a, tn.tensor([1.0, 2.0, 3.0 + 1e-7])) is True
    assert tn.allclose(a, tn.tensor([1.0, 2.0, 3.1])) is False
    assert tn.allclose(a, tn.tensor([1.0, 2.0, 3.1]), atol=0.2) is True
    nan = tn.tensor([float("nan")])
    assert tn.allclose(nan, nan) is False and tn.allclose(nan, nan, equal_nan=True) is True
    assert tn.is_tensor(a) and not tn.is_tensor(a.numpy())
