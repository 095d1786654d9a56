"""The `train_eval` experiment (BN's train/inference discrepancy, AdaBN; docs/protocols.md §11).

Default suite: the shifts and the claims on made-up curves, and `--quick` (the
direction of every effect). `pytest -m paper`: the verdicts over seeds 0-4.
"""
import numpy as np
import pytest

from tinygrad_norm import lab
from tinygrad_norm.lab.experiments import _family as fam
from tinygrad_norm.lab.experiments import train_eval as te

from lab_helpers import mnist_data, needs_mnist, quick_run


def test_shifts():
    cfg = te.EXPERIMENT.config("default")
    x = np.random.default_rng(0).random((5, 784)).astype(np.float32)
    np.testing.assert_allclose(te.shifted(x, "contrast", cfg), 0.3 * x + 0.35, rtol=1e-6)
    np.testing.assert_array_equal(te.shifted(x, "inverted", cfg), 1 - x)
    noisy = te.shifted(x, "noise", cfg)
    assert noisy.dtype == np.float32 and 0.25 < np.std(noisy - x) < 0.35
    np.testing.assert_array_equal(noisy, te.shifted(x, "noise", cfg))            # the "data" seed: reproducible
    with pytest.raises(ValueError, match="unknown shift 'blur'"):
        te.shifted(x, "blur", cfg)


def test_adabn_undoes_an_affine_pixel_map_on_a_random_net():
    """The check behind 11.8: re-estimated statistics undo x → a·x + b exactly (up to ε)."""
    cfg = te.EXPERIMENT.config("default")
    model = fam.family_mlp("bn", (16, 16), seed=0)
    rng = np.random.default_rng(1)
    x, x_test, y_test = (rng.random((64, 784)).astype(np.float32), rng.random((40, 784)).astype(np.float32),
                         rng.integers(0, 10, 40))
    with fam.population_statistics(model, x, 8, seed=0):
        clean = model(fam.Tensor(x_test)).detach().numpy()
    with fam.population_statistics(model, te.shifted(x, "contrast", cfg), 8, seed=0):
        moved = model(fam.Tensor(te.shifted(x_test, "contrast", cfg))).detach().numpy()
    np.testing.assert_allclose(moved, clean, atol=2e-3 * np.abs(clean).max())


def fake_arms(cfg, kicked_pairs, ends, halves, shift):
    """Curves with (running, population) errors at the end (`ends`), at steps/2 (`halves`) and, for the
    kicked net, after the kick (`kicked_pairs`)."""
    steps = cfg["steps"]
    kick = int(cfg["kick_at"] * steps)
    arms = {}
    for n, m in cfg["nets"]:
        (run, pop), (run_half, pop_half) = ends[(n, m)], halves.get((n, m), (0.1, 0.1))
        pairs = [(steps // 2, run_half, pop_half)]
        if (n, m) == te.KICKED:
            pairs += [(kick + 1 + k, r, p) for k, (r, p) in zip(cfg["after_kick"], kicked_pairs)]
        pairs.append((steps, run, pop))
        curves = {"step": [s for s, _, _ in pairs], "test_error": [r for _, r, _ in pairs],
                  "population_error": [p for _, _, p in pairs], "quarter_step": [steps],
                  "batch500_error": [pop + 0.001], "batchN_error": [pop + (0.04 if n == 8 else 0.0)]}
        if (n, m) == te.KICKED:
            curves["shift"] = [shift]
        arms[te.arm_name(n, m)] = {"diverged_at": None, "curves": curves}
    return arms


def test_claims_follow_the_thresholds():
    cfg = te.EXPERIMENT.config("default")
    kicked = [(0.30, 0.20)] + [(0.1, 0.1)] * 5 + [(0.061, 0.060)]
    ends = {(8, 0.1): (0.06, 0.055), (32, 0.1): (0.05, 0.048), (128, 0.1): (0.05, 0.05), (32, 0.01): (0.08, 0.05),
            (32, 0.5): (0.05, 0.05)}
    halves = {(32, 0.01): (0.09, 0.07), (32, 0.1): (0.071, 0.07)}
    shift = {"clean": {"running": 0.05, "adabn": 0.048},
             "contrast": {"running": 0.80, "adabn": 0.048, "test_batch": 0.05},
             "inverted": {"running": 0.95, "adabn": 0.97, "test_batch": 0.97},
             "noise": {"running": 0.20, "adabn": 0.10, "test_batch": 0.11}}
    rows = {c.section: c for c in te.claims(cfg, fake_arms(cfg, kicked, ends, halves, shift))}
    assert rows["11.1"].value == pytest.approx(10.0) and rows["11.2"].value == pytest.approx(0.1)
    assert rows["11.3"].value == pytest.approx(2.0 - 0.1) and rows["11.3"].passed
    assert rows["11.4"].value == pytest.approx(0.1) and rows["11.5"].value == pytest.approx(4.0)
    assert rows["11.6 (running)"].passed and rows["11.6 (AdaBN)"].value == pytest.approx(0.97)
    assert rows["11.7"].value == pytest.approx(10.0) and rows["11.8"].value == pytest.approx(75.0)
    assert rows["11.8 (AdaBN)"].kind == "check" and rows["11.8 (AdaBN)"].value == pytest.approx(0.0)
    arms = fake_arms(cfg, kicked, ends, halves, shift)
    arms[te.arm_name(*te.KICKED)]["diverged_at"] = 3
    rows = te.claims(cfg, arms)
    assert rows[0].passed is None and rows[0].verdict == "FAIL"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "train_eval")


@needs_mnist
def test_quick_run_shows_the_direction_of_every_effect(quick):
    out, results = quick
    cfg = results["config"]
    c = results["arms"][te.arm_name(*te.KICKED)]["curves"]
    kick = int(cfg["kick_at"] * cfg["steps"])
    gap = lambda step: abs(te._at(c, "test_error", step) - te._at(c, "population_error", step))
    assert gap(kick + 1) > gap(kick + 1 + cfg["after_kick"][-1])          # the lag shrinks after the kick
    assert te._at(c, "test_error", kick + 1) > te._at(c, "test_error", kick)   # the kick hurts
    c8 = results["arms"][te.arm_name(8, 0.1)]["curves"]
    assert c8["batchN_error"][-1] > c8["population_error"][-1]            # test batches of 8 cost
    shift = c["shift"][-1]
    assert shift["contrast"]["running"] > shift["clean"]["running"] + 0.2   # the shift hurts with running stats
    assert abs(shift["contrast"]["adabn"] - shift["clean"]["adabn"]) < 0.002   # and AdaBN undoes it
    assert shift["inverted"]["running"] > 0.5 and shift["inverted"]["adabn"] > 0.5
    assert shift["noise"]["running"] > shift["clean"]["running"]            # noise hurts (AdaBN's sign: see 11.7)
    assert (out / "train_eval.png").stat().st_size > 10_000


@pytest.mark.paper
@needs_mnist
def test_default_protocol_verdicts_over_seeds(tmp_path):
    with mnist_data():
        summary, = lab.sweep("train_eval", seeds=range(5), mode="default", out=tmp_path, workers=1,
                             progress=False, stream=False)
    verdicts = {c["section"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {"11.1": "holds", "11.2": "holds", "11.3": "inconclusive", "11.4": "holds", "11.5": "holds",
                        "11.6 (running)": "holds", "11.6 (AdaBN)": "holds", "11.7": "inconclusive",
                        "11.8": "holds"}                                    # docs/lab.md, seeds 0-4
    assert summary["checks"][0]["verdict"] == "holds"
