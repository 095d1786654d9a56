"""Smoke runs of examples/train_mlp.py and examples/train_cnn.py on a few MNIST batches:
they report an accuracy, write loadable checkpoints, and --resume continues exactly."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_norm as tn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DIR = os.environ.get("TINYGRAD_NORM_DATA") or os.path.join(ROOT, "..", "shared", "datasets", "mnist")
HAVE_MNIST = any(os.path.isfile(os.path.join(MNIST_DIR, f"train-images-idx3-ubyte{ext}")) for ext in ("", ".gz"))
pytestmark = pytest.mark.skipif(not HAVE_MNIST, reason="MNIST files not found ($TINYGRAD_NORM_DATA)")


@pytest.fixture(autouse=True)
def cached_mnist(monkeypatch):
    """Decompressing and checking the training set takes ~1 s; load it once for all runs here.
    (The scripts only read the arrays.)"""
    original = tn.data.mnist_arrays
    cache = _MNIST_CACHE

    def mnist_arrays(split="train", **kwargs):
        key = (split, repr(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(split, **kwargs)
            for array in cache[key]:
                array.flags.writeable = False  # a script writing into the data would fail loudly
        return cache[key]

    monkeypatch.setattr(tn.data, "mnist_arrays", mnist_arrays)


_MNIST_CACHE = {}


def load_script(name):
    path = os.path.join(ROOT, "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPTS = {"train_mlp": ["--limit-batches", "3"], "train_cnn": ["--limit-batches", "2", "--channels", "4", "8"]}


def run(name, tmp_path, *extra):
    argv = SCRIPTS[name] + ["--epochs", "2", "--no-progress", "--data-root", MNIST_DIR] + list(extra)
    return load_script(name).main(argv)


def same_checkpoint(a, b):
    for part in ("model",):
        assert list(a[part]) == list(b[part])
        for k in a[part]:
            np.testing.assert_array_equal(a[part][k].detach().numpy(), b[part][k].detach().numpy(), err_msg=k)
    for idx, state in a["optimizer"]["state"].items():
        for k, v in state.items():
            np.testing.assert_array_equal(v.detach().numpy(), b["optimizer"]["state"][idx][k].detach().numpy())
    assert a["scheduler"] == b["scheduler"] and a["history"] == b["history"] and a["step"] == b["step"]
    np.testing.assert_array_equal(a["rng"].detach().numpy(), b["rng"].detach().numpy())


@pytest.mark.parametrize("name", ["train_mlp", "train_cnn"])
def test_smoke_run_checkpoint_and_exact_resume(name, tmp_path, capsys):
    full = tmp_path / "full.npz"
    result = run(name, tmp_path, "--checkpoint", str(full))
    out = capsys.readouterr().out
    assert 0.0 < result["test_accuracy"] <= 1.0 and result["steps"] == 2 * int(SCRIPTS[name][1])
    assert f"test accuracy: {100 * result['test_accuracy']:.2f}%" in out
    ckpt = tn.load(full)
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "rng", "position", "step", "config", "history"}
    assert [h["epoch"] for h in ckpt["history"]] == [1, 2]
    module = load_script(name)  # the checkpoint loads into a freshly built model
    args = module.make_parser("", {}).parse_args([])
    args.hidden, args.activation, args.dropout, args.channels = [256, 256], "relu", 0.1, [4, 8]
    module.build_model(args).load_state_dict(ckpt["model"])

    # interrupted mid-way through epoch 2, then resumed: identical to the uninterrupted run
    part = tmp_path / "part.npz"
    stopped = run(name, tmp_path, "--checkpoint", str(part), "--stop-after", str(int(SCRIPTS[name][1]) + 1))
    assert stopped["stopped"] and "resume with --resume" in capsys.readouterr().out
    assert tn.load(part)["position"] == {"epoch": 1, "batch": 1}
    resumed = run(name, tmp_path, "--checkpoint", str(part), "--resume")
    assert "resumed from" in capsys.readouterr().out
    assert resumed["test_accuracy"] == result["test_accuracy"]
    same_checkpoint(ckpt, tn.load(part))


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    ckpt = tmp_path / "c.npz"
    run("train_mlp", tmp_path, "--checkpoint", str(ckpt), "--stop-after", "1")
    with pytest.raises(SystemExit, match="different run; lr: checkpoint 0.05, now 0.1"):
        run("train_mlp", tmp_path, "--checkpoint", str(ckpt), "--resume", "--lr", "0.1")
    with pytest.raises(SystemExit, match="no checkpoint at"):
        run("train_mlp", tmp_path, "--checkpoint", str(tmp_path / "none.npz"), "--resume")


def test_command_line_entry_point(tmp_path):
    env = dict(os.environ, TINYGRAD_NORM_DATA=MNIST_DIR)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_mlp.py"), "--limit-batches", "2",
                           "--epochs", "1", "--hidden", "32"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy:" in proc.stdout
    last = proc.stderr.replace("\r", "\n").strip().splitlines()[-1]     # the bar's final line (tqdm)
    assert last.startswith("epoch 1/1: 100%") and "2/2" in last and "loss " in last
