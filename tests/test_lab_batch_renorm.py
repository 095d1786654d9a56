"""The `batch_renorm` experiment (Ioffe 2017; docs/protocols.md §10).

Default suite: the r, d probe and the claims on tiny inputs, and `--quick` (the
direction of every effect). `pytest -m paper`: the verdicts over seeds 0-4.
"""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import lab
from tinygrad_norm.lab.experiments import _family as fam
from tinygrad_norm.lab.experiments import batch_renorm as br

from lab_helpers import mnist_data, needs_mnist, quick_run


def test_renorm_corrections_by_hand_and_without_a_trace():
    model = fam.family_mlp("brn", (6,), seed=0)
    layer = model[1]
    layer.running_mean._data[...] = 0.5
    layer.running_std._data[...] = 2.0
    layer.r_max, layer.d_max = 1.5, 0.1
    x = np.random.default_rng(0).random((8, 784)).astype(np.float32)
    before = [b.numpy().copy() for b in model.buffers()]
    got = br.renorm_corrections(model, x)
    h = x.astype(np.float64) @ model[0].weight.numpy().T.astype(np.float64)
    r, d = np.sqrt(h.var(0) + 1e-5) / 2.0, (h.mean(0) - 0.5) / 2.0
    assert got["r_p50"] == pytest.approx(np.median(r), rel=1e-4) and got["d_p95"] == pytest.approx(
        np.percentile(d, 95), rel=1e-4, abs=1e-5)
    assert got["clipped"] == pytest.approx(np.mean((r > 1.5) | (r < 1 / 1.5) | (np.abs(d) > 0.1)))
    assert all(np.array_equal(b.numpy(), a) for b, a in zip(model.buffers(), before))


def arms_with(errors, diff=1e-7):
    arms = {arm: {"diverged_at": None, "curves": {"step": [1], "test_error": [e]}} for arm, e in errors.items()}
    arms["equal_brn"] = {"diverged_at": None, "curves": {"max_weight_diff": diff}}
    return arms


def test_claims_follow_the_thresholds():
    cfg = br.EXPERIMENT.config("default")
    arms = arms_with({"bn_4": 0.09, "brn_4": 0.07, "bn_iid": 0.05, "bn_noniid": 0.30, "brn_noniid": 0.10})
    rows = {c.section: c for c in br.claims(cfg, arms)}
    assert rows["10.1"].value == pytest.approx(6.0) and rows["10.1"].passed
    assert rows["10.2"].value == pytest.approx(0.8) and rows["10.2"].passed
    assert rows["10.3"].value == pytest.approx(2.0) and rows["10.3"].passed
    assert rows["10.0"].kind == "check" and rows["10.0"].passed
    arms = arms_with({"bn_4": 0.09, "brn_4": 0.10, "bn_iid": 0.05, "bn_noniid": 0.04, "brn_noniid": 0.10}, diff=0.1)
    rows = {c.section: c for c in br.claims(cfg, arms)}
    assert [rows[s].passed for s in ("10.1", "10.2", "10.3", "10.0")] == [False, None, False, False]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "batch_renorm")


@needs_mnist
def test_quick_run_shows_the_direction_of_every_effect(quick):
    out, results = quick
    arms = results["arms"]
    e = {arm: arms[arm]["curves"]["test_error"][-1] for arm in br.ARMS}
    assert e["bn_noniid"] > 1.2 * e["bn_iid"]                   # non-i.i.d. batches hurt BN in eval mode
    assert e["brn_noniid"] < e["bn_noniid"]                     # BRN recovers
    assert arms["equal_brn"]["curves"]["max_weight_diff"] < br.EQUAL_TOL
    c = arms["brn_noniid"]["curves"]
    assert c["r_max"][0] == 1.0 and c["r_max"][-1] == 3.0 and c["d_max"][-1] == 5.0
    assert 0 <= min(c["clipped"]) <= max(c["clipped"]) <= 1
    assert (out / "renorm.png").stat().st_size > 10_000


@pytest.mark.paper
@needs_mnist
def test_default_protocol_verdicts_over_seeds(tmp_path):
    with mnist_data():
        summary, = lab.sweep("batch_renorm", seeds=range(5), mode="default", out=tmp_path, workers=1,
                             progress=False, stream=False)
    # docs/lab.md: 10.2 is inconclusive over seeds 0-4 (seed 3 recovers 42 %)
    assert {c["section"]: c["verdict"] for c in summary["claims"]} == {"10.1": "holds", "10.2": "inconclusive",
                                                                        "10.3": "holds"}
    assert summary["checks"][0]["verdict"] == "holds"
