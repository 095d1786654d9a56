"""`tinygrad-norm sweep NAME... --seeds 0-9`: many runs as tasks on dask.distributed, judged over seeds.

    tn.lab.sweep(["ioffe"], seeds=range(10), mode="quick")
    tn.lab.sweep("bjorck", seeds=range(5), grid={"lr": [0.1, 0.3]}, scheduler="tcp://10.0.0.5:8786")

Each (experiment, mode, settings, seed) is one task, and a task is exactly
`tinygrad-norm run` (`runner.run`) into DIR/NAME/MODE[-settings]/seed-K/: the
same folder, the same checkpoints, the same lock. So:
- a worker killed mid-task: the scheduler runs the task again elsewhere, it
  resumes from the run's last checkpoint (the dead worker's lock is taken over)
  and ends with the results an undisturbed run gives;
- a sweep interrupted and started again skips the seeds whose results.json is
  finished and resumes the others from their checkpoints.

The cluster is a LocalCluster by default (worker processes with one thread each,
BLAS and numba pinned to one thread, listening on 127.0.0.1 only; as many workers
as cores), or the scheduler at `scheduler` ("tcp://host:port", or "tls://..." with
a `distributed.Security`; see docs/lab.md). With a remote scheduler, `out` must be
a folder every worker sees (a shared file system).

After the tasks, each (experiment, mode, settings) gets summary.json, summary.md
and summary.png beside its seed folders (summary.py; the statistics in stats.py).
"""
import itertools
import json
import os
import sys
import time
from pathlib import Path

from .._progress import progress_bar
from .experiment import MODES, get
from .report import read_results
from .rundir import group_dir, run_dir, variant_name
from .runner import finished_results
from .summary import summarize, write_summary
from .training import say

INSTALL_HINT = ("tinygrad-norm sweep runs its tasks on dask.distributed, which is not installed: "
                "pip install 'tinygrad_norm[sweep]' (or pip install 'dask[distributed]')")
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


class SweepError(RuntimeError):
    """Some tasks of a sweep failed (the summaries of the others are written)."""


# ------------------------------------------------------------------ parsing

def parse_seeds(text):
    """"0-9" -> [0, ..., 9]; "0-2,5,7" -> [0, 1, 2, 5, 7] (sorted, without repeats)."""
    seeds = set()
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                seeds.update(range(lo, hi + 1))
            else:
                seeds.add(int(part))
        except ValueError:
            raise ValueError(f"--seeds: {text!r} is not a list of seeds like 0-9 or 0,2,5") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds: {text!r}: seeds must be non-negative whole numbers")
    return sorted(seeds)


def parse_setting(text):
    """"lr=0.1,0.3" -> ("lr", [0.1, 0.3]): a setting and its values (JSON each; "[100,100]" is one
    list value; words are strings)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not value.strip():
        raise ValueError(f"--set expects KEY=VALUE (e.g. lr=0.1 or lr=0.1,0.3), got {text!r}")
    try:
        values = json.loads(f"[{value}]")
    except ValueError:
        values = [v.strip() for v in value.split(",")]
    return key, values


def expand(grid):
    """{key: [values]} -> [{key: value}] over the product of the values (key order kept)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] or [{}]


# ------------------------------------------------------------------ tasks

def run_task(spec):
    """One task on a worker: `runner.run` quietly; returns what the client needs."""
    from .runner import run
    results = run(spec["name"], mode=spec["mode"], seed=spec["seed"], out=spec["out"],
                  overrides=spec["overrides"], progress=False, stream=False, threads=1, module=spec["module"])
    return {"name": spec["name"], "seed": spec["seed"], "passed": results["passed"], "failed": results["failed"]}


def plan(names, seeds, mode, overrides, grid, out):
    """The groups {(name, variant): {"experiment", "overrides", "specs": [task spec per seed]}}."""
    groups = {}
    for name in names:
        experiment = get(name)
        for combo in expand(grid or {}):
            settings = experiment.effective_overrides(mode, {**(overrides or {}), **combo})
            key = (experiment.name, variant_name(mode, settings))
            specs = [{"name": experiment.name, "module": experiment.module, "mode": mode, "seed": int(s),
                      "overrides": settings, "out": str(out)} for s in seeds]
            groups[key] = {"experiment": experiment, "overrides": settings, "specs": specs}
    return groups


def _is_finished(spec):
    experiment = get(spec["name"])
    cfg = experiment.config(spec["mode"], spec["seed"], spec["overrides"])
    return finished_results(run_dir(spec["out"], spec["name"], spec["mode"], spec["seed"], spec["overrides"]),
                            cfg) is not None


# ------------------------------------------------------------------ the cluster

def _dask():
    try:
        import distributed
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return distributed


def local_cluster(workers=None, dashboard=True):
    """A LocalCluster for the lab: `workers` processes (default: the cores this process may use),
    one thread each, BLAS and numba on one thread, on 127.0.0.1 only."""
    distributed = _dask()
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if dashboard:
        try:
            import bokeh  # noqa: F401  (the dashboard needs it)
        except ImportError:
            dashboard = False
    env = dict(WORKER_ENV)
    # NOTE: workers are new processes: they must find the experiments' modules where this process does
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.environ.get("PYTHONPATH", "")] +
                                        [p for p in sys.path if p and os.path.isdir(p)] if p)
    return distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address="127.0.0.1:0" if dashboard else None,
                                    silence_logs=40, env=env)


def sweep(names, seeds=range(10), mode="default", overrides=None, grid=None, out="runs", workers=None,
          scheduler=None, security=None, progress=True, stream=None, client=None):
    """Run experiments over seeds (and a grid of settings) as dask tasks, then judge every claim.

    Args:
        names: an experiment name or a list of them.
        seeds: the seeds (an iterable of ints, or text like "0-9").
        mode: "quick" | "default" | "full".
        overrides: {setting: value} for every run; grid: {setting: [values]}: one group of
            seeds per combination. Both become part of the runs' folders.
        out: DIR (runs go to DIR/NAME/MODE[-settings]/seed-K/, summaries beside them).
        workers: the LocalCluster's worker processes (default: the number of cores).
        scheduler: the address of an existing dask scheduler instead of a LocalCluster;
            security: its distributed.Security (TLS).
        progress: a progress bar over tasks (done / running / failed, ETA) on stderr.
        stream: where the verdict tables are printed (default stdout; False: nothing).
        client: an existing distributed.Client to use (then nothing is started or closed).
    Returns [summary dict per (experiment, settings)]; raises SweepError after writing the
    summaries when some tasks failed.
    """
    names = [names] if isinstance(names, str) else list(names)
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else sorted({int(s) for s in seeds})
    if not names:
        raise ValueError("sweep needs at least one experiment name")
    if not seeds or min(seeds) < 0:
        raise ValueError("sweep needs at least one non-negative seed")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    out = Path(out).absolute()
    groups = plan(names, seeds, mode, overrides, grid, out)
    specs = [s for g in groups.values() for s in g["specs"]]
    todo = []
    for spec in specs:
        if _is_finished(spec):
            say(f"sweep: {spec['name']} seed {spec['seed']}: finished earlier; reusing "
                f"{run_dir(spec['out'], spec['name'], mode, spec['seed'], spec['overrides'])}")
        else:
            todo.append(spec)
    failures = _run_tasks(todo, workers, scheduler, security, progress, client) if todo else {}

    summaries = []
    for (name, variant), group in groups.items():
        folder = group_dir(out, name, mode, group["overrides"])
        results = [read_results(run_dir(out, name, mode, s["seed"], group["overrides"]) / "results.json")
                   for s in group["specs"] if (name, s["seed"], variant) not in failures]
        results = [r for r in results if r is not None]
        if not results:
            continue
        summary = summarize(results)
        summary["failed_seeds"] = sorted(s for (n, s, v) in failures if (n, v) == (name, variant))
        write_summary(folder, summary)
        summaries.append(summary)
        if stream is not False:
            _print_verdicts(stream or sys.stdout, summary, folder)
    if failures:
        raise SweepError("sweep: some tasks failed:\n" + "\n".join(
            f"  {n} seed {s} ({v}): {err}" for (n, s, v), err in sorted(failures.items())))
    return summaries


def _run_tasks(specs, workers, scheduler, security, progress, client):
    """Submit every spec, follow them with a progress bar; returns {(name, seed, variant): error text}."""
    distributed = _dask()
    owned = []
    if client is None:
        if scheduler:
            client = distributed.Client(scheduler, security=security)
        else:
            cluster = local_cluster(workers)
            owned.append(cluster)
            client = distributed.Client(cluster)
        owned.insert(0, client)
    try:
        link = getattr(client, "dashboard_link", None)
        if link and (scheduler is None or progress):
            say(f"sweep: dask dashboard at {link}")
        futures = {}
        for spec in specs:
            key = f"tinygrad-norm-{spec['name']}-{variant_name(spec['mode'], spec['overrides'])}-seed{spec['seed']}"
            futures[client.submit(run_task, spec, key=key, pure=False)] = spec
        return _follow(client, futures, progress, distributed)
    except KeyboardInterrupt:
        say("\nsweep: interrupted; finished seeds are kept, the others resume from their checkpoints "
            "when you run the same command again")
        raise
    finally:
        for thing in owned:
            thing.close()


def _follow(client, futures, progress, distributed):
    failures = {}
    pending = set(futures)
    t0 = time.perf_counter()
    with progress_bar(len(futures), "sweep", unit="task", enabled=progress) as bar:
        while pending:
            try:
                done, pending = distributed.wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:      # none finished within the second: refresh the counts
                done = ()
            for fut in done:
                spec = futures[fut]
                if fut.status == "error":
                    err = fut.exception()
                    failures[(spec["name"], spec["seed"], variant_name(spec["mode"], spec["overrides"]))] = \
                        f"{type(err).__name__}: {err}"
                bar.update(1)
            keys = {f.key for f in pending}
            running = sum(1 for ks in client.processing().values() for k in ks if k in keys)
            bar.set_postfix_str(f"done {len(futures) - len(pending) - len(failures)}, running {running}, "
                                f"failed {len(failures)}", refresh=True)
    say(f"sweep: {len(futures)} tasks in {time.perf_counter() - t0:.1f} s, {len(failures)} failed")
    return failures


def _print_verdicts(stream, summary, folder):
    counts = summary["counts"]
    stream.write(f"\n{summary['title']} ({summary['mode']}"
                 + "".join(f", {k}={v}" for k, v in summary["overrides"].items())
                 + f"; seeds {summary['seeds'][0]}–{summary['seeds'][-1]}, n = {len(summary['seeds'])})\n")
    for c in summary["claims"] + summary["checks"]:
        low, high = c["interval"]
        interval = "–" if low is None else f"[{low:.3g}, {high:.3g}]"
        kind = "" if c in summary["claims"] else " (check)"
        stream.write(f"  {c['verdict']:12s} {c['claim'][:70]:70s} {interval:>22s}  "
                     f"{sum(p is True for p in c['passed'])}/{len(c['passed'])} pass{kind}\n")
    stream.write(f"{counts['holds']} hold, {counts['fails']} fail, {counts['inconclusive']} inconclusive. "
                 f"Summary in {folder}/ (summary.json, summary.md, summary.png)\n")
    stream.flush()
