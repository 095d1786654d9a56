"""nn.utils.weight_norm / spectral_norm: PyTorch's (pre-parametrize) semantics,
checked against numpy: parameter and buffer names, output at wrap time, the
pre-forward recomputation, power iteration in training only, removal."""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn


def _t(a, grad=False):
    return tn.Tensor(np.asarray(a, np.float64), requires_grad=grad)


def _linear(rng, n_in=5, n_out=4):
    m = nn.Linear(n_in, n_out).double()
    m.weight._data[...] = rng.standard_normal(m.weight.shape)
    return m


# ================================================================== weight norm

@pytest.mark.parametrize("dim,g_shape", [(0, (4, 1)), (1, (1, 5)), (None, ())])
def test_weight_norm_parameters_and_unchanged_output(dim, g_shape):
    rng = np.random.default_rng(0)
    m = _linear(rng)
    w0 = m.weight.detach().numpy().copy()
    x = _t(rng.standard_normal((3, 5)))
    y0 = m(x).detach().numpy()
    nn.utils.weight_norm(m, dim=dim)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_g", "weight_v"]
    assert m.weight_g.shape == g_shape and m.weight_v.shape == (4, 5)
    axes = None if dim is None else tuple(a for a in range(2) if a != dim)
    norms = np.sqrt((w0 ** 2).sum(axis=axes, keepdims=dim is not None))
    np.testing.assert_allclose(m.weight_g.detach().numpy(), norms, rtol=1e-14)
    np.testing.assert_array_equal(m.weight_v.detach().numpy(), w0)
    np.testing.assert_array_equal(m(x).detach().numpy(), y0)  # g = ‖v‖: bit-for-bit the same output
    assert "weight" not in dict(m.named_parameters()) and "weight" not in m.state_dict()


def test_weight_norm_recomputes_the_weight_before_every_forward():
    rng = np.random.default_rng(1)
    m = nn.utils.weight_norm(_linear(rng))
    with tn.no_grad():
        m.weight_g.mul_(tn.tensor(np.array([[2.0], [1.0], [0.5], [3.0]])))
        m.weight_v.mul_(7.0)  # the direction's length does not matter
    x = rng.standard_normal((3, 5))
    v = m.weight_v.detach().numpy()
    w = m.weight_g.detach().numpy() * v / np.linalg.norm(v, axis=1, keepdims=True)
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), x @ w.T + m.bias.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.weight.detach().numpy(), w, rtol=1e-12)


def test_weight_norm_gradients_are_the_papers():
    """∇g = ∇w·v/‖v‖ and ∇v = (g/‖v‖)(∇w − (∇w·v)v/‖v‖²) per output row
    (Salimans & Kingma 2016, Eq. 3)."""
    rng = np.random.default_rng(2)
    m = nn.utils.weight_norm(_linear(rng))
    with tn.no_grad():
        m.weight_g.mul_(1.7)
    x = rng.standard_normal((6, 5))
    upstream = rng.standard_normal((6, 4))
    m(_t(x)).backward(_t(upstream))
    gw = upstream.T @ x  # dL/dw
    v, g = m.weight_v.detach().numpy(), m.weight_g.detach().numpy()
    nv = np.linalg.norm(v, axis=1, keepdims=True)
    np.testing.assert_allclose(m.weight_g.grad.numpy(), (gw * v).sum(1, keepdims=True) / nv, rtol=1e-12)
    expected_v = g / nv * (gw - (gw * v).sum(1, keepdims=True) * v / nv ** 2)
    np.testing.assert_allclose(m.weight_v.grad.numpy(), expected_v, rtol=1e-10, atol=1e-12)


def test_weight_norm_gradcheck_conv():
    rng = np.random.default_rng(3)
    m = nn.utils.weight_norm(nn.Conv2d(2, 3, 2).double(), dim=0)
    assert m.weight_g.shape == (3, 1, 1, 1)
    x = _t(rng.standard_normal((1, 2, 3, 3)), grad=True)
    assert tn.autograd.gradcheck(lambda x, g, v: m(x), [x, m.weight_g, m.weight_v], atol=1e-6, rtol=1e-4)


def test_remove_weight_norm():
    rng = np.random.default_rng(4)
    m = nn.utils.weight_norm(_linear(rng))
    with tn.no_grad():
        m.weight_g.mul_(2.0)
    x = _t(rng.standard_normal((2, 5)))
    y = m(x).detach().numpy()
    nn.utils.remove_weight_norm(m)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight"]
    assert isinstance(m.weight, nn.Parameter) and m.weight.is_leaf and not m._forward_pre_hooks
    np.testing.assert_allclose(m(x).detach().numpy(), y, rtol=1e-14)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        nn.utils.remove_weight_norm(m)


def test_weight_norm_twice_is_an_error():
    m = nn.utils.weight_norm(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
        nn.utils.weight_norm(m)


# ================================================================ spectral norm

def _power_step(W, u):
    v = W.T @ u
    v /= max(np.linalg.norm(v), 1e-12)
    u = W @ v
    u /= max(np.linalg.norm(u), 1e-12)
    return u, v


def test_spectral_norm_names_and_initial_vectors():
    rng = np.random.default_rng(5)
    m = _linear(rng)
    w0 = m.weight
    nn.utils.spectral_norm(m)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_orig"]
    assert m.weight_orig is w0  # the original Parameter object is kept
    assert [n for n, _ in m.named_buffers()] == ["weight_u", "weight_v"]
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert m.weight_u.shape == (4,) and m.weight_v.shape == (5,)
    np.testing.assert_allclose(np.linalg.norm(m.weight_u.numpy()), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(m.weight_v.numpy()), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(m.weight.detach().numpy(), w0.detach().numpy())  # unchanged until the first forward


def test_spectral_norm_power_iteration_in_training_only():
    rng = np.random.default_rng(6)
    m = nn.utils.spectral_norm(_linear(rng), n_power_iterations=2)
    W = m.weight_orig.detach().numpy().copy()
    u = m.weight_u.numpy().copy()
    for _ in range(2):
        u, v = _power_step(W, u)
    x = rng.standard_normal((3, 5))
    y = m(_t(x))
    np.testing.assert_allclose(m.weight_u.numpy(), u, rtol=1e-12)
    np.testing.assert_allclose(m.weight_v.numpy(), v, rtol=1e-12)
    sigma = u @ W @ v
    np.testing.assert_allclose(m.weight.detach().numpy(), W / sigma, rtol=1e-12)
    np.testing.assert_allclose(y.detach().numpy(), x @ (W / sigma).T + m.bias.detach().numpy(), rtol=1e-12)
    # eval: the stored u, v are used without iterating
    m.eval()
    m(_t(x))
    m(_t(x))
    np.testing.assert_array_equal(m.weight_u.numpy(), u)
    np.testing.assert_array_equal(m.weight_v.numpy(), v)
    np.testing.assert_allclose(m.weight.detach().numpy(), W / sigma, rtol=1e-12)


def test_spectral_norm_converges_to_the_largest_singular_value():
    rng = np.random.default_rng(7)
    tn.manual_seed(7)
    conv = nn.Conv2d(3, 4, 3).double()
    U, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((27, 4)))
    conv.weight._data[...] = (U @ np.diag([3.0, 1.0, 0.5, 0.2]) @ V.T).reshape(4, 3, 3, 3)
    m = nn.utils.spectral_norm(conv, n_power_iterations=30)
    m(_t(rng.standard_normal((1, 3, 4, 4))))
    W = m.weight_orig.detach().numpy().reshape(4, -1)
    np.testing.assert_allclose(m.weight_u.numpy() @ W @ m.weight_v.numpy(), 3.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(m.weight.detach().numpy().reshape(4, -1), compute_uv=False)[0], 1.0,
                               rtol=1e-12)


def test_spectral_norm_dim_and_gradient_through_the_weight_only():
    rng = np.random.default_rng(8)
    m = nn.utils.spectral_norm(_linear(rng), dim=1)
    assert m.weight_u.shape == (5,) and m.weight_v.shape == (4,)  # the matrix is Wᵀ
    m(_t(rng.standard_normal((2, 5))))
    m.eval()  # fixed u, v: forward is a differentiable function of weight_orig
    x = _t(rng.standard_normal((2, 5)), grad=True)
    assert tn.autograd.gradcheck(lambda x, w: m(x), [x, m.weight_orig], atol=1e-6, rtol=1e-4)
    # σ = uᵀWv with u, v constants: d(Σ W/σ)/dW = 1/σ − (ΣW/σ²)·u vᵀ (in the matrix layout Wᵀ)
    hook = next(iter(m._forward_pre_hooks.values()))
    hook.compute_weight(m, do_power_iteration=False).sum().backward()
    W = m.weight_orig.detach().numpy().T  # (5, 4): dim 1 first
    u, v = m.weight_u.numpy(), m.weight_v.numpy()
    sigma = u @ W @ v
    expected = (1 / sigma - W.sum() / sigma ** 2 * np.outer(u, v)).T
    np.testing.assert_allclose(m.weight_orig.grad.numpy(), expected, rtol=1e-10)


def test_remove_spectral_norm_and_errors():
    rng = np.random.default_rng(9)
    m = nn.utils.spectral_norm(_linear(rng))
    x = _t(rng.standard_normal((2, 5)))
    m(x)
    m.eval()
    y = m(x).detach().numpy()
    nn.utils.remove_spectral_norm(m)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight"]
    assert list(m.named_buffers()) == [] and not m._forward_pre_hooks
    np.testing.assert_allclose(m(x).detach().numpy(), y, rtol=1e-14)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(m)
    with pytest.raises(ValueError, match="n_power_iterations to be positive"):
        nn.utils.spectral_norm(nn.Linear(3, 2), n_power_iterations=0)
    s = nn.utils.spectral_norm(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        nn.utils.spectral_norm(s)
