"""The experiment framework: results and reports, resuming, divergence, the command line.

A toy experiment (a small regression net with Dropout and SGD momentum, so that a
resumed run needs the random generator, the momentum buffers and the data
position back) stands in for the papers: it runs in a fraction of a second.
"""
import os
import signal

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import cli, lab, nn
from tinygrad_norm.data import DataLoader
from tinygrad_norm.lab import blas, experiment, runner, training
from tinygrad_norm.lab.rundir import run_dir
from tinygrad_norm.nn import functional as F
from tinygrad_norm.optim import SGD

from lab_helpers import strict_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ a toy experiment

def toy_train(lab_, cfg):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    Y = (X @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32) + 0.1).astype(np.float32)
    arms = {}
    for arm in ("small", "large"):
        tn.manual_seed(cfg["seed"])
        model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
        optimizer = SGD(model.parameters(), lr=cfg["lr"] * (1 if arm == "small" else 2), momentum=0.9)
        loader = DataLoader(X, Y, batch_size=8, shuffle=True, seed=cfg["seed"])   # 8 batches per epoch
        curves = {"step": [], "loss": []}

        def evaluate(step, batch, model=model, curves=curves):
            model.eval()
            with tn.no_grad():
                curves["step"].append(step)
                curves["loss"].append(float(F.mse_loss(model(tn.tensor(X)), tn.tensor(Y)).item()))
            model.train()

        result = lab_.train(arm, model, optimizer, loader, steps=cfg["steps"],
                            loss_fn=lambda x, y, model=model: F.mse_loss(model(x), y),
                            evaluate=evaluate, eval_steps=range(0, cfg["steps"] + 1, 5), curves=curves,
                            checkpoint_every=cfg["checkpoint_every"], log_every=4)
        result["weight"] = model[0].weight.detach().numpy().tolist()
        arms[arm] = result
    return arms


def toy_claims(cfg, arms):
    rows = []
    for arm, r in arms.items():
        if r["diverged_at"] is not None:
            rows.append(lab.Claim(f"{arm} trains", f"diverged at step {r['diverged_at']}", "loss decreases", False))
            continue
        first, last = r["curves"]["loss"][0], r["curves"]["loss"][-1]
        rows.append(lab.Claim(f"{arm}: the loss decreases", f"{first:.3f} → {last:.3f}", "last < first",
                              last < first, last / first, section=arm))
    return rows


def toy_figures(cfg, arms, out):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(3, 2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for arm, r in arms.items():
        ax.plot(r["curves"]["step"], r["curves"]["loss"], label=arm)
    fig.savefig(out / "loss.png")
    return ["loss.png"]


TOY = lab.Experiment(
    name="toy", title="A toy regression (framework tests)", paper="none", protocol="§0",
    modes={m: dict(lr=0.01, steps=steps, checkpoint_every=10) for m, steps in
           (("quick", 30), ("default", 40), ("full", 50))},
    train=toy_train, claims=toy_claims, figures=toy_figures)


@pytest.fixture(autouse=True)
def toy_registered():
    lab.register(TOY)
    yield
    experiment._REGISTRY.pop("toy", None)


def run_toy(out, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("stream", False)
    return lab.run("toy", out=out, **kw)


def comparable(results):
    """What must be identical between an interrupted-and-resumed run and an uninterrupted one."""
    drop = {"wall_time_s", "resumed_from"}
    return ({a: {k: v for k, v in r.items() if k not in drop} for a, r in results["arms"].items()},
            results["claims"], results["config"])


# ------------------------------------------------------------------ results and report

def test_run_writes_results_report_and_figures(tmp_path):
    results = run_toy(tmp_path, mode="default", seed=3)
    out = run_dir(tmp_path, "toy", "default", 3)
    assert out == tmp_path / "toy" / "default" / "seed-3"
    saved = strict_json(out / "results.json")
    assert saved["experiment"] == "toy" and saved["mode"] == "default" and saved["seed"] == 3
    assert saved["config"] == {"lr": 0.01, "steps": 40, "checkpoint_every": 10, "mode": "default", "seed": 3}
    assert saved["library"]["tinygrad_norm"] == tn.__version__ and saved["library"]["numpy"] == np.__version__
    assert saved["wall_time_s"] > 0 and saved["figures"] == ["loss.png"]
    small = saved["arms"]["small"]
    assert small["steps_done"] == 40 and small["diverged_at"] is None and small["resumed_from"] is None
    assert small["curves"]["step"] == list(range(0, 41, 5))
    assert small["train_loss"]["step"] == list(range(4, 41, 4))          # windows of log_every = 4 steps
    assert saved["claims"][0] == {"claim": "small: the loss decreases", "measured": results["claims"][0]["measured"],
                                  "threshold": "last < first", "passed": True,
                                  "value": pytest.approx(results["claims"][0]["value"]), "section": "small",
                                  "kind": "claim", "rule": None, "verdict": "PASS"}
    assert saved["passed"] == 2 and saved["failed"] == 0
    assert (out / "loss.png").read_bytes()[:8] == PNG_MAGIC
    report = (out / "report.md").read_text()
    assert "| # | claim | measured | threshold | verdict |" in report
    assert "| small | small: the loss decreases |" in report and "**PASS**" in report
    assert "tinygrad-norm run toy --seed 3" in report and "wall time" in report
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]   # atomic writes leave no temp files
    assert not (out / ".lock").exists()                                 # the lock goes with the run


def test_seed_changes_the_run_and_same_seed_repeats_it(tmp_path):
    a = run_toy(tmp_path / "a", seed=1)
    b = run_toy(tmp_path / "b", seed=1)
    c = run_toy(tmp_path / "c", seed=2)
    assert comparable(a) == comparable(b)
    assert a["arms"]["small"]["curves"] != c["arms"]["small"]["curves"]


def test_progress_bar_shows_step_and_loss(tmp_path, capsys):
    run_toy(tmp_path, progress=True)
    err = capsys.readouterr().err
    last = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("toy/large")][-1]
    assert "40/40" in last and "loss " in last and "step/s" in last


# ------------------------------------------------------------------ resuming

def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(tmp_path):
    whole = run_toy(tmp_path / "whole")
    seen = []

    def interrupt_at_23(arm, step, loss):
        seen.append((arm, step))
        if arm == "large" and step == 23:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path / "cut", callback=interrupt_at_23)
    folder = run_dir(tmp_path / "cut", "toy", "default", 0)
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["large.npz", "small.npz"]
    assert not (folder / "results.json").exists() and not (folder / ".lock").exists()

    seen.clear()
    resumed = run_toy(tmp_path / "cut", callback=lambda arm, step, loss: seen.append((arm, step)))
    assert seen[0] == ("large", 24) and ("small", 1) not in seen          # continued, not restarted
    assert resumed["arms"]["large"]["resumed_from"] == 23
    assert resumed["arms"]["small"]["resumed_from"] == 40                # finished before: not retrained
    assert comparable(resumed) == comparable(whole)


def test_killed_run_resumes_from_the_last_periodic_checkpoint(tmp_path):
    """A crash (here an exception that is not KeyboardInterrupt) saves nothing: the run
    continues from the last periodic checkpoint (every 10 steps) and still ends identical."""
    whole = run_toy(tmp_path / "whole")

    def crash(arm, step, loss):
        if arm == "small" and step == 27:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        run_toy(tmp_path / "cut", callback=crash)
    resumed = run_toy(tmp_path / "cut")
    assert resumed["arms"]["small"]["resumed_from"] == 20
    assert comparable(resumed) == comparable(whole)


def test_ctrl_c_stops_after_the_step_and_checkpoints(tmp_path):
    whole = run_toy(tmp_path / "whole")

    def press_ctrl_c(arm, step, loss):
        if arm == "small" and step == 13:
            os.kill(os.getpid(), signal.SIGINT)   # the run's handler turns it into "stop after this step"

    before = signal.getsignal(signal.SIGINT)   # NOTE: SIG_IGN when pytest runs as a background job
    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path / "cut", callback=press_ctrl_c)
    assert signal.getsignal(signal.SIGINT) is before   # handler restored
    resumed = run_toy(tmp_path / "cut")
    assert resumed["arms"]["small"]["resumed_from"] == 13
    assert comparable(resumed) == comparable(whole)


def test_finished_run_is_not_retrained_unless_restarted(tmp_path):
    first = run_toy(tmp_path)
    calls = []
    again = run_toy(tmp_path, callback=lambda *a: calls.append(a))
    assert calls == [] and comparable(again) == comparable(first)
    restarted = run_toy(tmp_path, restart=True, callback=lambda *a: calls.append(a))
    assert len(calls) == 80 and comparable(restarted) == comparable(first)


def test_checkpoint_of_another_configuration_is_not_used(tmp_path, capsys, monkeypatch):
    """The same folder with another configuration (the protocol's defaults changed since)."""
    run_toy(tmp_path)
    monkeypatch.setitem(TOY.modes, "default", dict(TOY.modes["default"], lr=0.012))
    calls = []
    other = run_toy(tmp_path, callback=lambda *a: calls.append(a))
    assert calls[0] == ("small", 1, calls[0][2]) and other["arms"]["small"]["resumed_from"] is None
    assert "made with another configuration" in capsys.readouterr().err
    assert comparable(other) == comparable(run_toy(tmp_path / "fresh"))


def test_settings_and_seeds_get_their_own_folders(tmp_path, capsys):
    """`--seed 1` or `--set lr=...` never overwrites another run; a setting equal to the
    protocol's own value is no setting at all."""
    base = run_toy(tmp_path)
    run_toy(tmp_path, seed=1)
    run_toy(tmp_path, overrides={"lr": 0.02})
    same = run_toy(tmp_path, overrides={"lr": 0.01})              # the default's own lr
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["default", "default-lr=0.02"]
    assert sorted(p.name for p in (tmp_path / "toy" / "default").iterdir()) == ["seed-0", "seed-1"]
    assert same["overrides"] == {} and comparable(same) == comparable(base)
    assert "reusing its checkpoint" in capsys.readouterr().err     # said even with progress off


# ------------------------------------------------------------------ divergence

def test_diverging_configuration_is_recorded_not_raised(tmp_path):
    results = run_toy(tmp_path, overrides={"lr": 50.0})
    for arm in ("small", "large"):
        k = results["arms"][arm]["diverged_at"]
        assert k is not None and 0 < k < 40
        assert results["arms"][arm]["steps_done"] == k
    assert results["arms"]["large"]["diverged_at"] <= results["arms"]["small"]["diverged_at"]
    folder = run_dir(tmp_path, "toy", "default", 0, {"lr": 50.0})
    assert folder.name == "seed-0" and folder.parent.name == "default-lr=50.0"
    saved = strict_json(folder / "results.json")     # inf/NaN losses became null
    assert saved["arms"]["small"]["final_loss"] is None
    assert [c["verdict"] for c in saved["claims"]] == ["FAIL", "FAIL"]
    report = (folder / "report.md").read_text()
    assert f"small diverged at step {results['arms']['small']['diverged_at']}" in report
    # re-running a diverged run does not train again
    calls = []
    run_toy(tmp_path, overrides={"lr": 50.0}, callback=lambda *a: calls.append(a))
    assert calls == []


# ------------------------------------------------------------------ errors, helpers

def test_errors_name_the_problem(tmp_path):
    assert runner.get("santurkar-ics") is runner.get("santurkar_ics")  # the spelling works too
    with pytest.raises(KeyError, match="no experiment named 'nope'; available: .*toy"):
        lab.run("nope", out=tmp_path)
    with pytest.raises(ValueError, match="mode must be one of quick, default, full"):
        lab.run("toy", mode="fast", out=tmp_path)
    with pytest.raises(ValueError, match="unknown setting 'lrr' for experiment 'toy'"):
        lab.run("toy", overrides={"lrr": 1}, out=tmp_path)
    with pytest.raises(TypeError, match="register expects an Experiment"):
        lab.register("toy")
    unseeded = DataLoader(np.zeros((10, 2), np.float32), batch_size=2, shuffle=True)
    with pytest.raises(ValueError, match="DataLoader with a seed"):
        training._batch_source(unseeded, 0)


def test_batch_source_resumes_mid_epoch():
    loader = DataLoader(np.arange(10, dtype=np.float32)[:, None], batch_size=3, shuffle=True, seed=5)  # 4 per epoch
    full = training._batch_source(loader, 0)
    stream = [full()[0].detach().numpy().ravel().tolist() for _ in range(11)]
    later = training._batch_source(loader, 6)
    assert [later()[0].detach().numpy().ravel().tolist() for _ in range(5)] == stream[6:11]
    assert stream[0] != stream[4]               # a new order in the second epoch


def test_first_step_reaching_and_strict_json(tmp_path):
    assert runner.first_step_reaching([0, 10, 20], [0.1, 0.95, 0.97], 0.95) == 10
    assert runner.first_step_reaching([0, 10], [0.1, None], 0.5) is None
    runner.write_json(tmp_path / "r.json", {"a": float("nan"), "b": np.float32(1.5), "c": [np.int64(2), float("inf")]})
    assert strict_json(tmp_path / "r.json") == {"a": None, "b": 1.5, "c": [2, None]}


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    runner.write_text(path, "old")

    def fail(src, dst):
        raise OSError("disk full")
    from tinygrad_norm import _atomic
    monkeypatch.setattr(_atomic.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        runner.write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_blas_threads_restores_the_setting():
    controls = blas._openblas_thread_controls()
    if not controls:
        pytest.skip("numpy does not use OpenBLAS here (or this is not Linux)")
    before = [get() for get, _ in controls]
    with blas.blas_threads(1):
        assert all(get() == 1 for get, _ in controls)
    assert [get() for get, _ in controls] == before


# ------------------------------------------------------------------ the command line

def test_cli_list_and_run(tmp_path, capsys):
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert any(line.split()[0] == "ioffe" and "Ioffe & Szegedy" in line for line in listed)
    assert any(line.split()[0] == "toy" for line in listed)
    assert cli.main(["run", "toy", "--quick", "--seed", "4", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2/2 claims PASS" in out and "Wall time" in out
    folder = run_dir(tmp_path, "toy", "quick", 4)
    saved = strict_json(folder / "results.json")
    assert saved["mode"] == "quick" and saved["seed"] == 4 and saved["config"]["steps"] == 30
    assert (folder / "report.md").exists() and (folder / "loss.png").exists()


def test_cli_run_errors_and_interrupt(tmp_path, capsys, monkeypatch):
    assert cli.main(["run", "nope"]) == 2
    assert "no experiment named 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["run", "toy", "--quick", "--full"])            # mutually exclusive
    capsys.readouterr()

    def interrupted(lab_, cfg):
        raise KeyboardInterrupt
    monkeypatch.setattr(TOY, "train", interrupted)
    assert cli.main(["run", "toy", "--out", str(tmp_path), "--no-progress"]) == 130
    assert "Run the same command again to resume" in capsys.readouterr().err
