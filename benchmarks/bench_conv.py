"""Conv2d speed: median forward+backward time of one layer next to the BLAS matmuls
it cannot avoid.

    python benchmarks/bench_conv.py [--repeats 7] [--dtype float32]

The layer is Conv2d(32, 32, 3, padding=1) on a (128, 32, 28, 28) batch (a small
MNIST CNN layer). The reference is the three matmuls of im2col convolution on
matrices of the same shapes (forward W @ cols, backward Wᵀ @ g and cols @ gᵀ),
timed in the same run: their ratio is the overhead of im2col/col2im, the
layout copies and the autograd bookkeeping.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinygrad_norm as tn  # noqa: E402
from _timing import medians  # noqa: E402
from tinygrad_norm import nn  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    N, C, O, H, W, k = args.batch, 32, 32, 28, 28, 3

    tn.manual_seed(0)
    conv = nn.Conv2d(C, O, k, padding=1).to(dtype)
    x = tn.randn(N, C, H, W, dtype=dtype, requires_grad=True)
    g = np.random.default_rng(0).standard_normal((N, O, H, W)).astype(dtype)

    def layer():
        x.grad = None
        conv.zero_grad()
        conv(x).backward(g)

    # the same matmul calls on matrices of im2col's shapes, K = C·kh·kw, L = N·H·W
    K, L = C * k * k, N * H * W
    rng = np.random.default_rng(1)
    wm = rng.standard_normal((O, K)).astype(dtype)
    cols = rng.standard_normal((K, L)).astype(dtype)
    gm = rng.standard_normal((O, L)).astype(dtype)
    out_y, out_dcols, out_dw = np.empty((O, L), dtype), np.empty((K, L), dtype), np.empty((K, O), dtype)

    def matmuls():
        np.matmul(wm, cols, out=out_y)            # forward       W @ cols
        np.matmul(wm.T, gm, out=out_dcols)        # input grad    Wᵀ @ g
        np.matmul(cols, gm.T, out=out_dw)         # weight grad   cols @ gᵀ

    # NOTE: interleaved, so that load from other processes hits both alike
    t_layer, t_mm = medians([layer, matmuls], args.repeats, warmup=1)
    flops = 3 * 2 * O * K * L
    print(f"Conv2d({C}, {O}, {k}, padding=1) on ({N}, {C}, {H}, {W}) {dtype}, "
          f"median of {args.repeats}:")
    print(f"  layer forward+backward : {t_layer * 1e3:8.1f} ms")
    print(f"  the 3 BLAS matmuls     : {t_mm * 1e3:8.1f} ms  ({flops / t_mm / 1e9:.1f} GFLOP/s)")
    print(f"  ratio layer / matmuls  : {t_layer / t_mm:8.2f}x")


if __name__ == "__main__":
    main()
