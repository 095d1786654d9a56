"""`tinygrad-norm graph MODEL --out FILE` and the example models it draws."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import models, nn
from tinygrad_norm.cli import main

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed")
needs_bn = pytest.mark.skipif(not hasattr(nn, "BatchNorm1d"), reason="nn.BatchNorm1d not written yet")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ models

def test_ioffe_mlp_structure():
    model = models.ioffe_mlp(bn=False)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 100), (100, 100), (100, 100), (100, 10)]
    assert all(m.bias is not None for m in linears)
    assert sum(isinstance(m, nn.Sigmoid) for m in model.modules()) == 3
    assert model(tn.randn(2, 784)).shape == (2, 10)
    # 784·100+100 + 2·(100·100+100) + 100·10+10
    assert sum(p.numel() for p in model.parameters()) == 78500 + 2 * 10100 + 1010


@needs_bn
def test_ioffe_mlp_with_bn_puts_bn_before_each_sigmoid_and_drops_the_bias():
    model = models.ioffe_mlp(bn=True)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "BatchNorm1d", "Sigmoid"] * 3 + ["Linear"]
    assert [m.bias is None for m in model if isinstance(m, nn.Linear)] == [True, True, True, False]


def test_init_options():
    tn.manual_seed(0)
    model = models.ioffe_mlp(init=0.01)
    w = model[0].weight.detach().numpy()
    assert abs(w.std() - 0.01) < 0.001 and np.all(model[0].bias.detach().numpy() == 0)
    model = models.mlp((50, 40, 10), init="he")
    assert abs(model[0].weight.detach().numpy().std() - np.sqrt(2 / 50)) < 0.02
    with pytest.raises(ValueError, match="init must be"):
        models.mlp((4, 2), init="xavier")


def test_small_cnn_and_errors():
    model = models.small_cnn(norm=None)
    assert model(tn.randn(2, 1, 28, 28)).shape == (2, 10)
    assert not any(type(m).__name__ == "Identity" for m in model)
    with pytest.raises(ValueError, match="unknown norm 'batchy'"):
        models.make_norm("batchy", 4)
    with pytest.raises(ValueError, match="unknown example model 'vgg'"):
        models.example("vgg")


@needs_bn
@pytest.mark.parametrize("name", list(models.EXAMPLES))
def test_every_example_runs(name):
    model, x = models.example(name, batch=3)
    out = model(x)
    assert out.shape[0] == 3 and out.dtype == np.float32


def test_example_is_reproducible_and_keeps_the_random_state():
    tn.manual_seed(42)
    before = tn.get_rng_state().numpy().copy()
    m1, x1 = models.example("mlp", batch=2, seed=3)
    np.testing.assert_array_equal(tn.get_rng_state().numpy(), before)
    m2, x2 = models.example("mlp", batch=2, seed=3)
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())
    np.testing.assert_array_equal(m1[0].weight.detach().numpy(), m2[0].weight.detach().numpy())


# --------------------------------------------------------------------- CLI

@needs_dot
def test_graph_mlp_svg(tmp_path, capsys):
    out = tmp_path / "mlp.svg"
    assert main(["graph", "mlp", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    svg = out.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    assert svg.count(">linear<") == 4 and svg.count(">sigmoid<") == 3
    assert "0.weight" in svg and "(4, 784) float32" in svg
    assert (tmp_path / "mlp.gv").exists()


def test_graph_gv_format_and_options(tmp_path):
    out = tmp_path / "mlp.gv"
    assert main(["graph", "mlp", "--out", str(out), "--depth", "1", "--batch", "2"]) == 0
    src = out.read_text()
    assert src.startswith("// written by tinygrad-norm graph\ndigraph")
    assert "0: Linear" in src and "(2, 784) → (2, 100)" in src and "78,500 params" in src
    assert main(["graph", "mlp", "--out", str(tmp_path / "b.gv"), "--view", "backward"]) == 0
    assert "accumulate 0.weight.grad" in (tmp_path / "b.gv").read_text()


@needs_bn
def test_graph_mlp_bn_train_and_eval(tmp_path):
    out = tmp_path / "bn.gv"
    assert main(["graph", "mlp_bn", "--out", str(out), "--mode", "both"]) == 0
    src = out.read_text()
    assert "cluster_train" in src and "cluster_eval" in src
    assert src.count("batch statistics</i>") == 3 and src.count("running statistics</i>") == 3
    assert "couples the 4 samples" in src


@needs_bn
def test_graph_resmlp_rolls_blocks(tmp_path):
    out = tmp_path / "res.gv"
    assert main(["graph", "resmlp", "--out", str(out), "--roll"]) == 0
    src = out.read_text()
    assert "ResidualBlock × 10" in src and "2 … 11" in src


def test_graph_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["graph", "vgg", "--out", str(tmp_path / "x.svg")])
    assert info.value.code == 2
    assert "invalid choice: 'vgg'" in capsys.readouterr().err
    assert main(["graph", "mlp", "--batch", "0", "--out", str(tmp_path / "x.svg")]) == 2
    assert "--batch must be at least 1" in capsys.readouterr().err
    assert main([]) == 2
    assert "graph" in capsys.readouterr().err  # the help lists the subcommands


def test_graph_rejects_unknown_formats_and_mismatched_extensions(tmp_path, capsys):
    assert main(["graph", "mlp", "--format", "exe", "--out", str(tmp_path / "g")]) == 2
    assert "--format asks for 'exe', which is not a graph format; use one of svg, png" in capsys.readouterr().err
    assert main(["graph", "mlp", "--out", str(tmp_path / "g.exe")]) == 2
    assert "the extension of --out" in capsys.readouterr().err
    assert main(["graph", "mlp", "--format", "png", "--out", str(tmp_path / "g.svg")]) == 2
    err = capsys.readouterr().err
    assert "--format png does not match the extension of --out" in err and "give --out a .png name" in err
    assert not any(tmp_path.iterdir())                               # nothing was written
    assert main(["graph", "mlp", "--format", "gv", "--out", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g.gv").read_text().startswith("// written by tinygrad-norm graph")


def test_graph_batch_one_with_batchnorm_and_negative_depth(tmp_path, capsys):
    assert main(["graph", "mlp_bn", "--batch", "1", "--out", str(tmp_path / "bn.gv")]) == 2
    err = capsys.readouterr().err
    assert "mlp_bn could not run on a batch of 1" in err and "use --batch 2 or more, or --mode eval" in err
    assert "Traceback" not in err
    assert main(["graph", "mlp_bn", "--batch", "1", "--mode", "eval", "--out", str(tmp_path / "e.gv")]) == 0
    capsys.readouterr()
    assert main(["graph", "mlp", "--depth", "-1", "--out", str(tmp_path / "d.gv")]) == 2
    assert "--depth must be 0 or more" in capsys.readouterr().err
    assert main(["graph", "mlp", "--depth", "0", "--out", str(tmp_path / "d.gv")]) == 0


def test_graph_never_overwrites_a_gv_file_it_did_not_write(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)          # no dot needed: the .gv comes first
    mine = tmp_path / "g.gv"
    mine.write_text("my own notes\n")
    assert main(["graph", "mlp", "--out", str(tmp_path / "g.svg")]) == 2
    err = capsys.readouterr().err
    assert "g.gv exists and was not written by this command" in err and "--force" in err
    assert mine.read_text() == "my own notes\n"
    assert main(["graph", "mlp", "--out", str(tmp_path / "g.svg"), "--force"]) == 1   # 1: no dot
    capsys.readouterr()
    assert mine.read_text().startswith("// written by tinygrad-norm graph")
    assert main(["graph", "mlp", "--out", str(tmp_path / "g.svg")]) == 1              # ours: rewritten
    assert "exists" not in capsys.readouterr().err


def test_graph_out_directory_writes_model_file_inside(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "mlp", "--out", ".", "--format", "gv"]) == 0
    assert capsys.readouterr().out.strip() == os.path.join(".", "mlp.gv")
    assert (tmp_path / "mlp.gv").exists() and not (tmp_path / "..gv").exists()
    assert main(["graph", "mlp", "--out", ".svg"]) == 2
    assert "names no file" in capsys.readouterr().err


def test_graph_without_dot_exits_1_and_keeps_the_source(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["graph", "mlp", "--out", str(tmp_path / "m.svg")]) == 1
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err and "brew install graphviz" in err
    assert (tmp_path / "m.gv").exists() and not (tmp_path / "m.svg").exists()


@needs_dot
def test_python_dash_m(tmp_path):
    out = tmp_path / "cnn.svg"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "tinygrad_norm", "graph", "cnn", "--out", str(out)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    svg = out.read_text()
    assert svg.count(">conv2d<") == 3 and ">max_pool2d<" in svg
