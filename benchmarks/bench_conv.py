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

def engine(name):
    """(nn, functional, optim, tensor(array, requires_grad), manual_seed) of "ours" or "torch":
    the two APIs are the same, so one model definition serves both."""
    if name == "torch":
        import torch
        return (torch.nn, torch.nn.functional, torch.optim,
                lambda a, rg=False: torch.from_numpy(a).requires_grad_(rg), torch.manual_seed)
    import tinygrad_norm as tn
    return tn.nn, tn.nn.functional, tn.optim, lambda a, rg=False: tn.tensor(a, requires_grad=rg), tn.manual_seed


def make(name, kind, C=None, O=None, H=None):
    """The timed function: one Conv2d layer's forward + backward, or one CNN step."""
    nn, F, optim, tensor, manual_seed = engine(name)
    manual_seed(0)
    rng = np.random.default_rng(0)
    if kind == "layer":
        conv = nn.Conv2d(C, O, 3, padding=1)
        x = tensor(rng.standard_normal((BATCH, C, H, H), dtype=np.float32), C > 1)
        g = tensor(rng.standard_normal((BATCH, O, H, H), dtype=np.float32))

        def layer():
            x.grad = None
            conv.zero_grad()
            conv(x).backward(g)
        return layer

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
    model = nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 10))
    x = tensor(rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32))
    y = tensor(rng.integers(0, 10, BATCH))
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def ours(kind, C=None, O=None, H=None):
    return make("ours", kind, C, O, H)


def torch_fn(kind, C=None, O=None, H=None):
    return make("torch", kind, C, O, H)


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
    """Run in a fresh process: print JSON {name: median seconds} (with "<name> floor"
    for ours: the BLAS floor, timed in turns with it), or the CNN step's memory."""
    make = torch_fn if engine == "torch" else ours
    if engine == "torch":
        import torch  # noqa: F401  (fails fast, exit code 1, when absent)
    if what == "memory":
        print(json.dumps({"memory": memory_of(make)}))
        return
    jobs = []
    if what in ("layers", "both"):
        jobs += [(f"{c}->{o}@{h}", make("layer", c, o, h), conv_matmuls(c, o, h, h, BATCH, first=c == 1))
                 for c, o, h in LAYERS]
    if what in ("cnn", "both"):
        jobs.append(("cnn", make("cnn"), cnn_matmuls(BATCH)))
    fns, names = [], []
    for name, fn, shapes in jobs:
        fns.append(fn)
        names.append(name)
        if engine == "ours":
            fns.append(Floor(shapes))
            names.append(name + " floor")
    times = interleaved(fns, repeats, warmup=1)
    print(json.dumps({name: float(np.median(t)) for name, t in zip(names, times)}))


def run_worker(python, engine, what, repeats):
    r = subprocess.run([python, os.path.abspath(__file__), "--worker", engine, what, "--repeats", str(repeats)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if engine != "torch":
            sys.stderr.write(r.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def fmt(values, scale=1e3, unit="ms"):
    """'median (min–max)' of a list of round medians."""
    v = np.asarray(values) * scale
    return f"{np.median(v):.1f} ({v.min():.1f}-{v.max():.1f}) {unit}" if len(v) > 1 else f"{v[0]:.1f} {unit}"


def ratio(a, b):
    r = np.asarray(a) / np.asarray(b)
    return f"{np.median(r):.2f}x ({r.min():.2f}-{r.max():.2f})" if len(r) > 1 else f"{r[0]:.2f}x"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per round (the median is kept)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of fresh processes, ours (with the floor) and PyTorch taking turns")
    parser.add_argument("--layers", action="store_true", help="only the layers")
    parser.add_argument("--cnn", action="store_true", help="only the CNN step")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.repeats)
    do_layers, do_cnn = (args.layers or not args.cnn), (args.cnn or not args.layers)
    print(f"batch {BATCH}, float32, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}; "
          f"per round the median of {args.repeats} calls (ours and the floor take turns in one process, "
          f"PyTorch alone in the next); medians over {args.rounds} rounds (min-max of the rounds)")
    rounds = {"ours": [], "torch": []}
    for _ in range(args.rounds):
        what = "both" if do_layers and do_cnn else ("layers" if do_layers else "cnn")
        rounds["ours"].append(run_worker(sys.executable, "ours", what, args.repeats))
        if not args.no_torch:
            peer = run_worker(sys.executable, "torch", what, args.repeats)
            if peer is not None:
                rounds["torch"].append(peer)
    ours_r, torch_r = rounds["ours"], rounds["torch"]
    if do_layers:
        print(f"{'Conv2d fwd+bwd':<16} {'ours':>22} {'BLAS floor':>22} {'ours/floor':>18} {'PyTorch':>22} "
              f"{'ours/PyTorch':>18}")
        for c, o, h in LAYERS:
            name = f"{c}->{o}@{h}"
            t = [r[name] for r in ours_r]
            f = [r[name + " floor"] for r in ours_r]
            row = f"{f'{c}->{o} at {h}x{h}':<16} {fmt(t):>22} {fmt(f):>22} {ratio(t, f):>18}"
            if torch_r:
                p = [r[name] for r in torch_r]
                row += f" {fmt(p):>22} {ratio(t[:len(p)], p):>18}"
            print(row, flush=True)
    if do_cnn:
        t = [r["cnn"] for r in ours_r]
        f = [r["cnn floor"] for r in ours_r]
        print(f"VGG-style CNN step: ours {fmt(t)}, BLAS floor {fmt(f)}, ours/floor {ratio(t, f)}")
        if torch_r:
            p = [r["cnn"] for r in torch_r]
            print(f"  PyTorch {fmt(p)}, ours/PyTorch {ratio(t[:len(p)], p)}")
        mem = run_worker(sys.executable, "ours", "memory", 1)
        mem_t = None if args.no_torch else run_worker(sys.executable, "torch", "memory", 1)
        print(f"  peak memory of a step (resident set above the state before it): ours "
              f"{mem['memory'] / 2**20:.0f} MB" + (f", PyTorch {mem_t['memory'] / 2**20:.0f} MB" if mem_t else ""))
    return None


if __name__ == "__main__":
    main()
