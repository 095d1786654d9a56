"""Convolution speed: Conv2d layers and a VGG-style CNN step next to their BLAS floor
and (when installed) PyTorch.

    python benchmarks/bench_conv.py [--repeats 5] [--layers] [--cnn] [--no-torch]

Layers: the lab's Conv2d shapes (1→32, 32→32, 32→64, 64→64, 3×3, padding 1) at
28×28 and 14×14, batch 128, forward + backward (input gradient too, except for
the first layer's 1 channel, whose input is data).

CNN step: 1×28×28, [conv3×3(32)-BN2d-ReLU]×2, maxpool 2, [conv3×3(64)-BN2d-ReLU]×2,
maxpool 2, Linear(3136, 10), batch 128; step = zero_grad, forward,
cross-entropy, backward, SGD (momentum 0.9). Also its peak memory: the peak
resident set during three steps above the resident set before them, after a
step on a batch of 2 has loaded the code (both engines measured the same way,
each in a fresh process).

Floor: numpy's BLAS alone doing the matmuls of im2col convolution of the same
shapes (per conv: W @ cols, Wᵀ @ g and cols @ gᵀ, the middle one skipped for the
first layer; and the Linear layer's), timed in the same process, taking turns
with the engine (benchmarks/_timing.py). PyTorch (an optional peer, never a
dependency) runs the same work alone in a child process: its OpenMP threads
and numpy's OpenBLAS threads slow each other down in one process.
"""
import argparse
import json
import os
import resource
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _timing import interleaved  # noqa: E402

LAYERS = [(1, 32, 28), (32, 32, 28), (32, 64, 28), (64, 64, 28),
          (1, 32, 14), (32, 32, 14), (32, 64, 14), (64, 64, 14)]  # (C_in, C_out, H = W)
BATCH = 128


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------- the floor

def conv_matmuls(C, O, H, W, N, first):
    """(m, k, n) of the im2col matmuls of one 3×3 stride-1 'same' conv, fwd + bwd."""
    K, L = 9 * C, N * H * W
    shapes = [(O, K, L)]               # y     = W @ cols
    if not first:
        shapes.append((K, O, L))       # dcols = Wᵀ @ g
    shapes.append((K, L, O))           # dW    = cols @ gᵀ
    return shapes


def cnn_matmuls(N):
    shapes, hw = [], 28
    for i, (c, o) in enumerate([(1, 32), (32, 32), (32, 64), (64, 64)]):
        shapes += conv_matmuls(c, o, hw, hw, N, first=i == 0)
        if i % 2 == 1:
            hw //= 2
    shapes += [(N, 3136, 10), (N, 10, 3136), (10, N, 3136)]  # Linear: y, dx, dW
    return shapes


class Floor:
    """np.matmul on float32 operands of the given (m, k, n) shapes, back to back."""

    def __init__(self, shapes):
        rng = np.random.default_rng(1)
        self.ops = [(rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32),
                     np.empty((m, n), np.float32)) for m, k, n in shapes]

    def __call__(self):
        for a, b, out in self.ops:
            np.matmul(a, b, out=out)


# ---------------------------------------------------------------- the engines

def ours(kind, C=None, O=None, H=None):
    import tinygrad_norm as tn
    from tinygrad_norm import nn
    from tinygrad_norm.nn import functional as F
    tn.manual_seed(0)
    rng = np.random.default_rng(0)
    if kind == "layer":
        conv = nn.Conv2d(C, O, 3, padding=1)
        x = tn.tensor(rng.standard_normal((BATCH, C, H, H), dtype=np.float32), requires_grad=C > 1)
        g = rng.standard_normal((BATCH, O, H, H), dtype=np.float32)

        def layer():
            x.grad = None
            conv.zero_grad()
            conv(x).backward(g)
        return layer

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
    model = nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 10))
    x = tn.tensor(rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32))
    y = tn.tensor(rng.integers(0, 10, BATCH))
    opt = tn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def torch_fn(kind, C=None, O=None, H=None):
    import torch
    tnn = torch.nn
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if kind == "layer":
        conv = tnn.Conv2d(C, O, 3, padding=1)
        x = torch.from_numpy(rng.standard_normal((BATCH, C, H, H), dtype=np.float32)).requires_grad_(C > 1)
        g = torch.from_numpy(rng.standard_normal((BATCH, O, H, H), dtype=np.float32))

        def layer():
            x.grad = None
            conv.zero_grad()
            conv(x).backward(g)
        return layer

    def block(i, o):
        return [tnn.Conv2d(i, o, 3, padding=1), tnn.BatchNorm2d(o), tnn.ReLU()]
    model = tnn.Sequential(*block(1, 32), *block(32, 32), tnn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                           tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(3136, 10))
    x = torch.from_numpy(rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, BATCH))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        tnn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def memory_of(make):
    """Peak resident memory during three CNN steps above the resident memory just
    before them (bytes), sampled every millisecond. A step on a batch of 2 runs
    first, so that loading code (numba's cached kernels, oneDNN's) is not counted."""
    import threading
    import time
    global BATCH
    batch, BATCH = BATCH, 2
    make("cnn")()
    BATCH = batch
    step = make("cnn")
    before = peak = rss_bytes()
    done = False

    def sample():
        nonlocal peak
        while not done:
            peak = max(peak, rss_bytes())
            time.sleep(0.001)
    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(3):
        step()
    done = True
    sampler.join()
    return max(peak, rss_bytes()) - before


# ---------------------------------------------------------------- workers

def worker(engine, what, repeats):
    """Run in a fresh process: print JSON {name: median seconds} (and the CNN's memory)."""
    make = torch_fn if engine == "torch" else ours
    if engine == "torch":
        import torch  # noqa: F401  (fails fast, exit code 1, when absent)
    out = {}
    if what == "memory":
        out["memory"] = memory_of(make)
    else:
        jobs = [(f"{c}->{o}@{h}", make("layer", c, o, h)) for c, o, h in LAYERS] if what == "layers" \
            else [("cnn", make("cnn"))]
        times = interleaved([fn for _, fn in jobs], repeats, warmup=1)
        out = {name: float(np.median(t)) for (name, _), t in zip(jobs, times)}
    print(json.dumps(out))


def run_worker(python, engine, what, repeats):
    r = subprocess.run([python, os.path.abspath(__file__), "--worker", engine, what, "--repeats", str(repeats)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if engine != "torch":
            sys.stderr.write(r.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", action="store_true", help="only the layers")
    parser.add_argument("--cnn", action="store_true", help="only the CNN step")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.repeats)
    do_layers, do_cnn = (args.layers or not args.cnn), (args.cnn or not args.layers)
    print(f"batch {BATCH}, float32, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}; "
          f"medians of {args.repeats} (ours and the floor take turns; PyTorch alone in a child process)")
    if do_layers:
        import tinygrad_norm  # noqa: F401  (the same process as the floor)
        fns = [ours("layer", c, o, h) for c, o, h in LAYERS]
        floors = [Floor(conv_matmuls(c, o, h, h, BATCH, first=c == 1)) for c, o, h in LAYERS]
        times = interleaved([f for pair in zip(fns, floors) for f in pair], args.repeats, warmup=1)
        peer = None if args.no_torch else run_worker(sys.executable, "torch", "layers", args.repeats)
        print(f"{'Conv2d fwd+bwd':<16} {'ours ms':>8} {'floor ms':>9} {'ours/floor':>10} {'torch ms':>9} "
              f"{'ours/torch':>10}")
        for i, (c, o, h) in enumerate(LAYERS):
            t, f = np.median(times[2 * i]), np.median(times[2 * i + 1])
            row = f"{f'{c}->{o} at {h}x{h}':<16} {t * 1e3:8.1f} {f * 1e3:9.1f} {t / f:9.2f}x"
            if peer:
                p = peer[f"{c}->{o}@{h}"]
                row += f" {p * 1e3:9.1f} {t / p:9.2f}x"
            print(row, flush=True)
    if do_cnn:
        import tinygrad_norm  # noqa: F401
        step, floor = ours("cnn"), Floor(cnn_matmuls(BATCH))
        t, f = (np.median(v) for v in interleaved([step, floor], args.repeats, warmup=1))
        peer = None if args.no_torch else run_worker(sys.executable, "torch", "cnn", args.repeats)
        mem = run_worker(sys.executable, "ours", "memory", 1)
        mem_t = None if args.no_torch else run_worker(sys.executable, "torch", "memory", 1)
        print(f"VGG-style CNN step: ours {t * 1e3:.1f} ms, BLAS floor {f * 1e3:.1f} ms, ratio {t / f:.2f}x"
              + (f"; PyTorch {peer['cnn'] * 1e3:.1f} ms, ours/PyTorch {t / peer['cnn']:.2f}x" if peer else ""))
        print(f"  peak memory of a step (resident set above the state before it): ours {mem['memory'] / 2**20:.0f} MB"
              + (f", PyTorch {mem_t['memory'] / 2**20:.0f} MB" if mem_t else ""))
    return None


if __name__ == "__main__":
    main()
