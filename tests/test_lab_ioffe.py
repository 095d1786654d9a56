"""The `ioffe` experiment (Ioffe & Szegedy 2015, Fig. 1; docs/protocols.md §1).

The default suite runs `tinygrad-norm run ioffe --quick` once and checks the
direction of every effect, the files it writes, resuming and divergence on a
shortened budget. `pytest -m paper` runs the default protocol and asserts every
threshold of docs/protocols.md §1.
"""

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import cli, lab
from tinygrad_norm.lab.experiments import ioffe
from tinygrad_norm.models import ioffe_mlp

from lab_helpers import mnist_data, needs_mnist, strict_json, verdicts_over_seeds


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHORT = {"steps": 300, "dense_every": 100, "dense_until": 300, "checkpoint_every": 100, "crosscheck": False}


@pytest.fixture(scope="module")
def mnist_env():
    with mnist_data():
        yield


@pytest.fixture(scope="module")
def quick(tmp_path_factory, mnist_env):
    """`tinygrad-norm run ioffe --quick` in a temporary directory: (output dir, results)."""
    out = tmp_path_factory.mktemp("runs")
    assert cli.main(["run", "ioffe", "--quick", "--out", str(out), "--no-progress"]) == 0
    folder = out / "ioffe" / "quick" / "seed-0"
    return folder, strict_json(folder / "results.json")


def test_eval_schedule_follows_the_protocol():
    steps = ioffe.eval_schedule(ioffe.MODES["default"])
    assert steps[:3] == [0, 250, 500] and 5000 in steps and 5250 not in steps
    assert steps[-3:] == [13000, 14000, 15000] and len(steps) == 21 + 10
    assert ioffe.eval_schedule(ioffe.MODES["full"])[-1] == 50000


def test_last_sigmoid_inputs_by_hand_and_without_a_trace():
    """At init the BN net's last sigmoid input is BN(h₂ W₃ᵀ) with the probe set's own statistics."""
    tn.manual_seed(0)
    model = ioffe_mlp(bn=True, hidden=(6, 5, 4))
    model.eval()
    x = np.random.default_rng(0).random((50, 784)).astype(np.float32)
    buffers = {n: b.detach().numpy().copy() for n, b in model.named_buffers()}
    z = ioffe.last_sigmoid_inputs(model, tn.tensor(x))

    def bn(h):   # training-mode BN with γ = 1, β = 0: biased batch variance, eps inside the root
        h = h.astype(np.float64)
        return (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5)

    W = [m.weight.detach().numpy() for m in model if isinstance(m, tn.nn.Linear)]
    h = 1 / (1 + np.exp(-bn(x @ W[0].T)))
    h = 1 / (1 + np.exp(-bn(h @ W[1].T)))
    np.testing.assert_allclose(z, bn(h @ W[2].T), atol=2e-4)
    assert z.shape == (50, 4)
    assert all(np.array_equal(b.detach().numpy(), buffers[n]) for n, b in model.named_buffers())   # running stats untouched
    assert not model.training                                                                 # mode restored


# ------------------------------------------------------------------ the quick run

@needs_mnist
def test_quick_run_writes_valid_results_report_and_figures(quick):
    out, results = quick
    assert results["experiment"] == "ioffe" and results["mode"] == "quick" and results["seed"] == 0
    assert results["config"]["steps"] == 3000 and results["config"]["lr"] == 0.5
    assert results["library"]["tinygrad_norm"] == tn.__version__
    assert set(results["arms"]) == {"bn", "plain", "crosscheck_bn", "crosscheck_plain"}
    for arm in ("bn", "plain"):
        curves = results["arms"][arm]["curves"]
        assert curves["step"] == ioffe.eval_schedule(ioffe.MODES["quick"])
        assert np.array(curves["p50"]).shape == (len(curves["step"]), 100)
        assert results["arms"][arm]["diverged_at"] is None
    assert len(results["claims"]) == 7 and len(results["checks"]) == 2
    assert all(c["rule"] is not None for c in results["claims"] + results["checks"])
    for name in ("accuracy.png", "percentiles.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC and (out / name).stat().st_size > 10_000
    report = (out / "report.md").read_text()
    assert report.count("**PASS**") + report.count("**FAIL**") == 9
    assert "![percentiles.png](percentiles.png)" in report and "Quick mode" in report


@needs_mnist
def test_quick_run_shows_the_direction_of_every_effect(quick):
    _, results = quick
    bn, plain = results["arms"]["bn"]["curves"], results["arms"]["plain"]["curves"]
    acc_bn, acc_plain = np.array(bn["test_accuracy"]), np.array(plain["test_accuracy"])
    # (a) BN is ahead at every evaluation after step 0, and reaches 0.90 much sooner
    assert np.all(acc_bn[1:] > acc_plain[1:])
    assert acc_bn[1] > 0.85 and acc_plain[1] < 0.3
    assert lab.runner.first_step_reaching(bn["step"], bn["test_accuracy"], 0.90) * 3 <= \
        (lab.runner.first_step_reaching(plain["step"], plain["test_accuracy"], 0.90) or 10**9)
    # (b, c) the median sigmoid input drifts less with BN and stays near 0
    assert ioffe.median_drift(bn) * 2.5 < ioffe.median_drift(plain)
    med_bn = np.median(np.array(bn["p50"]), axis=1)
    med_plain = np.median(np.array(plain["p50"]), axis=1)
    assert np.abs(med_bn).max() < 0.5 < 1.0 < np.ptp(med_plain)
    # step 0: collapsed without BN, standardized with BN
    spread = {k: np.median(np.array(c["p85"][0]) - np.array(c["p15"][0])) for k, c in (("bn", bn), ("plain", plain))}
    assert spread["plain"] < 0.1 and abs(spread["bn"] - 2.07) < 0.15
    # every claim but the 0.95 race (which needs more than 3000 steps) passes at the quick budget
    verdicts = {c["section"]: c["verdict"] for c in results["claims"]}
    assert [s for s, v in verdicts.items() if v != "PASS"] in ([], ["1.1"])
    assert [c["verdict"] for c in results["checks"]] == ["PASS", "PASS"]


@needs_mnist
def test_quick_run_matches_pytorch_crosscheck(quick):
    _, results = quick
    for net in ("bn", "plain"):
        got, ref = results["arms"][f"crosscheck_{net}"], ioffe.TORCH_REFERENCE[net]
        assert got["curves"]["test_loss"] == pytest.approx(ref["test_loss"], rel=0.02)
        assert got["curves"]["test_accuracy"] == pytest.approx(ref["test_accuracy"], abs=0.01)
        assert got["train_loss"]["loss"][-1] == pytest.approx(ref["train_loss_251_300"], rel=0.02)
    assert results["checks"][-1]["section"] == "5" and results["checks"][-1]["verdict"] == "PASS"


# ------------------------------------------------------------------ resuming and divergence

def comparable(results):
    drop = {"wall_time_s", "resumed_from"}
    return {a: {k: v for k, v in r.items() if k not in drop} for a, r in results["arms"].items()}, results["claims"]


@needs_mnist
def test_interrupted_ioffe_run_resumes_exactly(tmp_path, mnist_env):
    whole = lab.run("ioffe", mode="quick", out=tmp_path / "whole", overrides=SHORT, progress=False, stream=False)

    def interrupt(arm, step, loss):   # mid-way through the BN net: running statistics must come back too
        if arm == "bn" and step == 150:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lab.run("ioffe", mode="quick", out=tmp_path / "cut", overrides=SHORT, progress=False, stream=False,
                callback=interrupt)
    steps = []
    resumed = lab.run("ioffe", mode="quick", out=tmp_path / "cut", overrides=SHORT, progress=False, stream=False,
                      callback=lambda arm, step, loss: steps.append((arm, step)))
    assert steps[0] == ("bn", 151) and len(steps) == 150 + 300
    assert resumed["arms"]["bn"]["resumed_from"] == 150 and resumed["arms"]["plain"]["resumed_from"] is None
    assert comparable(resumed) == comparable(whole)


@needs_mnist
def test_huge_learning_rate_is_recorded_as_diverged(tmp_path, mnist_env):
    results = lab.run("ioffe", mode="quick", out=tmp_path, overrides=dict(SHORT, lr=1e38), progress=False,
                      stream=False)
    for arm in ("bn", "plain"):
        k = results["arms"][arm]["diverged_at"]
        assert k is not None and k < 10 and results["arms"][arm]["steps_done"] == k
    assert len(results["claims"]) == 1 and results["claims"][0]["verdict"] == "FAIL"
    assert "diverged at step" in results["claims"][0]["measured"]
    report = (tmp_path / results["folder"] / "report.md").read_text()
    assert f"bn diverged at step {results['arms']['bn']['diverged_at']}" in report


# ------------------------------------------------------------------ the paper's thresholds (opt-in)

@pytest.mark.paper
@needs_mnist
def test_default_protocol_every_claim_holds_over_seeds(tmp_path):
    """`tinygrad-norm sweep ioffe --seeds 0-4` (15K steps each, docs/protocols.md §1): every claim holds
    over the seeds (the sweep's 95 % interval rule) and every sanity check too."""
    claims, checks, _ = verdicts_over_seeds(tmp_path, "ioffe")
    assert set(claims) == {"1.1", "1.2", "2", "3.1", "3.2", "3.3", "4.1"} and set(checks) == {"4.2", "5"}
    # "ends more accurate" (2) is of the size of the noise at 15K steps (calibration seeds: +0.36 … +0.98
    # points against a +0.4 margin): it may be inconclusive, it must not fail
    assert {s: v for s, v in claims.items() if v != "holds"} in ({}, {"2": "inconclusive"})
    assert set(checks.values()) == {"holds"}
