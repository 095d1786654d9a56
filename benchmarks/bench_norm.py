"""Forward + backward time of the normalization layers vs the memory-traffic floor.

    python benchmarks/bench_norm.py [--repeats 30] [--threads N] [--json out.json]

For each layer: the median wall time of `y = layer(x); y.backward(g)` (x a
leaf that requires grad, float32, training mode), printed next to the floor
of the same work measured in the same run: the bytes a normalization must
move (forward reads x and writes y; backward reads g and x and writes dx:
5 arrays of x's size) divided by the bandwidth of a numba copy kernel on an
array of that size (the faster of a multi-threaded and a serial copy, picked
in a race between the two first; then layer and copy calls interleaved,
medians). The target is a ratio of at most 2.5.

NOTE (why the copies race first): interleaving the layer with *both* copies put
a parallel launch before every layer call. With numba's workqueue threads the
main thread waits idle ≈ 90 µs for the worker to wake, and on this VM code
run right after an idle wait is slower (the Python before the first kernel
took 39 µs instead of 20): LayerNorm measured 0.21–0.26 ms interleaved that
way against 0.19 ms after a serial copy, although on 1 MB the parallel copy
never was the faster one.

Run it on an otherwise idle machine: a second busy process on a 2-core
machine inflates every parallel call.

NOTE (threading layer): the copy kernel below is parallel too, and numba picks
its threading layer at the first parallel launch. `main` therefore applies the
library's choice (workqueue, see kernels/jit.py) first, so that the layers and
the floor are measured the way a user's program runs them. Before this, the
copy ran first and selected OpenMP, whose launches are ~50x cheaper than
workqueue's (≈ 2 µs vs ≈ 95 µs on this machine): the printed figures were not
the library's. `NUMBA_THREADING_LAYER=omp` measures under OpenMP explicitly.

When PyTorch is importable (never a dependency), the same layers in PyTorch are
timed as a peer, alone in a child process (its OpenMP threads would disturb our
kernels), and printed with their ratio to the same floor.

NOTE: "32×32×64×64" is read as NCHW with N=32, C=32, H=W=64, the way PyTorch
prints a tensor's shape; GroupNorm uses 32 groups on the same shape.
"""
import argparse
import json
import os

import numba
import numpy as np
from numba import njit, prange

import tinygrad_norm as tn
from _timing import medians
from tinygrad_norm.kernels.jit import PARALLEL_MIN, _choose_threading_layer
from tinygrad_norm import nn


# Layer and copy take turns this long before the samples count (see _timing.interleaved)
WARMUP_SECONDS = 0.3


@njit(parallel=True, cache=True)
def _copy(src, dst):
    for i in prange(src.size):
        dst[i] = src[i]


@njit(cache=True)
def _copy_serial(src, dst):
    for i in range(src.size):
        dst[i] = src[i]


def _measure(layer, shape, repeats):
    """(layer fwd+bwd seconds, floor seconds, copy bandwidth in bytes/s, which copy)."""
    rng = np.random.default_rng(1)
    x = tn.Tensor(rng.standard_normal(shape).astype(np.float32) * 2 + 1, requires_grad=True)
    g = tn.Tensor(rng.standard_normal(shape).astype(np.float32))

    def step():
        x.grad = None
        for p in layer.parameters():
            p.grad = None
        layer(x).backward(g)

    src = rng.standard_normal(shape).astype(np.float32).reshape(-1)
    dst = np.empty_like(src)
    copies = {"parallel": lambda: _copy(src, dst), "serial": lambda: _copy_serial(src, dst)}
    # NOTE: the floor is the faster of the two copies: on arrays of a few MB a parallel
    # launch (≈ 95 µs with workqueue) can cost more than the copy itself. They race
    # first; only the winner takes turns with the layer (see the module docstring).
    t_parallel, t_serial = medians(list(copies.values()), repeats, warmup=1)
    kind = "parallel" if t_parallel < t_serial else "serial"
    t_layer, t_copy = medians([step, copies[kind]], repeats, warmup=1, warmup_seconds=WARMUP_SECONDS)
    bandwidth = 2 * src.nbytes / t_copy  # a copy reads and writes the array once
    floor = 5 * src.nbytes / bandwidth   # fwd: read x, write y; bwd: read g, x, write dx
    return t_layer, floor, bandwidth, kind


CASES = [
    ("BatchNorm1d", lambda: nn.BatchNorm1d(1024), (256, 1024)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(32), (32, 32, 64, 64)),
    ("LayerNorm", lambda: nn.LayerNorm(1024), (256, 1024)),
    ("GroupNorm(32)", lambda: nn.GroupNorm(32, 32), (32, 32, 64, 64)),
    # issue 19's shapes: GroupNorm(32, 64) on (64, 64, 32, 32); InstanceNorm with γ, β
    ("GroupNorm(32)c64", lambda: nn.GroupNorm(32, 64), (64, 64, 32, 32)),
    ("InstanceNorm2d", lambda: nn.InstanceNorm2d(64, affine=True), (64, 64, 32, 32)),
]


TORCH_CASES = {"BatchNorm1d": "torch.nn.BatchNorm1d(1024)", "BatchNorm2d": "torch.nn.BatchNorm2d(32)",
               "LayerNorm": "torch.nn.LayerNorm(1024)", "GroupNorm(32)": "torch.nn.GroupNorm(32, 32)",
               "GroupNorm(32)c64": "torch.nn.GroupNorm(32, 64)",
               "InstanceNorm2d": "torch.nn.InstanceNorm2d(64, affine=True)"}


def _selected(names):
    """CASES, or those whose name is in the comma-separated `names`."""
    if not names:
        return CASES
    wanted = names.split(",")
    unknown = set(wanted) - {name for name, _, _ in CASES}
    if unknown:
        raise SystemExit(f"--cases: unknown {sorted(unknown)}; choose from {[n for n, _, _ in CASES]}")
    return [c for c in CASES if c[0] in wanted]


def torch_worker(repeats, cases, threads):
    """Child process: print {layer: median seconds of fwd+bwd in PyTorch} as JSON."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    out = {}
    for name, _, shape in cases:
        layer = eval(TORCH_CASES[name], {"torch": torch})
        rng = np.random.default_rng(1)
        x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32) * 2 + 1).requires_grad_()
        g = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))

        def step():
            x.grad = None
            for p in layer.parameters():
                p.grad = None
            layer(x).backward(g)
        out[name] = medians([step], repeats, warmup=1)[0]
    print(json.dumps(out))


def torch_peer(repeats, names, threads):
    """{layer: PyTorch's fwd+bwd seconds}, or {} when torch is not installed."""
    import subprocess
    import sys
    run = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", "--repeats", str(repeats),
                          "--cases", names or "", "--threads", str(threads or 0)],
                         capture_output=True, text=True)
    return json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 and run.stdout.strip() else {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-torch", action="store_true", help="do not time PyTorch even when installed")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, default=None,
                        help="numba (and PyTorch) threads for the layers and the copy kernel (default: all)")
    parser.add_argument("--cases", default="", help="comma-separated layer names (default: all)")
    args = parser.parse_args()
    cases = _selected(args.cases)
    if args.torch_worker:
        torch_worker(args.repeats, cases, args.threads)
        return
    _choose_threading_layer(numba)   # the library's layer, before the copy kernel's first launch
    if args.threads:
        numba.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} cores, {numba.get_num_threads()} numba threads, "
          f"threading layer {numba.config.THREADING_LAYER}, parallel twins from {PARALLEL_MIN} elements"
          + ("  (busy machine: timings of the parallel kernels are unreliable)" if load > 0.5 else ""))
    results = []
    measured = [(name, shape, *_measure(make(), shape, args.repeats)) for name, make, shape in cases]
    peer = {} if args.no_torch else torch_peer(args.repeats, args.cases, args.threads)
    print(f"{'layer':15s} {'shape':18s} {'fwd+bwd':>10s} {'floor':>10s} {'ratio':>6s}  copy bandwidth"
          + ("   PyTorch  ratio" if peer else ""))
    for name, shape, t, floor, bandwidth, kind in measured:
        ratio = t / floor
        results.append(dict(layer=name, shape=list(shape), seconds=t, floor_seconds=floor,
                            ratio=ratio, copy_bandwidth_GBps=bandwidth / 1e9, copy=kind))
        torch_cols = ""
        if name in peer:
            results[-1].update(torch_seconds=peer[name], torch_ratio=peer[name] / floor)
            torch_cols = f"  {peer[name] * 1e3:8.3f}ms {peer[name] / floor:5.2f}"
        print(f"{name:15s} {str(shape):18s} {t * 1e3:8.3f}ms {floor * 1e3:8.3f}ms {ratio:6.2f}  "
              f"{bandwidth / 1e9:5.1f} GB/s {kind:8s}" + torch_cols)
    if args.json:  # atomic: a temporary file in the same directory, then rename
        tmp = f"{args.json}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
