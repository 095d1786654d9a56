"""The `init` experiment (seed 001's 50-layer initialization demonstration).

The forward statistics are checked against the closed-form per-layer gain of a
ReLU layer (second moment × n·s²/2) and against the float32 range; the quick
run (a few dozen training steps per net) is checked for the files it writes and
the direction of every effect.
"""
import math

import numpy as np
import pytest

from tinygrad_norm.lab.experiments import init

from lab_helpers import needs_mnist, quick_run, strict_json, verdicts_over_seeds

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def stats():
    return init.all_forward_stats(init.MODES["quick"])


def test_seed_weights_follow_the_seeds_program():
    cfg = init.MODES["quick"]
    x, weights = init.seed_weights(cfg)
    rng = np.random.RandomState(42)                     # the seed: np.random.seed(42); x first, then small, ...
    np.testing.assert_array_equal(x, rng.randn(128, 256))
    np.testing.assert_array_equal(weights["small"][0], rng.randn(256, 256) * 0.01)
    assert len(weights["he"]) == 50
    assert np.std(weights["he"][0]) == pytest.approx(math.sqrt(2 / 256), rel=0.01)


def test_forward_stats_by_hand_on_two_layers():
    rng = np.random.default_rng(0)
    x, ws = rng.standard_normal((64, 8)), [rng.standard_normal((8, 8)) for _ in range(2)]
    h = np.maximum(np.maximum(x @ ws[0], 0) @ ws[1], 0)
    got = init.forward_stats(x, ws, bn=False, dtype=np.float64)
    assert got["std"][1] == pytest.approx(h.std(), rel=1e-12) and got["mean"][1] == pytest.approx(h.mean())
    z = x @ ws[0]
    h = np.maximum((z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5), 0)
    assert init.forward_stats(x, ws[:1], bn=True, dtype=np.float64)["std"][0] == pytest.approx(h.std(), rel=1e-12)


def test_plain_std_follows_the_relu_gain(stats):
    """E[relu(z)²] = Var z / 2 and Var z = n s² E[h²]: the second moment gains n s²/2 per layer."""
    for name, s in (("small", 0.01), ("large", 1.0)):
        std = np.array(stats[f"{name}_plain_float64"]["std"])
        per_layer = np.exp(np.mean(np.diff(np.log(std))))           # geometric mean of std ratios
        assert per_layer == pytest.approx(math.sqrt(256 * s * s / 2), rel=0.15)
    assert stats["small_plain_float64"]["std"][-1] < 1e-40       # the seed printed 1.23e-89
    assert 1e45 < stats["large_plain_float64"]["std"][-1] < 1e60  # finite in float64: the seed printed inf


def test_float32_underflows_and_overflows_where_float64_does_not(stats):
    small32, large32 = stats["small_plain_float32"], stats["large_plain_float32"]
    assert small32["zero_fraction"][-1] == 1.0 and small32["std"][-1] == 0.0       # flushed to 0
    assert stats["small_plain_float64"]["zero_fraction"][-1] < 0.7                  # only ReLU's zeros
    first_inf = next(i for i, v in enumerate(large32["std"]) if not math.isfinite(v)) + 1
    # float32 max 3.4e38 ≈ 11.3^36.6: overflow in the mid-thirties
    assert 33 <= first_inf <= 40 and large32["nonfinite_fraction"][-1] > 0.5
    assert all(math.isfinite(v) for v in stats["large_plain_float64"]["std"])


def test_he_and_bn_keep_the_scale(stats):
    he = stats["he_plain_float64"]["std"]
    assert max(he) / min(he) < init.HE_FACTOR
    for name in init.INITS:
        for dt in ("float64", "float32"):
            std = np.array(stats[f"{name}_bn_{dt}"]["std"])
            assert np.all(np.abs(std - init.BN_RELU_STD) < init.BN_TOL), (name, dt)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "init")


@needs_mnist
def test_quick_run_writes_results_report_and_figures(quick):
    out, results = quick
    saved = strict_json(out / "results.json")
    assert saved["experiment"] == "init" and saved["mode"] == "quick" and saved["config"]["steps"] == 40
    assert set(saved["arms"]) == ({"forward", "large_bn_out", "large_bn_lr"}
                                  | {f"{i}_{n}" for i in init.INITS for n in ("bn", "plain")})
    assert len(saved["claims"]) == 6 and [c["section"] for c in saved["checks"]] == ["BN stats"]
    assert all(c["rule"] is not None for c in saved["claims"] + saved["checks"])
    report = (out / "report.md").read_text()
    assert report.count("**PASS**") + report.count("**FAIL**") == 7
    for name in ("std_per_layer.png", "training_loss.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC and (out / name).stat().st_size > 10_000
        assert f"![{name}]({name})" in report


@needs_mnist
def test_quick_run_shows_the_direction_of_every_effect(quick):
    _, results = quick
    arms = results["arms"]
    verdicts = {c["section"]: c["verdict"] for c in results["claims"] + results["checks"]}
    assert all(verdicts[s] == "PASS" for s in ("small", "large", "He", "BN stats", "plain fails"))
    # large init without BN: logits overflow float32 at once; recorded as diverged at step 0
    assert arms["large_plain"]["diverged_at"] == 0
    # small init without BN: the output is ~0, the loss stays at chance (ln 10) — no gradient reaches the weights
    assert arms["small_plain"]["diverged_at"] is None
    assert arms["small_plain"]["train_loss"]["loss"][-1] == pytest.approx(math.log(10), abs=0.01)
    # large init with BN does not diverge: BN rescales every layer; its loss comes down from its large start
    large_bn = arms["large_bn"]["train_loss"]["loss"]
    assert arms["large_bn"]["diverged_at"] is None and large_bn[-1] < large_bn[0]


def test_explanation_arms_change_only_the_output_layer_or_the_hidden_lrs():
    """large_bn_out: the hidden weights of large_bn, the output layer at He's std; large_bn_lr: each
    hidden weight matrix's lr × fan_in/2 (std 1 over He's std, squared), the rest at lr."""
    import tinygrad_norm as tn
    cfg = dict(init.MODES["quick"], depth=3, width=16)
    nets = {}
    for key, out_init in (("large", None), ("out", "he")):
        tn.manual_seed(0)
        nets[key] = [m.weight.detach().numpy() for m in init.build("large", True, cfg, out_init).modules()
                     if isinstance(m, tn.nn.Linear)]
    for a, b in zip(nets["large"][:-1], nets["out"][:-1]):
        np.testing.assert_array_equal(a, b)
    assert nets["out"][-1].std() == pytest.approx(math.sqrt(2 / 16), rel=0.3)
    assert nets["large"][-1].std() == pytest.approx(1.0, rel=0.3)
    model = init.build("large", True, cfg)
    groups = init.make_optimizer(model, cfg, hidden_lr_factor=True).param_groups
    assert [g["lr"] for g in groups] == pytest.approx([cfg["lr"] * 392, cfg["lr"] * 8, cfg["lr"] * 8, cfg["lr"]])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert [g["lr"] for g in init.make_optimizer(model, cfg).param_groups] == [cfg["lr"]]


@pytest.mark.paper
@needs_mnist
def test_default_protocol_over_seeds(tmp_path):
    """`tinygrad-norm sweep init --seeds 0-4` (≈ 1 min a seed): the verdicts over seeds, with the one claim
    the seed gets wrong (the FAIL is the finding).

    "With BN all three inits train" fails by measurement (docs/lab.md#init): BN does not normalize the
    output layer, whose std-1 weights keep the large-init net's logits huge (large_bn_out, the output
    layer alone at He's std, trains like he_bn). Seed 0 of the default mode gave these verdicts; the
    other seeds were run at the quick budget only.
    """
    claims, checks, _ = verdicts_over_seeds(tmp_path, "init")
    assert claims == {"small": "holds", "large": "holds", "He": "holds", "BN trains": "fails",
                      "He trains": "holds", "plain fails": "holds"}
    assert checks == {"BN stats": "holds"}
