#!/usr/bin/env bash
# Set up (a virtualenv in .venv unless one is active or $VENV is set) and run the main job:
# train the Ioffe & Szegedy MNIST MLP (784-100-100-100-10, sigmoid) with and without BatchNorm.
# Extra arguments go to the training script.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-${VIRTUAL_ENV:-.venv}}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -e .
if [ -z "${TINYGRAD_NORM_DATA:-}" ] && [ -d ../shared/datasets/mnist ]; then
  export TINYGRAD_NORM_DATA="$(cd ../shared/datasets/mnist && pwd)"
fi
"$VENV/bin/python" examples/train_mlp.py "$@"
"$VENV/bin/python" examples/train_mlp.py --bn "$@"
