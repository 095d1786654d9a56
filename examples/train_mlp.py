"""Train a multilayer perceptron on MNIST.

    python examples/train_mlp.py                          # 784-256-256-10 ReLU, SGD + Nesterov, ~98 %
    python examples/train_mlp.py --bn --hidden 100 100 100 --activation sigmoid   # Ioffe & Szegedy's MLP + BN
    python examples/train_mlp.py --checkpoint mlp.npz     # checkpoint every epoch ...
    python examples/train_mlp.py --checkpoint mlp.npz --resume   # ... and continue an interrupted run exactly
    python examples/train_mlp.py --limit-batches 5 --epochs 1    # a smoke test

The model, in PyTorch terms: Flatten → [Linear → (BatchNorm1d) → activation →
(Dropout)] per hidden layer → Linear → logits; loss F.cross_entropy. The loop,
checkpoints and progress bar are in mnist_training.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinygrad_norm import nn  # noqa: E402

try:
    from mnist_training import make_parser, run  # noqa: E402
except ImportError:  # imported as examples.train_mlp
    from examples.mnist_training import make_parser, run  # noqa: E402

ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU"}


def build_model(args):
    """784 → hidden... → 10 with the chosen activation, optional BatchNorm1d and Dropout."""
    layers, fan_in = [], 784
    for width in args.hidden:
        layers.append(nn.Linear(fan_in, width))
        if args.bn:
            if not hasattr(nn, "BatchNorm1d"):
                raise SystemExit("--bn: this tinygrad_norm has no nn.BatchNorm1d")
            layers.append(nn.BatchNorm1d(width))
        layers.append(getattr(nn, ACTIVATIONS[args.activation])())
        if args.dropout > 0:
            layers.append(nn.Dropout(args.dropout))
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    return nn.Sequential(*layers)


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0], dict(epochs=5, batch_size=64))
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="hidden layer widths")
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout after each hidden layer (0: none)")
    args = parser.parse_args(argv)
    return run(args, build_model, flatten=True, name=f"mlp-{'-'.join(map(str, args.hidden))}-{args.activation}")


if __name__ == "__main__":
    main()
