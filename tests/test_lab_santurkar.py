"""The `santurkar_ics` experiment (Santurkar et al. 2018, Fig. 3(b); docs/protocols.md §2).

The default suite runs 200 steps at lr 1e-7 and checks the direction of the ICS
effect; `pytest -m paper` runs the paper-scale protocol.
"""
import numpy as np
import pytest

from tinygrad_norm import lab, nn
from tinygrad_norm.lab.experiments import santurkar_ics

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
    assert bn["loss"][-1] < plain["loss"][-1]                  # and yet BN trains faster
    assert (tmp_path / results["folder"] / "ics.png").read_bytes()[:4] == b"\x89PNG"


# The claims that hold for every draw of A we ran (seeds 0 and 1). The other three depend on
# the draw: with seed 0 the BN net's cos at layer #9 stays high (0.90) and at lr 1e-6 both nets
# end on the same plateau; at lr 1e-6 BN converges within ~3K steps, its gradients vanish and
# cos(G, G') → 1, so "BN's layer-17 cos below the standard net's" failed for both seeds.
ROBUST = {"2 (plain cos)", "2 (‖G − G'‖)", "2 (loss, lr 1e-07)"}


@pytest.mark.paper
def test_paper_scale_protocol(tmp_path):
    """`tinygrad-norm run santurkar_ics` (10K full-batch steps, ≈ 3 min): the robust claims of §2.5.2."""
    results = lab.run("santurkar_ics", mode="default", out=tmp_path, progress=False, stream=False)
    verdicts = {c["section"]: c["verdict"] for c in results["claims"]}
    assert len(verdicts) == 6
    assert {s: verdicts[s] for s in ROBUST} == {s: "PASS" for s in ROBUST}
