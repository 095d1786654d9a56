"""Layers: Linear, Conv1d/Conv2d, pooling, Flatten, Dropout, activations, losses.

Convolution and pooling are checked against independent plain-numpy loop
implementations (below: one output position at a time, no im2col) for values
and gradients, and with float64 gradcheck for every option combination.
"""
import math

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn
from tinygrad_norm.autograd import gradcheck
from tinygrad_norm.nn import functional as F

RNG = np.random.default_rng(0)


def T(a, grad=True):
    return tn.Tensor(np.asarray(a, np.float64), requires_grad=grad)


def check_grad(fn, *inputs):
    """gradcheck of ⟨R, fn(inputs)⟩ for a fixed random R: one projection of the
    output, every input entry checked (a few forward passes per entry)."""
    out_shape = fn(*inputs).shape
    r = tn.Tensor(np.random.default_rng(7).standard_normal(out_shape))
    return gradcheck(lambda *xs: (fn(*xs) * r).sum(), inputs)


# ------------------------------------------------- reference loop implementations

def ref_conv2d(x, w, b, stride, pads, dilation, groups):
    """Direct convolution, one output position at a time.
    pads = (top, bottom, left, right). Returns y and a function g -> (dx, dw, db)."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw_ = dilation
    xp = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
    Ho = (H + pads[0] + pads[1] - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + pads[2] + pads[3] - dw_ * (kw - 1) - 1) // sw + 1
    Og = O // groups

    def patch(arr, g, oh, ow):
        return arr[:, g * Cg:(g + 1) * Cg, oh * sh: oh * sh + dh * (kh - 1) + 1: dh,
                   ow * sw: ow * sw + dw_ * (kw - 1) + 1: dw_]

    y = np.zeros((N, O, Ho, Wo))
    for g in range(groups):
        wg = w[g * Og:(g + 1) * Og]
        for oh in range(Ho):
            for ow in range(Wo):
                y[:, g * Og:(g + 1) * Og, oh, ow] = np.einsum("nckl,ockl->no", patch(xp, g, oh, ow), wg)
    if b is not None:
        y += b[None, :, None, None]

    def backward(gy):
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for g in range(groups):
            wg = w[g * Og:(g + 1) * Og]
            for oh in range(Ho):
                for ow in range(Wo):
                    go = gy[:, g * Og:(g + 1) * Og, oh, ow]
                    patch(dxp, g, oh, ow)[...] += np.einsum("no,ockl->nckl", go, wg)
                    dw[g * Og:(g + 1) * Og] += np.einsum("no,nckl->ockl", go, patch(xp, g, oh, ow))
        dx = dxp[:, :, pads[0]:pads[0] + H, pads[2]:pads[2] + W]
        return dx, dw, gy.sum(axis=(0, 2, 3))
    return y, backward


def ref_pool_windows(H, W, k, s, p, d, ceil_mode):
    """(oh, ow, [(h, w) inside the input], n_inside_padded_bounds) per output cell,
    following PyTorch's definition of the output size."""
    def out_size(n, k_, s_, p_, d_):
        o = (n + 2 * p_ - d_ * (k_ - 1) - 1 + (s_ - 1 if ceil_mode else 0)) // s_ + 1
        if ceil_mode and (o - 1) * s_ >= n + p_:
            o -= 1
        return o
    Ho, Wo = out_size(H, k[0], s[0], p[0], d[0]), out_size(W, k[1], s[1], p[1], d[1])
    cells = []
    for oh in range(Ho):
        for ow in range(Wo):
            hs = [oh * s[0] - p[0] + i * d[0] for i in range(k[0])]
            ws = [ow * s[1] - p[1] + j * d[1] for j in range(k[1])]
            inside = [(h, w) for h in hs for w in ws if 0 <= h < H and 0 <= w < W]
            padded = sum(1 for h in hs for w in ws if -p[0] <= h < H + p[0] and -p[1] <= w < W + p[1])
            cells.append((oh, ow, inside, padded))
    return Ho, Wo, cells


def ref_max_pool2d(x, k, s, p, d, ceil_mode):
    N, C, H, W = x.shape
    Ho, Wo, cells = ref_pool_windows(H, W, k, s, p, d, ceil_mode)
    y, arg = np.zeros((N, C, Ho, Wo)), {}
    for n in range(N):
        for c in range(C):
            for oh, ow, inside, _ in cells:
                best = max(inside, key=lambda hw: x[n, c, hw[0], hw[1]])  # first maximum wins
                y[n, c, oh, ow] = x[n, c, best[0], best[1]]
                arg[n, c, oh, ow] = best

    def backward(gy):
        dx = np.zeros_like(x)
        for (n, c, oh, ow), (h, w) in arg.items():
            dx[n, c, h, w] += gy[n, c, oh, ow]
        return dx
    return y, backward


def ref_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    N, C, H, W = x.shape
    Ho, Wo, cells = ref_pool_windows(H, W, k, s, p, (1, 1), ceil_mode)
    y = np.zeros((N, C, Ho, Wo))
    divisors = {}
    for oh, ow, inside, padded in cells:
        div = divisor_override or (padded if count_include_pad else len(inside))
        divisors[oh, ow] = div
        for h, w in inside:
            y[:, :, oh, ow] += x[:, :, h, w] / div

    def backward(gy):
        dx = np.zeros_like(x)
        for oh, ow, inside, _ in cells:
            for h, w in inside:
                dx[:, :, h, w] += gy[:, :, oh, ow] / divisors[oh, ow]
        return dx
    return y, backward


# ============================================================================ Linear

def test_linear_forward_backward_match_numpy():
    fc = nn.Linear(4, 3).double()
    x = T(RNG.standard_normal((5, 4)))
    y = fc(x)
    W, b = fc.weight.detach().numpy(), fc.bias.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() @ W.T + b, rtol=1e-12)
    g = RNG.standard_normal((5, 3))
    y.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), g @ W, rtol=1e-12)
    np.testing.assert_allclose(fc.weight.grad.numpy(), g.T @ x.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(fc.bias.grad.numpy(), g.sum(0), rtol=1e-12)


def test_linear_gradcheck_any_leading_dims_and_no_bias():
    for shape, bias in [((2, 3, 4), True), ((4,), True), ((3, 4), False)]:
        x, w = T(RNG.standard_normal(shape)), T(RNG.standard_normal((2, 4)))
        b = T(RNG.standard_normal(2)) if bias else None
        inputs = (x, w) + ((b,) if bias else ())
        assert check_grad(lambda x, w, *b: F.linear(x, w, *b), *inputs)
    fc = nn.Linear(4, 2, bias=False)
    assert fc.bias is None and list(fc.state_dict()) == ["weight"]
    assert fc(tn.randn(3, 4)).shape == (3, 2)


def test_linear_attributes_repr_dtype_and_errors():
    fc = nn.Linear(3, 2, dtype=tn.float64)
    assert fc.weight.shape == (2, 3) and fc.bias.shape == (2,) and fc.weight.dtype == np.float64
    assert (fc.in_features, fc.out_features) == (3, 2)
    assert repr(fc) == "Linear(in_features=3, out_features=2, bias=True)"
    with pytest.raises(RuntimeError, match=r"input of shape \(4, 5\).*weight of shape \(2, 3\)"):
        fc(tn.randn(4, 5, dtype=tn.float64))
    with pytest.raises(RuntimeError, match="same dtype.*input float32, weight float64"):
        fc(tn.randn(4, 3))


@pytest.mark.parametrize("make, fan_in", [(lambda: nn.Linear(300, 200), 300),
                                          (lambda: nn.Conv2d(8, 64, 5), 8 * 25),
                                          (lambda: nn.Conv2d(8, 64, (3, 5), groups=4), 2 * 15),
                                          (lambda: nn.Conv1d(10, 400, 3), 30)])
def test_default_init_is_pytorchs_uniform_bound(make, fan_in):
    tn.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        v = p.detach().numpy()
        assert np.abs(v).max() <= bound
        assert np.abs(v).max() > 0.9 * bound  # fills the interval
    w = layer.weight.detach().numpy()
    assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert abs(w.mean()) < 0.03 * bound


def test_default_init_is_reproducible_with_manual_seed():
    tn.manual_seed(3)
    a = nn.Linear(5, 4)
    tn.manual_seed(3)
    b = nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    np.testing.assert_array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())


# ====================================================================== convolution

CONV2D_CASES = [
    dict(),
    dict(stride=2),
    dict(stride=(2, 1), padding=1),
    dict(padding=(2, 0), dilation=2),
    dict(dilation=(1, 2), groups=2),
    dict(stride=2, padding=1, dilation=2, groups=2),
    dict(padding="same"),
    dict(padding="same", dilation=(2, 1), groups=2),  # even kernel: asymmetric padding
    dict(padding="valid", stride=(1, 2)),
    dict(bias=False, padding=1, groups=2),
]


def _conv_pads(case, kernel, dilation):
    padding = case.get("padding", 0)
    if padding == "same":
        tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return (tot[0] // 2, tot[0] - tot[0] // 2, tot[1] // 2, tot[1] - tot[1] // 2)
    if padding == "valid":
        return (0, 0, 0, 0)
    p = (padding, padding) if isinstance(padding, int) else padding
    return (p[0], p[0], p[1], p[1])


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _case_id(case):
    return ",".join(f"{k}={v}" for k, v in case.items()) or "default"


@pytest.mark.parametrize("case", CONV2D_CASES, ids=_case_id)
def test_conv2d_matches_loop_reference_and_gradcheck(case):
    case = dict(case)
    bias = case.pop("bias", True)
    groups = case.get("groups", 1)
    x = T(RNG.standard_normal((2, 4, 6, 7)))
    w = T(RNG.standard_normal((4, 4 // groups, 3, 2)))
    b = T(RNG.standard_normal(4)) if bias else None
    y = F.conv2d(x, w, b, **case)
    stride, dilation = _pair(case.get("stride", 1)), _pair(case.get("dilation", 1))
    pads = _conv_pads(case, (3, 2), dilation)
    y_ref, backward = ref_conv2d(x.detach().numpy(), w.detach().numpy(), None if b is None else b.detach().numpy(), stride, pads,
                                 dilation, groups)
    np.testing.assert_allclose(y.detach().numpy(), y_ref, rtol=1e-12, atol=1e-12)
    if case.get("padding") == "same":
        assert y.shape[2:] == x.shape[2:]
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    dx, dw, db = backward(gy)
    np.testing.assert_allclose(x.grad.numpy(), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), dw, rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(b.grad.numpy(), db, rtol=1e-12, atol=1e-12)
    # gradcheck on a smaller input (every entry is perturbed)
    xs = T(RNG.standard_normal((1, 4, 5, 5)))
    inputs = (xs, w) + ((b,) if bias else ())
    assert check_grad(lambda x, w, *b: F.conv2d(x, w, *b, **case), *inputs)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_conv2d_processes_the_batch_in_chunks_and_parts_correctly(monkeypatch, threads):
    # one sample per im2col chunk, the batch split over `threads` parts (kernels/threads.py):
    # forward and every gradient must be unchanged, for stride 1 and for the col2im path
    from tinygrad_norm.kernels import threads as TH
    monkeypatch.setattr(F, "CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(TH, "THREADS", threads)
    monkeypatch.setattr(TH, "MIN_PART_WORK", 1)
    assert len(TH.split(3, 10**6)) == threads
    x, w, b = T(RNG.standard_normal((3, 4, 5, 6))), T(RNG.standard_normal((6, 2, 3, 3))), T(RNG.standard_normal(6))
    y = F.conv2d(x, w, b, stride=(1, 2), padding=1, groups=2)
    y_ref, backward = ref_conv2d(x.detach().numpy(), w.detach().numpy(), b.detach().numpy(), (1, 2), (1, 1, 1, 1), (1, 1), 2)
    np.testing.assert_allclose(y.detach().numpy(), y_ref, rtol=1e-12, atol=1e-12)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    for got, want in zip((x.grad, w.grad, b.grad), backward(gy)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    x2 = T(x.detach().numpy())
    F.conv2d(x2, w.detach(), stride=2, groups=2).sum().backward()  # input gradient only
    assert x2.grad.shape == x2.shape
    y1 = F.conv2d(x, w, b, padding=1, groups=2)  # stride 1: dx through im2col of g
    y1_ref, backward1 = ref_conv2d(x.detach().numpy(), w.detach().numpy(), b.detach().numpy(), (1, 1), (1, 1, 1, 1), (1, 1), 2)
    np.testing.assert_allclose(y1.detach().numpy(), y1_ref, rtol=1e-12, atol=1e-12)
    x.grad = w.grad = b.grad = None
    gy = RNG.standard_normal(y1.shape)
    y1.backward(gy)
    for got, want in zip((x.grad, w.grad, b.grad), backward1(gy)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


CONV1D_CASES = [dict(), dict(stride=2, padding=1), dict(dilation=2, groups=2), dict(padding="same"),
                dict(padding="same", dilation=3, bias=False), dict(stride=3, padding=2, groups=2)]


@pytest.mark.parametrize("case", CONV1D_CASES, ids=_case_id)
def test_conv1d_equals_conv2d_reference_and_gradcheck(case):
    case = dict(case)
    bias = case.pop("bias", True)
    groups = case.get("groups", 1)
    x = T(RNG.standard_normal((2, 4, 9)))
    w = T(RNG.standard_normal((6, 4 // groups, 4)))
    b = T(RNG.standard_normal(6)) if bias else None
    y = F.conv1d(x, w, b, **case)
    stride, dilation = (1, case.get("stride", 1)), (1, case.get("dilation", 1))
    pads = (0, 0) + _conv_pads(case, (1, 4), dilation)[2:]
    y_ref, backward = ref_conv2d(x.detach().numpy()[:, :, None], w.detach().numpy()[:, :, None],
                                 None if b is None else b.detach().numpy(), stride, pads, dilation, groups)
    np.testing.assert_allclose(y.detach().numpy(), y_ref[:, :, 0], rtol=1e-12, atol=1e-12)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    dx, dw, _ = backward(gy[:, :, None])
    np.testing.assert_allclose(x.grad.numpy(), dx[:, :, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), dw[:, :, 0], rtol=1e-12, atol=1e-12)
    inputs = (T(RNG.standard_normal((1, 4, 9))), w) + ((b,) if bias else ())
    assert check_grad(lambda x, w, *b: F.conv1d(x, w, *b, **case), *inputs)


def test_conv2d_float32_matches_float64():
    x = RNG.standard_normal((3, 3, 9, 9))
    w = RNG.standard_normal((5, 3, 3, 3))
    y32 = F.conv2d(tn.Tensor(x.astype(np.float32)), tn.Tensor(w.astype(np.float32)), padding=1)
    y64 = F.conv2d(tn.Tensor(x), tn.Tensor(w), padding=1)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.numpy(), y64.numpy(), rtol=1e-4, atol=1e-4)


def test_conv_modules_attributes_state_dict_and_unbatched_input():
    conv = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2)
    assert conv.weight.shape == (6, 2, 3, 2) and conv.bias.shape == (6,)
    assert conv.kernel_size == (3, 2) and conv.stride == (2, 2) and conv.padding == (1, 1)
    assert conv.dilation == (1, 1) and conv.groups == 2 and conv.padding_mode == "zeros"
    assert list(conv.state_dict()) == ["weight", "bias"]
    assert repr(conv) == "Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), groups=2)"
    x = tn.randn(4, 7, 7)
    np.testing.assert_allclose(conv(x).detach().numpy(), conv(x.unsqueeze(0)).detach().numpy()[0], rtol=1e-6)
    c1 = nn.Conv1d(2, 4, 3, padding="same", bias=False)
    assert c1.kernel_size == (3,) and c1.weight.shape == (4, 2, 3) and c1.bias is None
    assert repr(c1) == "Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same, bias=False)"
    assert c1(tn.randn(5, 2, 10)).shape == (5, 4, 10)


def test_conv_errors_name_the_problem():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(RuntimeError, match=r"Given groups=1, weight of size \[8, 3, 3, 3\], expected "
                                           r"input\[2, 4, 5, 5\] to have 3 channels, but got 4 channels"):
        conv(tn.randn(2, 4, 5, 5))
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, "
                                           r"but got input of size: \[2, 3\]"):
        conv(tn.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"padded input size per channel: \(2 x 2\). Kernel size: "
                                           r"\(3 x 3\)"):
        conv(tn.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        nn.Conv2d(3, 8, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        F.conv2d(tn.randn(1, 3, 5, 5), tn.randn(8, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="Invalid padding string 'full'"):
        nn.Conv2d(3, 8, 3, padding="full")
    with pytest.raises(NotImplementedError, match="padding_mode='reflect' is not implemented"):
        nn.Conv2d(3, 8, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(RuntimeError, match="same dtype"):
        conv(tn.randn(1, 3, 5, 5, dtype=tn.float64))


# ========================================================================== pooling

MAX_CASES = [  # (kernel, stride, padding, dilation, ceil_mode): overlapping windows included
    (2, None, 0, 1, False),
    (3, 1, 1, 1, False),
    (3, 2, 1, 1, True),
    ((3, 2), (2, 1), (1, 0), (1, 2), False),
    (2, 2, 1, 2, True),
    (3, 2, 0, 1, True),
]


@pytest.mark.parametrize("k, s, p, d, ceil", MAX_CASES)
def test_max_pool2d_matches_loop_reference_and_gradcheck(k, s, p, d, ceil):
    x = T(RNG.standard_normal((2, 3, 7, 8)))
    y, idx = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)
    ref, backward = ref_max_pool2d(x.detach().numpy(), _pair(k), _pair(s if s is not None else k), _pair(p),
                                   _pair(d), ceil)
    np.testing.assert_array_equal(y.detach().numpy(), ref)
    # indices are flat h·W + w positions in each input plane
    flat = x.detach().numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), 2).reshape(y.shape),
                                  y.detach().numpy())
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    np.testing.assert_allclose(x.grad.numpy(), backward(gy), rtol=1e-13, atol=1e-13)
    xs = T(RNG.permutation(60).reshape(1, 3, 4, 5) * 0.1)  # distinct values: differentiable
    assert check_grad(lambda x: F.max_pool2d(x, k, s, p, d, ceil_mode=ceil), xs)


def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum():
    x = T(np.array([[[[1.0, 3.0, 3.0],
                      [3.0, 0.0, 3.0],
                      [2.0, 3.0, 1.0]]]]))
    y = F.max_pool2d(x, 2, stride=1)  # overlapping windows, each with tied maxima
    assert y.tolist() == [[[[3.0, 3.0], [3.0, 3.0]]]]
    y.sum().backward()
    # windows pick (0,1), (0,1), (1,0), (1,2): the first maximum in row-major order
    assert x.grad.tolist() == [[[[0.0, 2.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]]


def test_max_pool2d_module_and_errors():
    pool = nn.MaxPool2d(2)
    assert pool.stride == 2
    assert repr(pool) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    x = tn.randn(3, 6, 6)  # unbatched
    assert pool(x).shape == (3, 3, 3)
    out, idx = nn.MaxPool2d(2, return_indices=True)(tn.randn(1, 1, 4, 4))
    assert idx.dtype == np.int64 and idx.shape == (1, 1, 2, 2)
    with pytest.raises(RuntimeError, match="pad should be at most half of effective kernel size"):
        F.max_pool2d(tn.randn(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.max_pool2d(tn.randn(1, 1, 2, 2), 3)
    with pytest.raises(RuntimeError, match=r"Expected 3D or 4D \(batch mode\) tensor"):
        F.max_pool2d(tn.randn(4, 4), 2)


AVG_CASES = [  # (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    (2, None, 0, False, True, None),
    (3, 1, 1, False, True, None),
    (3, 1, 1, False, False, None),
    (3, 2, 1, True, True, None),
    (3, 2, 1, True, False, None),
    ((3, 2), (2, 3), (1, 1), True, True, None),
    (3, 2, 1, False, True, 4),
]


@pytest.mark.parametrize("k, s, p, ceil, cip, div", AVG_CASES)
def test_avg_pool2d_matches_loop_reference_and_gradcheck(k, s, p, ceil, cip, div):
    x = T(RNG.standard_normal((2, 3, 7, 8)))
    y = F.avg_pool2d(x, k, s, p, ceil, cip, div)
    ref, backward = ref_avg_pool2d(x.detach().numpy(), _pair(k), _pair(s if s is not None else k), _pair(p), ceil,
                                   cip, div)
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-12, atol=1e-14)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    np.testing.assert_allclose(x.grad.numpy(), backward(gy), rtol=1e-12, atol=1e-14)
    xs = T(RNG.standard_normal((1, 2, 5, 5)))
    assert check_grad(lambda x: F.avg_pool2d(x, k, s, p, ceil, cip, div), xs)


def test_avg_pool2d_module():
    pool = nn.AvgPool2d(2)
    assert repr(pool) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    x = tn.arange(16.0).reshape(1, 1, 4, 4)
    assert pool(x).tolist() == [[[[2.5, 4.5], [10.5, 12.5]]]]


@pytest.mark.parametrize("out_size", [(1, 1), (2, 3), (3, 5), (5, None), 4])
def test_adaptive_avg_pool2d_matches_reference_and_gradcheck(out_size):
    x = T(RNG.standard_normal((2, 3, 7, 5)))
    y = F.adaptive_avg_pool2d(x, out_size)
    Ho, Wo = (out_size, out_size) if isinstance(out_size, int) else (out_size[0], out_size[1] or 5)
    assert y.shape == (2, 3, Ho, Wo)
    ref = np.zeros(y.shape)
    dx = np.zeros(x.shape)
    gy = RNG.standard_normal(y.shape)
    for i in range(Ho):
        h0, h1 = math.floor(i * 7 / Ho), math.ceil((i + 1) * 7 / Ho)
        for j in range(Wo):
            w0, w1 = math.floor(j * 5 / Wo), math.ceil((j + 1) * 5 / Wo)
            ref[:, :, i, j] = x.detach().numpy()[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
            dx[:, :, h0:h1, w0:w1] += gy[:, :, i, j, None, None] / ((h1 - h0) * (w1 - w0))
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-12)
    y.backward(gy)
    np.testing.assert_allclose(x.grad.numpy(), dx, rtol=1e-12)
    assert check_grad(lambda x: F.adaptive_avg_pool2d(x, out_size), T(RNG.standard_normal((1, 1, 7, 5))))
    assert repr(nn.AdaptiveAvgPool2d((2, None))) == "AdaptiveAvgPool2d(output_size=(2, None))"


def test_adaptive_avg_pool_to_one_is_the_spatial_mean():
    x = tn.randn(2, 4, 5, 6)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x).numpy(),
                               x.numpy().mean(axis=(2, 3), keepdims=True), rtol=1e-5)


# ====================================================================== Flatten etc.

def test_flatten_and_unflatten():
    x = T(RNG.standard_normal((2, 3, 4, 5)))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    y = nn.Unflatten(1, (2, 30))(nn.Flatten()(x))
    np.testing.assert_array_equal(y.detach().numpy(), x.detach().numpy().reshape(2, 2, 30))
    assert check_grad(lambda x: nn.Flatten()(x), x)


# ========================================================================== Dropout

def test_dropout_scales_kept_values_and_is_reproducible():
    x = tn.ones(200, 100)
    drop = nn.Dropout(0.3)
    tn.manual_seed(5)
    y1 = drop(x).numpy()
    tn.manual_seed(5)
    y2 = drop(x).numpy()
    np.testing.assert_array_equal(y1, y2)
    kept = y1 != 0
    np.testing.assert_allclose(y1[kept], 1 / 0.7, rtol=1e-6)
    assert abs(1 - kept.mean() - 0.3) < 0.01  # 20000 draws: sd ≈ 0.003
    assert abs(y1.mean() - 1) < 0.03  # inverted dropout keeps the mean


def test_dropout_gradient_is_the_same_mask():
    x = tn.randn(50, 20, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.backward(np.ones(y.shape, np.float32))
    mask = (y.detach().numpy() != 0) | (x.detach().numpy() == 0)
    np.testing.assert_allclose(x.grad.numpy(), mask * 2.0)
    xd = T(RNG.standard_normal((4, 5)))
    tn.manual_seed(1)
    assert check_grad(lambda x: (tn.manual_seed(1), F.dropout(x, 0.4))[1], xd)


def test_dropout_eval_p0_p1_and_errors():
    x = tn.randn(10, 10)
    drop = nn.Dropout(0.5).eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).numpy().any()
    assert not np.isnan(nn.Dropout(1.0)(x).numpy()).any()
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="between 0 and 1, but got -0.1"):
        F.dropout(x, -0.1)


# ====================================================================== activations

def _erf(v):
    return np.vectorize(math.erf)(v)


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0), "ReLU()"),
    (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x), "LeakyReLU(negative_slope=0.01)"),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x), "LeakyReLU(negative_slope=0.2)"),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x)), "Sigmoid()"),
    (nn.Tanh(), np.tanh, "Tanh()"),
    (nn.GELU(), lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), "GELU(approximate='none')"),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
     "GELU(approximate='tanh')"),
    (nn.Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True), "Softmax(dim=1)"),
    (nn.LogSoftmax(dim=0), lambda x: x - np.log(np.exp(x).sum(0, keepdims=True)), "LogSoftmax(dim=0)"),
]


@pytest.mark.parametrize("module, ref, text", ACTIVATIONS, ids=[a[2] for a in ACTIVATIONS])
def test_activation_modules_values_gradcheck_repr(module, ref, text):
    x = T(RNG.standard_normal((4, 5)) * 2)
    np.testing.assert_allclose(module(x).detach().numpy(), ref(x.detach().numpy()), rtol=1e-12, atol=1e-14)
    assert check_grad(module, x)
    assert repr(module) == text


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")


# =========================================================================== losses

def test_loss_modules_match_functional_and_gradcheck():
    x = T(RNG.standard_normal((6, 4)))
    t = np.array([0, 3, 1, -100, 2, 3])
    w = tn.Tensor(RNG.uniform(0.5, 2, 4))
    ce = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    assert list(ce.state_dict()) == ["weight"] and ce.ignore_index == -100 and ce.reduction == "mean"
    assert repr(ce) == "CrossEntropyLoss()"
    np.testing.assert_allclose(ce(x, t).detach().numpy(),
                               F.cross_entropy(x, t, weight=w, label_smoothing=0.1).detach().numpy())
    assert check_grad(lambda x: ce(x, t), x)
    logp = F.log_softmax(x, 1)
    nll = nn.NLLLoss(reduction="sum", ignore_index=2)
    tt = np.where(t < 0, 2, t)
    expected = -sum(logp.detach().numpy()[i, c] for i, c in enumerate(tt) if c != 2)
    np.testing.assert_allclose(nll(logp, tt).detach().numpy(), expected, rtol=1e-12)
    assert check_grad(lambda x: nn.NLLLoss(weight=w)(x, tt), x)
    target = T(RNG.standard_normal((6, 4)))
    mse = nn.MSELoss(reduction="none")
    np.testing.assert_allclose(mse(x, target).detach().numpy(), (x.detach().numpy() - target.detach().numpy()) ** 2, rtol=1e-12)
    assert check_grad(lambda a, b: nn.MSELoss()(a, b), x, target)
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction|avg is not a valid"):
        nn.MSELoss(reduction="avg")


def test_small_cnn_trains_one_step_and_every_parameter_gets_a_gradient():
    tn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, padding="same", groups=2), nn.GELU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Dropout(0.1), nn.Linear(16, 3))
    x, y = tn.randn(8, 1, 8, 8), tn.tensor(np.arange(8) % 3)
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(model(x), y)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.abs(p.grad.numpy()).sum() > 0, name
    model.eval()  # no dropout: compare the same function before and after the step
    with tn.no_grad():
        before = loss_fn(model(x), y).item()
        for p in model.parameters():
            p -= 0.05 * p.grad
        after = loss_fn(model(x), y).item()
    assert abs(before - math.log(3)) < 0.5 and after < before
