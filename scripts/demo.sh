#!/usr/bin/env bash
# Set up (a virtualenv in .venv unless one is active or $VENV is set) and run the main job:
# the laboratory's Ioffe & Szegedy 2015 Figure 1 experiment, with vs without BatchNorm
# (results, figures and report.md in runs/ioffe/MODE/seed-0/). Extra arguments go to `tinygrad-norm run`,
# e.g. `bash scripts/demo.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-${VIRTUAL_ENV:-.venv}}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -e .
if [ -z "${TINYGRAD_NORM_DATA:-}" ] && [ -d ../shared/datasets/mnist ]; then
  export TINYGRAD_NORM_DATA="$(cd ../shared/datasets/mnist && pwd)"
fi
"$VENV/bin/tinygrad-norm" run ioffe "$@"   # its last line names the folder of report.md
