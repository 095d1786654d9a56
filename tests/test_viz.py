"""tn.viz: the content of the drawn graphs (nodes, labels, clusters, edges) and rendering."""
import os
import re
import shutil
import sys

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn, viz
from tinygrad_norm.nn.functional_norm import NormSpec
from tinygrad_norm.tensor import Function

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed")


# ------------------------------------------------------------ reading a graph

NODE = re.compile(r"^\s*(\w+) \[label=(<.*>|\"[^\"]*\"|\w+)(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")


def text(label):
    """A node label without its HTML markup, cells separated by ' | '."""
    if label.startswith("<") and label.endswith(">"):
        label = label[1:-1]
    label = label.replace("</td><td>", " | ").replace("<br/>", " ")
    return re.sub(r"<[^>]+>", "", label).strip()


def nodes(g):
    """name -> (label text, attribute string) for every node but the legend."""
    out = {}
    for line in g.source.splitlines():
        m = NODE.match(line)
        if m and m.group(1) != "legend":
            out[m.group(1)] = (text(m.group(2)), m.group(3))
    return out


def edges(g):
    return [(m.group(1), m.group(2), m.group(3) or "") for m in map(EDGE.match, g.source.splitlines()) if m]


def labels(g):
    return [lab for lab, _ in nodes(g).values()]


def find(g, prefix):
    """The names of the nodes whose label starts with `prefix`."""
    return [n for n, (lab, _) in nodes(g).items() if lab.startswith(prefix)]


def clusters(g):
    """Cluster label -> set of node names declared directly or nested inside it."""
    out, stack = {}, []
    for line in g.source.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster"):
            stack.append(None)
        elif stack and stack[-1] is None and re.search(r"\blabel=", s) and not s.startswith(("n", "t", "e")):
            lab = re.search(r'label=("[^"]*"|\S+)', s).group(1).strip('"')
            stack[-1] = lab
            out.setdefault(lab, set())
        elif s == "}" and stack:
            stack.pop()
        else:
            m = NODE.match(line)
            if m:
                for lab in stack:
                    if lab is not None:
                        out[lab].add(m.group(1))
    return out


def small_net():
    x = tn.randn(4, 3)
    w = tn.randn(3, 2, requires_grad=True)
    b = tn.zeros(2, requires_grad=True)
    y = ((x @ w + b).sigmoid() * 2.0).sum()
    return x, w, b, y


# -------------------------------------------------------------- plain graphs

def test_plain_graph_nodes_labels_and_edges():
    x, w, b, y = small_net()
    g = viz.draw_graph(y, params={"w": w, "b": b})
    labs = labels(g)
    for op, shape in [("matmul", "(4, 2) float32"), ("add", "(4, 2) float32"), ("sigmoid", "(4, 2) float32"),
                      ("mul", "(4, 2) float32")]:
        assert f"{op} {shape}" in labs
    assert any(lab.startswith("sum dim=(0, 1) () float32 | data") for lab in labs)  # scalar: a record
    assert "w (3, 2) float32" in labs                      # parameters by name
    assert "b (2,) float32 | data [0.0, 0.0]" in labs      # small tensors show their values
    assert "input (4, 3) float32" in labs
    assert "2.0" in labs                                   # a scalar constant by value
    assert len(nodes(g)) == 9
    names = {n: lab.split()[0] for n, (lab, _) in nodes(g).items()}
    assert sorted((names[a], names[b_]) for a, b_, _ in edges(g)) == sorted([
        ("input", "matmul"), ("w", "matmul"), ("matmul", "add"), ("b", "add"), ("add", "sigmoid"),
        ("sigmoid", "mul"), ("2.0", "mul"), ("mul", "sum")])
    legend = [line for line in g.source.splitlines() if line.strip().startswith("legend")][0]
    for entry in ("output (root)", "operation", "parameter", "input / constant (no grad)"):
        assert entry in legend
    assert "normalization" not in legend  # only the kinds that occur


def test_root_and_parameter_colours():
    x, w, b, y = small_net()
    g = viz.draw_graph(y, params={"w": w, "b": b}, show_values=0)
    (sum_node,) = find(g, "sum")
    (w_node,) = find(g, "w ")
    assert viz.COLORS["output"][0] in nodes(g)[sum_node][1]
    assert viz.COLORS["param"][0] in nodes(g)[w_node][1]


def test_show_shapes_false_and_show_values_zero():
    _, w, b, y = small_net()
    g = viz.draw_graph(y, params={"w": w, "b": b}, show_shapes=False, show_values=0)
    assert sorted(labels(g)) == sorted(["input", "w", "matmul", "b", "add", "sigmoid", "2.0", "mul",
                                        "sum dim=(0, 1)"])


def test_edges_grow_with_depth():
    def graph(depth):
        h = tn.randn(2, 4)
        ws = [tn.randn(4, 4, requires_grad=True) for _ in range(depth)]
        for w in ws:
            h = (h @ w).tanh()
        return viz.draw_graph(h.sum(), params={f"w{i}": w for i, w in enumerate(ws)})
    counts = {d: (len(nodes(graph(d))), len(edges(graph(d)))) for d in (1, 2, 4, 8)}
    for d, (n_nodes, n_edges) in counts.items():
        assert n_edges == 3 * d + 1      # per layer: input->matmul, w->matmul, matmul->tanh; then sum
        assert n_nodes == 3 * d + 2      # per layer: w, matmul, tanh; plus input and sum


def test_graph_of_thousands_of_ops_has_no_recursion_error():
    limit = sys.getrecursionlimit()
    h = tn.randn(2, 2, requires_grad=True)
    y = h
    for _ in range(3 * limit):  # far deeper than Python's recursion limit
        y = y * 1.0001
    g = viz.draw_graph(y, show_values=0, legend=False)
    assert len(find(g, "mul")) == 3 * limit
    assert len(edges(g)) == 2 * 3 * limit
    assert sys.getrecursionlimit() == limit


def test_repeated_parent_draws_two_edges():
    a = tn.randn(3, requires_grad=True)
    g = viz.draw_graph(a * a, show_values=0)
    (mul,) = find(g, "mul")
    assert sum(1 for _, dst, _ in edges(g) if dst == mul) == 2


def test_list_of_roots_and_leaf_root():
    a = tn.randn(3, requires_grad=True)
    g = viz.draw_graph([a.exp(), a.log()], params={"a": a}, show_values=0)
    assert len(find(g, "exp")) == 1 and len(find(g, "log")) == 1 and len(find(g, "a")) == 1
    assert viz.COLORS["output"][0] in nodes(g)[find(g, "exp")[0]][1]
    g = viz.draw_graph(tn.randn(5, 5))
    assert labels(g) == ["input (5, 5) float32"] and edges(g) == []


def test_errors():
    _, w, b, y = small_net()
    with pytest.raises(TypeError, match="expects a Tensor"):
        viz.draw_graph(np.zeros(3))
    with pytest.raises(ValueError, match="view must be"):
        viz.draw_graph(y, view="sideways")
    with pytest.raises(ValueError, match="depth must be None or a non-negative integer"):
        viz.draw_graph(y, depth=-1)
    y.backward()
    with pytest.raises(RuntimeError, match=r"released by backward\(\).*retain_graph=True"):
        viz.draw_graph(y)


# ------------------------------------------------------ micrograd-style records

def test_records_show_data_and_grad():
    a = tn.tensor(2.0, requires_grad=True)
    b = tn.tensor(-3.0, requires_grad=True)
    c = a * b + a                      # dc/da = b + 1 = -2, dc/db = a = 2
    c.backward(retain_graph=True)
    g = viz.draw_graph(c, params={"a": a, "b": b}, show_shapes=False)
    labs = labels(g)
    assert "a | data 2.0 | grad -2.0" in labs
    assert "b | data -3.0 | grad 2.0" in labs
    assert "add | data -4.0" in labs   # intermediate tensors have no .grad unless retain_grad
    assert "mul | data -6.0" in labs


# -------------------------------------------------------------- backward view

def test_backward_view():
    x, w, b, y = small_net()
    g = viz.draw_graph(y, params={"w": w, "b": b}, view="backward")
    labs = labels(g)
    assert "accumulate w.grad (3, 2)" in labs and "accumulate b.grad (2,)" in labs
    assert not any(lab.startswith("input") for lab in labs)  # x needs no gradient
    names = {n: lab.split(" backward")[0] if "backward" in lab else lab.split(" (")[0]
             for n, (lab, _) in nodes(g).items()}
    got = sorted((names[a], names[b_]) for a, b_, _ in edges(g))
    assert got == sorted([("gradient = 1", "sum"), ("sum", "mul"), ("mul", "sigmoid"), ("sigmoid", "add"),
                          ("add", "matmul"), ("add", "accumulate b.grad"), ("matmul", "accumulate w.grad")])


def test_forward_and_backward_side_by_side():
    _, w, b, y = small_net()
    g = viz.draw_graph(y, params={"w": w, "b": b}, view="both")
    assert "subgraph cluster_forward" in g.source and "subgraph cluster_backward" in g.source
    assert len(find(g, "matmul")) == 2  # "matmul (4, 2) float32" and "matmul backward"
    assert len(edges(g)) == 8 + 7


# ------------------------------------------------------------------ modules

class Block(nn.Module):
    """tanh(x W + b): a module made of plain tensor ops."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(tn.randn(n, n) * 0.1)
        self.bias = nn.Parameter(tn.zeros(n))

    def forward(self, x):
        return (x @ self.weight + self.bias).tanh()


def mlp():
    tn.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 10))


def test_clusters_named_by_model_with_parameters_inside():
    model = mlp()
    g = viz.draw_graph(model(tn.randn(4, 784)), model=model)
    cl = clusters(g)
    assert set(cl) == {"Sequential", "0: Linear", "1: Sigmoid", "2: Linear"}
    by_label = {lab.split()[0]: n for n, (lab, _) in nodes(g).items()}
    assert cl["0: Linear"] == {by_label["0.weight"], by_label["0.bias"], find(g, "linear (4, 100)")[0]}
    assert cl["1: Sigmoid"] == {find(g, "sigmoid")[0]}
    assert by_label["input"] not in cl["Sequential"]          # the input stays outside
    assert cl["Sequential"] >= cl["0: Linear"] | cl["2: Linear"]
    assert "0.weight (100, 784) float32" in labels(g)


def test_clusters_without_model_use_class_names():
    model = mlp()
    g = viz.draw_graph(model(tn.randn(4, 784)), show_values=0)
    assert set(clusters(g)) == {"Sequential", "Linear", "Sigmoid"}
    assert labels(g).count("parameter (100, 784) float32") == 1   # nn.Parameter leaves
    g = viz.draw_graph(model(tn.randn(4, 784)), params=dict(model.named_parameters()))
    assert "2.bias (10,) float32" in labels(g)
    g = viz.draw_graph(model(tn.randn(4, 784)), group_modules=False)
    assert "subgraph" not in g.source


def test_depth_collapses_modules():
    model = mlp()
    x = tn.randn(4, 784)
    g0 = viz.draw_graph(model(x), model=model, depth=0)
    assert sorted(labels(g0)) == ["Sequential (4, 784) → (4, 10) 3 ops, 79,510 params", "input (4, 784) float32"]
    assert len(edges(g0)) == 1
    g1 = viz.draw_graph(model(x), model=model, depth=1)
    labs = labels(g1)
    assert "0: Linear (4, 784) → (4, 100) 1 ops, 78,500 params" in labs
    assert "1: Sigmoid (4, 100) → (4, 100) 1 ops, 0 params" in labs
    assert "2: Linear (4, 100) → (4, 10) 1 ops, 1,010 params" in labs
    assert not any("weight" in lab for lab in labs)   # parameters are inside their module's node
    assert len(edges(g1)) == 3
    assert set(clusters(g1)) == {"Sequential"}
    full = viz.draw_graph(model(x), model=model)
    assert len(edges(full)) == 7


def test_roll_repeats_single_module():
    tn.manual_seed(0)
    model = nn.Sequential(*[Block(8) for _ in range(12)])
    g = viz.draw_graph(model(tn.randn(2, 8)), model=model, roll_repeats=True)
    assert sorted(labels(g)) == ["Block × 12 0 … 11 (2, 8) → (2, 8) 36 ops, 864 params", "input (2, 8) float32"]
    assert len(edges(g)) == 1


def test_roll_repeats_pattern_of_modules():
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16),
                          nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    g = viz.draw_graph(model(tn.randn(2, 20)), model=model, roll_repeats=True, show_values=0)
    labs = labels(g)
    assert "[Linear → ReLU] × 3 2 … 7 (2, 16) → (2, 16) 6 ops, 816 params" in labs
    assert "linear (2, 16) float32" in labs and "linear (2, 4) float32" in labs  # first and last stay
    assert set(clusters(g)) == {"Sequential", "0: Linear", "1: ReLU", "8: Linear"}


def test_roll_repeats_needs_a_chain():
    class TwoLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            return self.fc2(self.fc1(x).relu() * 2.0)  # ops between the two Linears

    model = TwoLayer()
    g = viz.draw_graph(model(tn.randn(2, 8)), model=model, roll_repeats=True)
    assert not any("×" in lab for lab in labels(g))
    assert len(find(g, "linear")) == 2


def test_depth_and_roll_together():
    tn.manual_seed(0)
    inner = nn.Sequential(*[Block(4) for _ in range(5)])
    model = nn.Sequential(nn.Linear(6, 4), inner, nn.Linear(4, 2))
    g = viz.draw_graph(model(tn.randn(3, 6)), model=model, depth=1, roll_repeats=True)
    labs = labels(g)
    assert "1: Sequential (3, 4) → (3, 4) 15 ops, 100 params" in labs  # collapsed at depth 1, not rolled
    g = viz.draw_graph(model(tn.randn(3, 6)), model=model, roll_repeats=True)
    assert "Block × 5 1.0 … 1.4 (3, 4) → (3, 4) 15 ops, 100 params" in labels(g)


def test_thousand_layer_model_rolls_into_one_node():
    tn.manual_seed(0)
    model = nn.Sequential(*[Block(2) for _ in range(1000)])
    out = model(tn.randn(1, 2))
    g = viz.draw_graph(out, model=model, show_values=0)
    assert len(find(g, "tanh")) == 1000 and len(clusters(g)) == 1001
    g = viz.draw_graph(out, model=model, roll_repeats=True)
    assert len(nodes(g)) == 2 and any(lab.startswith("Block × 1000") for lab in labels(g))


# ------------------------------------------------------------ normalization

class FakeNorm(Function):
    """A stand-in for the normalization Function: it declares what it is in `norm`
    (a NormSpec), the only thing viz reads about a normalization node."""

    name = "fake_norm"

    def forward(self, x, w, name="batch_norm", axes=(0,), training=True, running_mean=None, running_var=None):
        reduced = {a % x.ndim for a in axes}
        n_stats = int(np.prod([n for d, n in enumerate(x.shape) if d not in reduced]))
        self.norm = NormSpec(name, (1, n_stats, 1, 1), axes, None, training,
                             (("running_mean", running_mean), ("running_var", running_var)))
        if training:
            mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
            if running_mean is not None:
                running_mean._data = 0.9 * running_mean._data + 0.1 * mean.reshape(-1)
        else:
            mean, var = running_mean._data, running_var._data
        return (x - mean) / np.sqrt(var + 1e-5) * w

    def backward(self, g):
        return None, None


class FakeBN(nn.Module):
    def __init__(self, c, name="batch_norm", axes=(0,)):
        super().__init__()
        self.name, self.axes = name, axes
        self.weight = nn.Parameter(tn.ones(c))
        self.register_buffer("running_mean", tn.zeros(c))
        self.register_buffer("running_var", tn.ones(c))

    def forward(self, x):
        running = self.name == "batch_norm"  # layer norm keeps no running statistics
        return FakeNorm.apply(x, self.weight, name=self.name, axes=self.axes, training=self.training or not running,
                              running_mean=self.running_mean if running else None,
                              running_var=self.running_var if running else None)


def norm_model(**kw):
    tn.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 3), FakeBN(3, **kw), nn.Sigmoid())


def test_batch_norm_in_training_shows_batch_statistics():
    model = norm_model()
    g = viz.draw_graph(model(tn.randn(4, 5)), model=model, show_values=0)
    (bn,) = find(g, "batch_norm")
    assert nodes(g)[bn][0] == "batch_norm batch statistics (4, 3) float32"
    assert viz.COLORS["norm_batch"][0] in nodes(g)[bn][1]
    (mu,) = find(g, "μ = mean")
    (var,) = find(g, "σ² = var (biased)")
    assert nodes(g)[mu][0] == "μ = mean over dims (0,) 3 values, each of 4 entries couples the 4 samples"
    assert viz.COLORS["stat_batch"][0] in nodes(g)[mu][1]
    (lin,) = find(g, "linear")
    (rm,) = find(g, "1.running_mean")
    (rv,) = find(g, "1.running_var")
    e = {(a, b): attrs for a, b, attrs in edges(g)}
    assert (lin, mu) in e and (lin, var) in e and (mu, bn) in e and (var, bn) in e
    assert "momentum update" in e[(mu, rm)] and "momentum update (unbiased)" in e[(var, rv)]
    assert "dashed" in e[(mu, rm)]
    assert clusters(g)["1: FakeBN"] >= {bn, mu, var, rm, rv}
    legend = [line for line in g.source.splitlines() if line.strip().startswith("legend")][0]
    assert "couples the samples of a batch" in legend


def test_batch_norm_in_eval_reads_running_buffers():
    model = norm_model()
    model.eval()
    g = viz.draw_graph(model(tn.randn(4, 5)), model=model, show_values=0)
    (bn,) = find(g, "batch_norm")
    assert nodes(g)[bn][0] == "batch_norm running statistics (4, 3) float32"
    assert viz.COLORS["norm_running"][0] in nodes(g)[bn][1]
    assert find(g, "μ") == [] and find(g, "σ²") == []
    (rm,) = find(g, "1.running_mean")
    (rv,) = find(g, "1.running_var")
    assert viz.COLORS["buffer"][0] in nodes(g)[rm][1]
    e = {(a, b) for a, b, _ in edges(g)}
    assert (rm, bn) in e and (rv, bn) in e


def test_layer_norm_statistics_are_per_sample():
    model = norm_model(name="layer_norm", axes=(-1,))
    g = viz.draw_graph(model(tn.randn(4, 5)), model=model, show_values=0)
    (ln,) = find(g, "layer_norm")
    assert nodes(g)[ln][0] == "layer_norm per-sample statistics (4, 3) float32"
    (mu,) = find(g, "μ = mean")
    assert nodes(g)[mu][0] == "μ = mean over dims (1,) 4 values, each of 3 entries per sample"
    assert viz.COLORS["stat_sample"][0] in nodes(g)[mu][1]
    assert not any("momentum" in attrs for _, _, attrs in edges(g))


def test_norm_stats_can_be_turned_off():
    model = norm_model()
    g = viz.draw_graph(model(tn.randn(4, 5)), model=model, norm_stats=False)
    assert find(g, "μ") == [] and find(g, "batch_norm (4, 3)") != []


def test_draw_train_eval_side_by_side_and_restores_the_model():
    model = norm_model()
    model.eval()
    model[0].train()  # mixed flags are restored one by one
    x = tn.randn(4, 5)
    rm_before = model[1].running_mean.numpy().copy()
    rng_before = tn.get_rng_state().numpy().copy()
    g = viz.draw_train_eval(model, x)
    assert "subgraph cluster_train" in g.source and "subgraph cluster_eval" in g.source
    labs = labels(g)
    assert "batch_norm batch statistics (4, 3) float32" in labs
    assert "batch_norm running statistics (4, 3) float32" in labs
    assert sum(lab.startswith("μ = mean") for lab in labs) == 1  # only the training graph
    # the eval graph reads the running mean as it was before the training pass updated it
    (rm_eval,) = [n for n in find(g, "1.running_mean") if n.startswith("e")]
    assert nodes(g)[rm_eval][0] == "1.running_mean (3,) float32 | data [0.0, 0.0, 0.0]"
    np.testing.assert_array_equal(model[1].running_mean.numpy(), rm_before)
    assert [m.training for m in model.modules()] == [False, True, False, False]
    np.testing.assert_array_equal(tn.get_rng_state().numpy(), rng_before)
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------ render

@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_render_writes_the_file_and_the_source(tmp_path, fmt, magic):
    _, w, b, y = small_net()
    path = viz.render(y, tmp_path / f"g.{fmt}", params={"w": w, "b": b})
    assert path == str(tmp_path / f"g.{fmt}")
    data = open(path, "rb").read()
    assert data.startswith(magic)
    if fmt == "svg":
        svg = data.decode()
        assert "<svg" in svg and ">matmul<" in svg and ">w<" in svg and "class=\"cluster\"" not in svg
    assert open(tmp_path / "g.gv").read() == viz.draw_graph(y, params={"w": w, "b": b}).source
    assert sorted(os.listdir(tmp_path)) == sorted([f"g.{fmt}", "g.gv"])  # no temporary files left


@needs_dot
def test_render_svg_of_a_model_has_its_clusters(tmp_path):
    model = mlp()
    g = viz.draw_graph(model(tn.randn(2, 784)), model=model)
    path = viz.render(g, tmp_path / "mlp", format="svg")
    assert path == str(tmp_path / "mlp.svg")
    svg = open(path).read()
    assert svg.count('class="cluster"') == 4
    assert "0: Linear" in svg and "0.weight" in svg


def test_render_gv_only(tmp_path):
    _, w, b, y = small_net()
    path = viz.render(y, tmp_path / "g.gv")
    assert path == str(tmp_path / "g.gv")
    assert open(path).read().startswith("digraph")


def test_render_without_dot_writes_source_and_says_how_to_install(tmp_path, monkeypatch):
    _, w, b, y = small_net()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(viz.GraphvizNotFoundError) as info:
        viz.render(y, tmp_path / "g.svg")
    msg = str(info.value)
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz",
                 str(tmp_path / "g.gv")):
        assert hint in msg
    assert open(tmp_path / "g.gv").read().startswith("digraph")
    assert not os.path.exists(tmp_path / "g.svg")
    with pytest.warns(UserWarning, match="apt-get install graphviz"):
        assert viz.render(y, tmp_path / "h.png", strict=False) == str(tmp_path / "h.gv")


# ------------------------------------------------- the library's own norm layers

def bn_mlp():
    tn.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 3, bias=False), nn.BatchNorm1d(3), nn.Sigmoid())


def test_batchnorm1d_train_graph():
    model = bn_mlp()
    g = viz.draw_graph(model(tn.randn(6, 5)), model=model, show_values=0)
    (bn,) = find(g, "batch_norm")
    assert nodes(g)[bn][0] == "batch_norm batch statistics (6, 3) float32"
    (mu,) = find(g, "μ = mean")
    (var,) = find(g, "σ² = var (biased)")
    assert nodes(g)[mu][0] == "μ = mean over dims (0,) 3 values, each of 6 entries couples the 6 samples"
    (lin,) = find(g, "linear")
    (rm,) = find(g, "1.running_mean")
    (rv,) = find(g, "1.running_var")
    (w,) = find(g, "1.weight")
    (b,) = find(g, "1.bias")
    e = {(a, b_): attrs for a, b_, attrs in edges(g)}
    assert {(lin, bn), (w, bn), (b, bn), (lin, mu), (lin, var), (mu, bn), (var, bn)} <= set(e)
    assert "momentum update" in e[(mu, rm)] and "momentum update (unbiased)" in e[(var, rv)]
    assert clusters(g)["1: BatchNorm1d"] == {bn, mu, var, rm, rv, w, b}


def test_batchnorm1d_eval_graph_reads_running_buffers():
    model = bn_mlp().eval()
    g = viz.draw_graph(model(tn.randn(6, 5)), model=model, show_values=0)
    (bn,) = find(g, "batch_norm")
    assert nodes(g)[bn][0] == "batch_norm running statistics (6, 3) float32"
    assert find(g, "μ") == [] and find(g, "σ") == []
    (rm,) = find(g, "1.running_mean")
    (rv,) = find(g, "1.running_var")
    e = {(a, b) for a, b, _ in edges(g)}
    assert (rm, bn) in e and (rv, bn) in e


def test_batchnorm2d_groupnorm_layernorm_statistics():
    tn.manual_seed(0)
    x = tn.randn(2, 4, 3, 3)
    model = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.LayerNorm((3, 3)))
    g = viz.draw_graph(model(x), model=model, show_values=0)
    stats = sorted(lab for lab in labels(g) if lab.startswith("μ"))
    assert stats == [
        "μ = mean over dims (0, 2, 3) 4 values, each of 18 entries couples the 2 samples",
        "μ = mean over dims (1, 2, 3) in 2 groups of 2 channels 4 values, each of 18 entries per sample",
        "μ = mean over dims (2, 3) 8 values, each of 9 entries per sample"]
    kinds = {lab.split()[0]: attrs for lab, attrs in nodes(g).values()}
    assert viz.COLORS["norm_batch"][0] in kinds["batch_norm"]
    assert viz.COLORS["norm_sample"][0] in kinds["group_norm"]
    assert viz.COLORS["norm_sample"][0] in kinds["layer_norm"]


def test_batch_renorm_shows_r_d_from_running_statistics():
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchRenorm1d(3))
    g = viz.draw_graph(model(tn.randn(5, 4)), model=model, show_values=0)
    (op,) = find(g, "batch_renorm")
    (sigma,) = find(g, "σ_B")
    (rs,) = find(g, "1.running_std")
    e = {(a, b): attrs for a, b, attrs in edges(g)}
    assert "momentum update" in e[(sigma, rs)]
    assert "r, d" in e[(rs, op)]


def test_collapsed_module_says_which_statistics_it_uses():
    model = bn_mlp()
    x = tn.randn(6, 5)
    g = viz.draw_graph(model(x), model=model, depth=0)
    assert any(lab.endswith("1 × batch_norm: batch statistics") for lab in labels(g))
    model.eval()
    g = viz.draw_graph(model(x), model=model, depth=0)
    assert any(lab.endswith("1 × batch_norm: running statistics") for lab in labels(g))


def test_draw_train_eval_restores_real_batchnorm_state():
    model = bn_mlp()
    x = tn.randn(6, 5)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    g = viz.draw_train_eval(model, x, depth=None)
    after = model.state_dict()
    for k, v in before.items():
        np.testing.assert_array_equal(after[k].numpy(), v)
    assert model.training  # it was in training mode before
    labs = labels(g)
    assert "batch_norm batch statistics (6, 3) float32" in labs
    assert "batch_norm running statistics (6, 3) float32" in labs
    # eval output uses the untouched running statistics (zeros and ones): y = sigmoid(γ·x/√(1+ε) + β)
    model.eval()
    ref = 1 / (1 + np.exp(-(x.detach().numpy() @ model[0].weight.detach().numpy().T) / np.sqrt(1 + 1e-5)))
    np.testing.assert_allclose(model(x).detach().numpy(), ref, rtol=1e-5, atol=1e-6)
