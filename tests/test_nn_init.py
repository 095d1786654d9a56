"""nn.init: gains, fans (PyTorch's rules), the bounds and spreads of every
initialiser (checked statistically), in-place behaviour and reproducibility."""
import math

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn
from tinygrad_norm.nn import init


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported nonlinearity swish"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)


def test_fans_follow_pytorch_including_the_receptive_field():
    assert init._calculate_fan_in_and_fan_out(tn.empty(20, 30)) == (30, 20)
    assert init._calculate_fan_in_and_fan_out(tn.empty(16, 3, 5, 5)) == (75, 400)
    assert init._calculate_fan_in_and_fan_out(tn.empty(8, 4, 7)) == (28, 56)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(tn.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(tn.empty(3, 3), mode="fan_avg")


def _stats(t):
    v = t.numpy().astype(np.float64)
    return np.abs(v).max(), v.std(), v.mean()


def test_uniform_normal_constant_zeros_ones_eye():
    tn.manual_seed(0)
    t = tn.empty(200, 100)
    assert init.uniform_(t, -2.0, 3.0) is t
    v = t.numpy()
    assert v.min() >= -2 and v.max() < 3 and abs(v.mean() - 0.5) < 0.05
    assert abs(v.std() - 5 / math.sqrt(12)) < 0.03
    init.normal_(t, 1.0, 0.5)
    assert abs(t.numpy().mean() - 1.0) < 0.01 and abs(t.numpy().std() - 0.5) < 0.01
    assert init.constant_(t, 0.25).numpy().tolist()[0][:2] == [0.25, 0.25]
    assert not init.zeros_(t).numpy().any()
    assert (init.ones_(t).numpy() == 1).all()
    np.testing.assert_array_equal(init.eye_(tn.empty(3, 4)).numpy(), np.eye(3, 4))
    assert t.dtype == np.float32  # the tensor keeps its dtype


def test_xavier_bounds_and_std():
    tn.manual_seed(1)
    w = tn.empty(300, 200)
    a = math.sqrt(6 / 500)
    m, s, mu = _stats(init.xavier_uniform_(w))
    assert m <= a and m > 0.99 * a and abs(s - a / math.sqrt(3)) < 0.01 * a and abs(mu) < 0.01 * a
    m, s, _ = _stats(init.xavier_uniform_(w, gain=2.0))
    assert m <= 2 * a and m > 0.99 * 2 * a
    _, s, _ = _stats(init.xavier_normal_(w, gain=init.calculate_gain("tanh")))
    assert abs(s - 5 / 3 * math.sqrt(2 / 500)) < 0.01 * s


@pytest.mark.parametrize("mode, nonlinearity, a", [("fan_in", "leaky_relu", 0), ("fan_out", "relu", 0),
                                                   ("fan_in", "leaky_relu", math.sqrt(5)),
                                                   ("fan_in", "linear", 0)])
def test_kaiming_bounds_and_std_on_a_conv_weight(mode, nonlinearity, a):
    tn.manual_seed(2)
    w = tn.empty(64, 32, 3, 3)
    fan = 32 * 9 if mode == "fan_in" else 64 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    m, s, mu = _stats(init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity))
    bound = math.sqrt(3) * std
    assert m <= bound * (1 + 1e-6) and m > 0.99 * bound
    assert abs(s - std) < 0.02 * std and abs(mu) < 0.02 * std
    _, s, mu = _stats(init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity))
    assert abs(s - std) < 0.02 * std and abs(mu) < 0.02 * std


def test_kaiming_uniform_with_sqrt5_is_the_linear_default_bound():
    w = tn.empty(50, 400)
    m, _, _ = _stats(init.kaiming_uniform_(w, a=math.sqrt(5)))
    assert m <= 1 / math.sqrt(400) and m > 0.99 / math.sqrt(400)


def test_kaiming_on_zero_element_tensor_warns():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(tn.empty(0, 3))


def test_trunc_normal_stays_in_bounds():
    tn.manual_seed(3)
    t = init.trunc_normal_(tn.empty(100, 100), mean=0.0, std=1.0, a=-0.5, b=1.0)
    v = t.numpy()
    assert v.min() >= -0.5 and v.max() <= 1.0 and v.min() < -0.49 and v.max() > 0.99
    # the mean of N(0,1) truncated to [a, b] is (φ(a) − φ(b)) / (Φ(b) − Φ(a))
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    expected = (phi(-0.5) - phi(1.0)) / (Phi(1.0) - Phi(-0.5))
    assert abs(v.mean() - expected) < 0.01


def test_orthogonal_gives_orthonormal_rows_or_columns():
    tn.manual_seed(4)
    w = init.orthogonal_(tn.empty(6, 10, dtype=tn.float64)).numpy()
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-12)
    w = init.orthogonal_(tn.empty(10, 6, dtype=tn.float64), gain=2.0).numpy()
    np.testing.assert_allclose(w.T @ w, 4 * np.eye(6), atol=1e-12)


def test_init_is_reproducible_in_place_and_works_on_parameters():
    p = nn.Parameter(tn.empty(4, 5))
    array = p.detach().numpy()
    tn.manual_seed(9)
    init.kaiming_normal_(p)
    first = p.detach().numpy().copy()
    tn.manual_seed(9)
    init.kaiming_normal_(p)
    np.testing.assert_array_equal(p.detach().numpy(), first)
    assert p.detach().numpy() is array and p.grad is None and p.is_leaf  # in place, no graph
    g = np.random.default_rng(0)
    a = init.normal_(tn.empty(3), generator=g).numpy().copy()
    b = init.normal_(tn.empty(3), generator=np.random.default_rng(0)).numpy()
    np.testing.assert_array_equal(a, b)


def test_linear_and_conv_share_pytorchs_default_init_and_its_zero_fan_in_rule():
    """One init for both: weight and bias in U(±1/√fan_in); at fan_in 0 Linear draws its
    (zero) bias from U(0, 0), Conv leaves it: the generator advances for Linear only, as in PyTorch."""
    import warnings
    tn.manual_seed(3)
    lin, conv = nn.Linear(6, 4), nn.Conv2d(2, 3, 3)
    for layer, fan_in in ((lin, 6), (conv, 18)):
        bound = 1 / np.sqrt(fan_in)
        for p in (layer.weight, layer.bias):
            v = np.abs(p.detach().numpy())
            assert v.max() <= bound and v.max() > bound / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "Initializing zero-element tensors is a no-op"
        for make, advances in ((lambda: nn.Linear(0, 3), True), (lambda: nn.Conv2d(0, 3, 3), False)):
            before = tn.get_rng_state().numpy()
            layer = make()
            after = tn.get_rng_state().numpy()
            assert np.array_equal(layer.bias.detach().numpy(), np.zeros(3))
            assert (before.shape != after.shape or not np.array_equal(before, after)) == advances
