"""einsum, gradient clipping, Embedding, one_hot and masked_fill against PyTorch's numbers
(torch 2.13, float64 unless said; constants pasted below) and central differences."""
import math

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn
from tinygrad_norm.autograd import gradcheck
from tinygrad_norm.nn import functional as F

A = np.array([[1., 2, 3], [4, 5, 6], [7, 8, 10]])
B = np.array([[0.5, -1], [2, 0.25], [-3, 1]])
V = np.array([1., -2, 0.5])
T = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7
C = np.array([[1., 0], [0.5, 2]])
OPERANDS = {"ij,jk->ik": (A, B), "ii->": (A,), "ii->i": (A,), "ij->ji": (B,), "ij->": (B,),
            "i,i->": (V, V), "i,j->ij": (V, V), "bij,bjk->bik": (T[:, :2, :3], T[:, :3, :2]),
            "ij,jk,kl->il": (A, B, C), "ij,j": (A, V),
            "iij->j": (np.stack([A, A * 2, A * 3], -1)[:, :, :2],), "ij,ij->i": (A, A), "ik,jk": (B.T, B.T)}

EINSUM_REFS = [
    ('ij,jk->ik', [[-4.5, 2.5], [-6.0, 3.25], [-10.5, 5.0]]),
    ('ii->', 16.0),
    ('ii->i', [1.0, 5.0, 10.0]),
    ('ij->ji', [[0.5, 2.0, -3.0], [-1.0, 0.25, 1.0]]),
    ('ij->', -0.25),
    ('i,i->', 5.25),
    ('i,j->ij', [[1.0, -2.0, 0.5], [-2.0, 4.0, -1.0], [0.5, -1.0, 0.25]]),
    ('bij,bjk->bik', [[[0.408163265306, 0.469387755102], [1.387755102041, 1.69387755102]], [[12.897959183673, 13.69387755102], [16.816326530612, 17.857142857143]]]),
    ('ij,jk,kl->il', [[-3.25, 5.0], [-4.375, 6.5], [-8.0, 10.0]]),
    ('ij,j', [-1.5, -3.0, -4.0]),
    ('iij->j', [16.0, 32.0]),
    ('ij,ij->i', [14.0, 77.0, 213.0]),
    ('ik,jk', [[13.25, -3.0], [-3.0, 2.0625]]),
]


@pytest.mark.parametrize("equation,expected", EINSUM_REFS)
def test_einsum_matches_pytorch(equation, expected):
    ops = [tn.tensor(a) for a in OPERANDS[equation]]
    np.testing.assert_allclose(tn.einsum(equation, *ops).numpy(), expected, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(tn.einsum(equation, ops).numpy(), expected, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("equation", sorted(OPERANDS))
def test_einsum_gradient_by_finite_differences(equation):
    rng = np.random.default_rng(len(equation))
    ops = [tn.tensor(a + 0.1 * rng.standard_normal(a.shape), requires_grad=True) for a in OPERANDS[equation]]
    assert gradcheck(lambda *xs: tn.einsum(equation, *xs), ops)


def test_einsum_gradient_of_a_repeated_operand_and_of_the_trace():
    a = tn.tensor(A, requires_grad=True)
    tn.einsum("ii->", a).backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.eye(3))       # d trace / dA = I
    a.grad = None
    tn.einsum("ij,ij->", a, a).backward()                           # Σ A² -> 2A
    np.testing.assert_allclose(a.grad.numpy(), 2 * A)


def test_einsum_errors_name_the_problem():
    a = tn.tensor(A)
    with pytest.raises(ValueError, match="operand 0 has 2 dims .* subscripts 'ijk' name 3"):
        tn.einsum("ijk->i", a)
    with pytest.raises(ValueError, match="letter 'j' has size 3 in one place and 2 in another"):
        tn.einsum("ij,jk->ik", a, tn.tensor(C))
    with pytest.raises(ValueError, match="has 2 operand.* but 1 tensor"):
        tn.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match="output letter 'z' appears in no operand"):
        tn.einsum("ij->z", a)
    with pytest.raises(ValueError, match="'...' .* is not supported"):
        tn.einsum("...ij->...", a)


CLIP_NORM_REFS = [
    (1.0, 2.0, 108.80516052246094, [[[0.02757222205400467, 0.036762963980436325], [0.009190740995109081, -0.018381481990218163]], [0.006893055513501167, 0.9926000237464905, 0.11028888821601868]]),
    (100.0, 2.0, 108.80516052246094, [[[2.7572224140167236, 3.6762964725494385], [0.9190741181373596, -1.8381482362747192]], [0.6893056035041809, 99.26000213623047, 11.028889656066895]]),
    (2.0, 1.0, 130.75, [[[0.045889101922512054, 0.06118546798825264], [0.01529636699706316, -0.03059273399412632]], [0.011472275480628014, 1.6520075798034668, 0.18355640769004822]]),
    (5.0, math.inf, 108.0, [[[0.1388888955116272, 0.18518519401550293], [0.04629629850387573, -0.09259259700775146]], [0.0347222238779068, 5.0, 0.5555555820465088]]),
    (3.0, 3.0, 108.05225372314453, [[[0.08329303562641144, 0.11105737835168839], [0.027764344587922096, -0.05552868917584419]], [0.02082325890660286, 2.998549222946167, 0.33317214250564575]]),
]
CLIP_VALUE_REF = [[[2.5, 2.5], [1.0, -2.0]], [0.75, 2.5, 2.5]]


def _clip_setup():
    ws = [tn.tensor([[3., 4.], [1., -2.]], requires_grad=True), tn.tensor([0.5, -6., 2.], requires_grad=True)]
    ((ws[0] ** 2).sum() * 0.5 + (ws[1] ** 3).sum()).backward()
    return ws


@pytest.mark.parametrize("max_norm,norm_type,total,grads", CLIP_NORM_REFS)
def test_clip_grad_norm_matches_pytorch(max_norm, norm_type, total, grads):
    ws = _clip_setup()
    before = [w.grad for w in ws]
    got = nn.utils.clip_grad_norm_(ws, max_norm, norm_type=norm_type)
    assert got.dtype == np.float32 and got.ndim == 0
    np.testing.assert_allclose(got.item(), total, rtol=1e-6)
    for w, g in zip(ws, grads):
        np.testing.assert_allclose(w.grad.numpy(), g, rtol=1e-6)
    if max_norm < total:   # a new gradient array: the old one is never written into
        assert ws[0].grad is not before[0] and before[0].numpy()[0, 0] == 3.0


def test_clip_grad_value_and_edge_cases():
    ws = _clip_setup()
    nn.utils.clip_grad_value_(ws, 2.5)
    np.testing.assert_array_equal(ws[0].grad.numpy(), [[2.5, 2.5], [1.0, -2.0]])
    np.testing.assert_array_equal(ws[1].grad.numpy(), [0.75, 2.5, 2.5])
    assert nn.utils.clip_grad_norm_([tn.zeros(2, requires_grad=True)], 1.0).item() == 0.0
    w = tn.zeros(2, requires_grad=True)
    w.grad = tn.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(w, 1.0, error_if_nonfinite=True)


# F.embedding on W = arange(15).reshape(5, 3) / 4, idx = [[1, 2, 1], [0, 4, 1]],
# loss = Σ out · arange(18).reshape(2, 3, 3): torch's W.grad for each option
EMB_W = np.arange(15, dtype=np.float64).reshape(5, 3) / 4
EMB_IDX = [[1, 2, 1], [0, 4, 1]]
EMB_GRADS = [
    (dict(), [[9.0, 10.0, 11.0], [21.0, 24.0, 27.0], [3.0, 4.0, 5.0], [0.0, 0.0, 0.0], [12.0, 13.0, 14.0]]),
    (dict(padding_idx=1), [[9.0, 10.0, 11.0], [0.0, 0.0, 0.0], [3.0, 4.0, 5.0], [0.0, 0.0, 0.0],
                           [12.0, 13.0, 14.0]]),
    (dict(scale_grad_by_freq=True), [[9.0, 10.0, 11.0], [7.0, 8.0, 9.0], [3.0, 4.0, 5.0], [0.0, 0.0, 0.0],
                                     [12.0, 13.0, 14.0]]),
]
EMB_MAX_NORM = [[0.0, 0.25, 0.5], [0.636396067068, 0.848528089424, 1.06066011178],
                [0.737308704306, 0.860193488357, 0.983078272408], [2.25, 2.5, 2.75],
                [0.797835958775, 0.864322288673, 0.930808618571]]


@pytest.mark.parametrize("kw,expected", EMB_GRADS)
def test_embedding_gradient_matches_pytorch(kw, expected):
    w = tn.tensor(EMB_W, requires_grad=True)
    out = F.embedding(tn.tensor(EMB_IDX), w, **kw)
    np.testing.assert_array_equal(out.detach().numpy(), EMB_W[EMB_IDX])
    (out * tn.arange(18, dtype=tn.float64).reshape(2, 3, 3)).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), expected)


def test_embedding_max_norm_renormalizes_the_rows_looked_up():
    w = tn.tensor(EMB_W.copy())
    F.embedding(tn.tensor(EMB_IDX), w, max_norm=1.5)
    np.testing.assert_allclose(w.numpy(), EMB_MAX_NORM, rtol=1e-10)


def test_embedding_module():
    tn.manual_seed(0)
    emb = nn.Embedding(10, 4, padding_idx=0)
    assert emb.weight.shape == (10, 4) and np.all(emb.weight.detach().numpy()[0] == 0)
    assert abs(emb.weight.detach().numpy()[1:].std() - 1) < 0.3            # N(0, 1) init
    y = emb(tn.tensor([[0, 3], [9, 3]]))
    assert y.shape == (2, 2, 4)
    y.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[[0, 3, 9, 5]].sum(1), [0, 8, 4, 0])
    assert repr(emb) == "Embedding(10, 4, padding_idx=0)"
    frozen = nn.Embedding.from_pretrained(tn.tensor(EMB_W))
    assert not frozen.weight.requires_grad and frozen(tn.tensor([2])).tolist() == [EMB_W[2].tolist()]
    with pytest.raises(RuntimeError, match="expected an integer index tensor .* got dtype float32"):
        emb(tn.Tensor([1, 2]))
    with pytest.raises(IndexError, match="index 10 is out of range for 10 embeddings"):
        emb(tn.tensor([10]))


def test_one_hot_matches_pytorch():
    assert F.one_hot(tn.tensor([[0, 2], [3, 1]])).tolist() == [[[1, 0, 0, 0], [0, 0, 1, 0]],
                                                                [[0, 0, 0, 1], [0, 1, 0, 0]]]
    out = F.one_hot(tn.tensor([1, 0]), num_classes=3)
    assert out.dtype == np.int64 and out.tolist() == [[0, 1, 0], [1, 0, 0]]
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(tn.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(tn.tensor([-1]), 3)
    with pytest.raises(RuntimeError, match="integer index tensor"):
        F.one_hot(tn.tensor([1.0]), 3)


def test_masked_fill_matches_pytorch():
    x = tn.tensor([[1., 2, 3], [4, 5, 6]], requires_grad=True)
    y = x.masked_fill(tn.tensor([True, False, True]), -1.5)
    assert y.tolist() == [[-1.5, 2.0, -1.5], [-1.5, 5.0, -1.5]]
    (y * tn.tensor([[1., 2, 3], [4, 5, 6]])).sum().backward()
    assert x.grad.tolist() == [[0.0, 2.0, 0.0], [0.0, 5.0, 0.0]]
    i = tn.tensor([1, 2, 3]).masked_fill(tn.tensor([True, False, False]), 2.7)
    assert i.dtype == np.int64 and i.tolist() == [2, 2, 3]                  # the value takes the dtype
    z = tn.zeros(3)
    z.masked_fill_(tn.tensor([False, True, False]), tn.tensor(4.0))
    assert z.tolist() == [0.0, 4.0, 0.0]
    with pytest.raises(RuntimeError, match="only supports boolean masks, but got mask with dtype int64"):
        x.masked_fill(tn.tensor([1, 0, 1]), 0.0)
    xd = tn.tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    assert gradcheck(lambda t: t.masked_fill(tn.tensor([[True], [False]]), 0.5), [xd])


# torch.linalg.vector_norm(X, p, dim, keepdim) and X's gradient of Σ_k (k + 1)·norm_k (torch 2.13, float64)
NORM_X = [[3.0, -4.0, 0.0], [1.0, 2.0, -2.0]]
NORM_REFS = [
    (2, None, False, 5.830951894845, [[0.514495755428, -0.68599434057, 0.0], [0.171498585143, 0.342997170285, -0.342997170285]]),
    (2, 1, False, [5.0, 3.0], [[0.6, -0.8, 0.0], [0.666666666667, 1.333333333333, -1.333333333333]]),
    (1, 0, True, [[4.0, 6.0, 2.0]], [[1.0, -2.0, 0.0], [1.0, 2.0, -3.0]]),
    (math.inf, 1, False, [4.0, 2.0], [[0.0, -1.0, 0.0], [0.0, 1.0, -1.0]]),
    (-math.inf, None, False, 0.0, [[0.0, -0.0, 0.0], [0.0, 0.0, -0.0]]),
    (3, 1, False, [4.497941445275, 2.571281590658], [[0.444851351731, -0.790846847521, 0.0], [0.302503716548, 1.210014866192, -1.210014866192]]),
    (0, 1, False, [2.0, 3.0], None),
    (0.5, None, False, 57.160826565023, [[4.365043969424, -3.780238966158, 0.0], [7.560477932315, 5.346065214951, -5.346065214951]]),
]


@pytest.mark.parametrize("p,dim,keepdim,expected,grad", NORM_REFS)
def test_vector_norm_and_its_gradient_match_pytorch(p, dim, keepdim, expected, grad):
    x = tn.tensor(NORM_X, dtype=tn.float64, requires_grad=True)
    n = tn.linalg.vector_norm(x, p, dim=dim, keepdim=keepdim)
    np.testing.assert_allclose(n.detach().numpy(), expected, rtol=1e-11)
    (n * (tn.arange(n.numel(), dtype=tn.float64).reshape(n.shape) + 1)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.zeros((2, 3)) if grad is None else grad, rtol=1e-11, atol=1e-12)


def test_tensor_norm_forms_and_gradcheck():
    w = tn.tensor([[3.0, 4.0]], requires_grad=True)
    assert w.norm().item() == 5.0 and tn.norm(w, 1).item() == 7.0 and w.norm(dim=1).shape == (1,)
    z = tn.zeros(3, dtype=tn.float64, requires_grad=True)
    z.norm().backward()
    assert z.grad.tolist() == [0.0, 0.0, 0.0]                              # PyTorch's 0 at ‖x‖ = 0
    x = tn.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    for p in (2, 1, 3, math.inf):
        assert gradcheck(lambda t: t.norm(p, dim=1), [x])
    with pytest.raises(RuntimeError, match="p='nuc' is not supported"):
        w.norm("nuc")
    assert tn.isnan(tn.tensor([1.0, float("nan")])).tolist() == [False, True]
    assert tn.tensor([1.0, float("inf")]).isfinite().tolist() == [True, False]
    assert w.new_zeros(2, 3).shape == (2, 3) and w.new_ones(2).dtype == np.float32
    assert w.new_tensor([1, 2]).dtype == np.float32 and w.new_full((2,), 7.0).tolist() == [7.0, 7.0]
    assert tn.clip(tn.tensor([-2.0, 2.0]), -1, 1).tolist() == [-1.0, 1.0]
