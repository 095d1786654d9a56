"""Cold start: import + first training step in a fresh process, with numba's
on-disk cache warm and with it empty (every kernel compiled afresh).

    python benchmarks/bench_coldstart.py [--rounds 3] [--lab]

Each figure is measured in a new interpreter (the time from before
`import tinygrad_norm` to the end of the first step, inside the child; the
interpreter's own start-up is printed apart). "uncached" points
NUMBA_CACHE_DIR at an empty directory, so numba compiles every kernel the
step needs and writes it there: that is what the first run after installing
costs. `--lab` also times `tinygrad-norm run ioffe --quick` end to end with an
empty and with a warm cache: their difference is what compiling the lab's
kernels costs (the other experiments use the same kernels, and their own
few, on top).
Target (issue 19): import + first step under 1 s with a warm cache.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import numpy as np
import tinygrad_norm as tn
from tinygrad_norm import nn
from tinygrad_norm.nn import functional as F
t1 = time.perf_counter()
model = {model}
x = tn.tensor(np.random.default_rng(0).standard_normal({shape}, dtype=np.float32))
y = tn.tensor(np.random.default_rng(0).integers(0, 10, {shape}[0]))
opt = tn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
opt.zero_grad()
F.cross_entropy(model(x), y).backward()
opt.step()
t2 = time.perf_counter()
print(json.dumps(dict(imp=t1 - t0, step=t2 - t1)))
"""

MODELS = {
    # the Ioffe MLP of the lab, with BatchNorm1d (the lab's most common step)
    "ioffe-mlp+bn": ("nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.Sigmoid(), "
                     "nn.Linear(100, 100), nn.BatchNorm1d(100), nn.Sigmoid(), nn.Linear(100, 10))", (60, 784)),
    # a small CNN: the conv, pooling and BatchNorm2d kernels
    "cnn+bn": ("nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), "
               "nn.Flatten(), nn.Linear(8 * 14 * 14, 10))", (16, 1, 28, 28)),
}


def child(model, cache_dir=None):
    """(import s, first step s, process wall s) of one fresh interpreter."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    code, shape = MODELS[model]
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT, model=code, shape=shape)],
                       capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(r.stderr)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return d["imp"], d["step"], wall


def lab_run(cache_dir, out):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "tinygrad_norm", "run", "ioffe", "--quick", "--out", out,
                        "--no-progress"], capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lab", action="store_true", help="also time `run ioffe --quick` cold and warm")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}; medians of {args.rounds} fresh "
          f"processes per row (min-max)")
    print(f"{'model':<14} {'cache':<9} {'import s':>16} {'first step s':>16} {'import+step s':>16} "
          f"{'process wall s':>16}")
    for model in MODELS:
        child(model)  # make sure the warm cache holds this model's kernels
        rows = {"warm": [], "uncached": []}
        for _ in range(args.rounds):
            rows["warm"].append(child(model))
            with tempfile.TemporaryDirectory() as empty:
                rows["uncached"].append(child(model, empty))
        for cache, rs in rows.items():
            a = np.asarray(rs)
            cells = [a[:, 0], a[:, 1], a[:, 0] + a[:, 1], a[:, 2]]
            print(f"{model:<14} {cache:<9} " + " ".join(
                f"{np.median(c):6.2f} ({c.min():.2f}-{c.max():.2f})" for c in cells), flush=True)
    if args.lab:
        with tempfile.TemporaryDirectory() as tmp:
            warm = lab_run(None, os.path.join(tmp, "warm"))
            with tempfile.TemporaryDirectory() as empty:
                cold = lab_run(empty, os.path.join(tmp, "cold"))
        print(f"tinygrad-norm run ioffe --quick: {cold:.1f} s with an empty numba cache, {warm:.1f} s warm: "
              f"compiling its kernels costs {cold - warm:.1f} s")


if __name__ == "__main__":
    main()
