"""nn.Module / Parameter / containers: registration, traversal, modes, state_dict,
load_state_dict errors, hooks, dtype casts and repr (PyTorch's behaviour)."""
import copy

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn


class Block(nn.Module):
    """A parameter, a persistent int buffer, a float buffer, a None buffer, a
    non-persistent buffer and a child: every kind of state."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(tn.ones(3))
        self.register_buffer("count", tn.zeros((), dtype=tn.int64))
        self.register_buffer("running", tn.zeros(3))
        self.register_buffer("maybe", None)
        self.register_buffer("scratch", tn.zeros(2), persistent=False)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        self.count += 1
        return self.fc(x * self.scale)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.head(self.block(x))


# ------------------------------------------------------------------ Parameter

def test_parameter_defaults_shares_data_and_repr():
    t = tn.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, tn.Tensor) and p.requires_grad and p.is_leaf
    assert p.detach().numpy() is t.detach().numpy()  # shares the array, like torch.nn.Parameter
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")
    assert "requires_grad=True" in repr(p)
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    q = nn.Parameter(np.arange(3.0))
    assert q.dtype == np.float64 and q.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(np.arange(3))


def test_parameter_survives_deepcopy_as_parameter():
    m = Net()
    m2 = copy.deepcopy(m)
    for (n1, p1), (n2, p2) in zip(m.named_parameters(), m2.named_parameters()):
        assert n1 == n2 and isinstance(p2, nn.Parameter) and p2 is not p1
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())
        assert p2.detach().numpy() is not p1.detach().numpy()


# --------------------------------------------------------------- registration

def test_attribute_registration_and_lookup():
    b = Block()
    assert list(b._parameters) == ["scale"]
    assert list(b._buffers) == ["count", "running", "maybe", "scratch"]
    assert list(b._modules) == ["fc"]
    assert b.maybe is None and b.fc.in_features == 3
    # a plain tensor attribute is neither a parameter nor a buffer (as in PyTorch)
    b.plain = tn.zeros(1)
    assert "plain" not in b._buffers and "plain" not in b._parameters
    # reassigning a registered buffer keeps it a buffer
    b.running = tn.ones(3)
    assert b._buffers["running"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'nope'"):
        b.nope


def test_assignment_errors_name_the_slot():
    b = Block()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'scale'"):
        b.scale = tn.ones(3)
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'fc'"):
        b.fc = 3
    with pytest.raises(TypeError, match="cannot assign 'list' as buffer 'running'"):
        b.running = [1, 2]
    with pytest.raises(KeyError, match="attribute 'fc' already exists"):
        b.register_buffer("fc", tn.zeros(1))
    with pytest.raises(KeyError, match=r'buffer name can.*t contain "\."'):
        b.register_buffer("a.b", tn.zeros(1))
    with pytest.raises(TypeError, match="Parameter or None required"):
        b.register_parameter("w", tn.zeros(1))
    with pytest.raises(ValueError, match="non-leaf"):
        b.register_parameter("w", _non_leaf_parameter())
    b.scale = None  # None is allowed for a registered parameter
    assert b.scale is None and "scale" not in dict(b.named_parameters())


def _non_leaf_parameter():
    """A Parameter object that has a grad_fn (PyTorch refuses to register one)."""
    y = nn.Parameter(tn.ones(2)) * 2
    q = nn.Parameter(y.detach())
    q._ctx = y._ctx
    return q


def test_module_without_super_init_fails_clearly():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tn.ones(1))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Bad()


def test_missing_forward_is_named():
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required "forward"'):
        nn.Module()(tn.ones(1))


def test_delattr_removes_from_registries():
    b = Block()
    del b.fc
    del b.running
    del b.scale
    assert "fc" not in b._modules and "running" not in b._buffers and "scale" not in b._parameters
    with pytest.raises(AttributeError):
        b.fc


# ------------------------------------------------------------------ traversal

def test_named_parameters_buffers_modules_order():
    m = Net()
    assert [n for n, _ in m.named_parameters()] == ["block.scale", "block.fc.weight", "block.fc.bias",
                                                    "head.weight"]
    assert [n for n, _ in m.named_parameters(recurse=False)] == []
    assert [n for n, _ in m.block.named_parameters(prefix="b", recurse=False)] == ["b.scale"]
    # None buffers are skipped; non-persistent buffers are still buffers
    assert [n for n, _ in m.named_buffers()] == ["block.count", "block.running", "block.scratch"]
    assert [n for n, _ in m.named_modules()] == ["", "block", "block.fc", "head"]
    assert [n for n, _ in m.named_children()] == ["block", "head"]
    assert list(m.children()) == [m.block, m.head]
    assert len(list(m.modules())) == 4 and len(list(m.parameters())) == 4
    assert len(list(m.buffers())) == 3


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(2, 2)
    m = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(m.parameters())) == 2
    assert [n for n, _ in m.named_modules()] == ["", "0", "1"]
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4


def test_get_submodule_parameter_and_buffer():
    m = Net()
    assert m.get_submodule("block.fc") is m.block.fc
    assert m.get_submodule("") is m
    assert m.get_parameter("block.fc.weight") is m.block.fc.weight
    assert m.get_buffer("block.count") is m.block.count
    with pytest.raises(AttributeError, match="no submodule `nope`"):
        m.get_submodule("block.nope")
    with pytest.raises(AttributeError, match="no parameter `bias`"):
        m.get_parameter("head.bias")


# ---------------------------------------------------------------------- modes

def test_train_eval_propagate_to_every_descendant():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.ReLU()))
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m[1].train()
    assert not m.training and not m[0].training and m[1].training and m[1][0].training
    m.train()
    assert all(x.training for x in m.modules())
    with pytest.raises(ValueError, match="boolean"):
        m.train("yes")


def test_zero_grad_and_requires_grad_():
    m = Net()
    m(tn.ones(4, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_apply_visits_children_first():
    m = Net()
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "Block", "Linear", "Net"]


# ----------------------------------------------------------------- state_dict

def test_state_dict_keys_order_values_and_sharing():
    m = Net()
    sd = m.state_dict()
    # per module: own parameters, then own persistent buffers, then children
    assert list(sd) == ["block.scale", "block.count", "block.running", "block.fc.weight", "block.fc.bias",
                        "head.weight"]
    for name, t in sd.items():
        assert not t.requires_grad and t.is_leaf
    np.testing.assert_array_equal(sd["block.fc.weight"].detach().numpy(), m.block.fc.weight.detach().numpy())
    assert sd["block.count"].dtype == np.int64
    # detached but sharing memory, as in PyTorch
    assert np.shares_memory(sd["head.weight"].detach().numpy(), m.head.weight.detach().numpy())
    assert m.state_dict(keep_vars=True)["head.weight"] is m.head.weight


def test_load_state_dict_copies_in_place_and_round_trips_int_buffers():
    src, dst = Net(), Net()
    src(tn.ones(1, 3))
    src(tn.ones(1, 3))
    weight_object = dst.head.weight
    result = dst.load_state_dict({k: v.clone() for k, v in src.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    assert dst.head.weight is weight_object  # in place: optimizers keep working
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert dst.block.count.item() == 2 and dst.block.count.dtype == np.int64
    # values are cast to the parameter's dtype; plain arrays are accepted
    sd = {k: v.numpy().astype(np.float64) for k, v in src.state_dict().items()}
    dst.load_state_dict(sd)
    assert dst.head.weight.dtype == np.float32


def test_load_state_dict_strict_lists_every_problem_and_changes_nothing():
    m = Net()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    sd = {k: v.clone() + 1 if v.dtype.kind == "f" else v for k, v in Net().state_dict().items()}
    del sd["block.running"]
    del sd["head.weight"]
    sd["block.fc.weight"] = tn.zeros(5, 3)
    sd["block.extra"] = tn.zeros(1)
    sd["tail.weight"] = tn.zeros(1)
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(sd)
    msg = str(info.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "block.running", "head.weight".' in msg
    # listed module by module, the root first (PyTorch's order)
    assert 'Unexpected key(s) in state_dict: "tail.weight", "block.extra".' in msg
    assert ("size mismatch for block.fc.weight: copying a param with shape (5, 3) from checkpoint, "
            "the shape in current model is (2, 3).") in msg
    for k, v in m.state_dict().items():  # nothing was copied
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_load_state_dict_non_strict_returns_keys_but_shapes_still_raise():
    m = Net()
    sd = Net().state_dict()
    del sd["head.weight"]
    sd["surplus"] = tn.zeros(1)
    result = m.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["head.weight"] and result.unexpected_keys == ["surplus"]
    missing, unexpected = result
    assert missing == ["head.weight"]
    np.testing.assert_array_equal(m.block.fc.weight.detach().numpy(), sd["block.fc.weight"].detach().numpy())
    sd["block.scale"] = tn.zeros(4)
    with pytest.raises(RuntimeError, match=r"size mismatch for block.scale: copying a param with shape "
                                           r"\(4,\) from checkpoint, the shape in current model is \(3,\)"):
        m.load_state_dict(sd, strict=False)


def test_state_dict_skips_none_and_non_persistent_buffers():
    b = Block()
    keys = list(b.state_dict())
    assert "maybe" not in keys and "scratch" not in keys and "count" in keys
    b.load_state_dict(b.state_dict())  # and loading does not ask for them


def test_load_state_dict_of_a_bias_free_model_reports_the_bias_as_unexpected():
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "bias"'):
        nn.Linear(3, 2, bias=False).load_state_dict(nn.Linear(3, 2).state_dict())


# ---------------------------------------------------------------------- hooks

def test_forward_hooks_modify_and_are_removable():
    m = nn.Linear(2, 2)
    calls = []
    h_pre = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h_post = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 100)
    y = m(tn.ones(3, 2))
    np.testing.assert_allclose(y.detach().numpy(), np.broadcast_to(m.bias.detach().numpy() + 100, (3, 2)), rtol=1e-6)
    assert calls == [(3, 2)]
    h_pre.remove()
    h_post.remove()
    h_post.remove()  # removing twice is harmless
    y = m(tn.ones(3, 2))
    np.testing.assert_allclose(y.detach().numpy(), (tn.ones(3, 2) @ m.weight.T + m.bias).detach().numpy(), rtol=1e-6)
    assert calls == [(3, 2)]


def test_pre_hook_returning_single_value_and_hook_order():
    m = nn.Identity()
    order = []
    m.register_forward_pre_hook(lambda mod, args: order.append("pre1"))
    m.register_forward_pre_hook(lambda mod, args: args[0] + 1)  # not a tuple: wrapped
    m.register_forward_hook(lambda mod, args, out: order.append("post"))
    with m.register_forward_hook(lambda mod, args, out: out * 10):
        assert m(tn.tensor(1.0)).item() == 20.0
    assert m(tn.tensor(1.0)).item() == 2.0
    assert order == ["pre1", "post", "pre1", "post"]


def test_module_scope_is_pushed_during_forward_and_restored():
    import sys
    scope_module = sys.modules["tinygrad_norm.tensor"]
    inner = nn.Linear(2, 2)
    outer = nn.Sequential(inner)
    y = outer(tn.ones(1, 2, requires_grad=True))
    from tinygrad_norm.nn.module import module_of
    assert tuple(module_of(s) for s in y.grad_fn.scope) == (outer, inner)
    assert scope_module._module_scope == ()

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        nn.Sequential(Boom())(tn.ones(1))
    assert scope_module._module_scope == ()


# ---------------------------------------------------------------------- dtype

def test_double_and_float_cast_in_place_but_keep_int_buffers():
    b = Block()
    b(tn.ones(1, 3)).sum().backward()
    scale = b.scale
    assert b.double() is b
    assert b.scale is scale and b.scale.dtype == np.float64 and b.scale.grad.dtype == np.float64
    assert b.running.dtype == np.float64 and b.count.dtype == np.int64
    assert b(tn.ones(1, 3, dtype=tn.float64)).dtype == np.float64
    b.float()
    assert b.fc.weight.dtype == np.float32 and b.count.dtype == np.int64
    assert b.to(tn.float64).fc.bias.dtype == np.float64 and b.to("cpu") is b


# ----------------------------------------------------------------------- repr

def test_repr_is_nested_like_pytorch():
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=4, out_features=2, bias=True)\n"
        "  )\n"
        ")")
    assert repr(Net()) == (
        "Net(\n"
        "  (block): Block(\n"
        "    (fc): Linear(in_features=3, out_features=2, bias=True)\n"
        "  )\n"
        "  (head): Linear(in_features=2, out_features=1, bias=False)\n"
        ")")


def test_module_list_repr_groups_repeats():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU()])
    assert repr(ml) == ("ModuleList(\n"
                        "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
                        "  (3): ReLU()\n"
                        ")")


# ----------------------------------------------------------------- containers

def test_sequential_indexing_slicing_and_editing():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and list(s) == [a, b, c]
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    x = tn.randn(4, 2)
    np.testing.assert_allclose(s(x).detach().numpy(), c(b(a(x))).detach().numpy())
    del s[1]
    assert list(s._modules) == ["0", "1"] and s[1] is c
    s.append(nn.Tanh())
    assert isinstance(s[2], nn.Tanh)
    s.insert(1, b)
    assert list(s)[1] is b and len(s) == 4
    s[0] = nn.Identity()
    assert isinstance(s[0], nn.Identity)
    with pytest.raises(IndexError, match="out of range"):
        s[10]


def test_sequential_from_ordered_dict_keeps_names():
    from collections import OrderedDict
    s = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(s.state_dict()) == ["fc.weight", "fc.bias"]
    assert s.fc is s[0]


def test_module_list_and_dict_register_parameters():
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    ml.append(nn.Linear(2, 1))
    ml += [nn.ReLU()]
    assert len(ml) == 4 and len(list(ml.parameters())) == 6
    assert list(ml.state_dict())[:2] == ["0.weight", "0.bias"]
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2"]
    assert isinstance(ml[-1], nn.ReLU) and len(ml[:2]) == 2
    md = nn.ModuleDict({"enc": nn.Linear(2, 3), "dec": nn.Linear(3, 2)})
    md["act"] = nn.ReLU()
    assert list(md) == ["enc", "dec", "act"] and "enc" in md and len(md) == 3
    assert list(md.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert isinstance(md.pop("act"), nn.ReLU) and len(md) == 2
    assert [k for k, _ in md.items()] == ["enc", "dec"]


def test_identity_ignores_arguments_and_returns_input():
    x = tn.ones(2)
    assert nn.Identity(54, unused="x")(x) is x


def test_the_engine_imports_nothing_from_nn():
    """engine → nn → lab: no import in tensor.py, ops.py, autograd.py or kernels/ names nn
    (at module level or inside a function)."""
    import ast
    import pathlib
    root = pathlib.Path(tn.__file__).parent
    files = [root / "tensor.py", root / "ops.py", root / "autograd.py", *sorted((root / "kernels").rglob("*.py"))]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n == "nn" or n.startswith("nn.") or ".nn" in n for n in names), (path.name, names)


def test_sequential_and_module_list_insert_and_delete_like_lists():
    """One implementation of the list methods: a negative index counts from the end
    (PyTorch's Sequential.insert: index + n), del renumbers, out of range raises."""
    a, b, c, d = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity()
    for cls in (nn.Sequential, nn.ModuleList):
        s = cls([a, b, c]) if cls is nn.ModuleList else cls(a, b, c)
        s.insert(-1, d)
        assert list(s) == [a, b, d, c] and list(s._modules) == ["0", "1", "2", "3"]
        del s[-2]
        assert list(s) == [a, b, c] and list(s._modules) == ["0", "1", "2"]
        del s[0:2]
        assert list(s) == [c] and list(s._modules) == ["0"]
        with pytest.raises(IndexError, match=f"out of range for a {cls.__name__}"):
            s[1] = a
    with pytest.raises(IndexError, match="out of range for a Sequential"):
        nn.Sequential(a).insert(3, b)
