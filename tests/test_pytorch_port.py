"""examples/pytorch_port/: PyTorch scripts that port by changing the import lines.

Each port must equal its PyTorch original line for line except for the import
lines, and must train to a sane accuracy on a small MNIST subset in seconds.
"""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PORT = ROOT / "examples" / "pytorch_port"
DATA = os.environ.get("TINYGRAD_NORM_DATA") or "/work/shared/datasets/mnist"
SCRIPTS = ["mnist_cnn", "mnist_mlp"]


def _is_import(line):
    return re.match(r"(import |from \S+ import )", line) is not None


@pytest.mark.parametrize("name", SCRIPTS)
def test_port_differs_from_the_pytorch_original_only_in_import_lines(name):
    port = (PORT / f"{name}.py").read_text().splitlines()
    original = (PORT / f"{name}_torch.py").read_text().splitlines()
    assert [line for line in port if not _is_import(line)] == [line for line in original if not _is_import(line)]
    port_imports = [line for line in port if _is_import(line)]
    torch_imports = [line for line in original if _is_import(line)]
    assert any("torch" in line for line in torch_imports)
    assert not any("torch" in line.split(" as ")[0] for line in port_imports)   # nothing of torch is imported
    assert any("tinygrad_norm" in line for line in port_imports)


def _run(name, args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, str(PORT / f"{name}.py"), "--data", DATA] + args,
                            capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_cnn_port_trains(tmp_path):
    # Conv2d, BatchNorm2d, Dropout, max_pool2d, flatten, log_softmax, nll_loss, Adam, StepLR,
    # no_grad, argmax/eq/view_as, torch.save(model.state_dict())
    out = _run("mnist_cnn", ["--train-subset", "1280", "--test-subset", "500", "--epochs", "1",
                             "--save-model"], tmp_path)
    m = re.search(r"Accuracy: (\d+)/500 \(([\d.]+)%\)", out)
    assert m, out
    assert int(m.group(1)) >= 350, out                  # ≥ 70 % after 20 steps (80.6 % measured, seed 1)
    import tinygrad_norm as tn
    state = tn.load(tmp_path / "mnist_cnn.pt")
    assert state["conv1.weight"].shape == (16, 1, 3, 3) and "bn1.running_var" in state


def test_mlp_port_trains(tmp_path):
    # Sequential, BatchNorm1d, CrossEntropyLoss(label_smoothing), random_split with a Generator,
    # SGD (nesterov), OneCycleLR per batch, clip_grad_norm_, inference_mode, a checkpoint dict
    out = _run("mnist_mlp", ["--train-subset", "3000", "--test-subset", "1000", "--epochs", "1",
                             "--log-interval", "10", "--save-model"], tmp_path)
    assert "using cpu" in out
    m = re.search(r"test accuracy ([\d.]+)", out)
    assert m, out
    assert float(m.group(1)) >= 0.75, out                # 0.851 measured (seed 0, 21 steps)
    import tinygrad_norm as tn
    checkpoint = tn.load(tmp_path / "mnist_mlp.pt")
    assert checkpoint["epoch"] == 1 and "1.weight" in checkpoint["model"]
    assert "momentum_buffer" in checkpoint["optimizer"]["state"][0]
