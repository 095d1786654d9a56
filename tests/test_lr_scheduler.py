"""tn.optim.lr_scheduler against PyTorch's values step by step (torch 2.13, printed once:
`opt.step(); sched.step(); sched.get_last_lr()[0]` after creating the scheduler on SGD(lr=...)),
their closed forms, state_dict round trips and warnings."""
import math
import warnings

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.optim import SGD
from tinygrad_norm.optim.lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, MultiStepLR,
                                              StepLR)

TORCH_STEP = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125]
TORCH_MULTI = [0.1, 0.1, 0.010000000000000002, 0.010000000000000002, 0.010000000000000002,
               0.00010000000000000005, 0.00010000000000000005, 0.00010000000000000005,
               1.0000000000000006e-05, 1.0000000000000006e-05, 1.0000000000000006e-05]
TORCH_COS = [0.1, 0.09509795896116975, 0.08136274519200731, 0.061514786230837566, 0.03948521376916245,
             0.019637254807992697, 0.005902041038830259, 0.001, 0.005902041038830253, 0.019637254807992683,
             0.03948521376916243, 0.061514786230837525, 0.08136274519200731, 0.09509795896116978,
             0.10000000000000002, 0.09509795896116978, 0.08136274519200734, 0.06151478623083755,
             0.03948521376916246, 0.019637254807992707, 0.005902041038830264, 0.001, 0.005902041038830253,
             0.019637254807992846, 0.03948521376916277, 0.0615147862308381, 0.08136274519200812,
             0.09509795896117061, 0.10000000000000092, 0.09509795896117064, 0.08136274519200815]
TORCH_COS0 = [1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 0.0, 0.1464466094067262, 0.5000000000000001,
              0.8535533905932742, 1.0000000000000004, 0.8535533905932742, 0.5000000000000003,
              0.14644660940672674, 0.0]
TORCH_LAMBDA = [0.1, 0.19, 0.281, 0.3729, 0.4656100000000001, 0.559049]
TORCH_EXP = [0.1, 0.09000000000000001, 0.08100000000000002, 0.07290000000000002, 0.06561000000000002,
             0.05904900000000002, 0.05314410000000002]
TORCH_LINEAR = [0.025, 0.043750000000000004, 0.06250000000000001, 0.08125000000000002, 0.10000000000000002,
                0.10000000000000002, 0.10000000000000002, 0.10000000000000002]
TORCH_LINEAR_DOWN = [0.1, 0.06999999999999999, 0.039999999999999994, 0.009999999999999998, 0.009999999999999998,
                     0.009999999999999998]


def _opt(lr=0.1, groups=1):
    params = [tn.zeros(1, requires_grad=True) for _ in range(groups)]
    return SGD([{"params": [p]} for p in params], lr=lr)


def _run(make, n, lr=0.1):
    opt = _opt(lr)
    sched = make(opt)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(n):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == lrs[-1]
    return lrs


@pytest.mark.parametrize("make,n,lr,expected", [
    (lambda o: StepLR(o, 3, gamma=0.5), 10, 0.1, TORCH_STEP),
    (lambda o: MultiStepLR(o, [2, 5, 5, 8], gamma=0.1), 10, 0.1, TORCH_MULTI),
    (lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.001), 30, 0.1, TORCH_COS),
    (lambda o: CosineAnnealingLR(o, T_max=4), 12, 1.0, TORCH_COS0),
    (lambda o: LambdaLR(o, lambda e: 0.9 ** e + e), 5, 0.1, TORCH_LAMBDA),
    (lambda o: ExponentialLR(o, 0.9), 6, 0.1, TORCH_EXP),
    (lambda o: LinearLR(o, start_factor=0.25, total_iters=4), 7, 0.1, TORCH_LINEAR),
    (lambda o: LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=3), 5, 0.1, TORCH_LINEAR_DOWN),
], ids=["step", "multistep", "cosine-eta_min", "cosine-past-T_max", "lambda", "exponential", "linear-warmup",
        "linear-decay"])
def test_values_match_pytorch_step_by_step(make, n, lr, expected):
    assert _run(make, n, lr) == expected  # same float operations in the same order: bit for bit


def test_cosine_recursion_tracks_the_closed_form():
    T, eta_min, base = 50, 1e-4, 0.3
    lrs = _run(lambda o: CosineAnnealingLR(o, T_max=T, eta_min=eta_min), 2 * T, lr=base)
    closed = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(2 * T + 1)]
    np.testing.assert_allclose(lrs, closed, rtol=1e-9, atol=1e-15)
    assert lrs[T] == pytest.approx(eta_min, abs=1e-15)


def test_recursive_schedules_carry_a_manual_lr_change():
    opt = _opt(0.1)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    opt.step()
    sched.step()
    opt.param_groups[0]["lr"] = 1.0  # e.g. a user's warm restart
    opt.step()
    sched.step()
    assert sched.get_last_lr() == [0.5]


def test_initial_lr_and_base_lrs_per_group():
    opt = SGD([{"params": [tn.zeros(1, requires_grad=True)], "lr": 0.1},
               {"params": [tn.zeros(1, requires_grad=True)], "lr": 0.01}], lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.1)
    assert sched.base_lrs == [0.1, 0.01] and sched.last_epoch == 0
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.01]
    opt.step()
    sched.step()
    assert sched.get_last_lr() == pytest.approx([0.01, 0.001])


def test_lambda_lr_one_function_per_group_and_count_checked():
    opt = _opt(1.0, groups=2)
    sched = LambdaLR(opt, [lambda e: 1.0 / (e + 1), lambda e: 2.0 ** e])
    for _ in range(3):
        opt.step()
        sched.step()
    assert sched.get_last_lr() == [0.25, 8.0]
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        LambdaLR(opt, [lambda e: 1.0])


def test_step_with_epoch_uses_closed_form_and_warns():
    opt = _opt(0.1)
    sched = MultiStepLR(opt, [2, 4], gamma=0.5)
    opt.step()
    with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
        sched.step(5)
    assert sched.last_epoch == 5 and sched.get_last_lr() == [0.1 * 0.25]


def test_warns_when_scheduler_steps_before_optimizer():
    opt = _opt(0.1)
    sched = StepLR(opt, 1)
    with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        sched.step()
    opt2 = _opt(0.1)
    sched2 = StepLR(opt2, 1)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_get_lr_outside_step_warns():
    sched = StepLR(_opt(), 1)
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        sched.get_lr()


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\]"):
        StepLR(_opt(), 3, last_epoch=4)


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        StepLR([], 3)


@pytest.mark.parametrize("make", [
    lambda o: StepLR(o, 3, gamma=0.5),
    lambda o: MultiStepLR(o, [2, 5, 5, 8], gamma=0.3),
    lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    lambda o: LambdaLR(o, lambda e: 0.95 ** e),
    lambda o: ExponentialLR(o, 0.8),
    lambda o: LinearLR(o, start_factor=0.1, total_iters=9),
], ids=["step", "multistep", "cosine", "lambda", "exponential", "linear"])
def test_state_dict_round_trip_through_a_file_continues_identically(make, tmp_path):
    """Interrupt after 6 steps, save optimizer + scheduler with tn.save, rebuild both
    from scratch, load, continue: the lrs equal those of an uninterrupted run."""
    full = _run(make, 15)
    opt = _opt()
    sched = make(opt)
    for _ in range(6):
        opt.step()
        sched.step()
    tn.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "ckpt.npz")
    ckpt = tn.load(tmp_path / "ckpt.npz")
    opt2 = _opt()
    sched2 = make(opt2)
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    lrs = [sched2.get_last_lr()[0]]
    for _ in range(9):
        opt2.step()
        sched2.step()
        lrs.append(sched2.get_last_lr()[0])
    assert lrs == full[6:]


def test_lambda_state_dict_saves_callable_objects_not_functions():
    class Warmup:
        def __init__(self):
            self.factor = 0.5

        def __call__(self, epoch):
            return self.factor * (epoch + 1)

    opt = _opt(1.0, groups=2)
    obj = Warmup()
    obj.factor = 0.25
    sched = LambdaLR(opt, [lambda e: 1.0, obj])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"factor": 0.25}]
    opt2 = _opt(1.0, groups=2)
    fresh = Warmup()
    sched2 = LambdaLR(opt2, [lambda e: 1.0, fresh])
    sched2.load_state_dict(sd)
    assert fresh.factor == 0.25 and "lr_lambdas" in sd


def test_multistep_state_dict_keeps_counts():
    opt = _opt()
    sched = MultiStepLR(opt, [3, 3, 6])
    sd = sched.state_dict()
    assert dict(sd["milestones"]) == {3: 2, 6: 1}
    opt2 = _opt()
    sched2 = MultiStepLR(opt2, [1])
    sched2.load_state_dict({**sd, "milestones": {3: 2, 6: 1}})  # a plain dict, as after tn.load
    opt2.step()
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched2.step(7)
    assert sched2.get_last_lr()[0] == pytest.approx(0.1 * 0.1 ** 3)


def test_linear_lr_validates_factors():
    with pytest.raises(ValueError, match="Starting multiplicative factor expected to be greater than 0"):
        LinearLR(_opt(), start_factor=0.0)
    with pytest.raises(ValueError, match="Ending multiplicative factor expected to be between 0 and 1"):
        LinearLR(_opt(), end_factor=1.5)
