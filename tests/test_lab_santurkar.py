"""The `santurkar_ics` experiment (Santurkar et al. 2018, Fig. 3(b); docs/protocols.md §2).

The default suite runs 200 steps at lr 1e-7 and checks the direction of the ICS
effect; `pytest -m paper` runs the paper-scale protocol.
"""
import numpy as np
import pytest

from tinygrad_norm import lab, nn
from tinygrad_norm.lab.experiments import santurkar_ics

from lab_helpers import verdicts_over_seeds

SHORT = {"steps": 200, "probe_every": 100, "lrs": [1e-7]}


def test_deep_linear_net_follows_the_protocol():
    cfg = santurkar_ics.MODES["default"]
    plain, bn = santurkar_ics.deep_linear_net(cfg, False), santurkar_ics.deep_linear_net(cfg, True)
    linears = [m for m in bn.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 25 and all(m.bias is None and m.weight.shape == (10, 10) for m in linears)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in bn.modules()) == 24
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.modules())
    assert all(p.dtype == np.float64 for p in bn.parameters())
    bound = np.sqrt(6 / 20)                                   # Glorot uniform for 10 → 10
    w = np.concatenate([m.weight.detach().numpy().ravel() for m in linears])
    assert np.abs(w).max() <= bound and w.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)
    assert cfg["steps"] == 10000 and cfg["lrs"] == [1e-7, 1e-6] and cfg["layers"] == [9, 17]


def test_short_run_shows_more_ics_with_bn(tmp_path):
    results = lab.run("santurkar_ics", mode="quick", out=tmp_path, overrides=SHORT, progress=False, stream=False)
    plain, bn = results["arms"]["plain_lr1e-07"]["curves"], results["arms"]["bn_lr1e-07"]["curves"]
    assert plain["step"] == [0, 100, 200]
    for k in (9, 17):
        assert min(plain[f"cos_{k}"]) > 0.99                   # the standard net's gradient barely moves
        assert np.median(bn[f"l2_{k}"]) > 30 * np.median(plain[f"l2_{k}"])   # BN: far more "shift"
        assert all(n > 0 for n in bn[f"norm_{k}"] + plain[f"norm_{k}"])    # ‖G‖ recorded
        rel = santurkar_ics.relative_change(bn, k)
        assert rel == pytest.approx([a / b for a, b in zip(bn[f"l2_{k}"], bn[f"norm_{k}"])])
    assert bn["loss"][-1] < plain["loss"][-1]                  # and yet BN trains faster
    assert (tmp_path / results["folder"] / "ics.png").read_bytes()[:4] == b"\x89PNG"
    claims = results["claims"]
    assert all(c["rule"] is not None for c in claims) and not results["checks"]


def test_data_has_a_seed_of_its_own():
    """A and x come from sub_seed(cfg, "data"): another run seed draws another A; data_seed fixes it."""
    cfg = dict(santurkar_ics.MODES["quick"], seed=0)
    x0, y0 = santurkar_ics.full_batch(cfg)
    x1, _ = santurkar_ics.full_batch(dict(cfg, seed=1))
    xf, yf = santurkar_ics.full_batch(dict(cfg, seed=1, data_seed=lab.sub_seed(cfg, "data")))
    assert not np.array_equal(x0.numpy(), x1.numpy())
    np.testing.assert_array_equal(x0.numpy(), xf.numpy())
    np.testing.assert_array_equal(y0.numpy(), yf.numpy())
    legacy = np.random.default_rng(0).standard_normal((10, 10))   # not drawn from the run's seed itself
    assert not np.allclose(santurkar_ics.full_batch(cfg)[1].numpy()[:1], x0.numpy()[:1] @ legacy.T)


def test_before_plateau_keeps_the_probes_of_the_descent():
    curves = {"step": [0, 250, 500, 750, 1000], "loss": [100.0, 50.0, 2.0, 1.005, 1.0]}
    # 99 % of the descent: loss > 1 + 0.01 · 99 = 1.99
    assert santurkar_ics.before_plateau(curves).tolist() == [True, True, True, False, False]
    flat = {"step": [0, 1], "loss": [3.0, 3.0]}
    assert santurkar_ics.before_plateau(flat).tolist() == [True, True]
    c = dict(curves, cos_9=[0.1, 0.2, 0.3, 1.0, 1.0])
    assert santurkar_ics._pre(c, "cos_9") == (pytest.approx(0.2), 500)


@pytest.mark.paper
def test_paper_scale_protocol_over_seeds(tmp_path):
    """`tinygrad-norm sweep santurkar_ics --seeds 0-4` (10K full-batch steps, ≈ 3 min a seed): the verdicts of
    docs/protocols.md §2 over the seeds (the sweep's rule) that held for every draw run so far: the standard
    net's gradient keeps its direction at lr 1e-7, BN's ‖G − G'‖ is ≥ 100× larger, and BN ends lower."""
    claims, _, _ = verdicts_over_seeds(tmp_path, "santurkar_ics")
    assert {s: claims[s] for s in ROBUST} == ROBUST


ROBUST = {"1": "holds", "3": "holds", "7": "holds"}
