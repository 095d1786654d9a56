"""Engine benchmark: per-op overhead, kernel throughput vs numpy, cold start.

    python benchmarks/bench_engine.py [--repeat 15] [--size 4194304]

Every figure is the median of repeated runs. Throughput is the memory traffic
the work needs at minimum (each input read once, each output written once)
divided by the time; numpy does the same work in the same run, so the ratio
column is what to quote (>1 means tinygrad_norm is faster). When PyTorch is
importable (never a dependency) its throughput on the same work is printed too,
measured alone in a child process.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygrad_norm as tn  # noqa: E402
from _timing import medians  # noqa: E402


def per_op_overhead(repeat):
    """Forward + backward of one tiny op, from a chain of 200 muls on 4 elements."""
    x = tn.ones(4, requires_grad=True)
    g = np.ones(4, np.float32)
    n = 200

    def chain():
        y = x
        for _ in range(n):
            y = y * 1.0
        y.backward(g)

    def forward_only():
        with tn.no_grad():
            y = x
            for _ in range(n):
                y = y * 1.0

    a = np.ones(4, np.float32)

    def numpy_chain():
        y = a
        for _ in range(n):
            y = y * np.float32(1.0)

    return tuple(t / n * 1e6 for t in medians([chain, forward_only, numpy_chain], repeat))


def throughput(size, repeat):
    rng = np.random.default_rng(0)
    rows = []
    x_np = rng.standard_normal(size).astype(np.float32)
    b_np = rng.standard_normal(size).astype(np.float32)
    g_np = rng.standard_normal(size).astype(np.float32)
    nbytes = x_np.nbytes
    x = tn.from_numpy(x_np).requires_grad_()
    b = tn.from_numpy(b_np).requires_grad_()
    g = tn.from_numpy(g_np)
    rows_, cols = 4096, size // 4096
    x2_np = x_np[: rows_ * cols].reshape(rows_, cols)
    x2 = tn.from_numpy(x2_np).requires_grad_()

    def case(name, ours, theirs, traffic):
        def step():  # as in training: gradients are zeroed before each backward
            x.grad = b.grad = x2.grad = None
            ours()
        t_ours, t_np = medians([step, theirs], repeat)
        rows.append((name, traffic * nbytes / t_ours / 1e9, traffic * nbytes / t_np / 1e9, t_np / t_ours,
                     traffic * nbytes))

    def sigmoid_ours():
        x.sigmoid().backward(g)

    def sigmoid_np():
        y = 1 / (1 + np.exp(-x_np))
        return g_np * y * (1 - y)
    case("sigmoid fwd+bwd", sigmoid_ours, sigmoid_np, 5)  # read x, write y; read g, y, write dx

    def tanh_ours():
        x.tanh().backward(g)

    def tanh_np():
        y = np.tanh(x_np)
        return g_np * (1 - y * y)
    case("tanh fwd+bwd", tanh_ours, tanh_np, 5)

    def relu_ours():
        x.relu().backward(g)

    def relu_np():
        y = np.maximum(x_np, 0)
        return np.where(y > 0, g_np, 0)
    case("relu fwd+bwd", relu_ours, relu_np, 5)

    def mul_ours():
        (x * b).backward(g)

    def mul_np():
        return x_np * b_np, g_np * b_np, g_np * x_np
    case("mul fwd+bwd", mul_ours, mul_np, 8)  # read a, b, write y; read g, a, b, write da, db

    def add_ours():
        (x + b).backward(g)

    def add_np():
        return x_np + b_np, g_np.copy(), g_np.copy()
    # NOTE: backward hands g to both inputs; each `.grad` must be an array of its own
    # (a.grad.mul_(2) must not change b.grad or the caller's g), so both engines copy
    # it twice (PyTorch's AccumulateGrad clones it too). Until 2026-11-23 the numpy side
    # did only the forward, which is not the same work.
    case("add fwd+bwd", add_ours, add_np, 7)  # read a, b, write y; read g, write da; read g, write db

    g_row = tn.from_numpy(g_np[:rows_].copy())
    g_col = tn.from_numpy(g_np[:cols].copy())

    def sum_rows_ours():
        x2.sum(1).backward(g_row)

    def sum_rows_np():
        x2_np.sum(1)
        return np.broadcast_to(g_np[:rows_, None], x2_np.shape).copy()
    case("sum(dim=-1) fwd+bwd", sum_rows_ours, sum_rows_np, 2)

    def mean_cols_ours():
        x2.mean(0).backward(g_col)

    def mean_cols_np():
        x2_np.mean(0)
        return np.broadcast_to(g_np[None, :cols] / rows_, x2_np.shape).copy()
    case("mean(dim=0) fwd+bwd", mean_cols_ours, mean_cols_np, 2)

    def var_cols_ours():
        x2.var(0).backward(g_col)

    def var_cols_np():
        m = x2_np.mean(0)
        x2_np.var(0, ddof=1)
        return g_np[None, :cols] * (2.0 / (rows_ - 1)) * (x2_np - m)
    case("var(dim=0) fwd+bwd", var_cols_ours, var_cols_np, 4)  # read x twice; read x, write dx

    def max_all_ours():
        x.max().backward(tn.tensor(1.0))

    def max_all_np():
        m = x_np.max()
        eq = x_np == m
        return eq / eq.sum()
    case("max() fwd+bwd", max_all_ours, max_all_np, 3)
    return rows


TORCH_CASES = {  # the same work in PyTorch, for the optional peer column
    "sigmoid fwd+bwd": lambda x, b, g, x2, gr, gc: x.sigmoid().backward(g),
    "tanh fwd+bwd": lambda x, b, g, x2, gr, gc: x.tanh().backward(g),
    "relu fwd+bwd": lambda x, b, g, x2, gr, gc: x.relu().backward(g),
    "mul fwd+bwd": lambda x, b, g, x2, gr, gc: (x * b).backward(g),
    "add fwd+bwd": lambda x, b, g, x2, gr, gc: (x + b).backward(g),
    "sum(dim=-1) fwd+bwd": lambda x, b, g, x2, gr, gc: x2.sum(1).backward(gr),
    "mean(dim=0) fwd+bwd": lambda x, b, g, x2, gr, gc: x2.mean(0).backward(gc),
    "var(dim=0) fwd+bwd": lambda x, b, g, x2, gr, gc: x2.var(0).backward(gc),
    "max() fwd+bwd": lambda x, b, g, x2, gr, gc: x.max().backward(),
}


def torch_worker(size, repeat):
    """Child process: print {case: median seconds} of TORCH_CASES as JSON."""
    import json

    import torch
    rng = np.random.default_rng(0)
    x, b, g = (torch.from_numpy(rng.standard_normal(size).astype(np.float32)) for _ in range(3))
    x.requires_grad_()
    b.requires_grad_()
    rows, cols = 4096, size // 4096
    x2 = x.detach()[: rows * cols].reshape(rows, cols).clone().requires_grad_()
    gr, gc = g[:rows].clone(), g[:cols].clone()
    out = {}
    for name, work in TORCH_CASES.items():
        def step():
            x.grad = b.grad = x2.grad = None
            work(x, b, g, x2, gr, gc)
        out[name] = medians([step], repeat)[0]
    print(json.dumps(out))


def torch_peer(size, repeat):
    """{case: PyTorch seconds} from a child process (alone: its OpenMP threads spin),
    or {} without torch."""
    import json
    run = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", "--size", str(size),
                          "--repeat", str(repeat)], capture_output=True, text=True)
    return json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 and run.stdout.strip() else {}


def cold_start(repeat):
    """Fresh interpreter: `import tinygrad_norm`, and import + first training step
    (numba's cache is warm: the step ran once before)."""
    step = ("import tinygrad_norm as tn;"
            "x=tn.randn(60,784);w=tn.randn(784,100,requires_grad=True);"
            "((x@w).sigmoid()*2).mean().backward()")
    subprocess.run([sys.executable, "-c", step], check=True, cwd=os.path.dirname(__file__) + "/..")

    def timed(code):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(__file__) + "/..")
            times.append(time.perf_counter() - t)
        return statistics.median(times)
    return timed("pass"), timed("import tinygrad_norm"), timed("import numba"), timed(step)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--size", type=int, default=1 << 22, help="elements of the large arrays (float32)")
    ap.add_argument("--no-torch", action="store_true", help="do not time PyTorch even when installed")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.size, args.repeat)
        return
    print(f"numpy {np.__version__}, {os.cpu_count()} cores, medians of {args.repeat} runs\n")

    fb, f, npf = per_op_overhead(args.repeat)
    print("per-op overhead (tiny tensor, 4 elements)")
    print(f"  forward + backward   {fb:8.2f} µs / op")
    print(f"  forward only         {f:8.2f} µs / op   (numpy's own `a * 1.0`: {npf:.2f} µs)\n")

    print(f"throughput on {args.size:,} float32 elements ({args.size * 4 / 1e6:.0f} MB per array)")
    rows = throughput(args.size, args.repeat)
    peer = {} if args.no_torch else torch_peer(args.size, args.repeat)
    print(f"  {'work':<22}{'tinygrad_norm':>15}{'numpy':>12}{'ratio':>9}" + (f"{'PyTorch':>14}" if peer else ""))
    for name, ours, theirs, ratio, traffic in rows:
        torch_col = f"{traffic / peer[name] / 1e9:>9.1f} GB/s" if name in peer else ""
        print(f"  {name:<22}{ours:>11.1f} GB/s{theirs:>7.1f} GB/s{ratio:>8.2f}x" + torch_col)

    base, imp, numba_imp, step = cold_start(max(5, args.repeat // 3))
    print("\ncold start (fresh process, warm numba cache)")
    print(f"  python -c pass                 {base:6.3f} s")
    print(f"  import tinygrad_norm           {imp:6.3f} s   (target < 0.5 s; numba is imported lazily)")
    print(f"  import numba (alone)           {numba_imp:6.3f} s")
    print(f"  import + first training step   {step:6.3f} s   (includes numba + loading cached kernels)")


if __name__ == "__main__":
    main()
