"""One epoch of MNIST batches: the torch-style Dataset path against the array path.

    Dataset path:  tn.data.MNIST(root, train=True, transform=Compose([ToTensor(),
                   Normalize((0.1307,), (0.3081,))]))  ->  DataLoader(dataset, batch_size, shuffle=True)
    array path:    tn.data.mnist_arrays("train", flatten=False, normalize="standard")
                   ->  DataLoader(x, y, batch_size=..., shuffle=True)

Both yield the same kind of batch: float32 images (B, 1, 28, 28) normalized
with MNIST's mean and std, int64 labels (B,). Each sample is one epoch (60000
images: only the loading, no model); the two paths take turns and the
figure is the median ratio Dataset / array. The Dataset path sends the whole
set through a 256-entry table of the transform once (on its first batch, so
the untimed warm-up epoch pays it), then gathers rows (see
tinygrad_norm/data/vision.py); `--per-item` also times the image-by-image
path (a Lambda transform defeats the table), which is what per-sample Python costs.

Measured (2-core VM, shared): batch 64 1.08 (121.5 vs 112.3 ms), batch 256 1.04,
batch 16 0.98; image by image 17.6× the array path.

Usage:
    python benchmarks/bench_dataloader.py                   # batch 64, 5 epochs each
    python benchmarks/bench_dataloader.py --batch-size 256 --repeats 7 --per-item
Target: Dataset / array ≤ 1.2.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tinygrad_norm as tn  # noqa: E402
from tinygrad_norm.data import transforms as T  # noqa: E402
from _timing import medians  # noqa: E402


def epoch(loader):
    n = 0
    for xb, yb in loader:
        n += len(yb)
    return n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", default=None, help="directory with the MNIST files (default: tn.data's)")
    parser.add_argument("--per-item", action="store_true", help="also time the image-by-image path")
    args = parser.parse_args(argv)
    root = args.root or tn.data.default_root()
    normalize = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    dataset = tn.data.MNIST(root, train=True, transform=normalize)
    x, y = tn.data.mnist_arrays("train", flatten=False, normalize="standard", root=root)
    ds_loader = tn.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
    arr_loader = tn.data.DataLoader(x, y, batch_size=args.batch_size, shuffle=True)
    # the same values both ways (up to the rounding of the two formulas)
    xb = dataset.__getitems__(list(range(8)))[0].numpy()
    assert np.allclose(xb, x[:8], atol=1e-5), "Dataset and array paths disagree"
    fns = [lambda: epoch(ds_loader), lambda: epoch(arr_loader)]
    names = ["Dataset (MNIST + ToTensor + Normalize)", "arrays (mnist_arrays)"]
    if args.per_item:
        slow = tn.data.MNIST(root, train=True, transform=T.Compose([T.Lambda(lambda im: im), normalize]))
        fns.append(lambda: epoch(tn.data.DataLoader(slow, batch_size=args.batch_size, shuffle=True)))
        names.append("Dataset, image by image")
    times = medians(fns, args.repeats, warmup=1)
    print(f"one epoch of MNIST train (60000 images), batch {args.batch_size}, median of {args.repeats}:")
    for name, t in zip(names, times):
        print(f"  {name:42s} {t * 1e3:8.1f} ms   ratio to arrays {t / times[1]:.2f}")
    print(f"Dataset / arrays: {times[0] / times[1]:.2f}  (target <= 1.2)")


if __name__ == "__main__":
    main()
