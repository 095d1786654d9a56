"""The `scale_invariance` experiment (docs/protocols.md §14).

A tiny run (2 hidden layers of 16, a 1,024-image subset) checks the arms' exact relations
(B = kA up to BN's ε, C's angle k² smaller); `--quick` checks the direction of every effect;
`pytest -m paper` sweeps the default protocol over seeds 0-4 and asserts the verdicts.
"""
import math

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import lab, nn
from tinygrad_norm.lab.experiments import scale_invariance as S

from lab_helpers import MNIST_DIR, needs_mnist, quick_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_net_follows_the_protocol():
    cfg = S.MODES["default"]
    tn.manual_seed(0)
    net = S.build(cfg, 1e-12)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(linears) == 9 and len(bns) == 8 and all(b.eps == 1e-12 for b in bns)
    assert linears[0].weight.shape == (100, 784) and linears[-1].weight.shape == (10, 100)
    assert all(m.bias is None for m in linears[:-1]) and all(p.dtype == np.float64 for p in net.parameters())
    w = np.concatenate([m.weight.detach().numpy().ravel() for m in linears[1:-1]])
    assert w.std() == pytest.approx(math.sqrt(2 / 100), rel=0.02)                 # He
    assert [n for n, _ in S.hidden_weights(net)] == [f"{3 * i}.weight" for i in range(8)]
    assert [n for n, _ in lab.curvature.scale_invariant_weights(net)] == [n for n, _ in S.hidden_weights(net)]
    assert S.eval_steps(dict(cfg, dense_until=3, sparse_every=10), 25) == [0, 1, 2, 3, 10, 20]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return quick_run(tmp_path_factory, "scale_invariance",
                     {"depth": 2, "width": 16, "steps": 6, "wd_steps": 40, "train_size": 1024, "dense_until": 6,
                      "batch_size": 64})


@needs_mnist
def test_tiny_run_exact_relations(tiny):
    out, results = tiny
    arms, cfg = results["arms"], results["config"]
    la, lb = (np.array(arms[a]["train_loss"]["loss"]) for a in ("A", "B"))
    assert len(la) == 6 and np.abs(la - lb).max() < 1e-10 * la.max()           # B = kA (ε = 1e-12)
    assert np.abs(np.array(arms["A5"]["train_loss"]["loss"]) - np.array(arms["B5"]["train_loss"]["loss"])).max() > 1e-8
    a0, c0 = np.array(arms["A"]["curves"]["angle"][0]), np.array(arms["C"]["curves"]["angle"][0])
    np.testing.assert_allclose(np.tan(a0) / np.tan(c0), cfg["k"] ** 2, rtol=1e-6)  # tan θ = η‖g‖/‖W‖ exactly
    nA, nC = np.array(arms["A"]["curves"]["norm"][0]), np.array(arms["C"]["curves"]["norm"][0])
    np.testing.assert_allclose(nC, cfg["k"] * nA, rtol=1e-12)
    # the angle that effective_lr predicted for a step is the one the weights then turned by
    norms = np.array(arms["A"]["curves"]["norm"])
    grow = norms[1:] ** 2 / norms[:-1] ** 2                                        # (1 + tan²θ) without decay
    np.testing.assert_allclose(grow, 1 + np.tan(np.array(arms["A"]["curves"]["angle"][:-1])) ** 2, rtol=1e-9)
    assert [c["section"] for c in results["claims"]] == ["14.1", "14.2", "14.3", "14.4", "14.5"]
    assert (out / "scale_invariance.png").read_bytes()[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "scale_invariance")


@needs_mnist
def test_quick_shows_every_direction(quick):
    _, results = quick
    rows = {c["section"]: c for c in results["claims"]}
    assert rows["14.1"]["passed"] and rows["14.2"]["passed"] and rows["14.3"]["passed"]
    assert all(c["passed"] for c in results["checks"])
    wd1, wdk = (results["arms"][a]["curves"] for a in ("WD1", "WDk"))
    target = math.sqrt(2 * results["config"]["lr"] * results["config"]["weight_decay"])
    # decay shrinks ‖W‖ and the angle grows towards √(2ηλ), the k× arm from k² below
    assert np.mean(wd1["norm"][-1]) < 0.5 * np.mean(wd1["norm"][0])
    assert np.mean(wd1["angle"][0]) < 0.2 * target < np.mean(wd1["angle"][-1]) < 2 * target
    assert np.mean(wdk["angle"][-1]) > 20 * np.mean(wdk["angle"][0])


@needs_mnist
@pytest.mark.paper
def test_default_protocol_over_seeds(tmp_path, monkeypatch):
    """`tinygrad-norm sweep scale_invariance --seeds 0-4` (≈ 45 min on one worker of a busy 2-core machine): every claim holds."""
    monkeypatch.setenv("TINYGRAD_NORM_DATA", MNIST_DIR)
    (summary,) = lab.sweep("scale_invariance", seeds=range(5), mode="default", out=tmp_path, workers=1,
                           progress=False, stream=False)
    verdicts = {c["section"]: c["verdict"] for c in summary["claims"] if c.get("kind", "claim") == "claim"}
    assert verdicts == dict.fromkeys(["14.1", "14.2", "14.3", "14.4", "14.5"], "holds")
