#!/usr/bin/env bash
# Set up (a virtualenv in .venv unless one is active or $VENV is set) and run the tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m paper`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-${VIRTUAL_ENV:-.venv}}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -e ".[test]"
if [ -z "${TINYGRAD_NORM_DATA:-}" ] && [ -d ../shared/datasets/mnist ]; then
  export TINYGRAD_NORM_DATA="$(cd ../shared/datasets/mnist && pwd)"
fi
exec "$VENV/bin/python" -m pytest -q "$@"
