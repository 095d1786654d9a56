"""`tinygrad-norm run NAME`: one experiment, one seed, one folder.

    results = tn.lab.run("ioffe", mode="quick", seed=0, out="runs")
    # -> runs/ioffe/quick/seed-0/results.json, report.md, *.png, checkpoints/

The pieces, one file each:
    experiment.py   Experiment, Claim, Threshold and the registry
    training.py     Lab: the resumable training loop every arm shares (checkpoints, Ctrl-C, divergence)
    rundir.py       the folder layout DIR/NAME/MODE[-overrides]/seed-K/ and its lock
    report.py       results.json, report.md, the printed summary
    blas.py         BLAS threads while training
    sweep.py        many seeds (and settings) as tasks on dask.distributed, judged with intervals
"""
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from .blas import blas_threads
from .evaluate import first_step_reaching
from .experiment import MODES, Claim, Experiment, Threshold, all_experiments, get, register
from .report import (command_line, jsonable, print_summary, read_results, report_markdown, write_json,
                     write_text)
from .rundir import RunLock, RunLockedError, group_dir, run_dir
from .training import Interrupt, Lab, say

__all__ = ["run", "run_dir", "group_dir", "RunLockedError", "Experiment", "Claim", "Threshold", "Lab",
           "register", "all_experiments", "get", "MODES", "first_step_reaching", "write_json", "write_text"]


def _library_versions():
    versions = {"tinygrad_norm": __version__, "numpy": np.__version__, "python": platform.python_version()}
    for name in ("numba", "matplotlib"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return versions


def finished_results(folder, config):
    """The results.json in `folder` if it is a finished run of exactly `config` with this
    version of tinygrad_norm, else None."""
    results = read_results(folder / "results.json")
    if results is None or results.get("config") != jsonable(config):
        return None
    if results.get("library", {}).get("tinygrad_norm") != __version__:
        return None
    return results


def run(name, mode="default", seed=0, out="runs", overrides=None, progress=True, callback=None,
        restart=False, stream=None, threads=1, module=None):
    """Run experiment `name` for one seed; write results.json, its figures and report.md
    into DIR/NAME/MODE[-overrides]/seed-K/ (see `run_dir`).

    Args:
        mode: "quick" | "default" | "full" (see the experiment's modes).
        seed: seeds everything random (initialisation, batch order, data: see `sub_seed`).
        out: the output directory (DIR).
        overrides: {setting: value} changing the mode's configuration (e.g. {"lr": 1e6});
            they are part of the run's identity (its folder).
        progress: draw the progress bar on stderr. Resuming and reusing are said either way.
        callback: `callback(arm, step, loss)` after every training step; raising
            KeyboardInterrupt in it stops the run the way Ctrl-C does (after a checkpoint).
        restart: ignore existing checkpoints and start afresh.
        stream: where the summary is printed (default stdout; False: nothing).
        threads: BLAS threads while training (see `blas_threads`; None leaves numpy's setting).
        module: a module to import first (it registers `name`; sweep workers pass it).
    Returns the results dict (what results.json holds). Re-running resumes.
    Raises RunLockedError when another run is using the same folder.
    """
    experiment = get(name, module)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    overrides = experiment.effective_overrides(mode, overrides)
    cfg = experiment.config(mode, seed, overrides)
    out = Path(out)
    folder = run_dir(out, experiment.name, mode, seed, overrides)
    with RunLock(folder, command=command_line(experiment.name, mode, seed, overrides)):
        if not restart and finished_results(folder, cfg) is not None:
            say(f"{experiment.name}: {folder} holds a finished run of this configuration; "
                "reusing its checkpoints to rewrite the report (--restart to train again)")
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        with Interrupt() as interrupt, blas_threads(threads):
            lab = Lab(experiment, cfg, folder / "checkpoints", progress=progress, callback=callback,
                      restart=restart, interrupt=interrupt)
            arms = experiment.train(lab, cfg)
        rows = list(experiment.claims(cfg, arms))
        for row in rows:
            if not isinstance(row, Claim):
                raise TypeError(f"{experiment.name}.claims returned {type(row).__name__}, not a Claim")
        claims = [c for c in rows if c.kind == "claim"]
        checks = [c for c in rows if c.kind == "check"]
        figures, figure_note = _draw_figures(experiment, cfg, arms, folder)
        wall = time.perf_counter() - t0
        results = {
            "experiment": experiment.name, "title": experiment.title, "paper": experiment.paper,
            "protocol": experiment.protocol, "mode": mode, "seed": int(seed), "overrides": overrides,
            "folder": folder.relative_to(out).as_posix(),
            "config": cfg, "library": _library_versions(), "started": started.isoformat(timespec="seconds"),
            "wall_time_s": wall, "train_time_s": sum(a.get("wall_time_s", 0.0) for a in arms.values()),
            "arms": arms, "claims": [c.to_json() for c in claims], "checks": [c.to_json() for c in checks],
            "passed": sum(c.passed is True for c in claims), "failed": sum(c.passed is not True for c in claims),
            "checks_passed": sum(c.passed is True for c in checks),
            "checks_failed": sum(c.passed is not True for c in checks),
            "figures": figures,
        }
        write_text(folder / "report.md",
                   report_markdown(experiment, cfg, arms, claims, checks, figures, figure_note, results))
        write_json(folder / "results.json", results)   # NOTE: last: its presence means "finished"
    if stream is not False:
        print_summary(stream or sys.stdout, experiment, claims, checks, results, folder)
    return results


def _draw_figures(experiment, cfg, arms, folder):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], "matplotlib is not installed: no figures (pip install matplotlib)."
    return list(experiment.figures(cfg, arms, folder)), ""
