"""tn.viz: draw the computation graph behind a tensor with Graphviz.

    model = nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.Sigmoid(), nn.Linear(100, 10))
    out = model(tn.randn(60, 784))
    g = tn.viz.draw_graph(out, model=model)        # a graphviz.Digraph (shows itself in Jupyter)
    tn.viz.render(out, "mlp.svg", model=model)     # writes mlp.gv and mlp.svg
    tn.viz.draw_train_eval(model, x)               # train and eval graphs side by side

What is drawn:
- one node per operation, named as users know it (matmul, add, sigmoid, batch_norm, ...),
  with its output shape and dtype (and the dims it reduces over, for reductions);
- leaves: parameters and buffers by name (`params=` or `model=`), inputs by shape,
  scalar constants by value; tensors of at most `show_values` elements as records
  `name | data | grad` (micrograd style: call `backward(retain_graph=True)` first to see grads);
- one cluster per module (the `scope` every Function records while a module's forward
  runs), named by `model.named_modules()` when `model=` is given, else by class;
- normalization ops with their statistics: in training mode the batch mean and
  variance nodes that couple the samples of a batch (and the running buffers they
  update, dashed), in eval mode the running buffers they read;
- a legend of the node colours.
Options for big graphs: `depth=k` collapses every module nested deeper than k into one
node; `roll_repeats=True` rolls runs of identical consecutive modules into one node
("ResidualBlock × 10"); `view="backward"` / `"both"` draws the backward graph.
The graph is walked with an explicit stack: 10,000 chained ops draw in about a second.

NOTE: a graph exists only where autograd recorded one: at least one input or parameter
must require grad, outside `tn.no_grad()`, and before `backward()` released it
(or with `backward(retain_graph=True)`).
"""
import os
from collections import OrderedDict, deque

from .nn.module import module_of
from .tensor import GraphReleasedError, Tensor, _toposort

__all__ = ["draw_graph", "draw_train_eval", "render", "GraphvizNotFoundError", "NORM_OPS"]

# The kinds of normalization node (nn/functional_norm.py). A normalization Function
# declares what it is in `ctx.norm` (a NormSpec: kind, layout, axes, groups,
# batch_stats, running); viz reads nothing else about it.
NORM_OPS = {"batch_norm", "batch_renorm", "mean_only_batch_norm", "layer_norm", "group_norm",
            "instance_norm", "rms_norm"}
REDUCTIONS = {"sum", "mean", "var", "max", "min"}

# kind -> (fill colour, legend text); the legend shows the kinds a graph uses
COLORS = OrderedDict([
    ("output", ("#b5e48c", "output (root)")),
    ("op", ("#ffffff", "operation")),
    ("param", ("#a9d6f5", "parameter")),
    ("leaf", ("#d7bde2", "leaf tensor that requires grad")),
    ("input", ("#e5e5e5", "input / constant (no grad)")),
    ("buffer", ("#f9e79f", "buffer (running statistics)")),
    ("norm_batch", ("#f5a55a", "normalization with batch statistics (train)")),
    ("norm_sample", ("#fad7a0", "normalization with per-sample statistics")),
    ("norm_running", ("#82e0aa", "normalization with running statistics (eval)")),
    ("stat_batch", ("#f1948a", "batch statistic: couples the samples of a batch")),
    ("stat_sample", ("#fdebd0", "per-sample statistic")),
    ("module", ("#d6eaf8", "module (collapsed)")),
    ("repeat", ("#c39bd3", "repeated modules (rolled)")),
    ("grad", ("#f5cba7", "backward op / gradient")),
])


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's `dot` program is not installed (the .gv source was still written)."""


INSTALL_HINT = ("install Graphviz to render it: `apt-get install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS), `conda install graphviz`, or "
                "https://graphviz.org/download/ (Windows); then `dot -Tsvg FILE.gv -o FILE.svg`")


# ---------------------------------------------------------------------- helpers

def _esc(text):
    """Escape text for an HTML-like Graphviz label."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shape(t):
    return "(" + ", ".join(str(s) for s in t.shape) + ("," if len(t.shape) == 1 else "") + ")"


def _fmt_float(v):
    text = f"{v:.4g}"
    return text if any(c in text for c in ".eni") else text + ".0"  # 2.0, not 2


def _fmt_values(array):
    flat = array.reshape(-1)
    if flat.dtype.kind == "f":
        text = ", ".join(_fmt_float(v) for v in flat.tolist())
    else:
        text = ", ".join(str(v) for v in flat.tolist())
    return text if array.ndim == 0 or flat.size == 1 else "[" + text + "]"


def _op_name(ctx):
    norm = getattr(ctx, "norm", None)
    if norm is not None:
        return norm.kind
    return getattr(ctx, "name", None) or type(ctx).__name__.lower()


def _is_norm(ctx):
    return getattr(ctx, "norm", None) is not None


def _num_params(module):
    params = getattr(module, "parameters", None)
    if params is None:
        return 0
    seen, n = set(), 0
    for p in params():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def _is_param(t):
    return type(t).__name__ == "Parameter"  # nn.Parameter (no import: viz does not need nn)


def _named_tensors(params, model):
    """id(tensor) -> name, from `params` (a dict, pairs, or a Module) and `model`."""
    names = {}

    def add(pairs):
        for name, t in pairs:
            if isinstance(t, Tensor) and id(t) not in names:
                names[id(t)] = name

    if params is not None:
        if hasattr(params, "named_parameters"):
            add(params.named_parameters())
            add(params.named_buffers())
        else:
            add(params.items() if hasattr(params, "items") else params)
    if model is not None:
        add(model.named_parameters())
        add(model.named_buffers())
    return names


def _trace(roots):
    """Every tensor behind `roots`, constants included, inputs before outputs."""
    try:
        return _toposort(roots, include_constants=True)
    except GraphReleasedError:
        raise RuntimeError("draw_graph: the graph was released by backward(); draw it before calling "
                           "backward(), or call backward(retain_graph=True)") from None


_RUNNING = (("running_mean", "mean"), ("running_var", "var"), ("running_std", "std"))


def _norm_info(ctx, x):
    """What a normalization Function declares (`ctx.norm`, see nn/functional_norm.NormSpec),
    for drawing: whether it used statistics of this input (train) or given ones
    (eval), the dims of x they reduce over, their number (layout's M), the
    entries behind each, whether they couple the samples of a batch, and the
    running buffers it updates or reads."""
    spec = ctx.norm
    name, use_batch, nd = spec.kind, bool(spec.batch_stats), x.ndim
    axes = tuple(sorted(int(a) % max(nd, 1) for a in spec.axes))
    n_stats = int(spec.layout[1])
    note = f"in {spec.groups} groups of {x.shape[1] // spec.groups} channels" if spec.groups else ""
    count = x.numel() // n_stats if n_stats else None
    couples = use_batch and 0 in axes and nd > 0 and x.shape[0] > 1
    what = dict(_RUNNING)
    running = [(buf, what[attr]) for attr, buf in spec.running if isinstance(buf, Tensor) and attr in what]
    return dict(name=name, use_batch=use_batch, axes=axes, note=note, n_stats=n_stats, count=count,
                couples=couples, running=running)


# --------------------------------------------------------------------- the model

class _GraphModel:
    """The nodes, clusters and edges of a graph, before it becomes DOT."""

    def __init__(self, roots, params=None, model=None, show_shapes=True, group_modules=True, depth=None,
                 roll_repeats=False, show_values=4, norm_stats=True, prefix="n"):
        self.roots = list(roots)
        self.show_shapes, self.show_values, self.prefix = show_shapes, show_values, prefix
        self.names = _named_tensors(params, model)
        self.module_names = {}
        if model is not None and hasattr(model, "named_modules"):
            for name, m in model.named_modules():
                self.module_names.setdefault(id(m), name)
        self.tensors = _trace(self.roots)
        self.root_ids = {id(r) for r in self.roots}
        self.modules = {}        # id(module) -> module
        self.scope = {}          # id(op tensor) -> tuple of module ids (outermost first)
        self.consumers = {}      # id(tensor) -> list of op tensors using it
        self.ops = [t for t in self.tensors if t._ctx is not None]
        for t in self.ops:
            # Function.scope: serial numbers of the modules the op was made in (nn.module)
            scope = tuple(getattr(t._ctx, "scope", ())) if group_modules else ()
            ids = []
            for serial in scope:
                m = module_of(serial)
                if m is not None:   # a module that no longer exists gets no cluster
                    self.modules[id(m)] = m
                    ids.append(id(m))
            self.scope[id(t)] = tuple(ids)
            for p in t._ctx.parents:
                self.consumers.setdefault(id(p), []).append(t)
        self.depth = depth
        self.rolled = self._find_repeats() if roll_repeats else {}
        self.nodes = OrderedDict()   # key -> dict(kind, label, cluster, tensor)
        self.edges = []              # (src key, dst key, attrs dict)
        self.rep = {}                # id(tensor) -> node key
        self.collapsed = {}          # key of a module/roll node -> list of tensors it holds
        self.build(norm_stats)

    # ---------------------------------------------------------- module tree
    def _prefix_ops(self):
        """scope prefix -> op tensors inside it (at any depth), in graph order."""
        inside = {}
        for t in self.ops:
            s = self.scope[id(t)]
            for k in range(1, len(s) + 1):
                inside.setdefault(s[:k], []).append(t)
        return inside

    def _signature(self, prefix, inside):
        m = self.modules[prefix[-1]]
        shapes = tuple(tuple(p.shape) for p in m.parameters()) if hasattr(m, "parameters") else ()
        ops = tuple((_op_name(t._ctx), t.shape) for t in inside[prefix])
        return (type(m).__name__, shapes, ops, getattr(m, "training", None))

    def _find_repeats(self):
        """Runs of consecutive sibling modules with one structure, chained output to
        input ("Block × 12"), searched top-down; returns {child prefix: roll key}."""
        inside = self._prefix_ops()
        children = OrderedDict()  # prefix -> child prefixes in order of first appearance
        for t in self.ops:
            s = self.scope[id(t)]
            for k in range(1, len(s) + 1):
                kids = children.setdefault(s[:k - 1], [])
                if s[:k] not in kids:
                    kids.append(s[:k])
        rolled, runs = {}, {}
        queue = deque([()])
        while queue:
            parent = queue.popleft()
            kids = children.get(parent, [])
            if self.depth is not None and len(parent) > self.depth:
                continue
            sigs = [self._signature(c, inside) for c in kids]
            i = 0
            while i < len(kids):
                best = None
                for period in range(1, min(8, (len(kids) - i) // 2) + 1):
                    count = 1
                    while (i + (count + 1) * period <= len(kids) and
                           sigs[i + count * period:i + (count + 1) * period] == sigs[i:i + period]):
                        count += 1
                    if count >= 2 and self._is_chain(kids[i:i + count * period], inside) and \
                            (best is None or count * period > best[0] * best[1]):
                        best = (count, period)
                if best is None:
                    queue.append(kids[i])
                    i += 1
                    continue
                count, period = best
                # NOTE: "[ReLU → Linear] × 3" and "[Linear → ReLU] × 3" can cover as many modules;
                # prefer the shift whose pattern starts with a module that has parameters.
                if not self._has_params(kids[i]):
                    for shift in range(1, period):
                        j = i + shift
                        if j + count * period <= len(kids) and self._has_params(kids[j]) and \
                                all(sigs[j + k] == sigs[j + k % period] for k in range(count * period)) and \
                                self._is_chain(kids[j:j + count * period], inside):
                            queue.extend(kids[i:j])
                            i = j
                            break
                members = kids[i:i + count * period]
                key = f"{self.prefix}roll{len(runs)}"
                runs[key] = (parent, members, count, period)
                for c in members:
                    rolled[c] = key
                i += count * period
        self.runs = runs
        return rolled

    def _has_params(self, prefix):
        return _num_params(self.modules[prefix[-1]]) > 0

    def _is_chain(self, members, inside):
        """Every op input entering member j from outside it comes from member j − 1."""
        for j in range(1, len(members)):
            cur, prev = members[j], members[j - 1]
            for t in inside[cur]:
                for p in t._ctx.parents:
                    if p._ctx is None:
                        continue
                    s = self.scope[id(p)]
                    if s[:len(cur)] == cur:
                        continue
                    if s[:len(prev)] != prev:
                        return False
        return True

    def _rep_of_op(self, t):
        """Node key of an op tensor: itself, its collapsed module, or its rolled run."""
        s = self.scope[id(t)]
        for k in range(1, len(s) + 1):
            prefix = s[:k]
            if prefix in self.rolled:
                return self.rolled[prefix], "repeat", prefix
            if self.depth is not None and k == self.depth + 1:
                return f"{self.prefix}m" + "_".join(str(self._cluster_index(s[:j])) for j in range(1, k + 1)), \
                    "module", prefix
        return f"{self.prefix}{self._tensor_index(t)}", "op", s

    def _tensor_index(self, t):
        return self.index[id(t)]

    def _cluster_index(self, prefix):
        if prefix not in self.cluster_ids:
            self.cluster_ids[prefix] = len(self.cluster_ids)
        return self.cluster_ids[prefix]

    def module_label(self, mid):
        m = self.modules[mid]
        name = self.module_names.get(mid)
        return f"{name}: {type(m).__name__}" if name else type(m).__name__

    # ----------------------------------------------------------------- build
    def build(self, norm_stats):
        self.index = {id(t): i for i, t in enumerate(self.tensors)}
        self.cluster_ids = OrderedDict()
        # ops -> nodes
        for t in self.ops:
            key, kind, where = self._rep_of_op(t)
            self.rep[id(t)] = key
            if kind == "op":
                self.add_op_node(key, t, where)
            else:
                self.collapsed.setdefault(key, []).append(t)
                if key not in self.nodes:
                    cluster = self.runs[key][0] if kind == "repeat" else where[:-1]
                    self.nodes[key] = dict(kind=kind, label="", cluster=cluster, tensor=None, prefix=where)
        # leaves -> nodes (hidden when a collapsed node is their only consumer)
        for t in self.tensors:
            if t._ctx is not None:
                continue
            users = {self.rep[id(c)] for c in self.consumers.get(id(t), [])}
            named = id(t) in self.names or _is_param(t)
            small = t._data.size == 1 and not t._requires_grad
            if len(users) == 1 and (named or small):
                (user,) = users
                if self.nodes[user]["kind"] in ("module", "repeat"):
                    self.rep[id(t)] = user
                    continue
            key = f"{self.prefix}{self._tensor_index(t)}"
            self.rep[id(t)] = key
            cluster = ()
            if (named or small) and users:
                clusters = [self.nodes[u]["cluster"] for u in users]
                cluster = clusters[0]
                for c in clusters[1:]:
                    n = 0
                    while n < min(len(c), len(cluster)) and c[n] == cluster[n]:
                        n += 1
                    cluster = cluster[:n]
            self.add_leaf_node(key, t, cluster)
        # collapsed nodes: labels now that we know what leaves their outputs feed
        for key, held in self.collapsed.items():
            self.label_collapsed(key, held)
        # edges
        seen = set()
        for t in self.ops:
            dst = self.rep[id(t)]
            for p in t._ctx.parents:
                src = self.rep[id(p)]
                if src == dst:
                    continue
                kinds = (self.nodes[src]["kind"], self.nodes[dst]["kind"])
                if "module" in kinds or "repeat" in kinds:
                    if (src, dst) in seen:
                        continue
                    seen.add((src, dst))
                self.edges.append((src, dst, dict(grad=p._requires_grad)))
        if norm_stats:
            for t in self.ops:
                if _is_norm(t._ctx) and self.nodes[self.rep[id(t)]]["kind"] != "module" \
                        and self.nodes[self.rep[id(t)]]["kind"] != "repeat":
                    self.add_norm_stats(t)
        for r in self.roots:
            node = self.nodes[self.rep[id(r)]]
            if node["kind"] in ("op", "leaf", "param", "input", "buffer"):
                node["output"] = True

    # ----------------------------------------------------------------- nodes
    def _label(self, title, lines, t=None):
        """HTML label: bold title, small lines; a data | grad record for small tensors."""
        rows = [f"<b>{_esc(title)}</b>"] + [f'<font point-size="9">{_esc(line)}</font>' for line in lines]
        if t is not None and self.show_values and 0 < t._data.size <= self.show_values:
            cells = [f"<td>{'<br/>'.join(rows)}</td>", f"<td>data {_esc(_fmt_values(t._data))}</td>"]
            if t.grad is not None:
                cells.append(f"<td>grad {_esc(_fmt_values(t.grad._data))}</td>")
            return ('<<table border="0" cellborder="1" cellspacing="0" cellpadding="3"><tr>' +
                    "".join(cells) + "</tr></table>>"), True
        return "<" + "<br/>".join(rows) + ">", False

    def _shape_line(self, t):
        return f"{_shape(t)} {t.dtype}" if self.show_shapes else None

    def add_op_node(self, key, t, cluster):
        ctx = t._ctx
        name = _op_name(ctx)
        lines = []
        if name in REDUCTIONS and getattr(ctx, "axes", None) is not None:
            lines.append(f"dim={tuple(int(a) for a in ctx.axes)}")
        if self.show_shapes:
            lines.append(self._shape_line(t))
        label, record = self._label(name, lines, t)
        self.nodes[key] = dict(kind="op", label=label, cluster=cluster, tensor=t, record=record)

    def add_leaf_node(self, key, t, cluster):
        name = self.names.get(id(t))
        lines = [self._shape_line(t)] if self.show_shapes else []
        if name is not None or _is_param(t):
            kind = "param" if t._requires_grad else "buffer"
            label, record = self._label(name or "parameter", lines, t)
        elif t._requires_grad:
            kind = "leaf"
            label, record = self._label("leaf", lines, t)
        elif t._data.size == 1:  # a constant such as the 2.0 of `x * 2.0`: drawn as its value
            kind = "input"
            label, record = self._label(_fmt_values(t._data), []), False
            label = label[0]
        else:
            kind = "input"
            label, record = self._label("input", lines, t)
        self.nodes[key] = dict(kind=kind, label=label, cluster=cluster, tensor=t, record=record)

    def label_collapsed(self, key, held):
        node = self.nodes[key]
        held_ids = {id(t) for t in held}
        outs = [t for t in held if id(t) in self.root_ids or
                any(id(c) not in held_ids for c in self.consumers.get(id(t), []))]
        ins = []  # tensors entering from outside (not the leaves drawn inside this node)
        for t in held:
            for p in t._ctx.parents:
                if id(p) not in held_ids and self.rep.get(id(p)) != key and all(p is not q for q in ins):
                    ins.append(p)
        if node["kind"] == "repeat":
            parent, members, count, period = self.runs[key]
            classes = [type(self.modules[m[-1]]).__name__ for m in members[:period]]
            title = (classes[0] if period == 1 else "[" + " → ".join(classes) + "]") + f" × {count}"
            first, last = self.module_names.get(members[0][-1]), self.module_names.get(members[-1][-1])
            lines = [f"{first} … {last}"] if first and last else []
            n_params = sum(_num_params(self.modules[m[-1]]) for m in members)
        else:
            mid = node["prefix"][-1]
            title = self.module_label(mid)
            lines = []
            n_params = _num_params(self.modules[mid])
        if self.show_shapes:
            shape_in = ", ".join(dict.fromkeys(_shape(t) for t in ins))
            shape_out = ", ".join(dict.fromkeys(_shape(t) for t in outs))
            lines.append(f"{shape_in} → {shape_out}" if shape_in else f"→ {shape_out}")
        lines.append(f"{len(held)} ops, {n_params:,} params")
        norms = OrderedDict()  # what the normalization ops inside use, e.g. "2 × batch_norm: batch statistics"
        for t in held:
            if _is_norm(t._ctx):
                info = _norm_info(t._ctx, t._ctx.parents[0])
                mode = ("running statistics" if not info["use_batch"] else
                        "batch statistics" if info["couples"] else "per-sample statistics")
                k = f"{info['name']}: {mode}"
                norms[k] = norms.get(k, 0) + 1
        lines += [f"{n} × {k}" for k, n in norms.items()]
        node["label"], node["record"] = self._label(title, lines)

    def add_norm_stats(self, t):
        """The statistics of a normalization op. With statistics of its input (training
        mode, and layer/group/instance norms always): mean and variance nodes, marked
        as coupling the samples when they reduce over the batch dim, with dashed
        momentum-update edges to the running buffers. With running statistics (eval):
        the running buffers feed the op."""
        ctx = t._ctx
        key = self.rep[id(t)]
        node = self.nodes[key]
        x = ctx.parents[0]
        info = _norm_info(ctx, x)
        name = info["name"]
        if info["use_batch"]:
            node["kind"] = "norm_batch" if info["couples"] else "norm_sample"
            mode = "batch statistics" if info["couples"] else "per-sample statistics"
        else:
            node["kind"], mode = "norm_running", "running statistics"
        if not node.get("record"):
            node["label"] = node["label"].replace("</b>", f"</b><br/><i>{_esc(mode)}</i>", 1)
        cluster = node["cluster"]
        buffers = {what: buf for buf, what in info["running"]}
        if not info["use_batch"]:
            parents = {id(p) for p in ctx.parents}
            for buf, what in info["running"]:
                if id(buf) not in parents:
                    self.edges.append((self._buffer_node(buf, cluster, what), key, dict()))
            return
        if name == "rms_norm":
            stats = [("mean(x²)", None)]
        elif name == "mean_only_batch_norm":
            stats = [("μ = mean", "mean")]
        elif name == "batch_renorm":
            stats = [("μ_B = mean", "mean"), ("σ_B = √(var + ε) (biased var)", "std")]
        else:
            stats = [("μ = mean", "mean"), ("σ² = var (biased)", "var")]
        lines = []
        if info["axes"] is not None:
            lines.append(f"over dims {info['axes']}" + (f" {info['note']}" if info["note"] else ""))
        if info["n_stats"] is not None:
            lines.append(f"{info['n_stats']} values, each of {info['count']} entries")
        lines.append(f"couples the {x.shape[0]} samples" if info["couples"] else "per sample")
        stat_kind = "stat_batch" if info["couples"] else "stat_sample"
        src = self.rep[id(x)]
        for i, (title, what) in enumerate(stats):
            skey = f"{key}s{i}"
            self.nodes[skey] = dict(kind=stat_kind, label=self._label(title, lines)[0], cluster=cluster,
                                    tensor=None)
            self.edges.append((src, skey, dict(style="dashed")))
            self.edges.append((skey, key, dict(style="dashed")))
            buf = buffers.get(what)
            if buf is not None:
                note = "momentum update" + (" (unbiased)" if what == "var" else "")
                self.edges.append((skey, self._buffer_node(buf, cluster, what),
                                   dict(style="dashed", label=note, constraint="false")))
        if name == "batch_renorm":  # r and d correct the batch statistics towards the running ones
            for what in ("mean", "std"):
                if what in buffers:
                    self.edges.append((self._buffer_node(buffers[what], cluster, what), key,
                                       dict(label="r, d")))

    def _buffer_node(self, buf, cluster, what):
        if id(buf) in self.rep and self.rep[id(buf)] in self.nodes:
            return self.rep[id(buf)]
        key = f"{self.prefix}b{len(self.rep)}"
        self.rep[id(buf)] = key
        name = self.names.get(id(buf), f"running_{what}")
        label, record = self._label(name, [self._shape_line(buf)] if self.show_shapes else [], buf)
        self.nodes[key] = dict(kind="buffer", label=label, cluster=cluster, tensor=buf, record=record)
        return key

    # ------------------------------------------------------------------ emit
    def emit(self, graph, view="forward"):
        """Add this model's nodes, clusters and edges to `graph`; returns the kinds used."""
        import graphviz
        used = set()
        backward = view == "backward"
        wanted = OrderedDict()
        for key, node in self.nodes.items():
            kind = node["kind"]
            t = node["tensor"]
            if backward:
                if kind in ("input", "buffer", "stat_batch", "stat_sample") or \
                        (t is not None and not t._requires_grad):
                    continue
            wanted[key] = node
        # clusters: one Digraph per scope prefix, attached deepest first (no recursion)
        prefixes = OrderedDict()  # in order of first appearance
        for node in wanted.values():
            c = node["cluster"]
            for k in range(1, len(c) + 1):
                prefixes.setdefault(c[:k], self._cluster_index(c[:k]))
        tag = self.prefix + ("b" if backward else "")
        subs = {p: graphviz.Digraph(name=f"cluster_{tag}{index}") for p, index in prefixes.items()}
        for p, sub in subs.items():
            sub.attr(label=self.module_label(p[-1]), style="rounded,dashed", color="#7f8c8d",
                     fontname="Helvetica", fontsize="10", labeljust="l")
        for key, node in wanted.items():
            kind = "output" if node.get("output") and node["kind"] == "op" else node["kind"]
            label = node["label"]
            if backward:
                kind, label = self._backward_label(node)
            used.add(kind)
            target = subs[node["cluster"]] if node["cluster"] else graph
            attrs = dict(fillcolor=COLORS[kind][0])
            if node.get("record") and not backward:
                attrs.update(shape="plaintext", style="filled", margin="0")
            if kind in ("module", "repeat"):
                attrs.update(shape="box3d", style="filled")
            if kind.startswith("stat"):
                attrs.update(shape="ellipse", style="filled")
            if kind in ("input",) and node["tensor"] is not None and node["tensor"]._data.size == 1:
                attrs.update(shape="ellipse")
            name = key + ("g" if backward else "")
            target.node(name, label, **attrs)
        for p in sorted(prefixes, key=len, reverse=True):
            (subs[p[:-1]] if len(p) > 1 else graph).subgraph(subs[p])
        for src, dst, attrs in self.edges:
            if src not in wanted or dst not in wanted:
                continue
            attrs = {k: str(v) for k, v in attrs.items() if k != "grad"}
            if backward:
                if not self._edge_carries_grad(src, dst):
                    continue
                graph.edge(dst + "g", src + "g", color="#c0392b")
            else:
                graph.edge(src, dst, **attrs)
        if backward:
            seed = f"{self.prefix}seed"
            graph.node(seed, "<<b>gradient = 1</b>>", fillcolor=COLORS["grad"][0], shape="ellipse")
            for r in self.roots:
                if self.rep[id(r)] in wanted:
                    graph.edge(seed, self.rep[id(r)] + "g", color="#c0392b")
        return used

    def _edge_carries_grad(self, src, dst):
        node = self.nodes[src]
        if node["kind"] in ("module", "repeat"):
            return any(t._requires_grad for t in self.collapsed[src])
        t = node["tensor"]
        return t is not None and t._requires_grad

    def _backward_label(self, node):
        kind = node["kind"]
        t = node["tensor"]
        if kind in ("param", "leaf"):
            name = self.names.get(id(t)) or ("parameter" if _is_param(t) else "leaf")
            lines = [_shape(t)] if self.show_shapes else []
            return "grad", self._label(f"accumulate {name}.grad", lines)[0]
        if kind in ("module", "repeat"):
            return kind, node["label"].replace("</b>", " backward</b>", 1)
        title = _op_name(t._ctx) + " backward"
        lines = [f"grad {_shape(t)}"] if self.show_shapes else []
        return "grad", self._label(title, lines)[0]


# --------------------------------------------------------------------- public API

def _roots(root):
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    for r in roots:
        if not isinstance(r, Tensor):
            raise TypeError(f"draw_graph expects a Tensor (or a list of Tensors), got {type(r).__name__}")
    return roots


def _legend(graph, used, prefix=""):
    rows = "".join(f'<tr><td bgcolor="{COLORS[k][0]}" width="18"> </td>'
                   f'<td align="left">{_esc(COLORS[k][1])}</td></tr>' for k in COLORS if k in used)
    graph.node(f"{prefix}legend", f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">'
                                  f'<tr><td colspan="2"><b>legend</b></td></tr>{rows}</table>>',
               shape="plaintext", style="")


def _new_digraph(name="tinygrad_norm", **graph_attr):
    import graphviz
    attrs = dict(rankdir="TB", fontname="Helvetica", nodesep="0.25", ranksep="0.35")
    attrs.update({k: str(v) for k, v in graph_attr.items()})
    return graphviz.Digraph(name=name, graph_attr=attrs,
                            node_attr=dict(shape="box", style="filled,rounded", fontname="Helvetica",
                                           fontsize="11", height="0.3"),
                            edge_attr=dict(arrowsize="0.6", color="#555555", fontname="Helvetica", fontsize="9"))


def draw_graph(root, params=None, show_shapes=True, group_modules=True, model=None, depth=None,
               roll_repeats=False, view="forward", show_values=4, norm_stats=True, legend=True,
               graph_attr=None):
    """The graph that produced `root` as a `graphviz.Digraph`.

    Args:
        root: a Tensor (or a list of Tensors) made by operations that recorded a graph.
        params: names for leaves: a dict name -> Tensor (e.g. `dict(model.named_parameters())`),
            a list of pairs, or a Module (its parameters and buffers).
        show_shapes: print each tensor's shape and dtype.
        group_modules: draw a cluster per module (from the scope every op records).
        model: the model, to name clusters by `named_modules()` and leaves by
            `named_parameters()` / `named_buffers()`.
        depth: collapse every module nested deeper than `depth` into one node
            (0: the whole model is one node; 1: its children are nodes; None: no collapse).
        roll_repeats: draw runs of identical consecutive modules fed one into the next as one
            node "Block × n" (a period up to 8 modules, e.g. "[Linear → BatchNorm1d → Sigmoid] × 3").
        view: "forward", "backward" (the ops backward() runs, from the output's gradient to
            the `.grad` of the leaves) or "both" (side by side).
        show_values: tensors with at most this many elements are drawn as records
            `name | data | grad` (0 to disable).
        norm_stats: draw the statistics of normalization ops (see the module docstring).
        legend: add a legend of the colours used.
        graph_attr: extra Graphviz graph attributes, e.g. {"rankdir": "LR"}.
    """
    if view not in ("forward", "backward", "both"):
        raise ValueError(f"view must be 'forward', 'backward' or 'both', got {view!r}")
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"depth must be None or a non-negative integer, got {depth!r}")
    roots = _roots(root)
    gm = _GraphModel(roots, params, model, show_shapes, group_modules, depth, roll_repeats, show_values,
                     norm_stats)
    g = _new_digraph(**(graph_attr or {}))
    if view == "both":
        import graphviz
        used = set()
        for v in ("forward", "backward"):
            sub = graphviz.Digraph(name=f"cluster_{v}")
            sub.attr(label=f"{v} graph", fontsize="14", style="rounded", color="#2c3e50")
            used |= gm.emit(sub, v)
            g.subgraph(sub)
    else:
        used = gm.emit(g, view)
    if legend:
        _legend(g, used)
    return g


def draw_train_eval(model, *inputs, params=None, show_shapes=True, group_modules=True, depth=None,
                    roll_repeats=False, show_values=4, norm_stats=True, legend=True, graph_attr=None):
    """The graphs of `model(*inputs)` in training and in eval mode, side by side.

    Normalization layers show the difference: in training mode they normalize with
    the batch statistics (and update the running buffers), in eval mode with the
    running buffers. The model is left as it was: its train/eval flags, running
    buffers and the library's random state are restored (no parameter or gradient
    is touched). Returns a `graphviz.Digraph`; the keywords are those of `draw_graph`.
    """
    import graphviz

    from . import random as _random
    from .tensor import enable_grad
    modules = list(model.modules())
    flags = [m.training for m in modules]
    saved = [(b, b._data.copy()) for b in model.buffers()]
    rng = _random.get_rng_state()
    g = _new_digraph(**(graph_attr or {}))
    used = set()
    try:
        with enable_grad():
            for mode, prefix in (("train", "t"), ("eval", "e")):
                model.train(mode == "train")
                out = model(*inputs)
                roots = _roots(out)
                gm = _GraphModel(roots, params, model, show_shapes, group_modules, depth, roll_repeats,
                                 show_values, norm_stats, prefix=prefix)
                sub = graphviz.Digraph(name=f"cluster_{mode}")
                title = ("model.train(): batch statistics" if mode == "train"
                         else "model.eval(): running statistics")
                sub.attr(label=title, fontsize="14", style="rounded", color="#2c3e50")
                used |= gm.emit(sub, "forward")
                g.subgraph(sub)
                # NOTE: restore after each pass: the eval graph must read the buffers as they
                # were, not as the training pass just updated them
                for b, data in saved:
                    b._data = data.copy()
    finally:
        for m, flag in zip(modules, flags):
            m.training = flag
        for b, data in saved:
            b._data = data
        _random.set_rng_state(rng)
    if legend:
        _legend(g, used)
    return g


def render(root, path, format=None, strict=True, **kw):
    """Write the graph of `root` (a Tensor, or a graphviz graph) to `path` and return the path.

    The format comes from `format` or the file's extension (svg, png, pdf, ...; default
    svg); "gv"/"dot" writes only the DOT source. The source is always written next to
    the file as `<name>.gv`. Without Graphviz's `dot` program this raises
    GraphvizNotFoundError saying how to install it (strict=False: warns and returns the
    .gv path instead). Other keywords go to `draw_graph`. Files are written atomically.
    """
    import shutil
    import subprocess
    import warnings

    import graphviz
    g = root if isinstance(root, graphviz.graphs.BaseGraph) else draw_graph(root, **kw)
    path = os.fspath(path)
    stem, ext = os.path.splitext(path)
    fmt = (format or ext.lstrip(".") or "svg").lower()
    if not ext:
        path = f"{path}.{fmt}"
    gv_path = stem + ".gv"
    from .data.download import atomic_write_bytes
    atomic_write_bytes(gv_path, g.source.encode())
    if fmt in ("gv", "dot"):
        if path != gv_path:
            atomic_write_bytes(path, g.source.encode())
        return path
    dot = shutil.which("dot")
    if dot is None:
        message = f"Graphviz's `dot` program was not found; wrote the graph source to {gv_path}; {INSTALL_HINT}"
        if strict:
            raise GraphvizNotFoundError(message)
        warnings.warn(message, stacklevel=2)
        return gv_path
    result = subprocess.run([dot, f"-T{fmt}", gv_path], capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"dot failed to render {gv_path} as {fmt}: {result.stderr.decode().strip()}")
    atomic_write_bytes(path, result.stdout)
    return path
