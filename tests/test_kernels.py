"""Every registered numba kernel against its numpy reference, float32 and
float64, on contiguous and on strided inputs, serial and parallel twins."""
import numpy as np
import pytest

from tinygrad_norm.kernels import REGISTRY

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _strided(a):
    """The same values in a non-contiguous array (every other element of a bigger one)."""
    if a.ndim == 0:
        return a
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    view = big[..., ::2]
    assert not view.flags.c_contiguous or a.shape[-1] <= 1
    return view


def _run(k, inputs, twin):
    expected = k.reference(*inputs, *k.scalars)
    expected = expected if isinstance(expected, tuple) else (expected,)
    if k.mutates:  # an in-place kernel: its results are the updated inputs
        inputs = tuple(a.copy() if i in k.mutates and a.flags.c_contiguous else a
                       for i, a in enumerate(inputs))
        twin(*inputs, *k.scalars)
        return tuple(inputs[i] for i in k.mutates), expected
    outs = tuple(np.empty(np.shape(e), np.asarray(e).dtype) for e in expected)
    twin(*inputs, *outs, *k.scalars)
    return outs, expected


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("twin", ["serial", "parallel"])
def test_kernel_matches_numpy_reference(name, dtype, layout, twin):
    k = REGISTRY[name]
    rng = np.random.default_rng(0)
    inputs = k.example(rng, dtype)
    assert len(inputs) == k.n_in, f"{name}: example gives {len(inputs)} inputs, kernel declares {k.n_in}"
    if layout == "strided":
        inputs = tuple(_strided(a) if a.dtype.kind == "f" else a for a in inputs)
    outs, expected = _run(k, inputs, getattr(k, twin))
    assert len(outs) == (len(k.mutates) if k.mutates else k.n_out)
    for o, e in zip(outs, expected):
        if np.asarray(e).dtype.kind == "f":
            np.testing.assert_allclose(o, e, err_msg=name, **TOL[dtype])
        else:
            np.testing.assert_array_equal(o, e, err_msg=name)


@pytest.mark.parametrize("name", ["relu", "abs_", "neg", "clamp", "neg_abs", "sqrt", "leaky_relu"])
def test_unary_kernels_propagate_nan_and_inf(name):
    k = REGISTRY[name]
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30], np.float32)
    out = np.empty_like(x)
    k.serial(x, out, *k.scalars)
    with np.errstate(all="ignore"):  # nan and ±inf where the reference has them, values to 1 ulp
        np.testing.assert_allclose(out, k.reference(x, *k.scalars), rtol=1e-6)


def test_sigmoid_is_stable_and_propagates_nan():
    from tinygrad_norm.kernels.elementwise import sigmoid
    x = np.array([np.nan, np.inf, -np.inf, 0.0, 100.0, -100.0, -20.0], np.float32)
    y = sigmoid(x)
    assert np.isnan(y[0]) and y[1] == 1 and y[2] == 0 and y[3] == 0.5 and y[4] == 1
    assert y[5] == np.float32(np.exp(-100.0)) and y[6] == pytest.approx(2.0611536e-09, rel=1e-6)


def test_binary_extrema_propagate_nan():
    a = np.array([np.nan, 1.0, 2.0], np.float64)
    b = np.array([0.0, np.nan, 1.0], np.float64)
    for name, ref in [("maximum", np.maximum), ("minimum", np.minimum)]:
        out = np.empty_like(a)
        REGISTRY[name].serial(a, b, out)
        np.testing.assert_array_equal(out, ref(a, b))


def test_float32_sum_accumulates_in_float64():
    # 2**24 + many small ones: a float32 running sum would lose every 1.
    x = np.ones((1, 1 << 20, 1), np.float32)
    x[0, 0, 0] = 2.0 ** 24
    out = np.empty((1, 1), np.float32)
    REGISTRY["sum_arb"].serial(x, out)
    assert out[0, 0] == np.float32(2.0 ** 24 + (1 << 20) - 1)


def test_max_kernel_propagates_nan_with_its_index():
    x = np.array([[[1.0], [np.nan], [3.0]]])
    out, idx = np.empty((1, 1)), np.empty((1, 1), np.int64)
    REGISTRY["extremum_arb"].serial(x, out, idx, True)
    assert np.isnan(out[0, 0]) and idx[0, 0] == 1


def test_a_kernels_disk_cache_is_stamped_with_every_file_it_calls_into():
    """numba stamps a cache entry with the function's own file; the norm kernels call
    helpers in four other files, whose edits must invalidate the cached kernels too."""
    import numba
    from tinygrad_norm.kernels import norm as KN
    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT=1: nothing is compiled, nothing is cached")
    files = {"norm/__init__.py", "norm/common.py", "norm/rows.py", "norm/columns.py", "norm/blocks.py"}
    for fn in (KN.norm_forward.serial, KN.norm_forward.parallel, KN.norm_backward.serial):
        assert {entry[0] for entry in fn._cache._cache_file._source_stamp} == files
    # a helper is stamped with the files it reaches: rows.py calls into common.py only
    from tinygrad_norm.kernels.norm import rows
    assert {entry[0] for entry in rows.rows_forward._cache._cache_file._source_stamp} == {
        "norm/rows.py", "norm/common.py"}
