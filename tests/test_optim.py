"""tn.optim: SGD, Adam, AdamW against PyTorch's numbers, closed forms and the Optimizer contract.

Reference trajectories: torch 2.13 (float64), printed once with the script below
and pasted as literals (torch is never imported by the tests):

    p = torch.tensor(P0, dtype=torch.float64, requires_grad=True); opt = cls([p], **kw)
    for t in range(8):
        with torch.no_grad(): p.grad = 2 * C * p + D * (1 + t % 3)
        opt.step()
"""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.optim import SGD, Adam, AdamW, Optimizer

P0 = [0.5, -1.2, 2.0, 0.0]
C = np.array([1.0, 0.3, 2.0, 0.5])
D = np.array([0.1, -0.2, 0.05, 0.0])

TORCH_TRAJECTORIES = [
    (SGD, {'lr': 0.1},
     [0.005179647999999977, -0.486229802579205, 0.010611391999999989, 0.0]),
    (SGD, {'lr': 0.1, 'momentum': 0.9},
     [-0.41742920299999997, 1.0086601642470605, 0.9709615625000003, 0.0]),
    (SGD, {'lr': 0.1, 'momentum': 0.9, 'dampening': 0.3, 'weight_decay': 0.01},
     [-0.4963647198946426, 0.6279884942471181, 0.08128879313609141, 0.0]),
    (SGD, {'lr': 0.1, 'momentum': 0.9, 'nesterov': True, 'weight_decay': 0.05},
     [-0.1913689475017471, 1.020768198994903, 0.18194787182829694, 0.0]),
    (SGD, {'lr': 0.1, 'momentum': 0.5, 'maximize': True},
     [4.688675683, -3.2357729409463096, 68.58530009949999, 0.0]),
    (Adam, {'lr': 0.01},
     [0.4202631309123922, -1.1203863862276398, 1.9200735614921307, 0.0]),
    (Adam, {'lr': 0.01, 'betas': (0.8, 0.99), 'eps': 1e-06, 'weight_decay': 0.1},
     [0.42041627763172496, -1.1201171728528971, 1.9201466986458202, 0.0]),
    (Adam, {'lr': 0.05, 'betas': (0.9, 0.9), 'amsgrad': True},
     [0.10793551945872983, -0.8037226040586085, 1.6002736802987747, 0.0]),
    (Adam, {'lr': 0.05, 'betas': (0.9, 0.9)},
     [0.10523317796849, -0.8037226040586085, 1.6002736802987747, 0.0]),
    (Adam, {'lr': 0.01, 'maximize': True},
     [0.5802578784050832, -1.2797774046166321, 2.0800921218922164, 0.0]),
    (AdamW, {'lr': 0.01},
     [0.4198928394491094, -1.119455701271426, 1.9185038694351806, 0.0]),
    (AdamW, {'lr': 0.05, 'betas': (0.5, 0.9), 'weight_decay': 0.5, 'amsgrad': True},
     [0.09117372146411037, -0.627975483604451, 1.2852041260726925, 0.0]),
]


def _trajectory(cls, kw, dtype=np.float64, steps=8):
    p = tn.tensor(np.array(P0, dtype), requires_grad=True)
    opt = cls([p], **kw)
    for t in range(steps):
        p.grad = tn.tensor((2 * C * p.detach().numpy() + D * (1 + t % 3)).astype(dtype))
        opt.step()
    return p, opt


@pytest.mark.parametrize("cls,kw,expected", TORCH_TRAJECTORIES,
                         ids=[f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                              for c, kw, _ in TORCH_TRAJECTORIES])
def test_matches_pytorch_trajectory_float64(cls, kw, expected):
    p, _ = _trajectory(cls, kw)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("cls,kw,expected", TORCH_TRAJECTORIES[:2] + TORCH_TRAJECTORIES[5:8])
def test_float32_params_stay_float32_and_track_float64(cls, kw, expected):
    p, opt = _trajectory(cls, kw, dtype=np.float32)
    assert p.dtype == np.float32
    for name, value in opt.state[p].items():  # buffers take the parameter's dtype; "step" is float32 anyway
        assert value.dtype == np.float32, name
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=2e-5, atol=2e-6)


# ----------------------------------------------------------------- SGD details

@pytest.mark.parametrize("kw", [dict(momentum=0.9), dict(momentum=0.9, dampening=0.3, weight_decay=0.01),
                                dict(momentum=0.9, nesterov=True, weight_decay=0.05),
                                dict(momentum=0.5, maximize=True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_fused_kernel_is_bitwise_the_numpy_formula(kw, dtype, monkeypatch):
    """Momentum SGD runs as one numba pass (kernels/optim.py) on writeable contiguous
    parameters; a read-only parameter array takes the numpy path. Both must agree bit for bit."""
    from tinygrad_norm.optim import sgd as sgd_module
    calls, kernel = [], sgd_module.KO.sgd_momentum
    monkeypatch.setattr(sgd_module.KO, "sgd_momentum", lambda *a: (calls.append(1), kernel(*a)))
    rng = np.random.default_rng(3)
    start = rng.standard_normal((7, 5)).astype(dtype)
    fused, plain = tn.Tensor(start, requires_grad=True), tn.Tensor(start, requires_grad=True)
    opts = [SGD([fused], lr=0.1, **kw), SGD([plain], lr=0.1, **kw)]
    for step in range(4):
        g = rng.standard_normal(start.shape).astype(dtype)
        fused.grad, plain.grad = tn.Tensor(g), tn.Tensor(g)
        opts[0].step()
        assert len(calls) == step + 1
        plain._data.flags.writeable = False   # the numpy path replaces the array
        opts[1].step()
        assert len(calls) == step + 1
    np.testing.assert_array_equal(fused.detach().numpy(), plain.detach().numpy())
    np.testing.assert_array_equal(opts[0].state[fused]["momentum_buffer"].numpy(),
                                  opts[1].state[plain]["momentum_buffer"].numpy())
    assert not np.array_equal(fused.detach().numpy(), start)


def test_sgd_first_momentum_buffer_is_the_gradient_without_dampening():
    p = tn.tensor([1.0, -2.0], requires_grad=True, dtype=tn.float64)
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    g1, g2 = np.array([0.3, -0.7]), np.array([1.1, 0.2])
    p.grad = tn.tensor(g1)
    opt.step()
    np.testing.assert_array_equal(opt.state[p]["momentum_buffer"].numpy(), g1)  # not 0.5·g1
    np.testing.assert_allclose(p.detach().numpy(), [1.0, -2.0] - 0.1 * g1, rtol=0, atol=1e-15)
    p.grad = tn.tensor(g2)
    opt.step()
    buf = 0.9 * g1 + 0.5 * g2
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"].numpy(), buf, rtol=1e-15)
    np.testing.assert_allclose(p.detach().numpy(), [1.0, -2.0] - 0.1 * g1 - 0.1 * buf, rtol=1e-15)


def test_sgd_nesterov_step_formula():
    p = tn.tensor([1.0], requires_grad=True, dtype=tn.float64)
    opt = SGD([p], lr=0.5, momentum=0.9, nesterov=True)
    p.grad = tn.tensor(np.array([2.0]))
    opt.step()                                     # buf = 2; step = g + 0.9·buf = 3.8
    np.testing.assert_allclose(p.detach().numpy(), [1.0 - 0.5 * 3.8], rtol=1e-15)


def test_sgd_without_momentum_keeps_no_state():
    p = tn.tensor([1.0, 2.0], requires_grad=True)
    opt = SGD([p], lr=0.1)
    p.grad = tn.ones(2)
    opt.step()
    assert dict(opt.state) == {}
    np.testing.assert_allclose(p.detach().numpy(), [0.9, 1.9], rtol=1e-6)


@pytest.mark.parametrize("kw,match", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (dict(lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "Nesterov momentum requires a momentum and zero dampening"),
])
def test_sgd_invalid_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        SGD([tn.zeros(2, requires_grad=True)], **kw)


def test_sgd_default_lr_is_pytorchs():
    opt = SGD([tn.zeros(1, requires_grad=True)])
    assert opt.param_groups[0]["lr"] == 1e-3
    assert opt.defaults == dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                                maximize=False)


# ----------------------------------------------------------------- Adam details

def test_adam_defaults_are_pytorchs():
    p = tn.zeros(1, requires_grad=True)
    a, w = Adam([p]).defaults, AdamW([tn.zeros(1, requires_grad=True)]).defaults
    for d in (a, w):
        assert (d["lr"], d["betas"], d["eps"], d["amsgrad"]) == (1e-3, (0.9, 0.999), 1e-8, False)
    assert a["weight_decay"] == 0 and w["weight_decay"] == 1e-2
    assert not a["decoupled_weight_decay"] and w["decoupled_weight_decay"]


def test_adam_first_step_is_lr_times_g_over_abs_g_plus_eps():
    """After one step, bias correction makes m̂ = g and √v̂ = |g|: Δp = −lr·g/(|g| + ε).
    With |g| = ε this is lr/2: ε sits outside the corrected root (elsewhere it would
    be ≈ 0.03·lr), which is where PyTorch puts it."""
    g = np.array([1e-8, -1e-8, 3e-8, 1.0, 0.0])
    p = tn.zeros(5, dtype=tn.float64, requires_grad=True)
    opt = Adam([p], lr=1.0)
    p.grad = tn.tensor(g)
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), -g / (np.abs(g) + 1e-8), rtol=1e-12, atol=0)
    assert p.detach().numpy()[0] == pytest.approx(-0.5, rel=1e-9)


def test_adam_state_layout_and_step_counter():
    p = tn.zeros(3, requires_grad=True)
    opt = Adam([p], amsgrad=True)
    for _ in range(3):
        p.grad = tn.ones(3)
        opt.step()
    state = opt.state[p]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert state["step"].shape == () and state["step"].dtype == np.float32 and state["step"].item() == 3.0
    np.testing.assert_allclose(state["exp_avg"].numpy(), 1 - 0.9 ** 3, rtol=1e-6)
    np.testing.assert_allclose(state["exp_avg_sq"].numpy(), 1 - 0.999 ** 3, rtol=1e-5)


def test_adamw_decay_is_decoupled_from_the_gradient():
    """With zero gradient, Adam's L2 term still moves p through m/√v, while AdamW's
    decay is exactly p·(1 − lr·λ) (m = v = 0 makes the Adam part vanish)."""
    p = tn.tensor(np.array([2.0, -4.0]), requires_grad=True)
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = tn.zeros(2, dtype=tn.float64)
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), [2.0 * 0.95, -4.0 * 0.95], rtol=1e-15)
    q = tn.tensor(np.array([2.0, -4.0]), requires_grad=True)
    opt = Adam([q], lr=0.1, weight_decay=0.5)
    q.grad = tn.zeros(2, dtype=tn.float64)
    opt.step()  # g = λ·q, first step: Δ = −lr·sign(q)
    np.testing.assert_allclose(q.detach().numpy(), [2.0 - 0.1, -4.0 + 0.1], rtol=1e-7)


def test_adam_beta1_zero_makes_first_moment_the_gradient_exactly():
    p = tn.zeros(4, requires_grad=True)
    opt = Adam([p], betas=(0.0, 0.999))
    for g in ([0.1, 0.2, 0.3, 0.7], [0.123, -4.5, 1e-3, 3.3]):
        p.grad = tn.tensor(g)
        opt.step()
        np.testing.assert_array_equal(opt.state[p]["exp_avg"].numpy(), np.array(g, np.float32))


@pytest.mark.parametrize("kw,match", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
])
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_invalid_arguments(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        cls([tn.zeros(2, requires_grad=True)], **kw)


# ------------------------------------------------------------ shared contract

OPTIMIZERS = [
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True, maximize=True)),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.1)),
    (Adam, dict(lr=0.1, weight_decay=0.1, amsgrad=True, maximize=True)),
    (AdamW, dict(lr=0.1, weight_decay=0.1)),
]
OPT_IDS = ["sgd-nesterov", "sgd-dampening", "adam-amsgrad", "adamw"]


@pytest.mark.parametrize("cls,kw", OPTIMIZERS, ids=OPT_IDS)
def test_step_never_modifies_grad_in_place(cls, kw):
    p = tn.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = cls([p], **kw)
    for _ in range(3):
        g = tn.tensor([0.5, 0.25, -1.0])
        g_array = g.numpy()
        snapshot = g_array.copy()
        p.grad = g
        opt.step()
        assert p.grad is g and p.grad.numpy() is g_array
        np.testing.assert_array_equal(g_array, snapshot)
        for value in opt.state[p].values():  # no state buffer aliases the gradient
            assert not np.shares_memory(value.numpy(), g_array)


@pytest.mark.parametrize("cls,kw", OPTIMIZERS, ids=OPT_IDS)
def test_params_without_grad_are_skipped(cls, kw):
    a = tn.tensor([1.0, 2.0], requires_grad=True)
    b = tn.tensor([3.0, 4.0], requires_grad=True)
    opt = cls([a, b], **kw)
    a.grad = tn.tensor([1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(b.detach().numpy(), [3.0, 4.0])
    assert b not in opt.state
    assert not np.array_equal(a.detach().numpy(), [1.0, 2.0])


@pytest.mark.parametrize("cls,kw", OPTIMIZERS, ids=OPT_IDS)
def test_step_updates_the_parameter_array_in_place(cls, kw):
    """Views of a parameter (e.g. a tied weight's numpy array) see the update."""
    p = tn.tensor([1.0, 2.0], requires_grad=True)
    array = p.detach().numpy()
    opt = cls([p], **kw)
    p.grad = tn.tensor([1.0, -1.0])
    opt.step()
    assert p.detach().numpy() is array and not np.array_equal(array, [1.0, 2.0])


def test_step_with_real_backward_decreases_loss():
    tn.manual_seed(0)
    w = tn.randn(5, 1, requires_grad=True)
    x, y = tn.randn(32, 5), tn.randn(32, 1)
    opt = SGD([w], lr=0.05, momentum=0.9)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # the least-squares optimum is the floor
    w_star = np.linalg.lstsq(x.numpy().astype(np.float64), y.numpy().astype(np.float64), rcond=None)[0]
    floor = np.mean((x.numpy() @ w_star - y.numpy()) ** 2)
    assert losses[-1] < losses[0] and losses[-1] - floor < 0.05 * (losses[0] - floor)


def test_closure_is_called_with_grad_enabled_and_its_loss_returned():
    w = tn.tensor([2.0], requires_grad=True)
    opt = SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        assert tn.is_grad_enabled()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with tn.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0
    assert w.item() == pytest.approx(2.0 - 0.25 * 4.0)


def test_zero_grad_set_to_none_and_to_zeros():
    p = tn.tensor([1.0, 2.0], requires_grad=True)
    opt = SGD([p], lr=0.1)
    p.grad = tn.tensor([3.0, 4.0])
    opt.zero_grad()
    assert p.grad is None
    old = tn.tensor([3.0, 4.0])
    p.grad = old
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(old.numpy(), [3.0, 4.0])  # a new array, the old one untouched
    assert p.grad.dtype == np.float32


def test_param_groups_have_their_own_hyperparameters():
    a = tn.tensor([1.0], requires_grad=True)
    b = tn.tensor([1.0], requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is b
    a.grad, b.grad = tn.ones(1), tn.ones(1)
    opt.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.5)
    opt.param_groups[0]["lr"] = 0.2  # changing the group's lr takes effect on the next step
    opt.step()
    assert a.item() == pytest.approx(0.7)


def test_add_param_group_and_its_errors():
    a, b = tn.zeros(1, requires_grad=True), tn.zeros(2, requires_grad=True)
    opt = Adam([a], lr=0.01)
    opt.add_param_group({"params": [b], "betas": (0.5, 0.9)})
    g = opt.param_groups[1]
    assert g["params"][0] is b and g["lr"] == 0.01 and g["betas"] == (0.5, 0.9) and g["eps"] == 1e-8
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([b])


def test_constructor_errors():
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts, but got a Tensor"):
        SGD(tn.zeros(2, requires_grad=True), lr=0.1)
    with pytest.raises(TypeError, match="ordering of tensors in sets will change"):
        SGD({tn.zeros(2, requires_grad=True)}, lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the params is ndarray"):
        SGD([np.zeros(2)], lr=0.1)
    x = tn.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        SGD([x * 2], lr=0.1)
    with pytest.raises(ValueError, match="same parameter more than once"):
        SGD([x, x], lr=0.1)


def test_generator_of_parameters_is_accepted():
    ps = [tn.zeros(2, requires_grad=True) for _ in range(3)]
    opt = SGD((p for p in ps), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 3


def test_repr_lists_groups():
    opt = SGD([tn.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text


# ----------------------------------------------------------------- state dicts

def _two_group_adam():
    tn.manual_seed(1)
    a, b, c = tn.randn(3, 2, requires_grad=True), tn.randn(4, requires_grad=True), tn.randn(2, requires_grad=True)
    opt = Adam([{"params": [a, b]}, {"params": [c], "lr": 0.1, "amsgrad": True}], lr=0.01)
    return [a, b, c], opt


def _grads_for(params, t):
    for i, p in enumerate(params):
        p.grad = tn.tensor(np.cos(np.arange(p.numel()) + 1.7 * t + i).reshape(p.shape).astype(np.float32))


def test_state_dict_layout_is_pytorchs():
    params, opt = _two_group_adam()
    _grads_for(params[:2], 0)   # c has no grad: no state for index 2
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert set(sd["state"]) == {0, 1}
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][1]["params"] == [2]
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][1]["amsgrad"] is True
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    # a snapshot: later steps do not change it
    before = sd["state"][0]["exp_avg"].numpy().copy()
    _grads_for(params[:2], 1)
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"].numpy(), before)


@pytest.mark.parametrize("cls,kw", OPTIMIZERS, ids=OPT_IDS)
def test_load_state_dict_then_continue_is_bitwise_identical(cls, kw):
    def make():
        tn.manual_seed(3)
        ps = [tn.randn(3, 2, requires_grad=True), tn.randn(4, requires_grad=True)]
        return ps, cls(ps, **kw)

    ref_params, ref = make()
    for t in range(6):
        _grads_for(ref_params, t)
        ref.step()

    params, opt = make()
    for t in range(3):
        _grads_for(params, t)
        opt.step()
    saved_params = [p.detach().numpy().copy() for p in params]
    sd = opt.state_dict()
    params2, opt2 = make()  # fresh optimizer, other hyperparameters: the dict wins
    opt2.param_groups[0]["lr"] = 123.0
    for p, s in zip(params2, saved_params):
        p.detach().numpy()[...] = s
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    for t in range(3, 6):
        _grads_for(params2, t)
        opt2.step()
    for p, r in zip(params2, ref_params):
        np.testing.assert_array_equal(p.detach().numpy(), r.detach().numpy())


def test_load_state_dict_copies_and_casts_to_param_dtype():
    p = tn.zeros(3, requires_grad=True)  # float32
    opt = SGD([p], lr=0.1, momentum=0.9)
    buf = np.array([1.0, 2.0, 3.0])      # float64
    sd = {"state": {0: {"momentum_buffer": tn.tensor(buf)}}, "param_groups": [
        dict(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=False, maximize=False, params=[0])]}
    opt.load_state_dict(sd)
    loaded = opt.state[p]["momentum_buffer"]
    assert loaded.dtype == np.float32
    assert not np.shares_memory(loaded.numpy(), sd["state"][0]["momentum_buffer"].numpy())
    p.grad = tn.zeros(3)
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"].numpy(), buf)  # the dict is untouched


def test_load_state_dict_mismatch_errors():
    _, opt = _two_group_adam()
    sd = opt.state_dict()
    one_group = Adam([tn.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="different number of parameter groups"):
        one_group.load_state_dict(sd)
    a, b, c, d = (tn.zeros(1, requires_grad=True) for _ in range(4))
    other = Adam([{"params": [a]}, {"params": [b, c, d]}])
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        other.load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"param_groups": []})
    params, opt = _two_group_adam()
    _grads_for(params, 0)
    opt.step()
    sd = opt.state_dict()
    small = [tn.zeros(1, 1, requires_grad=True), tn.zeros(4, requires_grad=True), tn.zeros(2, requires_grad=True)]
    opt_small = Adam([{"params": small[:2]}, {"params": small[2:]}])
    with pytest.raises(ValueError, match=r"'exp_avg' has shape \(3, 2\) but its parameter has shape \(1, 1\)"):
        opt_small.load_state_dict(sd)



def test_load_state_dict_of_another_optimizer_fails_at_load_naming_the_mismatch():
    w = tn.ones(2, requires_grad=True)
    adam = Adam([w])
    (w * w).sum().backward()
    adam.step()
    sgd = SGD([tn.ones(2, requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"not from a SGD: its parameter group 0 has amsgrad, betas, "
                                         r"decoupled_weight_decay, eps but no dampening, momentum, nesterov"):
        sgd.load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="not from a Adam: .* has dampening, momentum, nesterov but no"):
        Adam([tn.ones(2, requires_grad=True)]).load_state_dict(sgd.state_dict())
    # Adam <-> AdamW share their hyperparameters: allowed, as in PyTorch
    AdamW([tn.ones(2, requires_grad=True)]).load_state_dict(adam.state_dict())
    # a scheduler's keys (initial_lr, ...) do not count as a mismatch
    tn.optim.lr_scheduler.StepLR(sgd, step_size=1)
    SGD([tn.ones(2, requires_grad=True)], lr=0.1).load_state_dict(sgd.state_dict())

def test_custom_optimizer_subclass():
    """The base class is usable for user optimizers, as torch.optim.Optimizer is."""

    class SignSGD(Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        def _update(self, group):
            for p in group["params"]:
                if p.grad is not None:
                    p._data -= group["lr"] * np.sign(p.grad._data)

    p = tn.tensor([1.0, -1.0], requires_grad=True)
    opt = SignSGD([p])
    p.grad = tn.tensor([5.0, -0.01])
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), [0.9, -0.9], rtol=1e-6)
    assert opt._opt_called
