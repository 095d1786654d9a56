"""Normalization layers (nn.BatchNorm1d ... nn.MeanOnlyBatchNorm2d) and their F.* forms:
values against plain numpy, running statistics step by step, PyTorch's
conventions and error messages, float64 gradchecks in train and eval mode."""
import numpy as np
import pytest

import tinygrad_norm as tn
import tinygrad_norm.nn.functional as F
from tinygrad_norm import nn

EPS = 1e-5


def _t(a, grad=False, dtype=np.float64):
    return tn.Tensor(np.asarray(a, dtype), requires_grad=grad)


def _randomize(module, rng):
    """Non-trivial affine parameters (weights away from 0)."""
    for name, p in module.named_parameters():
        p._data[...] = rng.uniform(0.5, 2, p.shape) if "weight" in name else rng.standard_normal(p.shape)
    return module


def _bn_ref(x, w, b, axes, eps=EPS):
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w.reshape(shape) + b.reshape(shape)


def _gradcheck_module(module, x, train=True):
    module.train(train)
    params = [p for p in module.parameters()]
    state = {k: v.numpy().copy() for k, v in module.named_buffers()}

    def fn(x, *ps):
        out = module(x)
        for k, v in module.named_buffers():  # running stats: every call starts the same
            v._data[...] = state[k]
        return out
    assert tn.autograd.gradcheck(fn, [x] + params, atol=1e-6, rtol=1e-4)


# =================================================================== batch norm

@pytest.mark.parametrize("shape,cls", [((6, 4), nn.BatchNorm1d), ((5, 3, 7), nn.BatchNorm1d),
                                       ((4, 3, 5, 6), nn.BatchNorm2d)])
def test_batchnorm_training_output_matches_numpy(shape, cls):
    rng = np.random.default_rng(0)
    m = _randomize(cls(shape[1]).double(), rng)
    x = rng.standard_normal(shape) * 3 + 2
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), _bn_ref(x, m.weight.detach().numpy(), m.bias.detach().numpy(), axes),
                               rtol=1e-12, atol=1e-12)


def test_batchnorm_worked_example_from_protocols():
    """The worked example: x = [1, 2, 3, 4] (biased var 1.25, unbiased 1.6667)."""
    m = nn.BatchNorm1d(1).double()
    y = m(_t([[1.0], [2.0], [3.0], [4.0]]))
    np.testing.assert_allclose(y.detach().numpy().ravel(), [-1.3416, -0.4472, 0.4472, 1.3416], atol=1e-4)
    np.testing.assert_allclose(m.running_mean.numpy(), [0.25])
    np.testing.assert_allclose(m.running_var.numpy(), [0.9 + 0.1 * 5 / 3])  # 1.06667: unbiased
    c = nn.BatchNorm1d(1, momentum=None).double()
    c(_t([[1.0], [2.0], [3.0], [4.0]]))
    np.testing.assert_allclose([c.running_mean.item(), c.running_var.item()], [2.5, 5 / 3])
    c(_t([[2.0], [4.0], [6.0], [8.0]]))
    np.testing.assert_allclose([c.running_mean.item(), c.running_var.item()], [3.75, 12.5 / 3])
    assert c.num_batches_tracked.item() == 2


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("shape,cls", [((6, 4), nn.BatchNorm1d), ((4, 3, 2, 5), nn.BatchNorm2d)])
def test_running_statistics_over_several_steps(momentum, shape, cls):
    rng = np.random.default_rng(1)
    m = cls(shape[1], momentum=momentum).double()
    axes = (0,) + tuple(range(2, len(shape)))
    n = int(np.prod([shape[a] for a in axes]))
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    for step in range(1, 5):
        x = rng.standard_normal(shape) * step + step
        m(_t(x))
        f = 1.0 / step if momentum is None else momentum
        rm = (1 - f) * rm + f * x.mean(axis=axes)
        rv = (1 - f) * rv + f * x.var(axis=axes) * n / (n - 1)
        np.testing.assert_allclose(m.running_mean.numpy(), rm, rtol=1e-12)
        np.testing.assert_allclose(m.running_var.numpy(), rv, rtol=1e-12)
        assert m.num_batches_tracked.item() == step
        assert m.num_batches_tracked.dtype == np.int64 and m.num_batches_tracked.shape == ()


def test_momentum_none_is_the_plain_average_of_batch_statistics():
    rng = np.random.default_rng(2)
    m = nn.BatchNorm1d(3, momentum=None).double()
    xs = [rng.standard_normal((5, 3)) + i for i in range(6)]
    for x in xs:
        m(_t(x))
    np.testing.assert_allclose(m.running_mean.numpy(), np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-12)
    np.testing.assert_allclose(m.running_var.numpy(), np.mean([x.var(0, ddof=1) for x in xs], axis=0),
                               rtol=1e-12)


def test_eval_uses_running_statistics_and_leaves_them_alone():
    rng = np.random.default_rng(3)
    m = _randomize(nn.BatchNorm2d(3).double(), rng)
    m(_t(rng.standard_normal((4, 3, 2, 2)) * 2 + 1))
    rm, rv = m.running_mean.numpy().copy(), m.running_var.numpy().copy()
    m.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    y = m(_t(x))
    s = (1, 3, 1, 1)
    expected = (x - rm.reshape(s)) / np.sqrt(rv.reshape(s) + EPS) * m.weight.detach().numpy().reshape(s) + \
        m.bias.detach().numpy().reshape(s)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(m.running_mean.numpy(), rm)
    np.testing.assert_array_equal(m.running_var.numpy(), rv)
    assert m.num_batches_tracked.item() == 1
    m(_t(np.ones((1, 3, 1, 1))))  # one value per channel is fine in eval


def test_running_stats_update_in_training_even_under_no_grad():
    """As in PyTorch: the update is a side effect of a training-mode forward, not part of the graph."""
    m = nn.BatchNorm1d(2).double()
    with tn.no_grad():
        y = m(_t([[1.0, 2.0], [3.0, 6.0]]))
    assert not y.requires_grad
    np.testing.assert_allclose(m.running_mean.numpy(), [0.2, 0.4])
    assert m.num_batches_tracked.item() == 1


def test_track_running_stats_false_uses_batch_statistics_in_eval():
    rng = np.random.default_rng(4)
    m = nn.BatchNorm1d(3, track_running_stats=False).double()
    assert m.running_mean is None and m.running_var is None and m.num_batches_tracked is None
    assert set(m.state_dict()) == {"weight", "bias"}
    x = rng.standard_normal((5, 3))
    m.eval()
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), _bn_ref(x, np.ones(3), np.zeros(3), (0,)), rtol=1e-12)
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, "
                                         r"got input size \(1, 3\)"):
        m(_t(x[:1]))


def test_affine_false_and_bias_false():
    m = nn.BatchNorm1d(3, affine=False)
    assert m.weight is None and m.bias is None and list(m.parameters()) == []
    assert [n for n, _ in nn.BatchNorm1d(3, bias=False).named_parameters()] == ["weight"]
    assert [n for n, _ in nn.LayerNorm(3, bias=False).named_parameters()] == ["weight"]


def test_batchnorm_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, "
                                         r"got input size \(1, 10\)"):
        nn.BatchNorm1d(10)(tn.randn(1, 10))
    with pytest.raises(ValueError, match=r"got input size \(1, 3, 1\)"):
        nn.BatchNorm1d(3)(tn.randn(1, 3, 1))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(tn.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        nn.BatchNorm2d(3)(tn.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match=r"running_mean should contain 3 elements .*got shape \(4,\)"):
        nn.BatchNorm1d(4)(tn.randn(5, 3))
    with pytest.raises(RuntimeError, match="floating point"):
        nn.BatchNorm1d(2)(tn.Tensor(np.ones((3, 2), np.int64)))
    with pytest.raises(RuntimeError, match="dtype"):
        nn.BatchNorm1d(2)(tn.randn(3, 2).double())  # float32 module, float64 input
    with pytest.raises(ValueError, match="eps must be positive during training"):
        F.batch_norm(tn.randn(4, 2), None, None, training=True, eps=0.0)
    with pytest.raises(RuntimeError, match="must be given when training=False"):
        F.batch_norm(tn.randn(4, 2), None, None, training=False)


def test_functional_batch_norm_updates_the_given_buffers():
    x = _t([[1.0], [2.0], [3.0], [4.0]])
    rm, rv = _t([0.0]), _t([1.0])
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    np.testing.assert_allclose(rm.numpy(), [1.25])
    np.testing.assert_allclose(rv.numpy(), [0.5 + 0.5 * 5 / 3])
    y_eval = F.batch_norm(x, rm, rv, training=False)
    np.testing.assert_allclose(y_eval.numpy().ravel(), (np.arange(1, 5) - 1.25) / np.sqrt(rv.item() + EPS))
    assert y.shape == x.shape


def test_state_dict_round_trip():
    rng = np.random.default_rng(5)
    a = _randomize(nn.BatchNorm2d(3).double(), rng)
    for _ in range(3):
        a(_t(rng.standard_normal((4, 3, 2, 2)) + 1))
    sd = a.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"].item() == 3
    b = nn.BatchNorm2d(3).double()
    b.load_state_dict({k: v.numpy().copy() for k, v in sd.items()})
    a.eval(), b.eval()
    x = _t(rng.standard_normal((2, 3, 2, 2)))
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    assert b.num_batches_tracked.item() == 3


def test_float32_module_on_float32_input():
    m = nn.BatchNorm1d(3)
    y = m(tn.randn(8, 3) * 5 + 3)
    assert y.dtype == np.float32 and m.running_mean.dtype == np.float32
    np.testing.assert_allclose(y.detach().numpy().mean(0), 0, atol=1e-5)


# ================================================================ instance norm

def test_instance_norm_defaults_and_values():
    rng = np.random.default_rng(6)
    m = nn.InstanceNorm2d(3)
    assert m.affine is False and m.track_running_stats is False
    assert list(m.parameters()) == [] and m.running_mean is None
    x = rng.standard_normal((2, 3, 4, 5)) * 2 + 1
    expected = (x - x.mean(axis=(2, 3), keepdims=True)) / np.sqrt(x.var(axis=(2, 3), keepdims=True) + EPS)
    np.testing.assert_allclose(m.double()(_t(x)).numpy(), expected, rtol=1e-12)
    m.eval()  # instance statistics in eval too
    np.testing.assert_allclose(m(_t(x)).numpy(), expected, rtol=1e-12)
    x2 = x[0, 0]  # unbatched (C, L) = (4, 5)
    unbatched = nn.InstanceNorm1d(4).double()(_t(x2))
    np.testing.assert_allclose(unbatched.numpy(), (x2 - x2.mean(1, keepdims=True)) /
                               np.sqrt(x2.var(1, keepdims=True) + EPS), rtol=1e-12)


def test_instance_norm_with_running_stats():
    """Running stats are the batch average of the per-instance statistics
    (unbiased variance); eval then uses them. num_batches_tracked stays 0 (PyTorch)."""
    rng = np.random.default_rng(7)
    m = nn.InstanceNorm1d(3, affine=True, track_running_stats=True).double()
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(2):
        x = rng.standard_normal((4, 3, 6)) * 2 + 1
        m(_t(x))
        rm = 0.9 * rm + 0.1 * x.mean(axis=2).mean(axis=0)
        rv = 0.9 * rv + 0.1 * x.var(axis=2, ddof=1).mean(axis=0)
    np.testing.assert_allclose(m.running_mean.numpy(), rm, rtol=1e-12)
    np.testing.assert_allclose(m.running_var.numpy(), rv, rtol=1e-12)
    assert m.num_batches_tracked.item() == 0
    m.eval()
    x = rng.standard_normal((2, 3, 6))
    expected = (x - rm[:, None]) / np.sqrt(rv[:, None] + EPS)
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), expected, rtol=1e-12)


def test_instance_norm_errors():
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.InstanceNorm1d(3)(tn.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        nn.InstanceNorm2d(3)(tn.randn(2, 3))
    with pytest.raises(ValueError, match=r"expected input's size at dim=1 to match num_features \(3\)"):
        nn.InstanceNorm1d(3, affine=True)(tn.randn(2, 4, 5))
    with pytest.raises(ValueError, match="Expected more than 1 spatial element"):
        nn.InstanceNorm1d(3)(tn.randn(2, 3, 1))
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm1d(3)(tn.randn(2, 4, 5))


# ============================================================ layer & group norm

def test_layer_norm_over_trailing_dims_with_elementwise_affine():
    rng = np.random.default_rng(8)
    m = _randomize(nn.LayerNorm((4, 5)).double(), rng)
    assert m.weight.shape == (4, 5) and m.bias.shape == (4, 5)
    x = rng.standard_normal((3, 4, 5)) * 3 + 1
    mu, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    expected = (x - mu) / np.sqrt(var + EPS) * m.weight.detach().numpy() + m.bias.detach().numpy()
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), expected, rtol=1e-12)
    m.eval()  # no running statistics: identical in eval
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), expected, rtol=1e-12)
    assert list(m.state_dict()) == ["weight", "bias"]


def test_group_norm_per_channel_affine():
    rng = np.random.default_rng(9)
    m = _randomize(nn.GroupNorm(2, 6).double(), rng)
    x = rng.standard_normal((3, 6, 4)) * 2 - 1
    xg = x.reshape(3, 2, 12)
    xn = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + EPS)).reshape(3, 6, 4)
    expected = xn * m.weight.detach().numpy()[:, None] + m.bias.detach().numpy()[:, None]
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), expected, rtol=1e-12)
    # GroupNorm(C, C) is InstanceNorm with affine; GroupNorm(1, C) is LayerNorm over (C, *)
    gi = nn.GroupNorm(6, 6).double()
    np.testing.assert_allclose(gi(_t(x)).detach().numpy(), nn.InstanceNorm1d(6).double()(_t(x)).detach().numpy(), rtol=1e-12)
    g1 = nn.GroupNorm(1, 6, affine=False).double()
    np.testing.assert_allclose(g1(_t(x)).numpy(), F.layer_norm(_t(x), (6, 4)).numpy(), rtol=1e-12)


def test_layer_and_group_norm_errors():
    with pytest.raises(ValueError, match=r"num_channels \(6\) must be divisible by num_groups \(4\)"):
        nn.GroupNorm(4, 6)
    with pytest.raises(RuntimeError, match=r"divisible by num_groups, but got input of shape \[2, 6, 4\] "
                                           r"and num_groups=4"):
        F.group_norm(tn.randn(2, 6, 4), 4)
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[4\], expected input with shape "
                                           r"\[\*, 4\], but got input of size\[2, 3\]"):
        nn.LayerNorm(4)(tn.randn(2, 3))
    with pytest.raises(RuntimeError, match="weight of shape"):
        F.layer_norm(tn.randn(2, 4), (4,), weight=tn.ones(3))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        F.group_norm(tn.randn(1, 2), 2)


# ====================================================================== RMSNorm

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rms_norm_default_eps_is_the_dtype_machine_epsilon(dtype):
    x = (np.random.default_rng(10).standard_normal((3, 5)) * 1e-4).astype(dtype)
    y = nn.RMSNorm(5).to(dtype)(tn.Tensor(x))
    eps = np.finfo(dtype).eps
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y.detach().numpy(), x64 / np.sqrt((x64 ** 2).mean(-1, keepdims=True) + eps),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(nn.RMSNorm(4)(tn.tensor([1.0, 2, 3, 4])).detach().numpy(),
                               [0.3651, 0.7303, 1.0954, 1.4606], atol=1e-4)


def test_rms_norm_explicit_eps_and_weight():
    rng = np.random.default_rng(11)
    m = _randomize(nn.RMSNorm((2, 3), eps=1e-2).double(), rng)
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    x = rng.standard_normal((4, 2, 3))
    expected = x / np.sqrt((x ** 2).mean(axis=(1, 2), keepdims=True) + 1e-2) * m.weight.detach().numpy()
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), expected, rtol=1e-12)


# =========================================================== local response norm

def _lrn_ref(x, size, alpha, beta, k):
    C = x.shape[1]
    out = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C, c + (size - 1) // 2 + 1)
        s = (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (k + alpha / size * s) ** beta
    return out


@pytest.mark.parametrize("shape,size", [((2, 7, 5), 3), ((2, 6, 3, 4), 4), ((1, 3, 2, 2), 5)])
def test_local_response_norm_matches_the_formula(shape, size):
    x = np.random.default_rng(12).standard_normal(shape) * 2
    m = nn.LocalResponseNorm(size, alpha=0.5, beta=0.75, k=1.5)
    np.testing.assert_allclose(m(_t(x)).numpy(), _lrn_ref(x, size, 0.5, 0.75, 1.5), rtol=1e-12)


def test_local_response_norm_errors_and_defaults():
    m = nn.LocalResponseNorm(2)
    assert (m.alpha, m.beta, m.k) == (1e-4, 0.75, 1.0)
    with pytest.raises(ValueError, match=r"Expected 3D or higher dimensionality input \(got 2 dimensions\)"):
        m(tn.randn(2, 3))


# =============================================================== batch renorm

def test_batch_renorm_equals_batch_norm_at_rmax_1_dmax_0():
    rng = np.random.default_rng(13)
    bn = _randomize(nn.BatchNorm2d(3, momentum=0.1).double(), rng)
    brn = nn.BatchRenorm2d(3, momentum=0.1).double()
    assert (brn.r_max, brn.d_max) == (1.0, 0.0)
    brn.load_state_dict({"weight": bn.weight.detach().numpy(), "bias": bn.bias.detach().numpy(),
                         "running_mean": np.zeros(3), "running_std": np.ones(3),
                         "num_batches_tracked": np.array(0)})
    brn.running_mean._data[...] = 5.0  # far off: with r_max=1, d_max=0 it must not matter
    bn.running_mean._data[...] = 5.0
    for _ in range(2):
        x = rng.standard_normal((4, 3, 2, 2)) * 2 + 1
        xa, xb = _t(x, True), _t(x, True)
        ya, yb = bn(xa), brn(xb)
        np.testing.assert_array_equal(ya.detach().numpy(), yb.detach().numpy())
        g = _t(rng.standard_normal(x.shape))
        ya.backward(g), yb.backward(g)
        np.testing.assert_array_equal(xa.grad.numpy(), xb.grad.numpy())
    np.testing.assert_array_equal(bn.weight.grad.numpy(), brn.weight.grad.numpy())
    np.testing.assert_array_equal(bn.bias.grad.numpy(), brn.bias.grad.numpy())
    np.testing.assert_allclose(bn.running_mean.numpy(), brn.running_mean.numpy(), rtol=1e-14)


def test_batch_renorm_training_formula_and_running_sigma():
    rng = np.random.default_rng(14)
    m = _randomize(nn.BatchRenorm1d(3, momentum=0.2, r_max=1.5, d_max=0.4).double(), rng)
    mu, sigma = np.array([0.5, -1.0, 2.0]), np.array([0.5, 3.0, 1.0])
    m.running_mean._data[...], m.running_std._data[...] = mu, sigma
    x = rng.standard_normal((6, 3)) * 2 + 1
    y = m(_t(x))
    mu_b, sigma_b = x.mean(0), np.sqrt(x.var(0) + EPS)
    r = np.clip(sigma_b / sigma, 1 / 1.5, 1.5)
    d = np.clip((mu_b - mu) / sigma, -0.4, 0.4)
    assert np.any(r == 1.5) or np.any(r == 1 / 1.5)  # the clip is exercised
    expected = ((x - mu_b) / sigma_b * r + d) * m.weight.detach().numpy() + m.bias.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12)
    # NOTE: the running average is of σ (std, ε included), not of σ²
    np.testing.assert_allclose(m.running_std.numpy(), sigma + 0.2 * (sigma_b - sigma), rtol=1e-12)
    np.testing.assert_allclose(m.running_mean.numpy(), mu + 0.2 * (mu_b - mu), rtol=1e-12)
    assert list(m.state_dict()) == ["weight", "bias", "running_mean", "running_std", "num_batches_tracked"]
    m.eval()
    x = rng.standard_normal((2, 3))
    expected = (x - m.running_mean.detach().numpy()) / m.running_std.detach().numpy() * m.weight.detach().numpy() + m.bias.detach().numpy()
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), expected, rtol=1e-12)


def test_batch_renorm_r_and_d_are_constants_for_backward():
    """dx with r, d active equals r/σ_B·(h − mean h − x̂·mean(h x̂)): no dr/dx, dd/dx terms."""
    rng = np.random.default_rng(15)
    m = nn.BatchRenorm1d(2, r_max=2.0, d_max=1.0).double()
    m.running_mean._data[...], m.running_std._data[...] = [0.3, -0.2], [0.8, 1.7]
    x = rng.standard_normal((5, 2)) * 1.2
    xt = _t(x, True)
    y = m(xt)
    g = rng.standard_normal(x.shape)
    y.backward(_t(g))
    sigma_b = np.sqrt(x.var(0) + EPS)
    r = np.clip(sigma_b / np.array([0.8, 1.7]), 0.5, 2.0)
    xhat = (x - x.mean(0)) / sigma_b
    dx = r / sigma_b * (g - g.mean(0) - xhat * (g * xhat).mean(0))
    np.testing.assert_allclose(xt.grad.numpy(), dx, rtol=1e-10)


def test_batch_renorm_limits_are_settable_and_checked():
    m = nn.BatchRenorm1d(2)
    m.r_max, m.d_max = 3.0, 5.0
    m(tn.randn(4, 2))
    m.r_max = 0.5
    with pytest.raises(ValueError, match="r_max >= 1"):
        m(tn.randn(4, 2))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        nn.BatchRenorm2d(2)(tn.randn(4, 2))


# ============================================================ mean-only batch norm

def test_mean_only_batch_norm():
    rng = np.random.default_rng(16)
    m = _randomize(nn.MeanOnlyBatchNorm2d(3).double(), rng)
    assert [n for n, _ in m.named_parameters()] == ["bias"]
    assert list(m.state_dict()) == ["bias", "running_mean", "num_batches_tracked"]
    x = rng.standard_normal((4, 3, 2, 2)) * 3 + 1
    xt = _t(x, True)
    y = m(xt)
    b = m.bias.detach().numpy().reshape(1, 3, 1, 1)
    np.testing.assert_allclose(y.detach().numpy(), x - x.mean(axis=(0, 2, 3), keepdims=True) + b, rtol=1e-12)
    g = rng.standard_normal(x.shape)
    y.backward(_t(g))
    np.testing.assert_allclose(xt.grad.numpy(), g - g.mean(axis=(0, 2, 3), keepdims=True), atol=1e-12)
    np.testing.assert_allclose(m.running_mean.numpy(), 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    m.eval()
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), x - m.running_mean.detach().numpy().reshape(1, 3, 1, 1) + b,
                               rtol=1e-12)


# ===================================================================== gradcheck

GRADCHECK_CASES = [
    ("bn1d_batch2", lambda: nn.BatchNorm1d(3), (2, 3)),
    ("bn1d_3d", lambda: nn.BatchNorm1d(2), (3, 2, 4)),
    ("bn2d_batch2", lambda: nn.BatchNorm2d(2), (2, 2, 2, 3)),
    ("bn1d_momentum_none", lambda: nn.BatchNorm1d(3, momentum=None), (4, 3)),
    ("in1d_affine", lambda: nn.InstanceNorm1d(2, affine=True), (2, 2, 5)),
    ("in2d_track", lambda: nn.InstanceNorm2d(2, affine=True, track_running_stats=True), (2, 2, 2, 3)),
    ("layer_norm", lambda: nn.LayerNorm((2, 3)), (3, 2, 3)),
    ("group_norm", lambda: nn.GroupNorm(2, 4), (2, 4, 3)),
    ("rms_norm", lambda: nn.RMSNorm(4), (3, 4)),
    ("local_response_norm", lambda: nn.LocalResponseNorm(3, alpha=0.5, k=1.2), (2, 4, 3)),
    ("batch_renorm", lambda: nn.BatchRenorm1d(3), (4, 3)),
    ("mean_only_bn", lambda: nn.MeanOnlyBatchNorm1d(3), (4, 3)),
]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name,make,shape", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck_every_layer(name, make, shape, train):
    rng = np.random.default_rng(17)
    m = _randomize(make().double(), rng)
    m(_t(rng.standard_normal(shape) * 2 + 1))  # one step of running statistics for eval to use
    x = _t(rng.standard_normal(shape) * 1.5 + 0.5, grad=True)
    _gradcheck_module(m, x, train)


def test_gradcheck_batch_renorm_with_active_correction():
    rng = np.random.default_rng(18)
    m = _randomize(nn.BatchRenorm1d(3, r_max=1.2, d_max=0.2).double(), rng)
    x = _t(rng.standard_normal((5, 3)), grad=True)
    sigma_b = np.sqrt(x.detach().numpy().var(0) + EPS)
    # reference statistics far enough that r and d sit on their clip bounds (constants)
    m.running_std._data[...] = sigma_b * 2.0
    m.running_mean._data[...] = x.detach().numpy().mean(0) - sigma_b
    _gradcheck_module(m, x, train=True)


def test_reprs_match_pytorch():
    assert repr(nn.BatchNorm1d(3)) == ("BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                                       "track_running_stats=True)")
    assert repr(nn.InstanceNorm2d(3)) == ("InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, "
                                          "bias=False, track_running_stats=False)")
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    assert repr(nn.RMSNorm(4)) == "RMSNorm((4,), eps=None, elementwise_affine=True)"
    assert repr(nn.LocalResponseNorm(2)) == "LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)"


@pytest.mark.parametrize("make,shape", [(lambda: nn.BatchNorm1d(3), (0, 3)), (lambda: nn.BatchNorm2d(3), (0, 3, 4, 4)),
                                        (lambda: nn.BatchNorm1d(3), (2, 3, 0)),
                                        (lambda: nn.BatchNorm1d(3, momentum=None), (0, 3))])
def test_empty_batch_leaves_running_statistics_alone(make, shape):
    """PyTorch returns an empty output and does not touch running_mean/var for an
    empty batch (its statistics would be nan); num_batches_tracked still counts."""
    layer = make()
    layer(tn.ones(4, *shape[1:2], *([2] * (len(shape) - 2))) * 3)   # one real batch first
    mean, var = layer.running_mean.numpy().copy(), layer.running_var.numpy().copy()
    x = tn.zeros(*shape, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.shape == shape and x.grad.shape == shape
    np.testing.assert_array_equal(layer.running_mean.numpy(), mean)
    np.testing.assert_array_equal(layer.running_var.numpy(), var)
    assert int(layer.num_batches_tracked.item()) == 2


@pytest.mark.parametrize("make,shape,kind,axes,groups,running", [
    (lambda: nn.BatchNorm2d(4), (2, 4, 3, 3), "batch_norm", (0, 2, 3), None, ("running_mean", "running_var")),
    (lambda: nn.InstanceNorm1d(4), (2, 4, 5), "instance_norm", (2,), None, ()),
    (lambda: nn.GroupNorm(2, 4), (2, 4, 5), "group_norm", (1, 2), 2, ()),
    (lambda: nn.LayerNorm((4, 5)), (3, 4, 5), "layer_norm", (1, 2), None, ()),
    (lambda: nn.RMSNorm(5), (3, 5), "rms_norm", (1,), None, ()),
    (lambda: nn.BatchRenorm1d(4), (6, 4), "batch_renorm", (0,), None, ("running_mean", "running_std")),
    (lambda: nn.MeanOnlyBatchNorm1d(4), (6, 4), "mean_only_batch_norm", (0,), None, ("running_mean",)),
])
def test_the_norm_node_declares_what_it_is(make, shape, kind, axes, groups, running):
    """grad_fn is the one core Function, and it says which layer made it, over which dims,
    in how many groups, with which statistics and running buffers (what tn.viz draws)."""
    layer = make()
    y = layer(tn.randn(*shape, requires_grad=True))
    assert type(y.grad_fn).__name__ == "Normalize" and repr(y.grad_fn) == f"<normalize: {kind}>"
    spec = y.grad_fn.norm
    assert (spec.kind, spec.axes, spec.groups, spec.batch_stats) == (kind, axes, groups, True)
    assert tuple(name for name, _ in spec.running) == running
    assert all(t is getattr(layer, name) for name, t in spec.running)
    assert spec.layout[1] == y.grad_fn.mean.shape[0]
    if running:
        layer.eval()
        assert layer(tn.randn(*shape)).grad_fn.norm.batch_stats is False
