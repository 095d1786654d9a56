"""Every public name has an entry in the API reference (docs/api/), and the index links it.

The convention (documented at the top of docs/api/index.md):

* an **entry** is a code span in a heading line (`### \\`nn.BatchNorm1d\\``) or in the
  first cell of a table row (`| \\`Tensor.sum(dim=None, keepdim=False)\\` | ... |`)
  of docs/api/*.md other than index.md;
* the span is read up to its first "(", "[" or space and names the object by its
  namespace (spans naming no such object, like `a + b` in an operator table, are
  not entries): `tn.zeros`, `nn.Linear`, `F.relu` (= nn.functional), `nn.init.uniform_`,
  `nn.utils.weight_norm`, `optim.SGD`, `lr_scheduler.StepLR` (= optim.lr_scheduler),
  `data.mnist`, `lab.ics`, `viz.render`, `autograd.grad`, and members of classes as
  `Tensor.sum`, `Module.parameters`, `Optimizer.step`, `LRScheduler.step`,
  `DataLoader.order`; a leading `tn.` before a sub-namespace is optional;
* docs/api/index.md links every entry as [`name`](page.md#anchor) to the page
  holding it, at an anchor that exists there. `python tests/test_api_docs.py`
  rewrites the part of index.md below its `<!-- generated -->` line from the pages.

Public names are the `__all__` of the namespaces that have one, the public
non-module attributes of those that do not (`tinygrad_norm`, `tinygrad_norm.nn`;
for `tinygrad_norm.autograd` only what it defines itself), and the public
attributes of the classes above.
"""
import pathlib
import re
import sys
import types

import pytest

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import tinygrad_norm as tn  # noqa: E402
import tinygrad_norm.nn.functional  # noqa: E402,F401  (namespaces below are reached as attributes)
import tinygrad_norm.nn.utils  # noqa: E402,F401
import tinygrad_norm.optim.lr_scheduler  # noqa: E402,F401

API = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api"
INDEX = API / "index.md"

# canonical prefix -> namespace object (None: the members of a class, see CLASSES)
NAMESPACES = {
    "tn.": tn,
    "nn.": tn.nn,
    "nn.functional.": tn.nn.functional,
    "nn.init.": tn.nn.init,
    "nn.utils.": tn.nn.utils,
    "optim.": tn.optim,
    "optim.lr_scheduler.": tn.optim.lr_scheduler,
    "data.": tn.data,
    "lab.": tn.lab,
    "viz.": tn.viz,
    "autograd.": tn.autograd,
}
CLASSES = {
    "Tensor.": tn.Tensor,
    "Module.": tn.nn.Module,
    "Optimizer.": tn.optim.Optimizer,
    "LRScheduler.": tn.optim.lr_scheduler.LRScheduler,
    "DataLoader.": tn.data.DataLoader,
}
SUBSPACES = ("nn.", "optim.", "data.", "lab.", "viz.", "autograd.")
ALIASES = {"F.": "nn.functional.", "lr_scheduler.": "optim.lr_scheduler."}

PREFIXES = sorted(list(NAMESPACES) + list(CLASSES), key=len, reverse=True)
SPAN = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[`([^`]+)`\]\(([^)#]+\.md)#([^)]+)\)")


# ------------------------------------------------------------------ public names

def _public(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        if module is tn.autograd:  # a plain module: only what it defines itself
            names = [n for n in names if getattr(getattr(module, n), "__module__", None) == module.__name__]
    return [n for n in names if not isinstance(getattr(module, n), types.ModuleType)]


def _members(cls):
    names = {n for n in dir(cls) if not n.startswith("_")}
    for klass in cls.__mro__:  # annotated instance attributes, e.g. Module.training
        names |= {n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_")}
    return sorted(names)


def public_names():
    """Every public name as its canonical path, e.g. "tn.zeros", "nn.functional.relu", "Tensor.sum"."""
    names = set()
    for prefix, module in NAMESPACES.items():
        names |= {prefix + n for n in _public(module)}
    for prefix, cls in CLASSES.items():
        names |= {prefix + n for n in _members(cls)}
    return names


# ---------------------------------------------------------------- documented names

def canonical(span):
    """The canonical path a code span names: `tn.nn.BatchNorm1d(...)` -> "nn.BatchNorm1d",
    `F.relu(input)` -> "nn.functional.relu", `tn.zeros(*size)` -> "tn.zeros"."""
    path = re.split(r"[(\s\[]", span.strip(), maxsplit=1)[0]
    if path.startswith("tinygrad_norm."):
        path = "tn." + path[len("tinygrad_norm."):]
    if path.startswith("tn.") and path[3:].startswith(SUBSPACES):
        path = path[3:]
    for short, full in ALIASES.items():
        if path.startswith(short):
            path = full + path[len(short):]
    return path


def slug(heading):
    """GitHub's anchor for a heading text: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


class _Anchors:
    """The anchors of a page's headings in order; a repeated one gets "-1", "-2", ... (GitHub)."""

    def __init__(self):
        self.count = {}

    def __call__(self, heading):
        base = slug(heading)
        n = self.count.get(base, 0)
        self.count[base] = n + 1
        return base if n == 0 else f"{base}-{n}"


def anchors(page):
    make, in_code, result = _Anchors(), False, set()
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif line.startswith("#") and not in_code:
            result.add(make(line.lstrip("#")))
    return result


def entries(page):
    """[(canonical name, raw name, anchor)] of the entries of one page, in order; the
    anchor is the entry's own heading, or the heading of the section holding its table."""
    found, anchor, in_code, make = [], None, False, _Anchors()
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.startswith("#"):
            anchor = make(line.lstrip("#"))
            spans = SPAN.findall(line)
        elif line.startswith("|"):
            cells = line.strip().strip("|").split("|")
            spans = SPAN.findall(cells[0]) if cells else []
        else:
            continue
        for span in spans:
            name = canonical(span)
            prefix = next((p for p in PREFIXES if name.startswith(p)), None)
            namespace = name + "." in NAMESPACES or (name.startswith("tn.") and name[3:] + "." in NAMESPACES)
            # `a + b`, `"unit"` and namespaces (`tn.data`, `nn.init`) are not entries
            if prefix is not None and len(name) > len(prefix) and not namespace:
                found.append((name, re.split(r"[(\s\[]", span.strip(), maxsplit=1)[0], anchor))
    return found


def pages():
    return sorted(p for p in API.glob("*.md") if p != INDEX)


def documented():
    """{canonical name: [(page name, anchor)]} over every page but the index."""
    result = {}
    for page in pages():
        for name, _, anchor in entries(page):
            result.setdefault(name, []).append((page.name, anchor))
    return result


# ------------------------------------------------------------------------ index

PAGE_ORDER = ["tensor.md", "nn.md", "normalization.md", "functional.md", "optim.md", "data.md", "viz.md",
              "lab.md"]
GROUPS = [  # (title, canonical prefix), in the order of the index
    ("`tn`: tensors, factories, dtypes, grad mode, random state, saving", "tn."),
    ("`Tensor` attributes and methods", "Tensor."),
    ("`tn.autograd`", "autograd."),
    ("`tn.nn`: modules and layers", "nn."),
    ("`nn.Module` methods", "Module."),
    ("`tn.nn.functional` (`F`)", "nn.functional."),
    ("`tn.nn.init`", "nn.init."),
    ("`tn.nn.utils`", "nn.utils."),
    ("`tn.optim`", "optim."),
    ("`Optimizer` members", "Optimizer."),
    ("`tn.optim.lr_scheduler`", "optim.lr_scheduler."),
    ("`LRScheduler` methods", "LRScheduler."),
    ("`tn.data`", "data."),
    ("`DataLoader` members", "DataLoader."),
    ("`tn.lab`", "lab."),
    ("`tn.viz`", "viz."),
]
MARKER = "<!-- generated -->"


def index_links():
    """The generated part of index.md: one section per group, each entry linked to its
    own heading if it has one, else to the section holding its table row."""
    chosen = {}  # canonical name -> (raw name, page, anchor, is its own heading)
    for page in sorted(pages(), key=lambda p: PAGE_ORDER.index(p.name) if p.name in PAGE_ORDER else 99):
        for name, raw, anchor in entries(page):
            own = anchor is not None and anchor.split("-")[0] == slug(f"`{raw}`")
            if name not in chosen or (own and not chosen[name][3]):
                chosen[name] = (raw, page.name, anchor, own)
    out = []
    for title, prefix in GROUPS:
        longer = [p for _, p in GROUPS if len(p) > len(prefix) and p.startswith(prefix)]
        names = [n for n in chosen if n.startswith(prefix) and not n.startswith(tuple(longer))]
        links = [f"[`{chosen[n][0]}`]({chosen[n][1]}#{chosen[n][2]})" for n in names]
        out.append(f"## {title}\n\n" + " ·\n".join(links) + "\n")
    return "\n".join(out)


def write_index():
    text = INDEX.read_text()
    head = text[:text.index(MARKER) + len(MARKER)]
    INDEX.write_text(head + "\n\n" + index_links())


# ------------------------------------------------------------------------ tests

def test_the_public_names_are_found():
    names = public_names()
    # a few of each kind, so that a broken collector cannot pass vacuously
    for name in ("tn.Tensor", "tn.zeros", "tn.manual_seed", "tn.float32", "nn.BatchNorm1d", "nn.Module",
                 "nn.functional.batch_norm", "nn.init.kaiming_normal_", "nn.utils.spectral_norm",
                 "optim.AdamW", "optim.lr_scheduler.CosineAnnealingLR", "data.DataLoader", "lab.ics",
                 "viz.draw_graph", "autograd.gradcheck", "Tensor.backward", "Tensor.var",
                 "Module.state_dict", "Module.training", "Optimizer.zero_grad"):
        assert name in names, name
    assert len(names) > 300


def test_canonical_names_of_code_spans():
    assert canonical("tn.nn.BatchNorm1d(num_features, eps=1e-5)") == "nn.BatchNorm1d"
    assert canonical("F.relu(input, inplace=False)") == "nn.functional.relu"
    assert canonical("lr_scheduler.StepLR") == "optim.lr_scheduler.StepLR"
    assert canonical("tinygrad_norm.zeros") == "tn.zeros"
    assert canonical("Tensor.T") == "Tensor.T"
    assert slug(" `nn.BatchNorm1d`") == "nnbatchnorm1d"
    make = _Anchors()
    assert [make("`tn.Tensor`"), make("`tn.tensor`")] == ["tntensor", "tntensor-1"]
    assert (slug(" Learning-rate schedules — `optim.lr_scheduler`")
            == "learning-rate-schedules--optimlr_scheduler")


def test_every_public_name_has_a_reference_entry():
    missing = sorted(public_names() - set(documented()))
    assert not missing, (f"{len(missing)} public names have no entry in docs/api/*.md (a heading or the "
                         f"first cell of a table row holding `name`, see docs/api/index.md): "
                         + ", ".join(missing))


def test_entries_name_real_objects():
    """An entry for a name that does not exist (a typo, a removed function) is an error too;
    class members documented as instance attributes (Optimizer.param_groups) are allowed."""
    known = public_names()
    instance_attributes = {"Optimizer.param_groups", "Optimizer.state", "Optimizer.defaults",
                           "DataLoader.epoch"}
    unknown = sorted(n for n in documented() if n not in known and n not in instance_attributes)
    assert not unknown, "entries for names that are not public names: " + ", ".join(unknown)


def test_the_index_links_every_entry_to_its_page_and_anchor():
    text = INDEX.read_text()
    targets = {page.name: anchors(page) for page in pages()}
    where = documented()
    linked = set()
    for display, page, anchor in LINK.findall(text):
        name = canonical(display)
        assert page in targets, f"index.md links {display} to {page}, which is not a page of docs/api/"
        assert anchor in targets[page], f"index.md links {display} to {page}#{anchor}: no such heading"
        assert name in where, f"index.md links {display}, which has no entry"
        assert page in {p for p, _ in where[name]}, \
            f"index.md links {display} to {page}, but its entry is elsewhere"
        linked.add(name)
    missing = sorted(set(where) - linked)
    assert not missing, ("index.md does not link: " + ", ".join(missing)
                         + " (`python tests/test_api_docs.py` regenerates the links)")


def test_the_index_is_up_to_date():
    text = INDEX.read_text()
    assert MARKER in text, f"index.md lost its {MARKER} line"
    assert text.split(MARKER, 1)[1].strip() == index_links().strip(), \
        "docs/api/index.md is out of date: run `python tests/test_api_docs.py`"


@pytest.mark.parametrize("page", ["tensor.md", "nn.md", "normalization.md", "functional.md", "optim.md",
                                  "data.md", "viz.md", "lab.md"])
def test_each_page_exists_and_links_back_to_the_index(page):
    assert "(index.md)" in (API / page).read_text()


if __name__ == "__main__":
    write_index()
    print(f"wrote {INDEX}")
