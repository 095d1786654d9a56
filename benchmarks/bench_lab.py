"""The lab end to end: wall time of `tinygrad-norm run` against the same protocol
written in PyTorch.

    python benchmarks/bench_lab.py [--rounds 3] [--default] [--no-torch]

Runs, each in a fresh process, the two taking turns round by round:
  ioffe --quick        2 sigmoid MLPs (with and without BN), 3,000 SGD steps of 60
                       MNIST images, test accuracy (10,000 images) and the last
                       sigmoids' input percentiles (1,000 probe images) at 13 points,
                       plus the 2 × 300-step PyTorch cross-check
  santurkar_ics --quick  4 deep linear nets (25 layers, float64, full batch of 1,000),
                       1,000 steps, internal covariate shift at 2 layers every 50
  ioffe (default)      as the first, 15,000 steps and 25 evaluations (with --default)

Ours is the command line (`python -m tinygrad_norm run NAME --quick`), so its
time includes what the lab adds around the training: the start-up, checkpoints,
the report and its figures. The PyTorch version (torch is an optional peer,
never a dependency) is the protocol's arithmetic only: the same nets, data,
batch order rule, evaluations and probes, no checkpoints and no figures, and,
like the lab, one BLAS/OpenMP thread. It reads MNIST with this package's
loader (numpy only). Target (issue 19): ours / PyTorch ≤ 0.8.
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
RUNS = {"ioffe-quick": ("ioffe", "--quick"), "ics-quick": ("santurkar_ics", "--quick"), "ioffe": ("ioffe", None)}


# ------------------------------------------------------------- the PyTorch ports

def torch_ioffe(steps, dense_until, sparse_every=1000, dense_every=250, crosscheck_steps=300):
    import torch
    from tinygrad_norm.data import mnist_arrays
    tnn = torch.nn
    torch.set_num_threads(1)
    (x_train, y_train), (x_test, y_test) = mnist_arrays("train"), mnist_arrays("test")
    xtr, ytr = torch.from_numpy(x_train), torch.from_numpy(y_train.astype(np.int64))
    xte, yte = torch.from_numpy(x_test), torch.from_numpy(y_test.astype(np.int64))
    probe = xte[:1000]
    schedule = sorted(set(range(0, min(dense_until, steps) + 1, dense_every))
                      | set(range(dense_until, steps + 1, sparse_every)) | {steps})

    def mlp(bn):
        layers = []
        for i, o in [(784, 100), (100, 100), (100, 100)]:
            layers += [tnn.Linear(i, o, bias=not bn)] + ([tnn.BatchNorm1d(o)] if bn else []) + [tnn.Sigmoid()]
        return tnn.Sequential(*layers, tnn.Linear(100, 10))

    def batches(seed, size=60):
        rng = np.random.default_rng(seed)
        while True:
            order = torch.from_numpy(rng.permutation(len(xtr)))
            for k in range(len(xtr) // size):
                idx = order[k * size:(k + 1) * size]
                yield xtr[idx], ytr[idx]

    def train(bn, n_steps, evaluate_at):
        torch.manual_seed(0)
        model = mlp(bn)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        last = [m for m in model if isinstance(m, tnn.Sigmoid)][-1]
        seen = {}
        last.register_forward_hook(lambda m, args, out: seen.update(x=args[0].detach().numpy().copy()))
        data = batches(0)
        for step in range(n_steps + 1):
            if step in evaluate_at:
                with torch.no_grad():
                    model.eval()
                    (model(xte).argmax(1) == yte).float().mean().item()
                    model.train()
                    buffers = [b.clone() for b in model.buffers()]
                    model(probe)  # BN in training mode on the probe set, buffers restored
                    for b, saved in zip(model.buffers(), buffers):
                        b.copy_(saved)
                np.percentile(seen["x"], [15, 50, 85], axis=0)
            if step == n_steps:
                break
            x, y = next(data)
            opt.zero_grad()
            tnn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    for bn in (True, False):
        train(bn, steps, set(schedule))
    for bn in (True, False):
        train(bn, crosscheck_steps, {crosscheck_steps})


def torch_ics(steps=1000, probe_every=50, lrs=(1e-7, 1e-6), layers=(9, 17), depth=25, width=10):
    import torch
    tnn = torch.nn
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((width, width))
    x = torch.from_numpy(rng.standard_normal((1000, width)))
    y = x @ torch.from_numpy(A).T

    def net(bn):
        mods = []
        for i in range(depth):
            lin = tnn.Linear(width, width, bias=False)
            tnn.init.xavier_uniform_(lin.weight)
            mods.append(lin)
            if bn and i < depth - 1:
                mods.append(tnn.BatchNorm1d(width))
        return tnn.Sequential(*mods).double()

    def grads(model, params):
        for p in params:
            p.grad = None
        ((model(x) - y) ** 2).sum().backward()
        return [p.grad.clone() for p in params]

    for lr in lrs:
        for bn in (False, True):
            torch.manual_seed(0)
            model = net(bn)
            params = list(model.parameters())
            owners = [m for m in model if any(True for _ in m.parameters(recurse=False))]
            linears = [m for m in model if isinstance(m, tnn.Linear)]
            opt = torch.optim.SGD(params, lr=lr)
            for step in range(steps + 1):
                if step % probe_every == 0:
                    buffers = [b.clone() for b in model.buffers()]
                    saved = [p.detach().clone() for p in params]
                    G = grads(model, params)
                    for k in layers:
                        layer = owners.index(linears[k - 1])
                        earlier = {id(p) for m in owners[:layer] for p in m.parameters()}
                        with torch.no_grad():
                            for p, g, s in zip(params, G, saved):
                                p.copy_(s - lr * g if id(p) in earlier else s)
                        G2 = grads(model, params)
                        own = [i for i, p in enumerate(params) if p is linears[k - 1].weight]
                        g1 = torch.cat([G[i].flatten() for i in own])
                        g2 = torch.cat([G2[i].flatten() for i in own])
                        float((g1 - g2).norm()), float(torch.nn.functional.cosine_similarity(g1, g2, dim=0))
                    with torch.no_grad():
                        for p, s in zip(params, saved):
                            p.copy_(s)
                        float(((model(x) - y) ** 2).sum())
                        for b, s in zip(model.buffers(), buffers):
                            b.copy_(s)
                if step == steps:
                    break
                opt.zero_grad()
                ((model(x) - y) ** 2).sum().backward()
                opt.step()


def torch_worker(run):
    sys.path.insert(0, ROOT)
    t = time.perf_counter()
    import torch  # noqa: F401
    if run == "ioffe-quick":
        torch_ioffe(3000, 3000)
    elif run == "ioffe":
        torch_ioffe(15000, 5000)
    else:
        torch_ics()
    return time.perf_counter() - t


# ------------------------------------------------------------- running

def ours(run):
    name, flag = RUNS[run]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "tinygrad_norm", "run", name, "--out", out, "--no-progress"]
        t = time.perf_counter()
        r = subprocess.run(cmd + ([flag] if flag else []), capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return wall


def peer(run):
    """Wall time of the PyTorch port in a fresh process (None without torch)."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", run],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode:
        if "No module named 'torch'" not in r.stderr:
            sys.stderr.write(r.stderr[-3000:])
        return None
    return wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--default", action="store_true", help="also the default (15K-step) ioffe run, once")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=["ioffe-quick", "ics-quick"])
    parser.add_argument("--torch-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        print(json.dumps(torch_worker(args.torch_worker)))
        return
    runs = list(args.runs) + (["ioffe"] if args.default and "ioffe" not in args.runs else [])
    print(f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}; wall seconds of fresh processes, "
          f"ours and PyTorch taking turns; medians over rounds (min-max)")
    for run in runs:
        rounds = 1 if run == "ioffe" else args.rounds
        t_ours, t_torch = [], []
        for _ in range(rounds):
            t_ours.append(ours(run))
            if not args.no_torch:
                p = peer(run)
                if p is not None:
                    t_torch.append(p)
        a = np.asarray(t_ours)
        row = f"{run:<12} ours {np.median(a):7.1f} s ({a.min():.1f}-{a.max():.1f})"
        if t_torch:
            b = np.asarray(t_torch)
            r = a[:len(b)] / b
            row += (f"   PyTorch {np.median(b):7.1f} s ({b.min():.1f}-{b.max():.1f})   ours/PyTorch "
                    f"{np.median(r):.2f} ({r.min():.2f}-{r.max():.2f})")
        print(row, flush=True)


if __name__ == "__main__":
    main()
