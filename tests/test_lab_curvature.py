"""The curvature tools (tn.lab.curvature) against exact answers.

- a quadratic ½θᵀAθ + bᵀθ: H = A exactly, so HVP, top eigenvalue and trace are known;
- a tiny BatchNorm net: its full Hessian built column by column from HVPs is symmetric,
  matches second differences of the loss itself, and gives the top eigenvalue and trace
  that Lanczos and Hutchinson estimate;
- Euler's theorem: for a weight w feeding BatchNorm (L(cw) = L(w)), H·(w, 0, …) = (−∇_w L, 0, …);
- PyTorch's exact HVP (double backward, float64) on the same weights, pasted as constants;
- effective_lr against a hand computation, and every tool leaves the model bitwise unchanged.
"""
import math

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import lab, nn
from tinygrad_norm.nn import functional as F
from tinygrad_norm.lab.curvature import scale_invariant_weights


def snapshot(model, optimizer=None):
    """Everything a tool must leave untouched, as bytes."""
    out = {
        "params": [(n, p._data.tobytes(), p._data.dtype, id(p._data)) for n, p in model.named_parameters()],
        "grads": [(n, None if p.grad is None else p.grad._data.tobytes()) for n, p in model.named_parameters()],
        "buffers": [(n, b._data.tobytes(), b._data.dtype) for n, b in model.named_buffers()],
        "training": [m.training for m in model.modules()],
        "rng": tn.get_rng_state().numpy().tobytes(),
    }
    if optimizer is not None:
        out["state"] = sorted((id(p), k, v._data.tobytes() if hasattr(v, "_data") else repr(v))
                              for p, s in optimizer.state.items() for k, v in s.items())
    return out


# ---------------------------------------------------------------- a quadratic: H = A

class Quadratic(nn.Module):
    """forward(x) returns the parameter θ itself (x is ignored); the loss makes the quadratic."""

    def __init__(self, theta):
        super().__init__()
        self.theta = nn.Parameter(tn.tensor(theta))

    def forward(self, x):
        return self.theta


def quadratic(n=6, seed=0, diagonal=False):
    rng = np.random.default_rng(seed)
    if diagonal:
        A = np.diag(rng.uniform(-1, 3, n))
    else:
        M = rng.standard_normal((n, n))
        A = (M + M.T) / 2
    b = rng.standard_normal(n)
    At, bt = tn.tensor(A), tn.tensor(b)

    def loss_fn(theta):
        t = theta.reshape(1, n)
        return ((t @ At @ t.reshape(n, 1)).sum() * 0.5 + (t.reshape(n) * bt).sum())
    return Quadratic(rng.standard_normal(n)), loss_fn, A


def test_hvp_of_a_quadratic_is_A_v():
    model, loss_fn, A = quadratic()
    v = np.random.default_rng(1).standard_normal(6)
    hv = lab.hessian_vector_product(model, loss_fn, tn.zeros(1), v)
    assert len(hv) == 1 and hv[0].dtype == np.float64
    np.testing.assert_allclose(hv[0], A @ v, rtol=0, atol=1e-9 * np.abs(A @ v).max())


def test_top_eigenvalue_of_a_quadratic():
    model, loss_fn, A = quadratic(n=10, seed=2)
    w, V = np.linalg.eigh(A)
    i = int(np.argmax(np.abs(w)))
    top = lab.top_eigenvalue(model, loss_fn, tn.zeros(1), tol=1e-10)
    assert top["converged"] and top["iterations"] <= 10
    assert abs(top["eigenvalue"] - w[i]) <= 1e-8 * abs(w[i])
    assert abs(abs(top["vector"][0] @ V[:, i]) - 1) < 1e-8
    assert len(top["history"]) == len(top["residuals"]) == top["iterations"]


def test_trace_of_a_quadratic():
    # Rademacher z: zᵀAz = tr A exactly for a diagonal A; within 4 stderr for a full one
    model, loss_fn, A = quadratic(diagonal=True)
    tr = lab.hessian_trace(model, loss_fn, tn.zeros(1), samples=5)
    assert abs(tr["trace"] - np.trace(A)) < 1e-9 and tr["stderr"] < 1e-9
    model, loss_fn, A = quadratic(n=8, seed=3)
    tr = lab.hessian_trace(model, loss_fn, tn.zeros(1), samples=400, seed=1)
    assert abs(tr["trace"] - np.trace(A)) < 4 * tr["stderr"] and len(tr["samples"]) == 400


# ---------------------------------------------------------------- a tiny BN net, and PyTorch

def tiny_bn_net():
    """3-4-BN-tanh-2, float64, with the weights, batch, running statistics and v of the
    PyTorch reference script (docs/lab.md, "The curvature tools"): numpy's default_rng(7)."""
    rng = np.random.default_rng(7)
    W1 = rng.standard_normal((4, 3)); b1 = rng.standard_normal(4) * 0.1
    g = 1 + 0.2 * rng.standard_normal(4); be = 0.1 * rng.standard_normal(4)
    W2 = rng.standard_normal((2, 4)) * 0.5; b2 = rng.standard_normal(2) * 0.1
    x = rng.standard_normal((6, 3)); y = np.array([0, 1, 0, 1, 1, 0])
    rm = 0.1 * rng.standard_normal(4); rv = 0.5 + rng.random(4)
    arrays = [W1, b1, g, be, W2, b2]
    v = [rng.standard_normal(a.shape) for a in arrays]
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2)).double()
    for p, a in zip(model.parameters(), arrays):
        p._data[...] = a
    model[1].running_mean._data[...] = rm
    model[1].running_var._data[...] = rv
    return model, (tn.tensor(x), tn.tensor(y)), v


# torch 2.13.0 (float64): torch.autograd.grad twice (exact HVP), and eigvalsh/trace of the full
# Hessian built from double backward; the script is in docs/lab.md ("The curvature tools")
TORCH_HVP = {
    "train": [0.15695517065344933, -0.06607918404715869, -0.0868701778821161, 0.06519909782428171,
              0.00024622453270214256, -0.06560847716377619, -0.07113273612294052, -0.007865706113535265,
              0.013094559538120908, -0.014851908514974449, 0.07668813627441357, -0.162106026530348,
              2.7755575615628914e-17, -6.938893903907228e-18, -3.469446951953614e-18, 6.765421556309548e-17,
              0.06339938611281357, 0.008180938963862981, 0.10255748233259254, -0.03136486349033818,
              0.019067674408591917, -0.1533349448577735, 0.08813328554201934, -0.029273812579616157,
              -0.18746471521498068, -0.2924257971889712, -0.19202700936614203, -0.5514549543225498,
              0.18746471521498062, 0.2924257971889712, 0.19202700936614203, 0.5514549543225498,
              -0.2972516800336087, 0.2972516800336087],
    "eval": [0.0929256533503152, -0.015125621976062306, -0.058097162212317435, 0.011890951414912546,
             -0.04036895547625674, -0.018199125583591255, -0.08995875435510012, -0.005691774363194214,
             0.011401691213662649, 0.020904091835700557, -0.03473911047764096, -0.020940664897463816,
             -0.0012698632298519738, -0.035313114067031706, -0.001034367914208325, -0.011545172696981777,
             0.014413955084646188, 0.03373109929970654, 0.053481867218987844, -0.04910735829835727,
             -0.0025736227021480734, -0.04977835020494019, -1.727502914342441e-05, -0.014890763606097729,
             -0.06154884051751537, -0.12337909977953265, -0.25621742220874666, 0.1515144910816324,
             0.06154884051751536, 0.12337909977953265, 0.25621742220874666, -0.1515144910816324,
             -0.3252798850833777, 0.3252798850833777],
}
TORCH_TOP = {"train": 0.6214512770149434, "eval": 0.6745249869090877}
TORCH_TRACE = {"train": 1.2964705636321543, "eval": 0.973695260761171}


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_hvp_matches_pytorch_double_backward(mode):
    model, batch, v = tiny_bn_net()
    hv = np.concatenate([h.ravel() for h in lab.hessian_vector_product(model, F.cross_entropy, batch, v, mode=mode)])
    ref = np.array(TORCH_HVP[mode])
    assert np.abs(hv - ref).max() <= 1e-8 * np.abs(ref).max()
    if mode == "train":          # BN cancels the first layer's bias: its rows of H are zero
        assert np.abs(hv[12:16]).max() < 1e-9


def full_hessian(model, batch, mode):
    n = sum(p.numel() for p in model.parameters())
    shapes = [p.shape for p in model.parameters()]
    columns = []
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1
        pieces, start = [], 0
        for s in shapes:
            size = int(np.prod(s))
            pieces.append(e[start:start + size].reshape(s))
            start += size
        columns.append(np.concatenate([h.ravel() for h in
                                       lab.hessian_vector_product(model, F.cross_entropy, batch, pieces, mode=mode)]))
    return np.array(columns).T


def loss_at(model, batch, theta, mode):
    """The loss at the flat parameters theta (a plain forward pass, no autograd)."""
    with lab.preserved(model, train=(mode == "train")):
        if mode == "eval":
            model.eval()
        start = 0
        for p in model.parameters():
            p._data = theta[start:start + p.numel()].reshape(p.shape).copy()
            start += p.numel()
        with tn.no_grad():
            return float(F.cross_entropy(model(batch[0]), batch[1]).item())


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_full_hessian_column_by_column(mode):
    model, batch, _ = tiny_bn_net()
    H = full_hessian(model, batch, mode)
    scale = np.abs(H).max()
    assert np.abs(H - H.T).max() <= 1e-8 * scale              # symmetric, as a Hessian is
    # second differences of the loss itself (no autograd): a few entries, h = 1e-4
    theta = np.concatenate([p._data.ravel() for p in model.parameters()])
    h = 1e-4
    for i, j in [(0, 0), (0, 5), (17, 20), (24, 33), (16, 30)]:
        ei, ej = np.eye(theta.size)[i] * h, np.eye(theta.size)[j] * h
        fd = (loss_at(model, batch, theta + ei + ej, mode) - loss_at(model, batch, theta + ei - ej, mode)
              - loss_at(model, batch, theta - ei + ej, mode) + loss_at(model, batch, theta - ei - ej, mode)) / (4 * h * h)
        assert abs(fd - H[i, j]) < 1e-6 * scale, (i, j, fd, H[i, j])
    w = np.linalg.eigvalsh((H + H.T) / 2)
    exact_top = w[np.argmax(np.abs(w))]
    assert abs(exact_top - TORCH_TOP[mode]) < 1e-8 and abs(np.trace(H) - TORCH_TRACE[mode]) < 1e-8
    top = lab.top_eigenvalue(model, F.cross_entropy, batch, mode=mode, tol=1e-9)
    assert top["converged"] and abs(top["eigenvalue"] - exact_top) < 1e-7 * abs(exact_top)
    tr = lab.hessian_trace(model, F.cross_entropy, batch, mode=mode, samples=300, seed=2)
    assert abs(tr["trace"] - np.trace(H)) < 4 * tr["stderr"]


def test_euler_identity_for_a_scale_invariant_weight():
    # L(c·W1) = L(W1) with BN after W1 (ε → 0): differentiating ∇L(cW1) = ∇L(W1)/c at c = 1
    # gives H·(W1, 0, …, 0) = (−∇_{W1} L, 0, …, 0)
    model, (x, y), _ = tiny_bn_net()
    model[1].eps = 1e-14
    params = list(model.parameters())
    v = [params[0]._data.copy()] + [np.zeros(p.shape) for p in params[1:]]
    hv = lab.hessian_vector_product(model, F.cross_entropy, (x, y), v)
    g = tn.autograd.grad(F.cross_entropy(model(x), y), params)
    scale = np.abs(g[0]._data).max()
    np.testing.assert_allclose(hv[0], -g[0]._data, rtol=0, atol=1e-7 * scale)
    assert max(np.abs(h).max() for h in hv[1:]) < 1e-7 * scale


# ---------------------------------------------------------------- effective_lr

def bn_mlp():
    tn.manual_seed(4)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8, bias=False),
                         nn.LayerNorm(8), nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 3))


def test_scale_invariant_weights_are_found():
    # BN removes the bias; LayerNorm only when the layer has none; the last layer feeds the loss
    assert [n for n, _ in scale_invariant_weights(bn_mlp())] == ["0.weight", "3.weight"]


def test_effective_lr_by_hand():
    model = bn_mlp()
    x, y = tn.randn(16, 5), tn.tensor(np.arange(16) % 3)
    opt = tn.optim.SGD(model.parameters(), lr=0.3, weight_decay=0.01)
    assert lab.effective_lr(opt, model)["0.weight"]["angular_update"] is None     # no gradient yet
    F.cross_entropy(model(x), y).backward()
    before = snapshot(model, opt)
    got = lab.effective_lr(opt, model)
    assert snapshot(model, opt) == before
    w = model[0].weight._data.astype(np.float64)
    new = w - 0.3 * (model[0].weight.grad._data + 0.01 * w)
    along = new.ravel() @ w.ravel() / np.linalg.norm(w)            # the parts of the new w along and across w
    angle = math.atan2(np.linalg.norm(new - along * w / np.linalg.norm(w)), along)
    row = got["0.weight"]
    assert row["lr"] == 0.3 and row["weight_decay"] == 0.01
    assert abs(row["norm"] - np.linalg.norm(w)) < 1e-5 and abs(row["effective_lr"] - 0.3 / (w ** 2).sum()) < 1e-6
    assert abs(row["angular_update"] - angle) < 1e-5 * angle
    opt.step()                                  # the simulated step is the real one
    w1 = model[0].weight._data.astype(np.float64)
    real = math.acos(w.ravel() @ w1.ravel() / (np.linalg.norm(w) * np.linalg.norm(w1)))
    assert abs(real - row["angular_update"]) < 1e-3 * real


def test_effective_lr_restores_adam_and_momentum_state():
    model = bn_mlp()
    x, y = tn.randn(16, 5), tn.tensor(np.arange(16) % 3)
    for opt in (tn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), tn.optim.Adam(model.parameters(), lr=1e-3)):
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            before = snapshot(model, opt)
            got = lab.effective_lr(opt, model, weights=["3.weight"])
            assert snapshot(model, opt) == before and list(got) == ["3.weight"]
            opt.step()
    with pytest.raises(ValueError, match="no parameter named 'nope'"):
        lab.effective_lr(opt, model, weights=["nope"])


# ---------------------------------------------------------------- no trace, and bad input

def test_curvature_tools_leave_no_trace():
    tn.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 3))
    x, y = tn.randn(16, 5), tn.tensor(np.arange(16) % 3)
    F.cross_entropy(model(x), y).backward()
    model.eval()
    before = snapshot(model)
    v = [np.ones(p.shape) for p in model.parameters()]
    hv = lab.hessian_vector_product(model, F.cross_entropy, (x, y), v)
    assert snapshot(model) == before
    lab.top_eigenvalue(model, F.cross_entropy, (x, y), iters=5)
    lab.hessian_trace(model, F.cross_entropy, (x, y), mode="eval", samples=3)
    assert snapshot(model) == before
    # the same dropout mask at θ ± hv: the product is symmetric, ⟨u, Hv⟩ = ⟨v, Hu⟩
    u = [np.random.default_rng(5).standard_normal(p.shape) for p in model.parameters()]
    hu = lab.hessian_vector_product(model, F.cross_entropy, (x, y), u)
    a = sum((ui * h).sum() for ui, h in zip(u, hv))
    b = sum((vi * h).sum() for vi, h in zip(v, hu))
    assert abs(a - b) < 1e-6 * max(abs(a), 1e-3)


def test_bad_input_is_named():
    model, batch, v = tiny_bn_net()
    with pytest.raises(ValueError, match="mode must be 'train' or 'eval'"):
        lab.top_eigenvalue(model, F.cross_entropy, batch, mode="test")
    with pytest.raises(ValueError, match="v has 2 arrays but the model has 6"):
        lab.hessian_vector_product(model, F.cross_entropy, batch, v[:2])
    with pytest.raises(ValueError, match=r"v\[4\] has shape \(4, 2\) but parameter 4 has shape \(2, 4\)"):
        lab.hessian_vector_product(model, F.cross_entropy, batch, v[:4] + [v[4].T] + v[5:])
    with pytest.raises(ValueError, match="samples must be ≥ 1"):
        lab.hessian_trace(model, F.cross_entropy, batch, samples=0)


def test_top_eigenvalue_warm_start_converges_at_once():
    model, loss_fn, A = quadratic(n=10, seed=2)
    cold = lab.top_eigenvalue(model, loss_fn, tn.zeros(1), tol=1e-8)
    warm = lab.top_eigenvalue(model, loss_fn, tn.zeros(1), tol=1e-8, init=cold["vector"])
    assert warm["converged"] and warm["iterations"] <= 2 and abs(warm["eigenvalue"] - cold["eigenvalue"]) < 1e-8
