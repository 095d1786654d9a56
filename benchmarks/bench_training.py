"""Training-step speed against the BLAS floor.

For each model, one training step = forward + cross-entropy + backward + SGD step
(momentum 0.9) on a fixed random batch. Its median time (over repeated runs of
several steps) is printed next to the *floor*: the time numpy's BLAS needs, in
the same process, for just the matrix products of that step (forward and
backward products of the same shapes, float32). The ratio step / floor is the
price of everything else: elementwise ops, the loss, the optimizer, Python.

Models:
  ioffe-mlp   784-100-100-100-10 sigmoid MLP, batch 60 (Ioffe & Szegedy 2015, §4.1)
  ioffe-mlp-bn  the same with BatchNorm1d before each sigmoid (hidden Linears without bias)
  wide-mlp    784-1024-1024-10 ReLU MLP, batch 256
  small-cnn   conv3x3(1→32)-ReLU-conv3x3(32→32)-ReLU-maxpool2-linear(6272→10), 28×28, batch 128
              (its floor: the im2col products of both convs and the linear layer)

Usage:
    python benchmarks/bench_training.py                  # all models
    python benchmarks/bench_training.py --models ioffe-mlp --repeats 9
    python benchmarks/bench_training.py --profile wide-mlp   # cProfile of 50 steps
    python benchmarks/bench_training.py --ops ioffe-mlp      # time inside each op vs the rest
    python benchmarks/bench_training.py --json results.json  # also write the numbers
Target: both MLPs within 1.5x of their floor.

When PyTorch is importable (never a dependency; e.g. `pip install torch==2.13.0`
in a scratch virtualenv), the same step in PyTorch is timed as a peer: how far a
C++ engine gets above the same floor on this machine. NOTE: it runs alone in a
child process, after ours: its OpenMP threads spin, and alternating with
numpy's OpenBLAS calls (ours, or the floor's) in one process slowed both 2-3x.
`--no-torch` skips it.

NOTE (threads): numba's default threading layer on Linux is GNU OpenMP, whose
idle threads spin; OpenBLAS's threads spin too. On a machine with few cores the
two pools then fight over the cores each time a large elementwise kernel (the
parallel twin) and a matmul alternate: wide-mlp took ~3.5x its floor by default
and ~1.25x with OMP_WAIT_POLICY=PASSIVE (or NUMBA_THREADING_LAYER=workqueue)
on a 2-core machine. Run with those variables set to see the difference.
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinygrad_norm as tn  # noqa: E402
from _timing import interleaved  # noqa: E402
from tinygrad_norm import nn  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402

# ------------------------------------------------------------------ the models


def ioffe_mlp():
    layers = []
    for fan_in, fan_out in [(784, 100), (100, 100), (100, 100)]:
        layers += [nn.Linear(fan_in, fan_out), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(100, 10)), (60, 784)


def ioffe_mlp_bn():
    layers = []
    for fan_in, fan_out in [(784, 100), (100, 100), (100, 100)]:
        layers += [nn.Linear(fan_in, fan_out, bias=False), nn.BatchNorm1d(fan_out), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(100, 10)), (60, 784)


def wide_mlp():
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 10)), (256, 784)


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 14 * 14, 10)), (128, 1, 28, 28)


MODELS = {"ioffe-mlp": ioffe_mlp, "ioffe-mlp-bn": ioffe_mlp_bn, "wide-mlp": wide_mlp, "small-cnn": small_cnn}


def matmul_shapes(model, input_shape):
    """(m, k, n) of every matrix product of one step: forward, grad of the input
    (skipped for the first layer: the data needs no gradient) and grad of the weight."""
    shapes, first = [], True
    h, w = (input_shape[2], input_shape[3]) if len(input_shape) == 4 else (None, None)
    batch = input_shape[0]
    for m in model.modules():
        if isinstance(m, nn.Linear):
            b, i, o = batch, m.in_features, m.out_features
        elif isinstance(m, nn.Conv2d):
            # im2col: (B·H·W, Cin·kh·kw) @ (Cin·kh·kw, Cout), padding keeps H×W here
            b, i, o = batch * h * w, m.in_channels * m.kernel_size[0] * m.kernel_size[1], m.out_channels
        else:
            continue
        shapes.append((b, i, o))           # y = x @ Wᵀ
        if not first:
            shapes.append((b, o, i))       # dx = g @ W
        shapes.append((o, b, i))           # dW = gᵀ @ x
        first = False
    return shapes


# -------------------------------------------------------------------- timing

class BlasFloor:
    """np.matmul on float32 operands of the given (m, k, n) shapes, back to back."""

    def __init__(self, shapes, rng):
        self.operands = [(rng.standard_normal((m, k), dtype=np.float32),
                          rng.standard_normal((k, n), dtype=np.float32)) for m, k, n in shapes]
        self.outs = [np.empty((m, n), np.float32) for m, _, n in shapes]
        self()  # warm up

    def __call__(self):
        for (a, b), out in zip(self.operands, self.outs):
            np.matmul(a, b, out=out)


def make_step(model, input_shape, phases=None):
    """One training step on a fixed batch; with `phases` (a dict of lists), the
    time of forward (+ loss), backward and optimizer step is appended to it."""
    rng = np.random.default_rng(0)
    x = tn.tensor(rng.standard_normal(input_shape, dtype=np.float32))
    y = tn.tensor(rng.integers(0, 10, input_shape[0]))
    opt = tn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        if phases is not None:
            t3 = time.perf_counter()
            phases["forward"].append(t1 - t0)
            phases["backward"].append(t2 - t1)
            phases["optimizer"].append(t3 - t2)
        return loss
    return step


def torch_step(name):
    """The same training step in PyTorch (float32, the same layer sizes), or None
    when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    tnn = torch.nn
    torch.manual_seed(0)
    if name == "ioffe-mlp":
        layers = []
        for fan_in, fan_out in [(784, 100), (100, 100), (100, 100)]:
            layers += [tnn.Linear(fan_in, fan_out), tnn.Sigmoid()]
        model, shape = tnn.Sequential(*layers, tnn.Linear(100, 10)), (60, 784)
    elif name == "ioffe-mlp-bn":
        layers = []
        for fan_in, fan_out in [(784, 100), (100, 100), (100, 100)]:
            layers += [tnn.Linear(fan_in, fan_out, bias=False), tnn.BatchNorm1d(fan_out), tnn.Sigmoid()]
        model, shape = tnn.Sequential(*layers, tnn.Linear(100, 10)), (60, 784)
    elif name == "wide-mlp":
        model, shape = tnn.Sequential(tnn.Linear(784, 1024), tnn.ReLU(), tnn.Linear(1024, 1024), tnn.ReLU(),
                                      tnn.Linear(1024, 10)), (256, 784)
    else:
        model, shape = tnn.Sequential(tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.Conv2d(32, 32, 3, padding=1),
                                      tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                                      tnn.Linear(32 * 14 * 14, 10)), (128, 1, 28, 28)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, shape[0]))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = tnn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


CLOCK = time.perf_counter  # --cpu-time: time.process_time


def torch_peer(name, steps, repeats):
    """PyTorch's step in seconds, the median from a child process; None without torch."""
    cpu = ["--cpu-time"] if CLOCK is time.process_time else []
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", name,
                          "--steps", str(steps), "--repeats", str(repeats)] + cpu, capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_worker(name, steps, repeats):
    """Child process of torch_peer: print the median step time as JSON."""
    step = torch_step(name)
    if step is None:
        sys.exit(1)
    print(json.dumps(time_interleaved([step], steps, repeats)[0][0]))


def time_interleaved(fns, steps, repeats):
    """(median, minimum) seconds per call of each function, over `repeats` runs of
    `steps` calls each; the functions take turns, so all see the same machine load."""
    return [(float(np.median(ts)), float(np.min(ts))) for ts in interleaved(fns, repeats, steps, warmup=3,
                                                                           clock=CLOCK)]


def profile(name, steps=50):
    tn.manual_seed(0)
    model, shape = MODELS[name]()
    step = make_step(model, shape)
    for _ in range(3):
        step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("tottime")
    stats.print_stats(30)
    print(f"cProfile of {steps} steps of {name} (sorted by own time):")
    print(out.getvalue())


def op_table(name, steps=200):
    """Time spent inside each Function's forward and backward (their numpy/BLAS/numba
    work), the optimizer, and the rest of the step (graph building, module calls,
    argument checks, the backward walk: the engine's Python overhead), per step."""
    from collections import defaultdict

    from tinygrad_norm.tensor import Function

    tn.manual_seed(0)
    model, shape = MODELS[name]()
    step = make_step(model, shape)
    for _ in range(3):
        step()
    spent, calls = defaultdict(float), defaultdict(int)
    patched = []

    def wrap(cls, method):
        original = cls.__dict__[method]

        def timed(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                key = f"{cls.name or cls.__name__}.{method}"
                spent[key] += time.perf_counter() - t0
                calls[key] += 1
        setattr(cls, method, timed)
        patched.append((cls, method, original))

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in set(subclasses(Function)):
        for method in ("forward", "backward"):
            if method in cls.__dict__:
                wrap(cls, method)
    try:
        t_start = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - t_start
    finally:
        for cls, method, original in patched:
            setattr(cls, method, original)
    per_step = {k: v / steps * 1e6 for k, v in spent.items()}
    inside = sum(per_step.values())
    print(f"{name}: {total / steps * 1e6:.0f} µs per step (with timing wrappers), of which inside op "
          f"forward/backward bodies {inside:.0f} µs; the rest ({total / steps * 1e6 - inside:.0f} µs) is "
          f"graph building, module calls, checks, the backward walk, zero_grad and the SGD step")
    for key, us in sorted(per_step.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<28} {us:8.1f} µs/step  ({calls[key] // steps} calls)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--steps", type=int, default=10, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs (the median is reported)")
    parser.add_argument("--profile", choices=sorted(MODELS), help="print a cProfile of this model instead")
    parser.add_argument("--ops", choices=sorted(MODELS), help="print the time inside each op of this model")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--no-torch", action="store_true", help="do not time PyTorch even when installed")
    parser.add_argument("--cpu-time", action="store_true",
                        help="CPU seconds of the process instead of wall seconds (steadier on a loaded machine; "
                             "meaningful with one thread: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)")
    parser.add_argument("--torch-worker", choices=sorted(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    if args.torch_worker:
        torch_worker(args.torch_worker, args.steps, args.repeats)
        return None
    if args.profile:
        profile(args.profile)
        return None
    if args.ops:
        op_table(args.ops)
        return None

    rng = np.random.default_rng(0)
    threads = {k: os.environ.get(k, "default") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                             "NUMBA_NUM_THREADS")}
    print(f"numpy {np.__version__}, {os.cpu_count()} cpus, " + ", ".join(f"{k}={v}" for k, v in threads.items()))
    print(f"{'model':<12} {'step (ms)':>10} {'BLAS floor (ms)':>16} {'ratio':>7}   "
          f"{'fwd+loss':>8} {'backward':>8} {'opt step':>8}   {'min/min':>7}   {'PyTorch':>8} {'ratio':>6}"
          f"  (medians in ms; min/min: ratio of the fastest runs; PyTorch: its step, alone in a child\n"
          f"{'':<12} process, and its ratio to the same floor)")
    results = {}
    for name in args.models:
        tn.manual_seed(0)
        model, shape = MODELS[name]()
        phases = {"forward": [], "backward": [], "optimizer": []}
        (step_time, step_min), (floor, floor_min) = time_interleaved(
            [make_step(model, shape, phases), BlasFloor(matmul_shapes(model, shape), rng)], args.steps, args.repeats)
        peer = None if args.no_torch else torch_peer(name, args.steps, args.repeats)
        split = {k: float(np.median(v)) * 1e3 for k, v in phases.items()}
        results[name] = {"step_ms": step_time * 1e3, "blas_floor_ms": floor * 1e3, "ratio": step_time / floor,
                         "step_min_ms": step_min * 1e3, "blas_floor_min_ms": floor_min * 1e3,
                         "batch_shape": list(shape), **{f"{k}_ms": v for k, v in split.items()}}
        torch_cols = ""
        if peer:
            results[name].update(torch_step_ms=peer * 1e3, torch_ratio=peer / floor)
            torch_cols = f"   {peer * 1e3:>8.3f} {peer / floor:>5.2f}x"
        print(f"{name:<12} {step_time * 1e3:>10.3f} {floor * 1e3:>16.3f} {step_time / floor:>7.2f}x   "
              f"{split['forward']:>8.3f} {split['backward']:>8.3f} {split['optimizer']:>8.3f}   "
              f"{step_min / floor_min:>6.2f}x" + torch_cols, flush=True)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(results, fh, indent=2)
        os.replace(tmp, args.json)
    return results


if __name__ == "__main__":
    main()
