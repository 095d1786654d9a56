"""The `diagnostics` experiment (Karpathy, makemore part 3; docs/protocols.md §8).

The default suite runs `tinygrad-norm run diagnostics --quick` once and checks the
direction of every effect and the files it writes; the initialisation and the
update:data ratio are checked against plain numpy.
"""

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import cli, lab
from tinygrad_norm.lab.experiments import diagnostics

from lab_helpers import MNIST_DIR, mnist_data, needs_mnist, strict_json, verdicts_over_seeds

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("activations.png", "gradients.png", "weight_gradients.png", "update_ratio.png", "layer_stats.png")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """`tinygrad-norm run diagnostics --quick` in a temporary directory: (output dir, results)."""
    out = tmp_path_factory.mktemp("runs")
    with mnist_data():
        assert cli.main(["run", "diagnostics", "--quick", "--out", str(out), "--no-progress"]) == 0
    folder = out / "diagnostics" / "quick" / "seed-0"
    return folder, strict_json(folder / "results.json")


def test_karpathy_init_gain_and_last_layer_scaling():
    for bn in (True, False):
        tn.manual_seed(0)
        model = diagnostics.karpathy_mlp(bn, 5 / 3, hidden=400, layers=3, inputs=400)
        linears = [m for m in model if isinstance(m, tn.nn.Linear)]
        stds = [float(m.weight.detach().numpy().std() * np.sqrt(m.weight.shape[1])) for m in linears]
        assert stds[0] == pytest.approx(5 / 3, rel=0.02) and stds[1] == pytest.approx(5 / 3, rel=0.02)
        norms = [m for m in model if isinstance(m, tn.nn.BatchNorm1d)]
        if bn:   # no bias before BN; the last BN's γ is 0.1, the last W has the gain too (the notebook)
            assert all(m.bias is None for m in linears) and len(norms) == 3
            assert stds[2] == pytest.approx(5 / 3, rel=0.1)
            np.testing.assert_array_equal(norms[-1].weight.detach().numpy(), np.full(10, 0.1, np.float32))
            assert isinstance(model[-1], tn.nn.BatchNorm1d)
        else:    # zero biases; the last W scaled by 0.1
            assert not norms and all(np.all(m.bias.detach().numpy() == 0) for m in linears)
            assert stds[2] == pytest.approx(0.1, rel=0.1)
        assert sum(isinstance(m, tn.nn.Tanh) for m in model) == 2


def test_ratio_sgd_records_log10_update_to_data_ratio():
    w = tn.tensor(np.array([[1.0, 2.0], [3.0, 5.0]], np.float32), requires_grad=True)
    b = tn.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)   # not a matrix: not recorded
    curves = {"ratio": {"0": []}}
    opt = diagnostics.RatioSGD([w, b], lr=0.1, curves=curves)
    ((w * w).sum() + b.sum()).backward()
    w0 = w.detach().numpy().copy()
    opt.step()
    assert curves["ratio"]["0"] == [pytest.approx(np.log10(0.1 * (2 * w0).std() / w0.std()), rel=1e-6)]
    np.testing.assert_allclose(w.detach().numpy(), w0 - 0.1 * 2 * w0, rtol=1e-6)


@needs_mnist
def test_quick_run_writes_results_report_and_figures(quick):
    out, results = quick
    assert results["experiment"] == "diagnostics" and results["mode"] == "quick"
    assert results["config"]["lr"] == 0.1 and results["config"]["batch_size"] == 32
    assert set(results["arms"]) == {"bn", "bn_gain1", "plain", "plain_gain1"}
    steps = diagnostics.diag_schedule(diagnostics.MODES["quick"])
    for arm in results["arms"].values():
        c = arm["curves"]
        assert arm["diverged_at"] is None and c["step"] == steps
        assert np.array(c["act_std"]).shape == (len(steps), 5) and np.array(c["grad_data"]).shape == (len(steps), 6)
        assert all(len(r) == 300 for r in c["ratio"].values()) and len(c["ratio"]) == 6
        assert sum(c["hist"]["act"][0]["counts"]) == 32 * 100          # one batch, 100 units
    assert len(results["claims"]) == 7
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC and (out / name).stat().st_size > 10_000
    report = (out / "report.md").read_text()
    assert report.count("**PASS**") + report.count("**FAIL**") == 7
    assert "![update_ratio.png](update_ratio.png)" in report


@needs_mnist
def test_quick_run_shows_the_direction_of_every_effect(quick):
    _, results = quick
    arms = {a: r["curves"] for a, r in results["arms"].items()}
    bn, plain = arms["bn"], arms["plain"]
    # BN: low saturation and tanh std ≈ 0.63–0.65 in every layer; without BN (gain 5/3) layer 1 saturates
    assert max(bn["saturated"][-1]) < 0.05 < max(plain["saturated"][-1])
    assert all(0.6 <= s <= 0.7 for s in bn["act_std"][-1])
    # BN keeps the gradient std similar across layers, and larger than without BN at the top
    g = np.array(bn["grad_std"][-1])
    assert g.max() / g.min() < 2 < np.max(plain["grad_std"][-1]) / np.min(plain["grad_std"][-1])
    # the hidden weights' update:data ratios are near Karpathy's 1e-3 guide (within 10^-3.5 … 10^-2)
    assert all(-3.5 <= r <= -2 for r in diagnostics.final_ratios(results["arms"]["bn"])[1:-1])
    # without BN at gain 1 the tanh std decays with depth at init; with BN it does not depend on the gain
    s0 = arms["plain_gain1"]["act_std"][0]
    assert all(b < a for a, b in zip(s0[:-1], s0[1:])) and s0[-1] < 0.6 * s0[0]
    assert np.max(np.abs(np.array(bn["act_std"][-1]) - arms["bn_gain1"]["act_std"][-1])) < 0.05
    verdicts = {c["section"]: c["verdict"] for c in results["claims"]}
    assert all(verdicts[s] == "PASS" for s in ("sat", "std", "grad", "decay", "gain"))


@needs_mnist
def test_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_NORM_DATA", MNIST_DIR)
    short = {"steps": 40, "diag_every": 20, "checkpoint_every": 10}
    kw = dict(mode="quick", overrides=short, progress=False, stream=False)
    whole = lab.run("diagnostics", out=tmp_path / "whole", **kw)

    def interrupt(arm, step, loss):
        if arm == "bn" and step == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lab.run("diagnostics", out=tmp_path / "cut", callback=interrupt, **kw)
    resumed = lab.run("diagnostics", out=tmp_path / "cut", **kw)
    assert resumed["arms"]["bn"]["resumed_from"] == 25
    assert len(resumed["arms"]["bn"]["curves"]["ratio"]["0"]) == 40
    for arm in whole["arms"]:
        assert resumed["arms"][arm]["curves"] == whole["arms"][arm]["curves"]


@needs_mnist
def test_huge_learning_rate_is_recorded_as_diverged(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_NORM_DATA", MNIST_DIR)
    results = lab.run("diagnostics", mode="quick", out=tmp_path, progress=False, stream=False,
                      overrides={"steps": 30, "diag_every": 10, "lr": 1e38})
    assert any(r["diverged_at"] is not None for r in results["arms"].values())
    assert len(results["claims"]) == 1 and results["claims"][0]["verdict"] == "FAIL"
    assert "diverged at step" in results["claims"][0]["measured"]


@pytest.mark.paper
@needs_mnist
def test_default_protocol_over_seeds(tmp_path):
    """`tinygrad-norm sweep diagnostics --seeds 0-4` (≈ 10 s a seed): every invariant of docs/protocols.md §8
    holds over the seeds, the output layer's update ratio included now that W6 has the gain (as in the
    notebook)."""
    claims, checks, summary = verdicts_over_seeds(tmp_path, "diagnostics")
    assert claims == {s: "holds" for s in ("sat", "std", "grad", "update (hidden)", "update (output)", "decay",
                                           "gain")}
