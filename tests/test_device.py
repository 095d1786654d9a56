"""Porting habits around devices: tn.device, tn.cuda / tn.backends, to() on Tensor and
Module (one argument parser), and the errors a PyTorch user meets first."""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn
from tinygrad_norm.devices import parse_to


def test_device_objects_like_torch_device():
    dev = tn.device("cuda" if tn.cuda.is_available() else "cpu")
    assert str(dev) == "cpu" and repr(dev) == "device(type='cpu')"
    assert dev.type == "cpu" and dev.index is None
    assert repr(tn.device("cuda", 1)) == "device(type='cuda', index=1)" == repr(tn.device("cuda:1"))
    assert tn.device("cpu") == tn.device("cpu") == "cpu" and tn.device("cpu") != "cuda"
    assert tn.randn(2).device == tn.device("cpu")
    assert not tn.cuda.is_available() and tn.cuda.device_count() == 0
    assert not tn.backends.mps.is_available()
    assert not tn.accelerator.is_available() and tn.accelerator.current_accelerator() is None
    tn.backends.cudnn.deterministic = True        # accepted, no effect
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda, .* device string: gpu"):
        tn.device("gpu")


def test_parse_to_reads_every_form():
    t64 = tn.zeros(1, dtype=tn.float64)
    assert parse_to(("cpu",), {}) == (None, False)
    assert parse_to((tn.device("cpu"), tn.float64), {}) == (np.dtype(np.float64), False)
    assert parse_to((tn.float64,), {}) == (np.dtype(np.float64), False)
    assert parse_to((np.float32,), {}) == (np.dtype(np.float32), False)
    assert parse_to((t64,), {}) == (np.dtype(np.float64), False)
    assert parse_to((), dict(device="cpu", dtype=tn.float64, non_blocking=True, copy=True)) == (
        np.dtype(np.float64), True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'devce'"):
        parse_to((), dict(devce="cpu"))
    with pytest.raises(TypeError, match="argument 0 must be a device or a dtype, got list"):
        parse_to(([1],), {})


@pytest.mark.parametrize("request_", [lambda x: x.to("cuda"), lambda x: x.cuda(), lambda x: x.to(0),
                                      lambda x: x.to("mps"), lambda x: x.to(device="cuda:0"),
                                      lambda x: x.to(tn.device("cuda"), tn.float64)])
def test_gpu_requests_say_the_engine_runs_on_the_cpu(request_):
    for obj in (tn.randn(2), nn.Linear(2, 2)):
        with pytest.raises(tn.DeviceError, match="runs on the CPU only"):
            request_(obj)


def test_factories_and_layers_take_device_like_pytorch():
    dev = tn.device("cpu")
    assert tn.zeros(2, 3, device=dev).shape == (2, 3) and tn.tensor([1, 2], device="cpu").dtype == np.int64
    assert tn.arange(3, device=dev).tolist() == [0, 1, 2] and tn.randn(2, device="cpu").shape == (2,)
    assert nn.Linear(2, 3, device=dev).weight.shape == (3, 2)
    assert nn.Conv2d(1, 2, 3, device="cpu").weight.shape == (2, 1, 3, 3)
    assert nn.Embedding(4, 2, device=dev).weight.shape == (4, 2)
    state = tn.get_rng_state()
    for make in (lambda: tn.ones(2, device="cuda"), lambda: tn.randn(2, device="cuda:0"),
                 lambda: tn.tensor([1.0], device="mps"), lambda: nn.Linear(2, 2, device="cuda"),
                 lambda: nn.Conv2d(1, 1, 1, device="cuda")):
        with pytest.raises(tn.DeviceError, match="runs on the CPU only"):
            make()
    assert np.array_equal(tn.get_rng_state().numpy(), state.numpy())     # a refused draw draws nothing


def test_tensor_to():
    x = tn.randn(2, 3)
    assert x.to("cpu") is x and x.to(tn.device("cpu")) is x and x.cpu() is x
    assert x.to("cpu", tn.float64).dtype == np.float64
    assert x.to(dtype=tn.float64).dtype == np.float64
    assert x.to(tn.zeros(1, dtype=tn.float64)).dtype == np.float64
    c = x.to("cpu", copy=True)
    assert c is not x and np.array_equal(c.numpy(), x.numpy())
    w = tn.randn(3, requires_grad=True)
    w.to(tn.float64).sum().backward()             # a differentiable cast
    assert w.grad.dtype == np.float32 and np.all(w.grad.numpy() == 1)


def test_module_to_casts_in_place_and_returns_self():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    device = tn.device("cpu")
    assert m.to(device) is m and m.cpu() is m
    assert m.to(device, tn.float64) is m
    assert m[0].weight.dtype == np.float64 and m[1].running_var.dtype == np.float64
    assert m[1].num_batches_tracked.dtype == np.int64
    m.to(dtype=tn.float32)
    assert m[0].weight.dtype == np.float32
    with pytest.raises(TypeError, match="only accepts floating point dtypes, but got desired dtype=int64"):
        m.to(tn.int64)


def test_numpy_of_a_tensor_that_requires_grad_raises_like_pytorch():
    w = tn.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad\. "
                                           r"Use tensor\.detach\(\)\.numpy\(\) instead\."):
        w.numpy()
    with pytest.raises(RuntimeError, match="requires grad"):
        (w * 2).numpy()
    assert np.array_equal(w.detach().numpy(), w.numpy(force=True))
    assert w.numpy(force=True) is not w.detach().numpy()   # force: a copy
    with tn.no_grad():
        assert (w * 2).numpy().shape == (3,)      # no graph: fine


def test_numpy_array_into_a_layer_is_a_type_error_naming_tensor():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"Linear: argument 0 \(input\) must be a Tensor, not numpy\.ndarray "
                                        r"of shape \(2, 3\); wrap it with tn\.tensor\(x\)"):
        nn.Linear(3, 2)(x)
    with pytest.raises(TypeError, match=r"linear\(\): argument 'input' must be Tensor, not numpy\.ndarray"):
        tn.nn.functional.linear(x, tn.ones(2, 3))
    with pytest.raises(TypeError, match=r"conv2d\(\): argument 'input' must be Tensor"):
        tn.nn.functional.conv2d(np.ones((1, 1, 3, 3), np.float32), tn.ones(1, 1, 2, 2))
    with pytest.raises(TypeError, match=r"relu\(\): expected Tensor arguments, got numpy\.ndarray"):
        tn.nn.functional.relu(x)
