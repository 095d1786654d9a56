"""The `noisy_bn` experiment (Santurkar et al. 2018, Fig. 2 and Algorithm 1; docs/protocols.md §4).

`DistributionNoise` is checked against a numpy re-drawing of Algorithm 1 (the same
generator, the same order), its distribution's moments, and its gradient
(gradcheck with fixed noise, and s·g by hand); a shortened run (300 steps) checks
the direction of every effect and the files written; `pytest -m paper` runs the
default protocol and asserts its verdicts.
"""

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import lab, nn
from tinygrad_norm.autograd import gradcheck
from tinygrad_norm.lab.experiments import noisy_bn
from tinygrad_norm.lab.experiments.noisy_bn import DistributionNoise

from lab_helpers import verdicts_over_seeds, MNIST_DIR, needs_mnist, quick_run, strict_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHORT = {"steps": 300, "test_every": 150, "checkpoint_every": 300}


def algorithm_1(seed, shape, n_mu=0.5, n_sigma=1.25, r_mu=0.1, r_sigma=0.1):
    """Santurkar et al.'s Algorithm 1 in numpy: (s, m) for one step, per channel μ_t, σ_t."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    mu = rng.uniform(-n_mu, n_mu, c)
    sigma = rng.uniform(1, n_sigma, c)
    per_channel = (1, c) + (1,) * (len(shape) - 2)
    m = rng.uniform(mu.reshape(per_channel) - r_mu, mu.reshape(per_channel) + r_mu, shape)
    s = rng.normal(sigma.reshape(per_channel), r_sigma, shape)
    return s, m


def test_noise_is_algorithm_1_drawn_from_the_library_generator():
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    noise = DistributionNoise(4)
    tn.manual_seed(7)
    out = noise(tn.tensor(x))
    s, m = algorithm_1(7, (6, 4))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), s * x + m, rtol=1e-6, atol=1e-6)   # a ← s·a + m
    out2 = noise(tn.tensor(x))                                           # fresh noise at every step
    assert not np.allclose(out.numpy(), out2.numpy())
    tn.manual_seed(7)
    np.testing.assert_array_equal(noise(tn.tensor(x)).numpy(), out.numpy())   # reproducible
    # images: H and W count as batch, one μ_t and σ_t per channel
    tn.manual_seed(3)
    x4 = np.ones((2, 3, 4, 5))
    s, m = algorithm_1(3, x4.shape)
    out4 = DistributionNoise(3)(tn.tensor(x4))
    assert out4.dtype == np.float64
    np.testing.assert_allclose(out4.numpy(), s + m, rtol=1e-12)


def test_noise_moments():
    """Per channel, m spans [μ_t − 0.1, μ_t + 0.1] and s ~ N(σ_t, 0.1²); across channels μ_t ~ U(−0.5, 0.5)
    (mean 0, variance 1/12) and σ_t ~ U(1, 1.25) (mean 1.125, variance 0.25²/12)."""
    tn.manual_seed(0)
    c, n = 2000, 400
    s, m = DistributionNoise(c).sample((n, c))
    centre = (m.max(0) + m.min(0)) / 2                       # ≈ μ_t per channel
    assert np.all(m.max(0) - m.min(0) <= 0.2) and np.all(m.max(0) - m.min(0) > 0.19)
    assert abs(centre.mean()) < 0.03 and centre.var() == pytest.approx(1 / 12, rel=0.1)
    assert -0.502 < centre.min() < -0.49 and 0.49 < centre.max() < 0.502   # estimates of μ_t, ± 0.2/400
    assert (m - m.mean(0)).var() == pytest.approx(0.2 ** 2 / 12, rel=0.02)   # U(±0.1) around μ_t
    sigma = s.mean(0)                                        # ≈ σ_t per channel (± 0.1/√400)
    assert sigma.mean() == pytest.approx(1.125, abs=0.005) and sigma.var() == pytest.approx(0.25 ** 2 / 12, rel=0.15)
    assert (s - s.mean(0)).std() == pytest.approx(0.1, rel=0.01)             # r_σ read as the std


def test_noise_passes_gradients_as_the_affine_map():
    noise = DistributionNoise(3)
    x = tn.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)

    def fixed_noise(x):
        tn.manual_seed(11)                                   # the same s, m at every evaluation
        return noise(x)
    gradcheck(fixed_noise, (x,))
    g = np.random.default_rng(2).standard_normal((4, 3))
    (fixed_noise(x) * tn.tensor(g)).sum().backward()
    s, _ = algorithm_1(11, (4, 3))
    np.testing.assert_allclose(x.grad.numpy(), s * g, rtol=1e-12)        # ∂L/∂a = s · ∂L/∂out


def test_noise_in_eval_mode_and_errors():
    x = tn.tensor(np.arange(6.0).reshape(2, 3))
    noise = DistributionNoise(3).eval()
    state = tn.get_rng_state().numpy().copy()
    np.testing.assert_array_equal(noise(x).numpy(), 1.125 * x.numpy())      # E[s]·a + E[m]
    noise.at_eval = "identity"
    assert noise(x) is x
    np.testing.assert_array_equal(tn.get_rng_state().numpy(), state)       # no draws in eval mode
    assert "n_sigma=1.25" in repr(DistributionNoise(3)) and "at_eval='mean'" in repr(DistributionNoise(3))
    with pytest.raises(ValueError, match=r"expects input \(N, 3, \.\.\.\), got shape \(2, 4\)"):
        DistributionNoise(3)(tn.zeros(2, 4))
    with pytest.raises(ValueError, match="n_sigma ≥ 1"):
        DistributionNoise(3, n_sigma=0.5)
    with pytest.raises(ValueError, match="at_eval must be 'mean' or 'identity'"):
        DistributionNoise(3, at_eval="off")


def test_arms_are_built_as_the_protocol_says():
    cfg = noisy_bn.EXPERIMENT.config("default")
    assert (cfg["lr"], cfg["batch_size"], cfg["steps"]) == (0.1, 128, 3000)
    assert (cfg["n_mu"], cfg["n_sigma"], cfg["r_mu"], cfg["r_sigma"]) == (0.5, 1.25, 0.1, 0.1)
    models = {}
    for arm, (bn, noisy) in noisy_bn.ARMS.items():
        tn.manual_seed(0)
        models[arm] = noisy_bn.build(cfg, bn, noisy)
    assert [type(m).__name__ for m in models["noisy_bn"]][:4] == ["Linear", "BatchNorm1d", "DistributionNoise", "ReLU"]
    assert [type(m).__name__ for m in models["noisy_plain"]][:3] == ["Linear", "DistributionNoise", "ReLU"]
    assert sum(isinstance(m, DistributionNoise) for m in models["noisy_bn"]) == 8
    assert not any(isinstance(m, DistributionNoise) for m in models["bn"].modules())
    first = {a: next(m for m in model if isinstance(m, nn.Linear)).weight.detach().numpy() for a, model in models.items()}
    for a in first:                                          # every arm starts from the same weights
        np.testing.assert_array_equal(first[a], first["plain"])


def test_claims_on_made_up_curves():
    cfg = noisy_bn.EXPERIMENT.config("default")

    def arm(losses, acc, identity=None, moves=0.01):
        steps = [100 * (i + 1) for i in range(len(losses))]
        means = [[[moves * (t % 2)] * 3] * 2 for t in range(3)]          # 3 probes, 2 layers, 3 units
        curves = {"step": [0, 1500, 3000], "test_accuracy": [0.1, 0.5, acc], "unit_mean": means,
                  "unit_std": [[[1.0] * 3] * 2] * 3, "layer_std": [[0.6, 0.7], [1.0, 1.1], [1.3, 1.4]]}
        if identity is not None:
            curves["test_accuracy_identity"] = [0.1, 0.5, identity]
        return {"steps": 3000, "diverged_at": None, "train_loss": {"step": steps, "loss": losses}, "curves": curves}
    # 30 windows; the last third is windows 21–30 (steps 2100 … 3000)
    arms = {"plain": arm([1.0] * 20 + [0.2] * 10, 0.96, moves=0.1), "bn": arm([1.0] * 20 + [0.1] * 10, 0.97),
            "noisy_bn": arm([9.0] * 20 + [0.105] * 10, 0.965, 0.9, moves=0.3),
            "noisy_plain": arm([2.3] * 30, 0.11, 0.1)}
    rows = noisy_bn.claims(cfg, arms)
    assert [r.section for r in rows] == ["1", "1 (vs BN)", "2", "3", "4"]
    assert [r.kind for r in rows] == ["claim", "check", "claim", "claim", "claim"]
    assert [r.verdict for r in rows] == ["PASS"] * 5 and all(r.rule is not None for r in rows)
    assert noisy_bn.instability(arms["noisy_bn"]["curves"]) == pytest.approx(0.3)
    assert rows[0].value == pytest.approx(3.0) and rows[1].value == pytest.approx(30.0)
    assert rows[2].value == pytest.approx(0.005) and rows[3].value == pytest.approx(0.005)
    assert "with the noise removed instead: 0.9000" in rows[2].measured and "1.05×" in rows[2].measured
    arms["noisy_bn"] = arm([0.1] * 20 + [0.2] * 10, 0.95, 0.9, moves=0.12)
    arms["noisy_plain"] = arm([2.3] * 29 + [1.99], 0.5, 0.5)
    assert [r.verdict for r in noisy_bn.claims(cfg, arms)] == ["FAIL", "PASS", "FAIL", "FAIL", "FAIL"]
    arms["noisy_plain"]["diverged_at"] = 5                   # a diverged noisy standard net did not train
    assert noisy_bn.claims(cfg, arms)[4].verdict == "PASS"
    assert noisy_bn.last_third_loss(arm([1.0] * 20 + [0.5] * 10, 0.9)) == 0.5


def test_relu_input_stats_leave_no_trace():
    tn.manual_seed(0)
    cfg = dict(noisy_bn.MODES["quick"], depth=2, width=6)
    model = noisy_bn.build(cfg, True, True)
    x = tn.tensor(np.random.default_rng(0).random((20, 784)).astype(np.float32))
    state = tn.get_rng_state()
    buffers = [b.numpy().copy() for _, b in model.named_buffers()]
    means, stds = noisy_bn.relu_input_stats(model, x)
    assert means.shape == stds.shape == (2, 6) and np.all(stds > 0)
    assert all(np.array_equal(a, b.numpy()) for a, (_, b) in zip(buffers, model.named_buffers()))
    again, _ = noisy_bn.relu_input_stats(model, x)             # the generator was restored: the same noise
    np.testing.assert_array_equal(means, again)
    np.testing.assert_array_equal(tn.get_rng_state().numpy(), state.numpy())


# ------------------------------------------------------------------ a shortened run


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    return quick_run(tmp_path_factory, "noisy-bn", SHORT)


@needs_mnist
def test_short_run_writes_results_report_and_figure(short):
    out, results = short
    saved = strict_json(out / "results.json")
    assert set(saved["arms"]) == {"plain", "bn", "noisy_bn", "noisy_plain"}
    assert saved["arms"]["noisy_bn"]["curves"]["step"] == [0, 150, 300]
    report = (out / "report.md").read_text()
    assert report.count("**PASS**") + report.count("**FAIL**") == 5 == len(saved["claims"]) + len(saved["checks"])
    assert np.array(saved["arms"]["noisy_bn"]["curves"]["unit_mean"]).shape == (3, 8, 100)
    assert (out / "noisy_bn.png").read_bytes()[:8] == PNG_MAGIC and "![noisy_bn.png](noisy_bn.png)" in report


@needs_mnist
def test_short_run_shows_the_direction_of_every_effect(short):
    _, results = short
    arms = results["arms"]
    loss = {a: r["train_loss"]["loss"] for a, r in arms.items()}
    acc = {a: r["curves"]["test_accuracy"][-1] for a, r in arms.items()}
    assert loss["bn"][-1] < loss["noisy_bn"][-1] < loss["noisy_plain"][-1]   # the noise costs training loss
    assert loss["noisy_plain"][-1] > 1.5 * loss["plain"][-1]                  # and slows the standard net most
    assert abs(acc["noisy_bn"] - acc["bn"]) < 0.02 and acc["bn"] > 0.9        # yet noisy BN nearly matches BN
    identity = arms["noisy_bn"]["curves"]["test_accuracy_identity"][-1]
    assert identity < acc["noisy_bn"]                       # removing the noise at test time costs accuracy
    moved = {a: noisy_bn.instability(r["curves"]) for a, r in arms.items()}
    assert moved["noisy_bn"] > 3 * moved["bn"]               # the noise shakes the distributions


@needs_mnist
def test_resumed_run_draws_the_same_noise(short, tmp_path, monkeypatch):
    """Interrupted at step 120 and resumed: the noisy arm's losses are those of the uninterrupted run."""
    _, results = short
    monkeypatch.setenv("TINYGRAD_NORM_DATA", MNIST_DIR)

    def stop(arm, step, loss):
        if arm == "noisy_bn" and step == 120:
            raise KeyboardInterrupt
    short_cfg = dict(SHORT, steps=200)
    with pytest.raises(KeyboardInterrupt):
        lab.run("noisy_bn", mode="quick", out=tmp_path, overrides=short_cfg, progress=False, stream=False,
                callback=stop)
    resumed = lab.run("noisy_bn", mode="quick", out=tmp_path, overrides=short_cfg, progress=False, stream=False)
    assert resumed["arms"]["noisy_bn"]["resumed_from"] == 120
    assert resumed["arms"]["noisy_bn"]["train_loss"]["loss"] == results["arms"]["noisy_bn"]["train_loss"]["loss"][:2]


# ------------------------------------------------------------------ the protocol

@needs_mnist
@pytest.mark.paper
def test_default_protocol_over_seeds(tmp_path):
    """`tinygrad-norm sweep noisy-bn --seeds 0-4` (≈ 1 min a seed): the verdicts of docs/protocols.md §4 over
    the seeds that the default runs of seeds 0 and 1 make certain: noisy BN matches BN's accuracy, and the
    noisy standard net trains (a FAIL that is the finding: its lowest 100-step loss was 0.129 and 0.131)."""
    claims, checks, _ = verdicts_over_seeds(tmp_path, "noisy-bn")
    assert {s: claims[s] for s in ROBUST} == ROBUST and checks == {"1 (vs BN)": "holds"}


ROBUST = {"2": "holds", "4": "fails"}
