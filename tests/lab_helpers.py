"""What the laboratory tests share: where MNIST is, and a short run in a temporary directory.

    from lab_helpers import MNIST_DIR, needs_mnist, quick_run, strict_json
"""
import json
import os
from contextlib import contextmanager

import pytest

from tinygrad_norm import lab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DIR = os.environ.get("TINYGRAD_NORM_DATA") or os.path.join(ROOT, "..", "shared", "datasets", "mnist")
HAVE_MNIST = os.path.exists(os.path.join(MNIST_DIR, "train-images-idx3-ubyte.gz"))
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="MNIST files not found ($TINYGRAD_NORM_DATA)")


@contextmanager
def mnist_data():
    """$TINYGRAD_NORM_DATA points at MNIST_DIR inside the block (restored afterwards)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYGRAD_NORM_DATA", MNIST_DIR)
    try:
        yield MNIST_DIR
    finally:
        mp.undo()


def quick_run(tmp_path_factory, name, overrides=None, mode="quick"):
    """`lab.run(name, mode, overrides)` quietly in a fresh temporary directory: (output dir, results)."""
    out = tmp_path_factory.mktemp("runs")
    with mnist_data():
        results = lab.run(name, mode=mode, out=out, overrides=overrides, progress=False, stream=False)
    return out / results["folder"], results


def strict_json(path):
    """The JSON file at `path`; NaN and ±Infinity (which json writes but JSON does not allow) fail."""
    def no_constant(name):
        raise ValueError(f"{path} holds {name}, which is not JSON")
    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_constant=no_constant)


def verdicts_over_seeds(out, name, seeds=range(5), mode="default", overrides=None):
    """`lab.run` for each seed into `out`, then the sweep's rule over them (no dask):
    ({section: verdict} of the claims, {section: verdict} of the sanity checks, the summary)."""
    from tinygrad_norm.lab.summary import summarize
    with mnist_data():
        results = [lab.run(name, mode=mode, seed=s, out=out, overrides=overrides, progress=False, stream=False)
                   for s in seeds]
    summary = summarize(results)
    return ({c["section"]: c["verdict"] for c in summary["claims"]},
            {c["section"]: c["verdict"] for c in summary["checks"]}, summary)
