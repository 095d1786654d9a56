"""The normalization core (nn/functional_norm.Normalize on kernels/norm.py):
fused numba forward/backward against the same math composed from primitive
Tensor ops, and against plain numpy; float64 gradchecks; numerical stability."""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.kernels import norm as KN
from tinygrad_norm.nn import functional_norm as FN

# (name, (N, M, K, S), G): every loop path of the kernels
LAYOUTS = [
    ("bn_features", (5, 600, 1, 1), 600),   # BatchNorm1d (N, C): short runs, several blocks
    ("bn_spatial", (3, 4, 1, 20), 4),       # BatchNorm2d: long runs, N > 1
    ("bn_short", (3, 4, 1, 5), 4),          # BatchNorm1d (N, C, L) with short L
    ("layer", (1, 7, 33, 1), 1),            # LayerNorm: rows
    ("group", (1, 6, 3, 20), 2),            # GroupNorm: long runs, K > 1
    ("group_short", (1, 6, 3, 4), 3),       # GroupNorm with tiny spatial size
    ("instance", (1, 40, 1, 17), 8),        # InstanceNorm: many blocks and chunks
]
# Larger layouts for the fused-vs-composed test only (too big for gradcheck)
BIG_LAYOUTS = [
    ("layer_many", (1, 600, 5, 1), 1),      # LayerNorm with 600 rows: dγ/dβ partials flushed many times
    ("bn_rows", (37, 6, 1, 3), 6),          # BatchNorm1d: rows four at a time, flushes, a remainder of 1
    ("columns_groups", (9, 6, 1, 1), 3),    # columns with G < M: affine parameters repeat every 3
]
OPTIONS = [
    ("default", {}),
    ("no_center", dict(center=False)),                 # RMSNorm
    ("no_scale", dict(scale=False)),                   # mean-only BatchNorm
    ("given_stats", dict(batch_stats=False)),          # eval mode
    ("renorm", dict(r_max=1.5, d_max=0.5)),            # Batch Renorm, clipping active
]


def _inputs(layout, G, dtype, rng, weight=True, bias=True):
    N, M, K, S = layout
    x = tn.Tensor(rng.standard_normal((N, M * K * S)) * 3 + 2, dtype=dtype, requires_grad=True)
    w = tn.Tensor(rng.uniform(0.5, 2, (G, K)), dtype=dtype, requires_grad=True) if weight else None
    b = tn.Tensor(rng.standard_normal((G, K)), dtype=dtype, requires_grad=True) if bias else None
    reference = (rng.standard_normal(M) + 2, rng.uniform(0.2, 0.5, M))
    return x, w, b, reference


def _grads(y, tensors, g):
    return tn.autograd.grad(y, tensors, tn.Tensor(g, dtype=y.dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opt_name,options", OPTIONS)
@pytest.mark.parametrize("name,layout,G", LAYOUTS + BIG_LAYOUTS)
def test_fused_matches_composed_forward_and_every_gradient(name, layout, G, opt_name, options, dtype):
    rng = np.random.default_rng(0)
    x, w, b, reference = _inputs(layout, G, dtype, rng)
    y_fused, _ = FN.normalize(x, w, b, layout, G, 1e-5, reference=reference, **options)
    y_comp = FN.normalize_composed(x, w, b, layout, G, 1e-5, reference=reference, **options)
    tol = dict(rtol=1e-11, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(y_fused.detach().numpy(), y_comp.detach().numpy(), **tol)
    assert y_fused.dtype == dtype
    g = rng.standard_normal(y_fused.shape)
    for a, c, what in zip(_grads(y_fused, [x, w, b], g), _grads(y_comp, [x, w, b], g), "xwb"):
        assert a.dtype == dtype
        scale = max(1.0, np.abs(c.numpy()).max())
        np.testing.assert_allclose(a.numpy() / scale, c.numpy() / scale, err_msg=f"d{what}", **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_element_per_statistic_in_eval_by_hand(dtype):
    """(1, M, 1, 1): BatchNorm1d on one sample in eval mode, an affine map per feature
    (this layout takes the short-run path, not the rows of LayerNorm)."""
    rng = np.random.default_rng(3)
    M = 700
    x, w, b, (mu, rstd) = _inputs((1, M, 1, 1), M, dtype, rng)
    y, _ = FN.normalize(x, w, b, (1, M, 1, 1), M, 1e-5, batch_stats=False, reference=(mu, rstd))
    g = rng.standard_normal(y.shape)
    dx, dw, db = _grads(y, [x, w, b], g)
    x64, w64, b64 = (t.detach().numpy().astype(np.float64).ravel() for t in (x, w, b))
    tol = dict(rtol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.detach().numpy().ravel(), w64 * (x64 - mu) * rstd + b64, **tol)
    np.testing.assert_allclose(dx.numpy().ravel(), w64 * rstd * g.ravel(), **tol)
    np.testing.assert_allclose(dw.numpy().ravel(), g.ravel() * (x64 - mu) * rstd, **tol)
    np.testing.assert_allclose(db.numpy().ravel(), g.ravel(), **tol)


@pytest.mark.parametrize("weight,bias", [(False, False), (True, False), (False, True)])
def test_optional_affine_and_input_without_grad(weight, bias):
    rng = np.random.default_rng(1)
    layout, G = (4, 3, 1, 6), 3
    x, w, b, _ = _inputs(layout, G, np.float64, rng, weight, bias)
    x.requires_grad = not (weight or bias)  # with parameters: x needs no gradient (need_dx off)
    y1, _ = FN.normalize(x, w, b, layout, G, 1e-5)
    y2 = FN.normalize_composed(x, w, b, layout, G, 1e-5)
    np.testing.assert_allclose(y1.detach().numpy(), y2.detach().numpy(), rtol=1e-12, atol=1e-12)
    wanted = [t for t in (x, w, b) if t is not None and t.requires_grad]
    g = rng.standard_normal(y1.shape)
    for a, c in zip(_grads(y1, wanted, g), _grads(y2, wanted, g)):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-11, atol=1e-11)


def test_statistics_against_numpy():
    """The statistics the core reports: mean, biased var, rstd = 1/√(var + ε),
    per m over axes (n, k, s) of the (N, M, K, S) view."""
    rng = np.random.default_rng(2)
    layout, G = (3, 4, 2, 5), 2
    x, w, b, _ = _inputs(layout, G, np.float64, rng)
    _, ctx = FN.normalize(x, w, b, layout, G, 1e-3)
    x4 = x.detach().numpy().reshape(layout)
    np.testing.assert_allclose(ctx.mean, x4.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(ctx.var, x4.var(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(ctx.rstd, 1 / np.sqrt(x4.var(axis=(0, 2, 3)) + 1e-3), rtol=1e-13)
    np.testing.assert_array_equal(ctx.r, 1.0)
    np.testing.assert_array_equal(ctx.d, 0.0)


def test_batch_renorm_correction_is_exactly_the_identity_at_rmax_1_dmax_0():
    rng = np.random.default_rng(3)
    layout, G = (4, 3, 1, 6), 3
    x, w, b, reference = _inputs(layout, G, np.float32, rng)
    y_bn, _ = FN.normalize(x, w, b, layout, G, 1e-5)
    y_brn, ctx = FN.normalize(x, w, b, layout, G, 1e-5, reference=reference, r_max=1.0, d_max=0.0)
    np.testing.assert_array_equal(y_bn.detach().numpy(), y_brn.detach().numpy())
    np.testing.assert_array_equal(ctx.r, 1.0)
    g = rng.standard_normal(y_bn.shape)
    for a, c in zip(_grads(y_bn, [x, w, b], g), _grads(y_brn, [x, w, b], g)):
        np.testing.assert_array_equal(a.numpy(), c.numpy())


# ------------------------------------------------------------------- gradcheck

GRADCHECK_LAYOUTS = [
    ("batch2", (2, 3, 1, 1), 3),       # batch of 2: ill-conditioned (x̂ = ±1)
    ("batch_spatial", (3, 2, 1, 4), 2),
    ("rows", (1, 3, 5, 1), 1),
    ("groups", (1, 4, 2, 3), 2),
]


@pytest.mark.parametrize("opt_name,options", OPTIONS)
@pytest.mark.parametrize("name,layout,G", GRADCHECK_LAYOUTS)
def test_gradcheck_core(name, layout, G, opt_name, options):
    rng = np.random.default_rng(4)
    x, w, b, reference = _inputs(layout, G, np.float64, rng)
    if opt_name == "renorm":  # r, d clipped: constants, so finite differences see no dr/dx
        x4 = x.detach().numpy().reshape(layout)
        sigma = np.sqrt(x4.var(axis=(0, 2, 3)) + 1e-5)
        reference = (x4.mean(axis=(0, 2, 3)) + 0.3 * sigma, 1 / (1.3 * sigma))
        options = dict(r_max=1.1, d_max=0.1)
    assert tn.autograd.gradcheck(
        lambda x, w, b: FN.normalize(x, w, b, layout, G, 1e-5, reference=reference, **options)[0],
        [x, w, b], atol=1e-6, rtol=1e-4)


# -------------------------------------------------------------------- numerics

@pytest.mark.parametrize("layout,G", [((64, 3, 1, 1), 3), ((1, 4, 256, 1), 1), ((8, 2, 1, 100), 2)])
def test_large_offset_float32_normalizes_to_unit_variance(layout, G):
    """A 1e5 offset on inputs of unit spread: float64 sums about a shift keep
    float32 exact (a one-pass E[x²] − E[x]² in float32 would give garbage)."""
    rng = np.random.default_rng(5)
    x = tn.Tensor((rng.standard_normal(layout) + 1e5).reshape(layout[0], -1), dtype=np.float32)
    y, ctx = FN.normalize(x, None, None, layout, G, 1e-5)
    y4 = y.numpy().reshape(layout).astype(np.float64)
    x4 = x.numpy().reshape(layout).astype(np.float64)
    np.testing.assert_allclose(y4.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    var = x4.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y4.var(axis=(0, 2, 3)), var / (var + 1e-5), rtol=1e-4)
    np.testing.assert_allclose(ctx.var, x4.var(axis=(0, 2, 3)), rtol=1e-9)


@pytest.mark.parametrize("name,layout,G", LAYOUTS)
def test_float32_keeps_float64_centring_in_forward_and_backward(name, layout, G):
    """Inputs with a 1e4 offset: float32 results equal the float64 computation
    on the same (float32-representable) numbers to float32 precision."""
    rng = np.random.default_rng(7)
    N, M, K, S = layout
    data = (rng.standard_normal((N, M * K * S)) + 1e4).astype(np.float32)
    gout = rng.standard_normal(data.shape).astype(np.float32)
    w_data = rng.uniform(0.5, 2, (G, K)).astype(np.float32)
    results = {}
    for dtype in (np.float32, np.float64):
        x = tn.Tensor(data, dtype=dtype, requires_grad=True)
        w = tn.Tensor(w_data, dtype=dtype, requires_grad=True)
        y, _ = FN.normalize(x, w, None, layout, G, 1e-5)
        results[dtype] = [y.detach().numpy()] + [t.detach().numpy() for t in _grads(y, [x, w], gout)]
    for a, b in zip(results[np.float32], results[np.float64]):
        scale = np.abs(b).max()
        np.testing.assert_allclose(a / scale, b / scale, atol=3e-6)


def test_constant_channel_gives_bias_not_nan():
    layout, G = (4, 2, 1, 3), 2
    x = np.ones((4, 2, 3))
    x[:, 1] = np.arange(12).reshape(4, 3)
    x = tn.Tensor(x.reshape(4, -1), requires_grad=True)
    b = tn.Tensor([0.5, -0.5], requires_grad=True)
    w = tn.Tensor([2.0, 3.0], requires_grad=True)
    y, _ = FN.normalize(x, w, b, layout, G, 1e-5)
    y.backward(tn.ones(y.shape, dtype=np.float64))
    y3 = y.detach().numpy().reshape(4, 2, 3)
    np.testing.assert_array_equal(y3[:, 0], 0.5)
    assert np.all(np.isfinite(y.detach().numpy())) and np.all(np.isfinite(x.grad.numpy()))
    assert np.all(np.isfinite(w.grad.numpy()))


def test_parallel_twin_on_a_large_input_matches_numpy():
    """Large enough for the multi-threaded kernels (and 16 chunks of partial dγ, dβ)."""
    rng = np.random.default_rng(6)
    N, C, S = 32, 32, 1024
    assert N * C * S >= tn.kernels.PARALLEL_MIN
    x = tn.Tensor(rng.standard_normal((N, C * S)) * 2 + 1, dtype=np.float32, requires_grad=True)
    w = tn.Tensor(rng.uniform(0.5, 2, (C, 1)), dtype=np.float32, requires_grad=True)
    b = tn.Tensor(rng.standard_normal((C, 1)), dtype=np.float32, requires_grad=True)
    y, _ = FN.normalize(x, w, b, (N, C, 1, S), C, 1e-5)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = _grads(y, [x, w, b], g)
    x3, g3 = x.detach().numpy().astype(np.float64).reshape(N, C, S), g.astype(np.float64).reshape(N, C, S)
    mean, var = x3.mean(axis=(0, 2), keepdims=True), x3.var(axis=(0, 2), keepdims=True)
    xhat = (x3 - mean) / np.sqrt(var + 1e-5)
    gamma = w.detach().numpy().astype(np.float64).reshape(1, C, 1)
    np.testing.assert_allclose(y.detach().numpy().reshape(N, C, S), gamma * xhat + b.detach().numpy().reshape(1, C, 1),
                               rtol=1e-5, atol=1e-5)
    h = g3 * gamma
    dx_ref = (h - h.mean(axis=(0, 2), keepdims=True)
              - xhat * (h * xhat).mean(axis=(0, 2), keepdims=True)) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(dx.numpy().reshape(N, C, S), dx_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw.numpy().ravel(), (g3 * xhat).sum(axis=(0, 2)), rtol=1e-4)
    np.testing.assert_allclose(db.numpy().ravel(), g3.sum(axis=(0, 2)), rtol=1e-4)


@pytest.mark.parametrize("opt_name,options", OPTIONS)
@pytest.mark.parametrize("layout,G", [((9, 1100, 1, 1), 1100),   # columns: 5 blocks, 5 chunks
                                      ((1, 40, 9, 1), 1),        # rows
                                      ((3, 40, 1, 2), 40),       # short runs
                                      ((1, 40, 1, 17), 8)])      # long runs
def test_serial_and_parallel_twins_in_chunks_match_the_reference(layout, G, opt_name, options):
    """The kernels called directly, each twin with its own chunk count (the parallel
    one in several chunks: one partial dγ/dβ per chunk), against the numpy references."""
    rng = np.random.default_rng(12)
    N, M, K, S = layout
    x = rng.standard_normal((N, M * K * S)) * 3 + 2
    w, b = rng.uniform(0.5, 2, (G, K)), rng.standard_normal((G, K))
    ref_mean, ref_rstd = rng.standard_normal(M) + 2, rng.uniform(0.2, 0.5, M)
    opt = KN.NormOptions.of(**options)
    expected = KN.reference.forward(x, w, b, ref_mean, ref_rstd, opt)
    g = rng.standard_normal(x.shape)
    for parallel in (False, True):
        chunks = KN.n_chunks(M, K * S, parallel)
        assert chunks == 1 or (parallel and chunks > 1)
        twin = KN.norm_forward.parallel if parallel else KN.norm_forward.serial
        outs = [np.empty_like(x)] + [np.empty(M) for _ in range(5)]
        twin(x, w, b, ref_mean, ref_rstd, *outs, tuple(opt), chunks)
        for o, e in zip(outs, expected):
            np.testing.assert_allclose(o, e, rtol=1e-11, atol=1e-12)
        mean, _, rstd, r, d = outs[1:]
        dx, dw, db = np.empty_like(x), np.empty((chunks, G, K)), np.empty((chunks, G, K))
        twin = KN.norm_backward.parallel if parallel else KN.norm_backward.serial
        twin(g, x, w, mean, rstd, r, d, dx, dw, db, tuple(opt), 1.0)
        ref_dx, ref_dw, ref_db = KN.reference.backward(g, x, w, mean, rstd, r, d, opt, 1.0)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dw.sum(axis=0), ref_dw[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(db.sum(axis=0), ref_db[0], rtol=1e-10, atol=1e-12)


def test_blocking_covers_every_statistic_once():
    for M, L in [(1, 1), (7, 1), (600, 1), (1000, 3), (5, 1024), (300, 40)]:
        per_block, n_blocks = KN.blocking(M, L)
        assert (n_blocks - 1) * per_block < M <= n_blocks * per_block
        assert per_block * L >= min(KN.BLOCK, M * L) or per_block == M
        assert 1 <= KN.n_chunks(M, L, True) <= min(n_blocks, KN.MAX_CHUNKS)
        assert KN.n_chunks(M, L, False) == 1


@pytest.mark.parametrize("layout,G", [((300, 2, 1, 1), 2), ((4, 2, 1, 50), 2), ((1, 3, 2, 40), 3)])
def test_outlier_as_the_shift_keeps_the_variance_exact(layout, G):
    """The one-pass statistics sum x − c about each statistic's first value c; when
    that value is a far outlier the variance must still match a two-pass float64 one."""
    rng = np.random.default_rng(11)
    data = rng.standard_normal(layout)
    data[0, :, 0, 0] = 1e6              # the first value of every statistic
    x = tn.Tensor(data.reshape(layout[0], -1), dtype=np.float64)
    _, ctx = FN.normalize(x, None, None, layout, G, 1e-5)
    x4 = data.reshape(layout)
    np.testing.assert_allclose(ctx.mean, x4.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(ctx.var, x4.var(axis=(0, 2, 3)), rtol=1e-9)
