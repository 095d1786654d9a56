"""Adagrad, RMSprop, Adadelta, OneCycleLR and ReduceLROnPlateau against PyTorch's numbers.

The constants were computed with torch 2.13 (float64) on the same problem:
w0 below, six steps on loss_t = Σ C·w² + D·w·(1 + t mod 3).
"""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import optim
from tinygrad_norm.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau

W0 = np.array([[0.5, -1.0, 2.0], [1.5, -0.25, 0.0]])
C = np.array([[1.0, 2.0, 0.5], [3.0, 1.0, 0.2]])
D = np.array([[0.1, -0.3, 0.0], [0.2, 0.5, -1.0]])

OPTIM_REFS = [
    ('Adagrad', {},
     [[0.4631722778208198, -0.9631513765233134, 1.9637243313919748], [1.463536125318664, -0.2786861845289049, 0.03975913610179065]]),
    ('Adagrad', {'lr': 0.1, 'lr_decay': 0.01, 'weight_decay': 0.1, 'initial_accumulator_value': 0.5},
     [[0.2054292070773793, -0.660935063402812, 1.6640494206311103], [1.1573371901772909, -0.41693877478881436, 0.35992316223185294]]),
    ('Adagrad', {'lr': 0.05, 'maximize': True},
     [[0.6951339419541301, -1.1902419591808453, 2.184981097570602], [1.686850833526151, -0.08843216106939251, -0.20005994496967405]]),
    ('RMSprop', {},
     [[0.17415180713918274, -0.6507559888969703, 1.6472241991178311], [1.1487609058228223, -0.4727347964123017, 0.39503314874037176]]),
    ('RMSprop', {'lr': 0.01, 'momentum': 0.9, 'centered': True, 'weight_decay': 0.01},
     [[-0.4211462171339532, 0.10622195768759947, 0.8411260868414042], [0.35997925378880835, -0.571599386430798, 1.3122046685582114]]),
    ('RMSprop', {'lr': 0.005, 'alpha': 0.9, 'momentum': 0.5},
     [[0.39540562693665093, -0.8945031891049051, 1.8954704602375176], [1.395164778738129, -0.3247770653954397, 0.11224984308911966]]),
    ('RMSprop', {'centered': True, 'maximize': True},
     [[0.9131771121106036, -1.3973745861973108, 2.3833261948928364], [1.8884947677120278, 0.10177490056898726, -0.40898469405822013]]),
    ('Adadelta', {},
     [[0.4795648836957934, -0.9796411846457319, 1.98020548460743], [1.4800182629799286, -0.26378441013364434, 0.022959735559964688]]),
    ('Adadelta', {'lr': 0.5, 'rho': 0.8, 'eps': 0.0001, 'weight_decay': 0.1},
     [[0.42610619557940743, -0.9254767934242181, 1.9269664186745854], [1.4264728913525877, -0.2989690841688497, 0.08252223304893448]]),
    ('Adadelta', {'maximize': True},
     [[0.5207780405503123, -1.0205371556574283, 2.019895787600166], [1.5201115690950786, -0.23586855875343377, -0.02300305220687385]]),
]
ONECYCLE_REFS = [
    ('SGD', {'max_lr': 1.0, 'total_steps': 10},
     [0.040000000000000036, 0.52, 1.0, 0.9504846320134737, 0.8117456539497631, 0.6112620219362893, 0.38874197806371075, 0.18825834605023697, 0.049519367986526286, 4e-06],
     [0.95, 0.8999999999999999, 0.85, 0.854951556604879, 0.8688255099070633, 0.8888739533021842, 0.9111260466978157, 0.9311744900929366, 0.945048443395121, 0.95]),
    ('Adam', {'max_lr': 0.01, 'epochs': 2, 'steps_per_epoch': 4, 'anneal_strategy': 'linear'},
     [0.0004, 0.007257142857142858, 0.008928575714285715, 0.007142868571428571, 0.0053571614285714275, 0.0035714542857142855, 0.0017857471428571435, 3.999999999976245e-08],
     [0.95, 0.8785714285714286, 0.8607142857142857, 0.8785714285714286, 0.8964285714285714, 0.9142857142857143, 0.932142857142857, 0.95]),
    ('SGD', {'max_lr': 0.5, 'total_steps': 12, 'three_phase': True, 'pct_start': 0.25, 'div_factor': 10.0, 'final_div_factor': 100.0},
     [0.04999999999999999, 0.275, 0.5, 0.275, 0.05, 0.047548979480584876, 0.040681372596003657, 0.030757393115418783, 0.01974260688458122, 0.009818627403996347, 0.002951020519415129, 0.0005],
     [0.95, 0.8999999999999999, 0.85, 0.8999999999999999, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]),
]
PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.899, 0.91, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
PLATEAU_LRS = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]
PLATEAU_MAX_METRICS = [0.1, 0.15, 0.3, 0.35, 0.5]
PLATEAU_MAX_LRS = [1.0, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002]


def _run(name, kw, steps=6, w=None):
    w = tn.tensor(W0, requires_grad=True) if w is None else w
    opt = getattr(optim, name)([w], **kw)
    for t in range(steps):
        opt.zero_grad()
        loss = (tn.tensor(C) * w * w + tn.tensor(D) * w * (1 + t % 3)).sum()
        loss.backward()
        opt.step()
    return w, opt


@pytest.mark.parametrize("name,kw,expected", OPTIM_REFS)
def test_optimizers_match_pytorch(name, kw, expected):
    w, _ = _run(name, kw)
    np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,kw,expected", OPTIM_REFS[::3])
def test_float32_parameters_stay_float32_and_close(name, kw, expected):
    w, _ = _run(name, kw, w=tn.tensor(W0.astype(np.float32), requires_grad=True))
    assert w.dtype == np.float32
    np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kw", [("Adagrad", dict(lr=0.1, lr_decay=0.01)),
                                     ("RMSprop", dict(momentum=0.9, centered=True)),
                                     ("Adadelta", dict(rho=0.8))])
def test_state_dict_round_trip_continues_identically(name, kw):
    w_a, opt_a = _run(name, kw, steps=3)
    w_b = tn.tensor(w_a.detach().numpy().copy(), requires_grad=True)
    opt_b = getattr(optim, name)([w_b], **kw)
    opt_b.load_state_dict(opt_a.state_dict())
    for w, opt in ((w_a, opt_a), (w_b, opt_b)):
        for t in range(3):
            opt.zero_grad()
            (tn.tensor(C) * w * w).sum().backward()
            opt.step()
    np.testing.assert_array_equal(w_a.detach().numpy(), w_b.detach().numpy())


def test_invalid_hyperparameters_raise():
    w = [tn.ones(1, requires_grad=True)]
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.Adagrad(w, lr=-1)
    with pytest.raises(ValueError, match="Invalid alpha value: -0.5"):
        optim.RMSprop(w, alpha=-0.5)
    with pytest.raises(ValueError, match="Invalid rho value: 1.5"):
        optim.Adadelta(w, rho=1.5)


@pytest.mark.parametrize("optname,kw,lrs,moms", ONECYCLE_REFS)
def test_one_cycle_matches_pytorch(optname, kw, lrs, moms):
    w = tn.zeros(1, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9) if optname == "SGD" else optim.Adam([w], lr=0.1)
    sched = OneCycleLR(opt, **kw)
    got_lr, got_m = [], []
    for _ in range(sched.total_steps):
        g = opt.param_groups[0]
        got_lr.append(g["lr"])
        got_m.append(g["momentum"] if optname == "SGD" else g["betas"][0])
        opt.step()
        sched.step()
    np.testing.assert_allclose(got_lr, lrs, rtol=1e-12)
    np.testing.assert_allclose(got_m, moms, rtol=1e-12)
    with pytest.raises(ValueError, match=f"Tried to step {sched.total_steps + 1} times"):
        sched.step()


def test_one_cycle_argument_errors():
    opt = optim.SGD([tn.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="either total_steps OR"):
        OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="optimizer must support momentum"):
        OneCycleLR(optim.Adagrad([tn.zeros(1, requires_grad=True)]), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(opt, max_lr=1.0, total_steps=5, anneal_strategy="exp")


def test_reduce_lr_on_plateau_matches_pytorch():
    opt = optim.SGD([tn.zeros(1, requires_grad=True)], lr=1.0)
    sched = ReduceLROnPlateau(opt, patience=2, factor=0.5, cooldown=1, min_lr=0.1, threshold=0.01)
    got = []
    for m in PLATEAU_METRICS:
        sched.step(tn.tensor(m))              # a one-element Tensor works, as in PyTorch
        got.append(opt.param_groups[0]["lr"])
    assert got == PLATEAU_LRS
    assert sched.get_last_lr() == [PLATEAU_LRS[-1]]
    opt = optim.SGD([tn.zeros(1, requires_grad=True)], lr=1.0)
    sched = ReduceLROnPlateau(opt, mode="max", threshold_mode="abs", threshold=0.1, patience=0)
    got = []
    for m in PLATEAU_MAX_METRICS:
        sched.step(m)
        got.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(got, PLATEAU_MAX_LRS, rtol=1e-15)
    state = sched.state_dict()
    assert state["best"] == 0.5 and "optimizer" not in state
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        ReduceLROnPlateau(opt, factor=1.0)
