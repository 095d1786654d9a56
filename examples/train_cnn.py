"""Train a small convolutional network on MNIST.

    python examples/train_cnn.py                          # 2 conv layers + 2 linear, SGD + Nesterov, ~99 %
    python examples/train_cnn.py --bn                     # with BatchNorm2d after each conv
    python examples/train_cnn.py --checkpoint cnn.npz [--resume]
    python examples/train_cnn.py --limit-batches 5 --epochs 1    # a smoke test

The model, in PyTorch terms:
    Conv2d(1, c1, 3, padding=1) → (BatchNorm2d) → ReLU → MaxPool2d(2)      28×28 → 14×14
    Conv2d(c1, c2, 3, padding=1) → (BatchNorm2d) → ReLU → MaxPool2d(2)     14×14 → 7×7
    Flatten → Linear(c2·7·7, 128) → ReLU → (Dropout) → Linear(128, 10)
The loop, checkpoints and progress bar are in mnist_training.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinygrad_norm import nn  # noqa: E402

try:
    from mnist_training import make_parser, run  # noqa: E402
except ImportError:  # imported as examples.train_cnn
    from examples.mnist_training import make_parser, run  # noqa: E402


def build_model(args):
    c1, c2 = args.channels
    layers = []
    for c_in, c_out in [(1, c1), (c1, c2)]:
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
        if args.bn:
            if not hasattr(nn, "BatchNorm2d"):
                raise SystemExit("--bn: this tinygrad_norm has no nn.BatchNorm2d")
            layers.append(nn.BatchNorm2d(c_out))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    layers += [nn.Flatten(), nn.Linear(c2 * 7 * 7, 128), nn.ReLU()]
    if args.dropout > 0:
        layers.append(nn.Dropout(args.dropout))
    layers.append(nn.Linear(128, 10))
    return nn.Sequential(*layers)


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0], dict(epochs=3, batch_size=64))
    parser.add_argument("--channels", type=int, nargs=2, default=[16, 32], metavar=("C1", "C2"),
                        help="output channels of the two conv layers")
    parser.add_argument("--dropout", type=float, default=0.25, help="dropout before the last layer (0: none)")
    args = parser.parse_args(argv)
    return run(args, build_model, flatten=False, name=f"cnn-{args.channels[0]}-{args.channels[1]}")


if __name__ == "__main__":
    main()
