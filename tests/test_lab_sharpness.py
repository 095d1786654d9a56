"""The `sharpness` experiment (docs/protocols.md §16).

The nets, the loss and the claims on synthetic curves; a tiny run (200 images, width 16)
checks what is recorded; `--quick` checks the direction of each effect; `pytest -m paper`
sweeps the default protocol over seeds 0-4 and asserts the verdicts.
"""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import lab, nn
from tinygrad_norm.lab.experiments import sharpness as S

from lab_helpers import MNIST_DIR, needs_mnist, quick_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_nets_and_loss():
    cfg = S.MODES["default"]
    tn.manual_seed(0)
    plain, bn = S.build(cfg, False), S.build(cfg, True)
    assert [type(m).__name__ for m in plain] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert [type(m).__name__ for m in bn] == ["Linear", "BatchNorm1d", "Tanh", "Linear", "BatchNorm1d", "Tanh", "Linear"]
    assert bn[0].bias is None and plain[0].bias is not None and bn[0].weight.shape == (100, 784)
    out, t = tn.tensor([[1.0, 2.0], [0.0, 0.0]]), tn.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert S.square_loss(out, t).item() == pytest.approx((1 + 4 + 1 + 1) / 4)
    assert cfg["lr"] == 0.1 and cfg["subset"] == 2000


def arm(train, evals=None, steps=None, initial=1.0, final=0.5):
    steps = steps or list(range(0, 50 * len(train), 50))
    return {"diverged_at": None, "initial_loss": initial,
            "curves": {"step": steps, "train": train, "eval": evals or [None] * len(train),
                       "loss": [initial] + [final] * (len(train) - 1), "converged": [True] * len(train),
                       "iterations": [[5]] * len(train)}}


def test_claims_on_synthetic_curves():
    cfg = dict(S.MODES["default"], seed=0)                            # 2/η = 20
    arms = {"plain": arm([30, 25, 21, 19, 20, 22]),
            "bn": arm([10, 14, 18, 20, 21, 19], evals=[None, 10, 12, 15, 16, 15])}
    rows = {c.section: c for c in S.claims(cfg, arms)}
    assert rows["16.1"].passed and rows["16.1"].value == pytest.approx(20 / 20)
    assert rows["16.2"].passed and rows["16.3"].passed and rows["16.3"].value == pytest.approx(3.0)
    assert rows["16.4"].passed is False and rows["16.4"].value == pytest.approx(np.exp(np.median(np.log(
        [10 / 14, 12 / 18, 15 / 20, 16 / 21, 15 / 19]))))
    assert rows["16.5"].passed is False and rows["16.5"].value == pytest.approx(15 / 20)
    arms["bn"]["curves"]["eval"] = [None, 50, 60, 70, 80, 90]           # eval mode much sharper
    rows = {c.section: c for c in S.claims(cfg, arms)}
    assert rows["16.4"].passed and rows["16.4"].value == pytest.approx(50 / 14)       # the median of 50/14, 60/18, 70/20, 80/21, 90/19
    assert rows["16.5"].passed and rows["16.5"].value == pytest.approx(80 / 20)
    arms["bn"]["curves"]["eval"] = [None, 14, 18, 20, 21, 19]           # eval = train: no difference
    arms["plain"]["curves"]["train"] = [5, 6, 7, 8, 9, 10]              # never reaches 2/η
    rows = {c.section: c for c in S.claims(cfg, arms)}
    assert rows["16.4"].passed is False and rows["16.1"].passed is False and rows["16.3"].passed is False


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return quick_run(tmp_path_factory, "sharpness", {"subset": 200, "width": 16, "steps": 20, "every": 10})


@needs_mnist
def test_tiny_run_records_sharpness(tiny):
    out, results = tiny
    c, cb = results["arms"]["plain"]["curves"], results["arms"]["bn"]["curves"]
    assert c["step"] == [0, 10, 20] and cb["eval"][0] is None and all(e > 0 for e in cb["eval"][1:])
    assert all(c["converged"]) and all(v > 0 for v in c["train"] + cb["train"])
    assert len(c["history_train"][-1]) == c["iterations"][-1][0]
    assert [r["section"] for r in results["claims"]] == ["16.1", "16.2", "16.3", "16.4", "16.5"]
    assert (out / "sharpness.png").read_bytes()[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return quick_run(tmp_path_factory, "sharpness")


@needs_mnist
def test_quick_shows_every_direction(quick):
    _, results = quick
    edge = 2 / results["config"]["lr"]
    plain, bn = results["arms"]["plain"]["curves"], results["arms"]["bn"]["curves"]
    assert plain["step"] == [0, 50, 100]
    assert plain["train"][-1] > 1.1 * plain["train"][0]                 # progressive sharpening (1.16× by step 100)
    assert bn["train"][0] > 2 * edge and 0.7 * edge < bn["train"][-1] < 1.5 * edge   # BN: down to the edge
    assert all(e > 2 * t for t, e in zip(bn["train"][1:], bn["eval"][1:]))            # eval mode much sharper
    assert all(c["passed"] for c in results["checks"])


# the verdicts of `tinygrad-norm sweep sharpness --seeds 0-4` (docs/lab.md)
VERDICTS = {"16.1": "holds", "16.2": "holds", "16.3": "fails", "16.4": "holds", "16.5": "holds"}


@needs_mnist
@pytest.mark.paper
def test_default_protocol_over_seeds(tmp_path, monkeypatch):
    """`tinygrad-norm sweep sharpness --seeds 0-4` (≈ 35 min on one worker of a busy 2-core machine)."""
    monkeypatch.setenv("TINYGRAD_NORM_DATA", MNIST_DIR)
    (summary,) = lab.sweep("sharpness", seeds=range(5), mode="default", out=tmp_path, workers=1,
                           progress=False, stream=False)
    verdicts = {c["section"]: c["verdict"] for c in summary["claims"] if c.get("kind", "claim") == "claim"}
    assert verdicts == VERDICTS
