"""The laboratory's measuring tools against hand computations, and their promise to leave no trace.

ActivationMonitor, ics and landscape_probe are checked on tiny float64 nets whose
answers have closed forms (a linear net, a quadratic loss); then each is run on a
BatchNorm + Dropout net and the parameters, `.grad`, running buffers, train/eval
flags and the random generator must be bitwise what they were.
"""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import lab, nn
from tinygrad_norm.nn import functional as F


def sumsq(out, y):
    """0.5·Σ(out − y)²: the loss with the simplest hand gradients."""
    d = out - y
    return (d * d).sum() * 0.5


def linear_net(rng, sizes, bias=False):
    """A float64 stack of Linear layers (no activation) with given random weights."""
    layers = [nn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:])]
    model = nn.Sequential(*layers).double()
    for layer in layers:
        layer.weight._data[...] = rng.standard_normal(layer.weight.shape) * 0.5
    return model


def bn_dropout_net():
    tn.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 3))
    x = tn.randn(16, 5)
    y = tn.tensor(np.arange(16) % 3)
    # leave a gradient and running statistics behind, as in the middle of training
    F.cross_entropy(model(x), y).backward()
    return model, (x, y)


def snapshot(model):
    """Everything a probe must leave untouched, as bytes."""
    return {
        "params": [(n, p._data.tobytes(), p._data.dtype, id(p._data)) for n, p in model.named_parameters()],
        "grads": [(n, None if p.grad is None else p.grad._data.tobytes()) for n, p in model.named_parameters()],
        "buffers": [(n, b._data.tobytes(), id(b)) for n, b in model.named_buffers()],
        "training": [m.training for m in model.modules()],
        "rng": tn.get_rng_state().numpy().tobytes(),
    }


# ---------------------------------------------------------------- ActivationMonitor

def percentile_stats(a):
    a = np.asarray(a, np.float64).ravel()
    p15, p50, p85 = np.percentile(a, [15, 50, 85])
    return {"p15": p15, "p50": p50, "p85": p85, "mean": a.mean(), "std": a.std()}


def test_monitor_records_outputs_and_gradients_by_hand():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    W1, b1 = model[0].weight.detach().numpy() * 3, model[0].bias.detach().numpy()   # large weights: some saturation
    model[0].weight._data[...] = W1
    W2 = model[2].weight.detach().numpy()
    x = rng.standard_normal((10, 3))
    C = rng.standard_normal((10, 2))
    with lab.ActivationMonitor(model) as mon:
        out = model(tn.tensor(x))
        (out * tn.tensor(C)).sum().backward()
    assert mon.names == ["0", "1", "2"]
    h = np.tanh(x @ W1.T + b1)
    rec = mon.history["1"]
    for k, v in percentile_stats(h).items():
        assert rec["output"][k] == [pytest.approx(v, rel=1e-12, abs=1e-14)]
    assert rec["output"]["saturated"] == [pytest.approx(np.mean(np.abs(h) > 0.97))]
    assert 0 < rec["output"]["saturated"][0] < 1            # the test exercises both sides
    # dL/dh for L = Σ out·C, out = h W2ᵀ + b2
    for k, v in percentile_stats(C @ W2).items():
        assert rec["grad"][k] == [pytest.approx(v, rel=1e-12, abs=1e-14)]
    # the Linear layers have no saturation; their output gradient is C for the last one
    assert mon.history["0"]["output"]["saturated"] == [None]
    for k, v in percentile_stats(C).items():
        assert mon.history["2"]["grad"][k] == [pytest.approx(v, rel=1e-12)]


def test_monitor_saturation_per_activation():
    tanh_out = np.array([-0.99, -0.97, -0.5, 0.0, 0.5, 0.98, 1.0])      # |y| > 0.97: 3 of 7
    assert lab.monitor.saturation(nn.Tanh(), tanh_out) == pytest.approx(3 / 7)
    sigmoid_out = np.array([0.001, 0.03, 0.02, 0.5, 0.97, 0.98])        # y < 0.03 or y > 0.97: 3 of 6
    assert lab.monitor.saturation(nn.Sigmoid(), sigmoid_out) == pytest.approx(3 / 6)
    relu_out = np.array([0.0, 0.0, 1e-30, 2.0])                         # y == 0: 2 of 4
    assert lab.monitor.saturation(nn.ReLU(), relu_out) == pytest.approx(2 / 4)
    assert lab.monitor.saturation(nn.Linear(1, 1), relu_out) is None


def test_monitor_steps_selection_pause_and_no_grad():
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 5), nn.Sigmoid(), nn.Linear(5, 2))
    x = tn.randn(7, 4)
    with lab.ActivationMonitor(model, modules=(nn.ReLU, nn.Sigmoid)) as mon:
        for _ in range(3):
            model(x).sum().backward()
        with tn.no_grad():
            model(x)                        # recorded, but no gradient will come
        with mon.paused():
            model(x).sum().backward()       # not recorded
    model(x)                                # hooks removed: not recorded
    assert mon.names == ["1", "3"]
    for name in mon.names:
        assert len(mon.history[name]["output"]["mean"]) == 4
        grads = mon.history[name]["grad"]["std"]
        assert len(grads) == 4 and all(g is not None for g in grads[:3]) and grads[3] is None
    relu_out = np.maximum(model[0](x).detach().numpy(), 0)
    assert mon.history["1"]["output"]["saturated"][0] == pytest.approx(np.mean(relu_out == 0))
    by_name = lab.ActivationMonitor(model, modules=["3", model[1]])
    assert by_name.names == ["3", "1"]
    with pytest.raises(ValueError, match="no module named 'fc9'"):
        lab.ActivationMonitor(model, modules=["fc9"])
    with pytest.raises(ValueError, match="not a submodule"):
        lab.ActivationMonitor(model, modules=[nn.ReLU()])
    assert "1" in mon.table() and "sat %" in mon.table()


def test_monitor_changes_nothing():
    model, (x, y) = bn_dropout_net()
    model.zero_grad()
    state = tn.get_rng_state()
    F.cross_entropy(model(x), y).backward()
    plain = snapshot(model)
    # the same step again, from the same state, under the monitor
    model2, _ = bn_dropout_net()
    model2.zero_grad()
    tn.set_rng_state(state)
    with lab.ActivationMonitor(model2) as mon:
        F.cross_entropy(model2(x), y).backward()
    watched = snapshot(model2)
    for key in ("grads", "training", "rng"):
        assert plain[key] == watched[key]
    assert [b[:2] for b in plain["buffers"]] == [b[:2] for b in watched["buffers"]]
    assert [p[:2] for p in plain["params"]] == [p[:2] for p in watched["params"]]
    assert len(mon.history["1"]["output"]["mean"]) == 1


# ----------------------------------------------------------------------------- ics

def test_ics_matches_hand_computation_on_a_linear_net():
    rng = np.random.default_rng(1)
    model = linear_net(rng, [4, 3, 2])
    W1, W2 = model[0].weight.detach().numpy().copy(), model[1].weight.detach().numpy().copy()
    X, Y = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    lr = 0.05
    result = lab.ics(model, sumsq, (tn.tensor(X), tn.tensor(Y)), lr=lr)

    def grads(W1, W2):
        H = X @ W1.T
        E = H @ W2.T - Y
        return (E @ W2).T @ X, E.T @ H          # dL/dW1, dL/dW2

    G1, G2 = grads(W1, W2)
    _, G2_prime = grads(W1 - lr * G1, W2)       # layer 1 already stepped
    assert list(result) == ["0", "1"]
    assert result["0"] == {"l2": 0.0, "cos": pytest.approx(1.0), "norm": pytest.approx(np.linalg.norm(G1))}
    assert result["1"]["l2"] == pytest.approx(np.linalg.norm(G2 - G2_prime), rel=1e-10)
    cos = np.sum(G2 * G2_prime) / (np.linalg.norm(G2) * np.linalg.norm(G2_prime))
    assert result["1"]["cos"] == pytest.approx(cos, rel=1e-12)
    assert result["1"]["l2"] > 1e-3             # a real shift, not a trivial zero
    # parameters untouched
    assert np.array_equal(model[0].weight.detach().numpy(), W1) and np.array_equal(model[1].weight.detach().numpy(), W2)


def test_ics_third_layer_sees_both_earlier_layers_stepped():
    rng = np.random.default_rng(2)
    model = linear_net(rng, [3, 3, 3, 2])
    W = [m.weight.detach().numpy().copy() for m in model]
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    lr = 0.02

    def grads(W1, W2, W3):
        H1 = X @ W1.T
        H2 = H1 @ W2.T
        E = H2 @ W3.T - Y
        D2 = E @ W3
        return (D2 @ W2).T @ X, D2.T @ H1, E.T @ H2

    G = grads(*W)
    G3p = grads(W[0] - lr * G[0], W[1] - lr * G[1], W[2])[2]
    result = lab.ics(model, sumsq, (tn.tensor(X), tn.tensor(Y)), lr=lr, layers=["2"])
    assert list(result) == ["2"]
    assert result["2"]["l2"] == pytest.approx(np.linalg.norm(G[2] - G3p), rel=1e-10)
    with pytest.raises(ValueError, match=r"no layer named \['fc'\]"):
        lab.ics(model, sumsq, (tn.tensor(X), tn.tensor(Y)), lr=lr, layers=["fc"])


def test_ics_changes_nothing_and_is_deterministic_with_dropout():
    model, batch = bn_dropout_net()
    model.eval()                                 # the probe switches to training mode and back
    before = snapshot(model)
    first = lab.ics(model, F.cross_entropy, batch, lr=0.1)
    assert snapshot(model) == before
    second = lab.ics(model, F.cross_entropy, batch, lr=0.1)
    assert first == second                      # the same dropout mask in every pass
    assert list(first) == ["0", "1", "4"]        # Linear, BatchNorm (γ, β), Linear
    assert all(np.isfinite(v["l2"]) and -1 <= v["cos"] <= 1 for v in first.values())


# ----------------------------------------------------------------- landscape_probe

def test_landscape_probe_on_a_quadratic():
    """L(w) = ½‖Xw − y‖²: g = Hw − Xᵀy with H = XᵀX, so ∇L(w − ηg) − g = −ηHg exactly:
    the gradient change is η‖Hg‖, β = ‖Hg‖/‖g‖ for every η, L(w − ηg) = L − η‖g‖² + ½η²gᵀHg."""
    rng = np.random.default_rng(4)
    model = linear_net(rng, [5, 1])
    w = model[0].weight.detach().numpy().ravel().copy()
    X, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 1))
    etas = [0.01, 0.05, 0.2]
    probe = lab.landscape_probe(model, sumsq, (tn.tensor(X), tn.tensor(y)), etas)
    H = X.T @ X
    g = H @ w - X.T @ y.ravel()
    L = 0.5 * np.sum((X @ w - y.ravel()) ** 2)
    losses = [L - e * g @ g + 0.5 * e * e * g @ H @ g for e in etas]
    assert probe["loss"] == pytest.approx(L, rel=1e-12)
    assert probe["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-12)
    assert probe["losses"] == pytest.approx(losses, rel=1e-10)
    assert probe["loss_range"] == pytest.approx(max(losses) - min(losses), rel=1e-9)
    changes = [e * np.linalg.norm(H @ g) for e in etas]
    assert probe["grad_changes"] == pytest.approx(changes, rel=1e-9)
    assert probe["gradient_predictiveness"] == pytest.approx(max(changes), rel=1e-9)
    assert probe["grad_change_min"] == pytest.approx(min(changes), rel=1e-9)
    beta = np.linalg.norm(H @ g) / np.linalg.norm(g)
    assert probe["betas"] == pytest.approx([beta] * 3, rel=1e-9)
    assert probe["beta_smoothness"] == pytest.approx(beta, rel=1e-9)
    assert np.array_equal(model[0].weight.detach().numpy().ravel(), w)


def test_landscape_probe_changes_nothing():
    model, batch = bn_dropout_net()
    before = snapshot(model)
    probe = lab.landscape_probe(model, F.cross_entropy, batch, etas=[0.1, 0.2, 0.4])
    assert snapshot(model) == before
    assert probe == lab.landscape_probe(model, F.cross_entropy, batch, etas=[0.1, 0.2, 0.4])
    assert probe["loss_range"] >= 0 and probe["beta_smoothness"] > 0
    with pytest.raises(ValueError, match="etas is empty"):
        lab.landscape_probe(model, F.cross_entropy, batch, etas=[])


def test_preserved_restores_after_an_exception():
    model, batch = bn_dropout_net()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        with lab.preserved(model):
            model(batch[0])                      # updates the (private) running statistics
            model[0].weight._data = model[0].weight._data * 2
            tn.randn(3)                          # draws from the generator
            raise RuntimeError("boom")
    assert snapshot(model) == before


def test_monitor_keeps_recording_after_clear():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    x = tn.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    with lab.ActivationMonitor(model, modules=nn.Tanh) as monitor:
        model(x)
        monitor.clear()
        assert monitor.history["1"]["output"]["mean"] == []
        y = model(x)
    assert monitor.history["1"]["output"]["mean"] == [pytest.approx(float(y.detach().numpy().mean()))]


def test_accuracy_by_hand_in_eval_mode_in_chunks_nan_rows_wrong():
    from tinygrad_norm.lab.evaluate import accuracy
    model = nn.Sequential(nn.BatchNorm1d(3))                 # logits = (x − running_mean) / √(running_var + ε)
    model[0].running_mean._data[:] = [0.0, 10.0, 0.0]         # eval mode must use these
    x = np.array([[1, 5, 0], [0, 0, 2], [3, 20, 1], [np.nan, 0, 0], [0, 1, 0]], np.float32)
    y = np.array([0, 2, 1, 0, 0])
    # eval logits: rows → argmax 0, 2, 1, (NaN: wrong), 0 → 4 of 5; batch statistics would differ
    for chunk in (1, 2, 5000):
        assert accuracy(model, x, y, chunk=chunk) == pytest.approx(4 / 5)
    assert model.training and model[0].num_batches_tracked.item() == 0
