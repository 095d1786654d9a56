"""The `small_batch` experiment (Wu & He 2018; docs/protocols.md §9).

Default suite: the claims on made-up arms, and `--quick` (the direction of every
effect). `pytest -m paper`: the default protocol over seeds 0-4, the verdicts
of docs/lab.md.
"""
import pytest

from tinygrad_norm import lab
from tinygrad_norm.lab.experiments import small_batch as sb

from lab_helpers import mnist_data, needs_mnist, quick_run


def fake_arms(cfg, table, stats=None):
    """Arms with final test errors table[norm][N] (and BN's batch-statistics errors `stats`)."""
    arms = {}
    for norm, row in table.items():
        for n, err in row.items():
            curves = {"step": [1], "test_error": [err]}
            if norm == "bn":
                curves["batch_stats_error"] = [(stats or {}).get(n, err)]
            arms[sb.arm_name(norm, n)] = {"diverged_at": None, "curves": curves}
    return arms


def test_claims_follow_the_thresholds():
    cfg = sb.EXPERIMENT.config("default")
    table = {"bn": {32: 0.050, 8: 0.055, 4: 0.080, 2: 0.500}, "gn": {32: 0.055, 8: 0.052, 4: 0.053, 2: 0.060},
             "ln": {32: 0.052, 8: 0.070, 4: 0.053, 2: 0.054}, "brn": {32: 0.05, 8: 0.05, 4: 0.06, 2: 0.30}}
    rows = {c.section: c for c in sb.claims(cfg, fake_arms(cfg, table, {2: 0.45}))}
    assert list(rows) == ["9.1", "9.2", "9.3", "9.4", "9.5", "9.6", "9.7", "9.8"]
    assert rows["9.1"].value == pytest.approx(45.0) and rows["9.1"].passed
    assert rows["9.2"].value == pytest.approx(0.5) and rows["9.2"].passed          # max(N < 32) − err(32)
    assert rows["9.3"].value == pytest.approx(1.8) and rows["9.3"].passed is False
    assert "range 1.80" in rows["9.3"].measured
    assert rows["9.4"].value == pytest.approx(2.7) and rows["9.5"].passed
    assert rows["9.6"].value == pytest.approx(-0.5) and rows["9.6"].passed
    assert rows["9.7"].value == pytest.approx(5.0) and rows["9.8"].value == pytest.approx(20.0)
    # a diverged arm: its claims are not measurable (FAIL with a reason), nothing crashes
    table["gn"][32] = 0.09                  # an under-trained N = 32 does not count as degrading at small N
    assert {c.section: c for c in sb.claims(cfg, fake_arms(cfg, table))}["9.2"].passed
    arms = fake_arms(cfg, table)
    arms["bn_2"]["diverged_at"] = 17
    rows = {c.section: c for c in sb.claims(cfg, arms)}
    assert rows["9.1"].passed is None and rows["9.1"].verdict == "FAIL" and "—" in rows["9.1"].measured
    assert rows["9.2"].passed


def test_steps_and_modes():
    cfg = sb.EXPERIMENT.config("default")
    assert [sb.steps_for(cfg, n) for n in cfg["batch_sizes"]] == [374, 1500, 3000, 6000]   # epochs × (n_train // N)
    assert sb.EXPERIMENT.config("full")["n_train"] == 12000


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "small_batch")


@needs_mnist
def test_quick_run_shows_the_direction_of_every_effect(quick):
    out, results = quick
    cfg = results["config"]
    err = {norm: sb.errors(cfg, results["arms"], norm) for norm in cfg["norms"]}
    assert err["bn"][2] > err["bn"][32] + 0.2                     # BN collapses at N = 2
    assert err["gn"][2] < err["bn"][2] - 0.2 and err["ln"][2] < err["bn"][2] - 0.2
    assert err["brn"][2] < err["bn"][2]                           # BRN recovers part of it
    stats = sb.errors(cfg, results["arms"], "bn", "batch_stats_error")
    assert stats[2] < err["bn"][2]                                # test-batch statistics help at N = 2
    assert max(err["gn"].values()) < 0.3 and max(err["ln"].values()) < 0.3
    assert (out / "error_vs_batch.png").stat().st_size > 10_000
    assert len(results["claims"]) == 8


@pytest.mark.paper
@needs_mnist
def test_default_protocol_verdicts_over_seeds(tmp_path):
    """`tinygrad-norm sweep small-batch --seeds 0-4`: the verdicts of docs/lab.md."""
    with mnist_data():
        summary, = lab.sweep("small_batch", seeds=range(5), mode="default", out=tmp_path, workers=1,
                             progress=False, stream=False)
    verdicts = {c["section"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {f"9.{k}": "holds" for k in range(1, 9)}       # docs/lab.md: 8 hold over seeds 0-4
