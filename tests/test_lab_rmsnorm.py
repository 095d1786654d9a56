"""The `rmsnorm` experiment (Zhang & Sennrich 2019; docs/protocols.md §13).

Default suite: the invariances and the claims on tiny inputs, and `--quick`.
`pytest -m paper`: the verdicts over seeds 0-4.
"""
import numpy as np
import pytest

from tinygrad_norm import lab
from tinygrad_norm.lab.experiments import _family as fam
from tinygrad_norm.lab.experiments import rmsnorm as rn

from lab_helpers import mnist_data, needs_mnist, quick_run


def test_invariances_of_fresh_layers():
    x = np.random.default_rng(0).random((20, 784)).astype(np.float32)
    ln = rn.invariances(fam.family_mlp("ln", (16,), seed=0), x, seed=1)
    rms = rn.invariances(fam.family_mlp("rms", (16,), seed=0), x, seed=1)
    assert ln["shift"] < rn.INVARIANT and rms["shift"] > rn.NOT_INVARIANT
    assert max(ln["scale"], rms["scale"]) < rn.SCALE_TOL


def test_op_times_and_claims():
    cfg = dict(rn.EXPERIMENT.config("quick"), time_rows=[4], repeats=3, calls=2)
    t = rn.op_times(cfg)
    assert t["rows"] == [4] and len(t["ln_s"]) == len(t["rms_s"]) == 1 and t["ln_s"][0] > 0
    curves = lambda e, inv: {"diverged_at": None, "curves": {"step": [1], "test_error": [e], "invariance": [inv]}}
    arms = {"ln": curves(0.050, {"shift": 1e-7, "scale": 1e-4}), "rms": curves(0.053, {"shift": 0.8, "scale": 1e-5}),
            "timing": {"curves": dict(t, ln_s=[3e-4], rms_s=[2e-4], torch_ln_s=[None], torch_rms_s=[None])}}
    rows = {c.section: c for c in rn.claims(cfg, arms)}
    assert rows["13.1"].value == pytest.approx(0.3) and rows["13.1"].passed
    assert rows["13.2"].value == pytest.approx(1.5) and rows["13.2"].passed and "PyTorch" not in rows["13.2"].measured
    assert all(rows[s].passed and rows[s].kind == "check" for s in ("13.0 (LN shift)", "13.0 (RMS shift)",
                                                                      "13.0 (scale)"))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "rmsnorm")


@needs_mnist
def test_quick_run_shows_the_direction_of_every_effect(quick):
    out, results = quick
    e_ln, e_rms = (results["arms"][n]["curves"]["test_error"][-1] for n in ("ln", "rms"))
    assert abs(e_ln - e_rms) < 0.03 and max(e_ln, e_rms) < 0.15     # comparable accuracy
    t = results["arms"]["timing"]["curves"]          # NOTE: no assertion on a time (the machine is shared)
    assert t["rows"] == [32, 512] and all(v > 0 for v in t["ln_s"] + t["rms_s"])
    assert [c["verdict"] for c in results["checks"]] == ["PASS"] * 3
    assert (out / "rmsnorm.png").stat().st_size > 10_000


@pytest.mark.paper
@needs_mnist
def test_default_protocol_verdicts_over_seeds(tmp_path):
    with mnist_data():
        summary, = lab.sweep("rmsnorm", seeds=range(5), mode="default", out=tmp_path, workers=1,
                             progress=False, stream=False)
    assert {c["section"]: c["verdict"] for c in summary["claims"]} == rn.EXPECTED_VERDICTS
