"""Sweep speed: seeds as dask tasks on a LocalCluster vs the same runs one after another.

    python benchmarks/bench_sweep.py                       # ioffe --quick, seeds 0-3, 2 workers
    python benchmarks/bench_sweep.py --repeats 3 --seeds 0-3 --workers 2
    python benchmarks/bench_sweep.py --experiment diagnostics --mode quick

Each round (fresh output folders, so nothing is reused):
  sequential  the runs `tinygrad-norm run NAME --MODE --seed K`, one after another, each in a
              fresh process (as a user would type them);
  sweep       `tinygrad-norm sweep NAME --MODE --seeds ...` on a LocalCluster of N workers,
              also a fresh process: cluster start-up, workers importing the library,
              the tasks, the summary and the shutdown all count.
The rounds alternate (sequential, sweep, sequential, ...) so that load from other
processes hits both alike; the figure is the ratio of the medians. Target on a
2-core machine with 2 workers: ratio ≤ 0.6.

Then dask's own overhead, on a cluster that is already up: the round trip of one
no-op task, and the cost per task of 200 no-op tasks submitted at once.
Numba's cache is warmed first (one quick run), so no round pays for compilation.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(args, out):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [ROOT, env.get("PYTHONPATH", "")] if p)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tinygrad_norm", *args, "--out", out, "--no-progress"],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"`tinygrad-norm {' '.join(args)}` failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def dask_overhead(workers):
    import distributed
    from tinygrad_norm.lab.sweep import local_cluster
    t0 = time.perf_counter()
    cluster = local_cluster(workers, dashboard=False)
    client = distributed.Client(cluster)
    client.submit(int, 0).result()
    start = time.perf_counter() - t0
    trips = []
    for i in range(20):
        t0 = time.perf_counter()
        client.submit(int, i, pure=False).result()
        trips.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    distributed.wait(client.map(int, range(200), pure=False))
    per_task = (time.perf_counter() - t0) / 200
    t0 = time.perf_counter()
    client.close()
    cluster.close()
    return start, float(np.median(trips)), per_task, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="ioffe")
    p.add_argument("--mode", default="quick", choices=["quick", "default", "full"])
    p.add_argument("--seeds", default="0-3")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="rounds of (sequential, sweep)")
    args = p.parse_args()
    sys.path.insert(0, ROOT)
    from tinygrad_norm.lab.sweep import parse_seeds
    seeds = parse_seeds(args.seeds)
    budget = [] if args.mode == "default" else [f"--{args.mode}"]
    scratch = tempfile.mkdtemp(prefix="bench_sweep-")
    try:
        _cli(["run", args.experiment, *budget, "--seed", "99"], os.path.join(scratch, "warm"))  # numba cache, MNIST
        seq, swp = [], []
        for r in range(args.repeats):
            out = os.path.join(scratch, f"seq{r}")
            seq.append(sum(_cli(["run", args.experiment, *budget, "--seed", str(s)], out) for s in seeds))
            swp.append(_cli(["sweep", args.experiment, *budget, "--seeds", args.seeds, "--workers",
                             str(args.workers)], os.path.join(scratch, f"sweep{r}")))
            print(f"round {r + 1}: sequential {seq[-1]:.1f} s, sweep {swp[-1]:.1f} s, ratio {swp[-1] / seq[-1]:.2f}",
                  flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ms, mw = float(np.median(seq)), float(np.median(swp))
    print(f"\n{args.experiment} --{args.mode}, seeds {args.seeds} ({len(seeds)} runs), {args.workers} workers, "
          f"{args.repeats} rounds, medians:")
    print(f"  sequential runs  {ms:7.1f} s")
    print(f"  sweep            {mw:7.1f} s")
    print(f"  ratio            {mw / ms:7.2f}   (target ≤ 0.6)")
    start, trip, per_task, close = dask_overhead(args.workers)
    print(f"dask overhead ({args.workers} workers): cluster start {start:.2f} s, one no-op task round trip "
          f"{1e3 * trip:.1f} ms, 200 no-op tasks {1e3 * per_task:.2f} ms per task, shutdown {close:.2f} s")


if __name__ == "__main__":
    main()
