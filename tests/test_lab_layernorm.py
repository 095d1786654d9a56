"""The `layernorm` experiment (Ba et al. 2016 §6.6; docs/protocols.md §12).

Default suite: the arms' norms and the claims on made-up errors, and `--quick`.
`pytest -m paper`: the verdicts over seeds 0-4.
"""
import pytest

from tinygrad_norm import lab, nn
from tinygrad_norm.lab.experiments import _family as fam
from tinygrad_norm.lab.experiments import layernorm as ln

from lab_helpers import mnist_data, needs_mnist, quick_run


def test_bn_uses_the_unbiased_variance_at_the_small_batch_only():
    assert ln.norm_for("bn", 4) == "bn_unbiased" and ln.norm_for("bn", 128) == "bn" and ln.norm_for("ln", 4) == "ln"
    model = fam.family_mlp(ln.norm_for("ln", 4), (8, 8), seed=0)
    assert sum(isinstance(m, nn.LayerNorm) for m in model.modules()) == 2          # hidden layers only
    assert isinstance(list(model)[-1], nn.Linear)                                   # the logits are not normalized
    assert ln.train_eval_difference(model, fam.np.random.default_rng(0).random((5, 784)).astype("float32")) == 0.0
    bn = fam.family_mlp("bn", (8,), seed=0)
    assert ln.train_eval_difference(bn, fam.np.random.default_rng(0).random((5, 784)).astype("float32")) > 0


def test_claims_follow_the_thresholds():
    cfg = ln.EXPERIMENT.config("default")
    errors = {("ln", 128): 0.05, ("ln", 4): 0.052, ("bn", 128): 0.045, ("bn", 4): 0.08}
    arms = {ln.arm_name(norm, n): {"diverged_at": None, "curves": {"step": [1], "test_error": [e],
                                                                   "train_eval_diff": [0.0]}}
            for (norm, n), e in errors.items()}
    rows = {c.section: c for c in ln.claims(cfg, arms)}
    assert rows["12.1"].value == pytest.approx(0.2) and rows["12.1"].passed
    assert rows["12.2"].value == pytest.approx(2.8) and rows["12.3"].value == pytest.approx(3.5 - 0.2)
    assert rows["12.0"].kind == "check" and rows["12.0"].passed
    arms[ln.arm_name("bn", 4)]["diverged_at"] = 5
    rows = {c.section: c for c in ln.claims(cfg, arms)}
    assert rows["12.2"].passed is None and rows["12.1"].passed


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "layernorm")


@needs_mnist
def test_quick_run_shows_the_direction_of_every_effect(quick):
    out, results = quick
    e = {arm: r["curves"]["test_error"][-1] for arm, r in results["arms"].items()}
    assert e["bn_4"] > e["ln_4"] + 0.01                         # at batch 4 LN is ahead
    assert e["bn_4"] - e["bn_128"] > e["ln_4"] - e["ln_128"]     # BN suffers more from the small batch
    assert abs(e["ln_4"] - e["ln_128"]) < 0.02
    assert results["checks"][0]["verdict"] == "PASS"
    assert (out / "layernorm.png").stat().st_size > 10_000


@pytest.mark.paper
@needs_mnist
def test_default_protocol_verdicts_over_seeds(tmp_path):
    with mnist_data():
        summary, = lab.sweep("layernorm", seeds=range(5), mode="default", out=tmp_path, workers=1,
                             progress=False, stream=False)
    assert {c["section"]: c["verdict"] for c in summary["claims"]} == ln.EXPECTED_VERDICTS
