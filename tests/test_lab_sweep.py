"""Sweeps over seeds: the statistics against hand-computed cases, the run folders and their
lock, and real dask LocalClusters on 127.0.0.1 (a sweep equals separate runs; a worker
killed with SIGKILL mid-task changes no result; an interrupted sweep resumes)."""
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tinygrad_norm import cli, lab
from tinygrad_norm.lab import stats
from tinygrad_norm.lab.experiment import Threshold
from tinygrad_norm.lab.rundir import RunLock, RunLockedError, run_dir, variant_name
from tinygrad_norm.lab.summary import summarize
from tinygrad_norm.lab.sweep import expand, parse_seeds, parse_setting

import sweep_toy  # noqa: F401  (registers "sweep_toy"; the workers import it too)
from lab_helpers import strict_json

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def comparable(results):
    """What must be equal between runs of the same seed: everything but timings and resume points."""
    drop = {"wall_time_s", "resumed_from"}
    return ({a: {k: v for k, v in r.items() if k not in drop} for a, r in results["arms"].items()},
            results["claims"], results["checks"], results["config"])


# ------------------------------------------------------------------ statistics by hand

def test_t_interval_by_hand():
    centre, low, high = stats.t_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(2) = 4.3027: 2 ± 4.3027/√3
    assert centre == 2.0 and low == pytest.approx(2 - 4.3027 / math.sqrt(3)) and high == pytest.approx(
        2 + 4.3027 / math.sqrt(3))
    g, lo, hi = stats.t_interval([1.0, 4.0], log=True)           # geometric mean 2
    half = 12.7062 * math.log(4) / math.sqrt(2) / math.sqrt(2)   # sd of (0, log 4) = log4/√2
    assert g == pytest.approx(2.0) and lo == pytest.approx(2 * math.exp(-half)) and hi == pytest.approx(
        2 * math.exp(half))
    assert stats.t_interval([5.0]) == (5.0, None, None)
    assert stats.t_quantile(10) == 2.2281 and stats.t_quantile(35) == 2.0423 and stats.t_quantile(10 ** 6) == stats.Z


def test_wilson_interval_by_hand():
    low, high = stats.wilson_interval(5, 5)          # all of 5: (0.5655, 1)
    assert low == pytest.approx(0.5655, abs=1e-4) and high == pytest.approx(1.0)
    low, high = stats.wilson_interval(4, 5)
    assert (low, high) == (pytest.approx(0.3755, abs=1e-4), pytest.approx(0.9638, abs=1e-4))
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)


@pytest.mark.parametrize("values, op, bound, verdict", [
    ([3.0, 3.2, 2.9, 3.1, 3.0], ">=", 2.5, "holds"),          # all pass, interval above
    ([1.0, 1.2, 0.9, 1.1, 1.0], ">=", 2.5, "fails"),          # all fail, interval below
    ([2.0, 3.0, 2.2, 2.9, 2.6], ">=", 2.5, "inconclusive"),   # straddles
    ([0.40, 0.41, 0.39], "<=", 0.5, "holds"),
    ([0.60, 0.61, 0.62], "<", 0.5, "fails"),
    ([2.08, 2.07, 2.09], "between", (1.92, 2.22), "holds"),
    ([3.0, 3.1, 2.9], "between", (1.92, 2.22), "fails"),
    ([4.0], ">=", 2.5, "inconclusive"),                       # one seed: no interval
])
def test_verdicts_by_hand(values, op, bound, verdict):
    rule = Threshold(op, bound)
    out = stats.judge(rule, values, [rule.passes(v) for v in values])
    assert out["verdict"] == verdict and out["method"] == "t interval of the mean"
    if len(values) > 1:
        _, low, high = stats.t_interval(values)
        assert out["interval"] == [low, high]
    assert out["median"] == float(np.median(values))


def test_ratio_claims_use_the_geometric_mean_and_missing_values_fall_back_to_pass_rate():
    rule = Threshold(">=", 1.5, log=True)
    out = stats.judge(rule, [2.0, 8.0, 4.0], [True, True, True])
    assert out["centre"] == pytest.approx(4.0) and out["method"] == "t interval of the geometric mean"
    # a seed where the statistic could not be measured (an arm diverged): pass rate, Wilson
    out = stats.judge(rule, [2.0, None, 4.0, 3.0, 5.0], [True, None, True, True, True])
    assert out["method"].startswith("pass rate") and out["pass_rate"] == 0.8
    assert out["verdict"] == "inconclusive" and "1 seed(s) without a value" in out["note"]
    out = stats.judge(None, [None] * 10, [True] * 10)          # a binary claim on 10 seeds
    assert out["verdict"] == "holds" and out["interval"][0] == pytest.approx(0.7225, abs=1e-4)
    assert stats.judge(None, [None] * 10, [False] * 10)["verdict"] == "fails"


def test_thresholds_validate_and_round_trip():
    with pytest.raises(ValueError, match="op must be one of"):
        Threshold("=>", 1)
    with pytest.raises(ValueError, match="low 3 > high 1"):
        Threshold("between", (3, 1))
    rule = Threshold("between", (1, 3), log=True)
    assert Threshold.from_json(json.loads(json.dumps(rule.to_json()))) == rule
    claim = lab.Claim.compare("x", 2.0, ">=", 1.5, log=True)
    assert claim.passed is True and claim.threshold == "≥ 1.5" and claim.measured == "2"
    assert lab.Claim.compare("x", None, ">=", 1.5).passed is None
    assert lab.Claim.compare("x", float("nan"), "<", 1).passed is None
    with pytest.raises(ValueError, match="kind must be one of"):
        lab.Claim("x", "y", "z", True, kind="sanity")


# ------------------------------------------------------------------ parsing and folders

def test_seeds_settings_and_folder_names():
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("0-2,5,2") == [0, 1, 2, 5]
    for bad in ("", "a", "3-1", "-1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    assert parse_setting("lr=0.1,0.3,1.0") == ("lr", [0.1, 0.3, 1.0])
    assert parse_setting("hidden=[100,100]") == ("hidden", [[100, 100]])
    assert parse_setting("act=relu,tanh") == ("act", ["relu", "tanh"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_setting("lr")
    assert expand({"lr": [0.1, 0.3], "b": [1, 2]}) == [{"lr": 0.1, "b": 1}, {"lr": 0.1, "b": 2},
                                                       {"lr": 0.3, "b": 1}, {"lr": 0.3, "b": 2}]
    assert variant_name("quick") == "quick"
    assert variant_name("default", {"lr": 0.1, "batch_size": 32}) == "default-batch_size=32,lr=0.1"
    assert variant_name("default", {"hidden": [100, 50]}) == "default-hidden=100_50"
    odd = variant_name("default", {"name": "a/b c"})
    assert odd.startswith("default-name=a_b_c-") and "/" not in odd


def test_summary_matches_claims_across_seeds(tmp_path):
    results = [lab.run("sweep_toy", mode="quick", seed=s, out=tmp_path, progress=False, stream=False)
               for s in (2, 0, 1)]
    summary = summarize(results)
    assert summary["seeds"] == [0, 1, 2]
    first, parity = summary["claims"][0], summary["claims"][2]
    assert first["section"] == "1" and first["rule"] == {"op": ">=", "bound": 2.0, "log": True}
    by_seed = {r["seed"]: r["claims"][0]["value"] for r in results}
    assert first["values"] == [by_seed[0], by_seed[1], by_seed[2]]
    assert parity["passed"] == [True, False, True] and parity["method"].startswith("pass rate")
    assert [c["section"] for c in summary["checks"]] == ["c1"] and summary["checks"][0]["verdict"] == "holds"


# ------------------------------------------------------------------ the lock

def _slow_run_process(out, seed=0, delay=0.05):
    code = ("import sys; sys.path.insert(0, %r); import sweep_toy; from tinygrad_norm import lab; "
            "lab.run('sweep_toy', mode='quick', seed=%d, out=%r, overrides={'step_delay': %r}, progress=False, "
            "stream=False)" % (TESTS, seed, str(out), delay))
    return subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout=60.0, what="condition"):
    t0 = time.time()
    while not predicate():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_concurrent_runs_into_one_folder_are_refused(tmp_path):
    proc = _slow_run_process(tmp_path)
    folder = run_dir(tmp_path, "sweep_toy", "quick", 0, {"step_delay": 0.05})
    try:
        _wait_for(lambda: (folder / ".lock").exists(), what="the first run's lock")
        with pytest.raises(RunLockedError, match=rf"in use by another run \(pid {proc.pid} on "):
            lab.run("sweep_toy", mode="quick", out=tmp_path, overrides={"step_delay": 0.05}, progress=False,
                    stream=False)
        assert cli.main(["run", "sweep_toy", "--quick", "--set", "step_delay=0.05", "--out", str(tmp_path),
                         "--no-progress"]) == 1
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not (folder / ".lock").exists() and (folder / "results.json").exists()


def test_a_dead_holders_lock_is_taken_over(tmp_path, capsys):
    folder = run_dir(tmp_path, "sweep_toy", "quick", 0)
    folder.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket
    (folder / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout),
                                              "started": "earlier"}))
    lab.run("sweep_toy", mode="quick", out=tmp_path, progress=False, stream=False)
    assert f"process {int(dead.stdout)} no longer runs" in capsys.readouterr().err
    # a lock from another host with a fresh heartbeat is respected; with a stale one, taken over
    (folder / ".lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": "now"}))
    with pytest.raises(RunLockedError, match="pid 1 on elsewhere"):
        RunLock(folder).acquire()
    old = time.time() - 120
    os.utime(folder / ".lock", (old, old))
    RunLock(folder).acquire().release()
    assert "heartbeat stopped" in capsys.readouterr().err and not (folder / ".lock").exists()
    # an unreadable lock (a crash mid-write) is respected while fresh, taken over once old
    (folder / ".lock").write_text("")
    with pytest.raises(RunLockedError, match="in use by another run"):
        RunLock(folder).acquire()
    os.utime(folder / ".lock", (old, old))
    RunLock(folder).acquire().release()
    assert "unreadable" in capsys.readouterr().err and not (folder / ".lock").exists()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".lock")) == []   # no temp files left


# ------------------------------------------------------------------ sweeps on a real LocalCluster

@pytest.fixture(scope="module")
def client():
    import distributed     # part of the test extra
    from tinygrad_norm.lab.sweep import local_cluster
    cluster = local_cluster(workers=2, dashboard=False)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_sweep_of_three_seeds_equals_three_runs(tmp_path, capsys, client):
    summaries = lab.sweep("sweep_toy", seeds="0-2", mode="quick", out=tmp_path / "sweep", client=client,
                          progress=False)
    separate = [lab.run("sweep_toy", mode="quick", seed=s, out=tmp_path / "runs", progress=False, stream=False)
                for s in range(3)]
    for s, one in enumerate(separate):
        swept = strict_json(tmp_path / "sweep" / one["folder"] / "results.json")
        assert comparable(swept) == comparable(json.loads(json.dumps(one)))
    (summary,) = summaries
    saved = strict_json(tmp_path / "sweep" / "sweep_toy" / "quick" / "summary.json")
    assert saved["seeds"] == [0, 1, 2] and saved == json.loads(json.dumps(summary))
    for c in saved["claims"]:
        assert {"claim", "values", "seeds", "threshold", "interval", "verdict"} <= set(c)
        assert c["verdict"] in ("holds", "fails", "inconclusive") and len(c["interval"]) == 2
    assert saved["claims"][0]["values"] == [r["claims"][0]["value"] for r in separate]
    md = (tmp_path / "sweep" / "sweep_toy" / "quick" / "summary.md").read_text()
    assert "Student-t interval" in md and "| 1 | the small-lr net's loss falls" in md
    assert (tmp_path / "sweep" / "sweep_toy" / "quick" / "summary.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "sweep_toy" in out and "hold" in out
    # run again: every seed is finished, so nothing is submitted
    again = lab.sweep("sweep_toy", seeds="0-2", mode="quick", out=tmp_path / "sweep", client=client,
                      progress=False, stream=False)
    assert again == summaries
    assert capsys.readouterr().err.count("finished earlier; reusing") == 3


def test_a_worker_killed_mid_task_changes_no_result(tmp_path, client):
    settings = {"step_delay": 0.04}
    box = {}
    thread = threading.Thread(target=lambda: box.update(s=lab.sweep(
        "sweep_toy", seeds=[0, 1], mode="quick", overrides=settings, out=tmp_path / "sweep", client=client,
        progress=False, stream=False)))
    thread.start()
    folder = run_dir(tmp_path / "sweep", "sweep_toy", "quick", 1, settings)
    _wait_for(lambda: (folder / "checkpoints" / "small.npz").exists(), what="seed 1's first checkpoint")
    pids = client.run(os.getpid)
    holder = json.loads((folder / ".lock").read_text())["pid"]
    assert holder in pids.values()
    os.kill(holder, signal.SIGKILL)
    thread.join(timeout=180)
    assert not thread.is_alive() and "s" in box
    resumed = strict_json(folder / "results.json")
    assert resumed["arms"]["small"]["resumed_from"] is not None     # the rerun resumed from a checkpoint
    undisturbed = lab.run("sweep_toy", mode="quick", seed=1, overrides=settings, out=tmp_path / "runs",
                          progress=False, stream=False)
    assert comparable(resumed) == comparable(json.loads(json.dumps(undisturbed)))


def test_an_interrupted_sweep_resumes(tmp_path, client, capsys):
    """Ctrl-C on the `tinygrad-norm sweep` command (its own LocalCluster); the same sweep again
    skips the finished seeds and resumes the others from their checkpoints."""
    out = tmp_path / "runs"
    settings = {"step_delay": 0.03, "steps": 120}     # ≈ 7 s a seed
    cmd = [sys.executable, "-m", "tinygrad_norm", "sweep", "sweep_toy", "--quick", "--seeds", "0-3", "--set",
           "step_delay=0.03", "--set", "steps=120", "--workers", "2", "--out", str(out), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, TESTS]), TINYGRAD_NORM_EXPERIMENTS="sweep_toy")
    # NOTE: a shell without job control starts background jobs with SIGINT ignored, and a Python
    # started that way keeps ignoring it: give the command the default handler, as a terminal would.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folders = [run_dir(out, "sweep_toy", "quick", s, settings) for s in range(4)]
    try:
        _wait_for(lambda: any((f / "results.json").exists() for f in folders) and
                  any((f / "checkpoints").exists() and not (f / "results.json").exists() for f in folders),
                  timeout=120, what="one finished seed and one under way")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    finished = [s for s, f in enumerate(folders) if (f / "results.json").exists()]
    partial = [s for s, f in enumerate(folders) if s not in finished and (f / "checkpoints").exists()]
    assert finished and partial
    lab.sweep("sweep_toy", seeds="0-3", mode="quick", overrides=settings, out=out, client=client, progress=False,
              stream=False)
    assert capsys.readouterr().err.count("finished earlier; reusing") == len(finished)
    for s in partial:
        arms = strict_json(folders[s] / "results.json")["arms"]
        assert any(a["resumed_from"] is not None and 0 < a["resumed_from"] for a in arms.values())
    summary = strict_json(out / "sweep_toy" / folders[0].parent.name / "summary.json")
    assert summary["seeds"] == [0, 1, 2, 3]


def test_sweep_cli_errors(capsys):
    assert cli.main(["sweep", "nope", "--seeds", "0-1"]) == 2
    assert "no experiment named 'nope'" in capsys.readouterr().err
    assert cli.main(["sweep", "sweep_toy", "--seeds", "x"]) == 1
    assert "--seeds" in capsys.readouterr().err
    assert cli.main(["sweep", "sweep_toy", "--scheduler", "localhost:8786"]) == 2
    assert "tcp:// or tls://" in capsys.readouterr().err
    assert cli.main(["run", "sweep_toy", "--set", "lr=0.1,0.2"]) == 1
    assert "`run` takes one value per setting" in capsys.readouterr().err


def test_without_dask_sweep_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)      # `import distributed` now fails
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_norm\[sweep\]'"):
        lab.sweep("sweep_toy", seeds=[0], mode="quick", out=tmp_path, progress=False)
    assert cli.main(["sweep", "sweep_toy", "--quick", "--seeds", "0", "--out", str(tmp_path)]) == 1
    assert "pip install 'tinygrad_norm[sweep]'" in capsys.readouterr().err
