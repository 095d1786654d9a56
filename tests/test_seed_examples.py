"""The seeds' worked examples (examples/seeds/): every script runs and prints its key lines, and its
numbers agree with independent plain-numpy computations (the seeds' own programs rewritten in numpy,
BatchNorm by hand, quadrature vs Monte Carlo) — never with the same tinygrad_norm code path."""
import importlib.util
import math
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "examples", "seeds")
_MODULES = {}


def load(name):
    """Import examples/seeds/NAME.py once (it puts the repo on sys.path itself)."""
    if name not in _MODULES:
        spec = importlib.util.spec_from_file_location(f"seed_example_{name}", os.path.join(SEEDS, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[name] = module
    return _MODULES[name]


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


# ====================================================================== the scripts run

KEY_LINES = {
    "seed000_batchnorm_by_hand": [
        "mean 1.1250  std 0.2795 / 0.3227   (seed: mean 1.125, std 0.31)",
        "x̂ (ε=1e-5)         [-0.4472, +1.3416, -1.3416, +0.4472]",
        "x̂ (ε=1e-5)         [-0.5076, +1.3196, -1.3196, +0.5076]",
        "[0.112500, 0.174750, 0.209275]   [0.910417, 0.822285, 0.741123]",
        "31 of 48 checked numbers are wrong",
    ],
    "seed001_internal_covariate_shift": [
        "Initial mean: 0.5642, Final mean: 0.5731",
        "small    1.23e-89    5.562e-48          0",
        "large         inf    4.158e+52        nan",
        "he         0.8234       0.7934     0.7934",
        "Average KL divergence due to weight change: 0.0113",
        "relative errors equal the plain net's",
    ],
    "seed002_train_vs_inference": [
        "training mode raises: Expected more than 1 value per channel when training",
        "average stored variance, PyTorch (unbiased ÷(m−1)): 4.0",
        "average stored variance, seed's rule with its σ²_B (÷m): 2.0",
    ],
    "seed003_saturation_and_monitoring": [
        "0.989203     0.993307     0.9933",
        "0.010505     0.006648     0.0065",
        "0.206621     0.250000     0.1966",
        "UnboundLocalError: cannot access local variable 'model'",
        "TypeError: Parameter is not a Module subclass",
        "    Epoch 9: Loss=",
    ],
}


@pytest.mark.parametrize("name", sorted(KEY_LINES))
def test_script_runs_and_prints_its_key_lines(name):
    # NOTE: one BLAS thread: the machine is shared, and oversubscribed BLAS threads are 10× slower
    env = dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, os.path.join(SEEDS, f"{name}.py")], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    for line in KEY_LINES[name]:
        assert line in proc.stdout, f"{line!r} not printed by {name}"


# ====================================================================== seed 000: BatchNorm by hand

def test_seed000_tables_and_running_statistics_by_hand():
    m = load("seed000_batchnorm_by_hand")
    t1, t2, t2k, rs = m.without_bn(), m.with_bn(), m.with_bn(1e-3), m.running_statistics()
    x = np.array([[2.0, 3.0, 1.5, 2.5], [2.2, 3.1, 1.8, 2.7], [2.4, 3.2, 2.0, 2.8]])   # the seed's inputs
    w1, w2 = [0.5, 0.3, 0.2], [0.8, 0.9, 1.1]
    torch_rm, torch_rv, keras_rm, keras_rv, fused_rv, snip_rm, snip_rv = 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0
    for s in range(3):
        h = w1[s] * x[s]
        z = w2[s] * h
        np.testing.assert_allclose(t1[s]["h"], h, rtol=0, atol=1e-14)
        np.testing.assert_allclose(t1[s]["relu"], np.maximum(z, 0), rtol=0, atol=1e-14)
        assert t1[s]["h_mean"] == pytest.approx(h.mean(), abs=1e-14)
        assert t1[s]["h_std_biased"] == pytest.approx(np.std(h), rel=1e-12)
        assert t1[s]["h_std_unbiased"] == pytest.approx(np.std(h, ddof=1), rel=1e-12)
        mu, var, var_u = h.mean(), h.var(), h.var(ddof=1)
        np.testing.assert_allclose(t2[s]["normalized"], (h - mu) / np.sqrt(var + 1e-5), rtol=0, atol=1e-12)
        np.testing.assert_allclose(t2[s]["relu"], np.maximum((h - mu) / np.sqrt(var + 1e-5), 0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(t2k[s]["normalized"], (h - mu) / np.sqrt(var + 1e-3), rtol=0, atol=1e-12)
        assert t2[s]["var_biased"] == pytest.approx(var, rel=1e-12)
        assert t2[s]["var_unbiased"] == pytest.approx(var_u, rel=1e-12)
        # the running averages, written out
        torch_rm, torch_rv = 0.9 * torch_rm + 0.1 * mu, 0.9 * torch_rv + 0.1 * var_u
        keras_rm, keras_rv = 0.99 * keras_rm + 0.01 * mu, 0.99 * keras_rv + 0.01 * var
        fused_rv = 0.99 * fused_rv + 0.01 * var_u
        snip_rm, snip_rv = 0.1 * snip_rm + 0.9 * mu, 0.1 * snip_rv + 0.9 * var
        assert rs["pytorch"]["mean"][s] == pytest.approx(torch_rm, rel=1e-12)
        assert rs["pytorch"]["var"][s] == pytest.approx(torch_rv, rel=1e-12)
        assert rs["keras_nonfused"]["mean"][s] == pytest.approx(keras_rm, rel=1e-12)
        assert rs["keras_nonfused"]["var"][s] == pytest.approx(keras_rv, rel=1e-12)
        assert rs["keras_fused"]["mean"][s] == pytest.approx(keras_rm, rel=1e-12)
        assert rs["keras_fused"]["var"][s] == pytest.approx(fused_rv, rel=1e-12)
        assert rs["seed_snippet_m0.1"]["mean"][s] == pytest.approx(snip_rm, rel=1e-12)
        assert rs["seed_snippet_m0.1"]["var"][s] == pytest.approx(snip_rv, rel=1e-12)
    # steps 1 and 3 are affine images of the same pattern (0, 1, 2, 3 in another order): ±0.4472, ±1.3416
    assert abs(t2[0]["normalized"][1]) == pytest.approx(3 / math.sqrt(5), rel=1e-4)


def test_seed000_checks_flag_exactly_the_wrong_numbers():
    m = load("seed000_batchnorm_by_hand")
    checks = m.seed_checks()
    wrong = {r["what"] for r in checks if not r["ok"]}
    assert len(checks) == 48 and len(wrong) == 31
    assert not any(w.startswith("T1") and "pre-activation" in w for w in wrong)     # W₂·W₁·x is right
    assert "T1 step 3: std of layer-1 outputs" not in wrong                        # 0.10 = unbiased 0.1033
    assert {"T1 step 1: std of layer-1 outputs", "T1 step 2: std of layer-1 outputs",
            "Key observation step 1: mean of layer-2 inputs", "Key observation step 3: mean of layer-2 inputs",
            "T2 step 2 sample 4: 'Layer 2 Input' column"} <= wrong
    assert sum("normalized x̂" in w for w in wrong) == 12                           # every normalized value
    # the seed's normalized values are not standardized: std ≈ 0.90, not 1
    assert np.std([-0.40, 1.21, -1.21, 0.40]) == pytest.approx(0.901, abs=1e-3)


# ====================================================================== seed 001

def test_seed001_init_demo_against_the_seeds_numpy_program():
    m = load("seed001_internal_covariate_shift")
    demo = m.init_demo()
    rs = np.random.RandomState(42)            # = np.random.seed(42) and the seed's draw order
    x = rs.randn(128, 256)
    weights = {"small": [rs.randn(256, 256) * 0.01 for _ in range(50)],
               "large": [rs.randn(256, 256) * 1.0 for _ in range(50)],
               "he": [rs.randn(256, 256) * np.sqrt(2 / 256) for _ in range(50)]}
    for init, ws in weights.items():
        h = x
        for w in ws:
            h = np.maximum(0, h @ w)
        assert demo[init]["float64"]["std"][-1] == pytest.approx(np.std(h), rel=1e-9), init
    assert 1e-49 < demo["small"]["float64"]["std"][-1] < 1e-46            # seed: 1.23e-89
    assert 1e52 < demo["large"]["float64"]["std"][-1] < 1e53              # seed: inf
    assert demo["he"]["float64"]["std"][-1] == pytest.approx(0.7934, abs=5e-5)   # seed: 0.8234
    with np.errstate(all="ignore"):           # float32: underflow to 0 and overflow to inf, then NaN
        for init, expect in (("small", "zeros"), ("large", "nonfinite")):
            h = x.astype(np.float32)
            for w in weights[init]:
                h = np.maximum(h @ w.astype(np.float32), np.float32(0))
            if expect == "zeros":
                assert (h == 0).all() and demo[init]["float32"]["zero_fraction"][-1] == 1.0
            else:
                assert not np.isfinite(h).any() and demo[init]["float32"]["nonfinite_fraction"][-1] == 1.0


def test_seed001_drift_and_kl_against_the_seeds_numpy_programs():
    m = load("seed001_internal_covariate_shift")
    rs = np.random.RandomState(42)
    W, b = rs.randn(10, 10) * 0.5, np.zeros(10)
    X = rs.randn(1000, 10)
    means, stds = [], []
    for _ in range(100):
        h = np.maximum(0, X @ W + b)
        means.append(np.mean(h))
        stds.append(np.std(h))
        W += rs.randn(10, 10) * 0.01
        b += rs.randn(10) * 0.01
    d = m.activation_drift()
    np.testing.assert_allclose(d["mean"], means, rtol=1e-10)
    np.testing.assert_allclose(d["std"], stds, rtol=1e-10)
    assert abs(means[-1] / means[0] - 1) < 0.05 and abs(stds[-1] / stds[0] - 1) < 0.05   # not "dramatic"

    rs = np.random.RandomState(42)
    h = rs.randn(10000, 100)
    W_init = rs.randn(50, 100) * 0.1
    W_trained = W_init + rs.randn(50, 100) * 0.05
    z1, z2 = h @ W_init.T, h @ W_trained.T
    m1, v1, m2, v2 = z1.mean(0), z1.var(0), z2.mean(0), z2.var(0)
    kl = 0.5 * (np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)
    k = m.kl_shift()
    assert k["kl_sample"] == pytest.approx(kl.mean(), rel=1e-9)
    assert k["mean_shift"] == pytest.approx(np.abs(m2 - m1).mean(), rel=1e-9)
    assert k["std_ratio"] == pytest.approx(np.sqrt(v2 / v1).mean(), rel=1e-9)
    p1, p2 = (W_init ** 2).sum(1), (W_trained ** 2).sum(1)
    assert k["kl_population"] == pytest.approx((0.5 * (np.log(p2 / p1) + p1 / p2 - 1)).mean(), rel=1e-12)
    t = m.covariate_shift_table()
    assert t["uniform_train"]["var"] == pytest.approx(100 / 12) and t["uniform_test"]["var"] == pytest.approx(12)
    assert t["normal_train_mass_in_range"] == pytest.approx(0.98758, abs=1e-5)   # P(|Z| ≤ 2.5)
    assert t["normal_test_mass_in_range"] == pytest.approx(0.95450, abs=1e-5)    # P(|Z| ≤ 2)


def _np_loss(model, x, y, delta=None, eval_mode=False):
    """Cross-entropy of the Sequential MLP of seed 001's rewrite, in numpy; delta: {param name: array}."""
    delta = delta or {}
    h = x
    for i, layer in enumerate(model):
        kind = type(layer).__name__
        p = {n: layer._parameters[n].detach().numpy() + delta.get(f"{i}.{n}", 0) for n in layer._parameters
             if layer._parameters[n] is not None}
        if kind == "Linear":
            h = h @ p["weight"].T + p["bias"]
        elif kind == "BatchNorm1d":
            mu, var = (np.zeros(h.shape[1]), np.ones(h.shape[1])) if eval_mode else (h.mean(0), h.var(0))
            h = (h - mu) / np.sqrt(var + 1e-5) * p["weight"] + p["bias"]
        elif kind == "ReLU":
            h = np.maximum(h, 0)
    logp = h - h.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


@pytest.mark.parametrize("bn", [False, True])
def test_seed001_predictiveness_against_numpy(bn):
    m = load("seed001_internal_covariate_shift")
    model = m.build_mlp(bn=bn)
    xb, yb = m._problem()
    x, y = xb.detach().numpy(), yb.detach().numpy()
    before = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    buffers = {n: b.detach().numpy().copy() for n, b in model.named_buffers()}
    res = m.predictiveness(model, (xb, yb), alphas=(0.01, 0.3, 3.0), direction="random", direction_seed=1)
    # the direction, drawn as documented: N(0, I) on the Linear parameters in order, 0 on γ and β, unit norm
    rng = np.random.default_rng(1)
    d = {n: (rng.standard_normal(p.shape) if type(model[int(n.split(".")[0])]).__name__ == "Linear"
             else np.zeros(p.shape)) for n, p in model.named_parameters()}
    norm = np.sqrt(sum((v ** 2).sum() for v in d.values()))
    d = {n: v / norm for n, v in d.items()}
    loss0 = _np_loss(model, x, y)
    assert res["loss"] == pytest.approx(loss0, rel=1e-12)
    h = 1e-5
    slope = (_np_loss(model, x, y, {n: h * v for n, v in d.items()})
             - _np_loss(model, x, y, {n: -h * v for n, v in d.items()})) / (2 * h)
    assert res["slope"] == pytest.approx(slope, rel=1e-4, abs=1e-9)
    for row in res["rows"]:
        actual = _np_loss(model, x, y, {n: row["alpha"] * v for n, v in d.items()}) - loss0
        assert row["actual"] == pytest.approx(actual, rel=1e-9, abs=1e-13)
        assert row["rel_error"] == pytest.approx(abs(actual - row["alpha"] * slope) / max(abs(actual), 1e-8), rel=1e-3)
    for n, p in model.named_parameters():                  # the probe leaves the model bitwise unchanged
        np.testing.assert_array_equal(p.detach().numpy(), before[n])
    for n, b in model.named_buffers():
        np.testing.assert_array_equal(b.detach().numpy(), buffers[n])
    if bn:   # the seed's eval mode at init: running stats (0, 1) make BN ≈ the identity
        ev = m.predictiveness(model, (xb, yb), alphas=(0.3,), mode="eval")
        assert ev["loss"] == pytest.approx(_np_loss(model, x, y, eval_mode=True), rel=1e-12)
        plain = m.predictiveness(m.build_mlp(bn=False), (xb, yb), alphas=(0.3,))
        assert ev["loss"] == pytest.approx(plain["loss"], rel=1e-4)


# ====================================================================== seed 002

@pytest.fixture(scope="module")
def classifier():
    m = load("seed002_train_vs_inference")
    return m, m.train_classifier()


def _np_bn_accuracy(model, x, y, stats=None):
    """Accuracy of Linear → BN → ReLU → Linear in numpy; stats = (mean, var) or None for batch statistics."""
    w0, b0 = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    g, beta = model[1].weight.detach().numpy(), model[1].bias.detach().numpy()
    w3, b3 = model[3].weight.detach().numpy(), model[3].bias.detach().numpy()
    z = x @ w0.T + b0
    mu, var = stats if stats is not None else (z.mean(0), z.var(0))
    h = np.maximum((z - mu) / np.sqrt(var + 1e-5) * g + beta, 0)
    return float(((h @ w3.T + b3).argmax(1) == y).mean())


def test_seed002_frozen_batch_and_reestimated_statistics_against_numpy(classifier):
    m, (model, (x_train, _)) = classifier
    bn = model[1]
    rm, rv = bn.running_mean.detach().numpy().copy(), bn.running_var.detach().numpy().copy()
    f = m.frozen_statistics(model, (x_train, None))
    np.testing.assert_array_equal(bn.running_mean.detach().numpy(), rm)          # restored
    np.testing.assert_array_equal(bn.running_var.detach().numpy(), rv)
    u = np.random.default_rng(2).standard_normal((2000, 8))
    x_a, y = 5 + 2 * u, (u @ np.random.default_rng(0).standard_normal((8, 3))).argmax(1)
    x_b = 14 + 1.5 * (x_a - 5)
    assert f["A_eval"] == _np_bn_accuracy(model, x_a, y, (rm, rv))
    assert f["B_eval_frozen"] == _np_bn_accuracy(model, x_b, y, (rm, rv))
    assert f["A_batch_stats"] == _np_bn_accuracy(model, x_a, y) == f["B_batch_stats"]
    assert f["B_eval_frozen"] < f["A_eval"] - 0.05                      # frozen statistics hurt ...
    # ... re-estimated ones (momentum=None: the AVERAGE of the per-batch means and unbiased variances) do not
    xa = 5 + 2 * np.random.default_rng(3).standard_normal((1000, 8))
    z = (14 + 1.5 * (xa - 5)) @ model[0].weight.detach().numpy().T + model[0].bias.detach().numpy()
    chunks = [z[i:i + 100] for i in range(0, 1000, 100)]
    stats = (np.mean([c.mean(0) for c in chunks], 0), np.mean([c.var(0, ddof=1) for c in chunks], 0))
    assert f["B_eval_reestimated"] == _np_bn_accuracy(model, x_b, y, stats)
    assert f["B_eval_reestimated"] > f["A_eval"] - 0.02
    assert f["xhat_B_std"] == pytest.approx(1.5 * f["xhat_A_std"], rel=1e-9)   # z_B = 1.5·z_A + c exactly


def test_seed002_running_vs_batch_statistics(classifier):
    m, (model, data) = classifier
    r = m.running_vs_batch(model, data)
    z = data[0] @ model[0].weight.detach().numpy().T + model[0].bias.detach().numpy()
    np.testing.assert_allclose(r["population_mean"], z.mean(0), rtol=1e-10)
    np.testing.assert_allclose(r["population_var"], z.var(0, ddof=1), rtol=1e-10)
    assert np.abs(r["running_var"] / r["population_var"] - 1).max() < 0.5   # a noisy estimate, of the right size
    assert r["sample0_eval_two_batches_diff"] == 0 and r["sample0_train_two_batches_diff"] > 1e-3
    assert r["train_vs_eval_max_diff"] > 1e-3 and r["eval_single_equals_batch"]
    assert "Expected more than 1 value per channel" in r["train_single_error"]


def test_seed002_batches_of_two_against_numpy():
    m = load("seed002_train_vs_inference")
    s = m.small_batches(channels=300, batches=5, seed=7)
    rng = np.random.default_rng(7)
    xs = [5 + 2 * rng.standard_normal((2, 300)) for _ in range(5)]
    assert s["pytorch_running_var"] == pytest.approx(np.mean([x.var(0, ddof=1) for x in xs]), rel=1e-10)
    assert s["seed_rule_running_var"] == pytest.approx(np.mean([x.var(0) for x in xs]), rel=1e-10)
    assert s["pytorch_running_mean"] == pytest.approx(np.mean(xs), rel=1e-10)
    last = xs[-1][:, 0]
    expect = (last - last.mean()) / np.sqrt(last.var() + 1e-5)
    np.testing.assert_allclose(s["normalized_last_batch_channel0"], expect, atol=1e-12)
    assert s["max_deviation_from_formula"] < 1e-10
    full = m.small_batches()                        # 20000 batches: 4 and 2 within 5 standard errors
    assert abs(full["pytorch_running_var"] - 4) < 5 * 4 * math.sqrt(2 / 20000)
    assert abs(full["seed_rule_running_var"] - 2) < 5 * 2 * math.sqrt(2 / 20000)


# ====================================================================== seed 003

def test_seed003_saturation_quadrature_vs_integration_and_monte_carlo():
    m = load("seed003_saturation_and_monitoring")
    s = m.saturation()
    d_sig = lambda v: sigmoid(v) * (1 - sigmoid(v))  # noqa: E731
    rng = np.random.default_rng(123)
    z = rng.standard_normal(2_000_000)
    for name, mu in (("centred", 0.0), ("shifted", 5.0)):
        r = s[name]
        t = np.linspace(mu - 12, mu + 12, 200_001)                 # a fine trapezoid rule, independent of Hermite
        pdf = np.exp(-(t - mu) ** 2 / 2) / np.sqrt(2 * np.pi)
        for key, f in (("activation", sigmoid), ("gradient", d_sig)):
            assert r[f"expected_{key}"] == pytest.approx(np.trapezoid(f(t) * pdf, t), abs=1e-10)
            mc = f(mu + z)
            assert abs(r[f"expected_{key}"] - mc.mean()) < 5 * mc.std() / np.sqrt(z.size)
            assert abs(r[f"sample_{key}"] - r[f"expected_{key}"]) < 4 * r[f"se_{key}"]
        # the sample means are means of the draws; σ′ came from autograd
        assert r["sample_activation"] == pytest.approx(sigmoid(r["draws"]).mean(), rel=1e-12)
        assert r["sample_gradient"] == pytest.approx(d_sig(r["draws"]).mean(), rel=1e-12)
        assert r["plugin_activation"] == pytest.approx(sigmoid(mu), rel=1e-14)
    assert s["centred"]["expected_activation"] == pytest.approx(0.5, abs=1e-14)
    # what the seed printed for the shifted inputs: the plug-in values, ~10 standard errors from the means
    sh = s["shifted"]
    assert abs(0.9933 - sigmoid(5.0)) < 1e-4 and abs(0.0065 - d_sig(5.0)) < 2e-4
    assert abs(0.9933 - sh["expected_activation"]) > 8 * sh["se_activation"]
    assert abs(0.0065 - sh["expected_gradient"]) > 8 * sh["se_gradient"]
    assert abs(0.1966 - s["centred"]["expected_gradient"]) > 6 * s["centred"]["se_gradient"]


@pytest.mark.parametrize("bn", [False, True])
def test_seed003_tracked_statistics_against_numpy(bn):
    m = load("seed003_saturation_and_monitoring")
    import tinygrad_norm as tn
    tn.manual_seed(0)
    model = m.SimpleNetwork(bn=bn)
    h = m.train_and_monitor(model, epochs=2)
    x, _ = m.synthetic_digits(1000, 0)
    p = {n: t.detach().numpy().astype(np.float64) for n, t in model.named_parameters()}
    b = {n: t.detach().numpy().astype(np.float64) for n, t in model.named_buffers()}

    def layer(a, i):
        zz = a @ p[f"fc{i}.weight"].T + p[f"fc{i}.bias"]
        if bn:      # eval mode: running statistics
            zz = ((zz - b[f"bn{i}.running_mean"]) / np.sqrt(b[f"bn{i}.running_var"] + 1e-5) * p[f"bn{i}.weight"]
                  + p[f"bn{i}.bias"])
        return np.maximum(zz, 0)

    h1 = layer(x.astype(np.float64), 1)
    h2 = layer(h1, 2)
    for k, a in (("h1", h1), ("h2", h2)):
        batches = [a[i:i + 100] for i in range(0, 1000, 100)]
        assert h[f"{k}_mean"][-1] == pytest.approx(np.mean([c.mean() for c in batches]), rel=1e-4)
        assert h[f"{k}_var"][-1] == pytest.approx(np.mean([c.var(ddof=1) for c in batches]), rel=1e-4)
        mon = h["monitor"]["relu1" if k == "h1" else "relu2"][-1]
        assert mon["mean"] == pytest.approx(h[f"{k}_mean"][-1], rel=1e-5)
        assert mon["var_unbiased"] == pytest.approx(h[f"{k}_var"][-1], rel=1e-4)
        assert mon["dead"] == pytest.approx(np.mean([(c == 0).mean() for c in batches]), abs=1e-3)
    assert h["loss"][1] < h["loss"][0]


def test_seed003_stable_network_and_identity_recovery():
    m = load("seed003_saturation_and_monitoring")
    b = m.seed_stable_network()
    assert b["as_written"].startswith("UnboundLocalError") and "'model'" in b["as_written"]
    assert b["model_defined_first"].startswith("TypeError") and "not a Module" in b["model_defined_first"]
    st = m.stable_network_stats()
    for order, r in st.items():
        assert r["weight_std"] == pytest.approx(math.sqrt(2 / 784), rel=0.01)
        bn_name = next(n for n, k in r["kinds"].items() if k == "BatchNorm1d")
        assert abs(r["layers"][bn_name]["mean"]) < 1e-5            # training mode: batch statistics
        assert r["layers"][bn_name]["std"] == pytest.approx(1.0, abs=0.01)
    # an independent forward of the Linear → BN → ReLU order in numpy
    import tinygrad_norm as tn
    tn.manual_seed(0)
    model = m.build_stable_network(bn_before_relu=True)
    x, _ = m.synthetic_digits(256, seed=1)
    z = x.astype(np.float64) @ model[0].weight.detach().numpy().T + model[0].bias.detach().numpy()
    r = np.maximum((z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5), 0)
    relu = st["linear_bn_relu"]["layers"]["2"]
    assert relu["mean"] == pytest.approx(r.mean(), rel=1e-4) and relu["std"] == pytest.approx(r.std(), rel=1e-4)
    assert relu["saturated"] == pytest.approx((r == 0).mean(), abs=1e-3)
    i = m.identity_recovery()
    assert i["gamma_sqrt_var_plus_eps"] < 1e-12
    assert 1e-7 < i["gamma_sigma"] < 2e-5          # |x − μ|·ε/(2σ²) with σ = 2
