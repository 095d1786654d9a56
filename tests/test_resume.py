"""A run interrupted and resumed from a checkpoint continues exactly like an uninterrupted one.

The checkpoint holds everything that influences the future of a run: the model
(parameters and buffers), the optimizer (momentum / moment estimates, step
counts), the scheduler, the library RNG (dropout masks, any other draw) and the
position in the data (epoch and batch of a seeded DataLoader). After resuming,
parameters must be *bitwise* equal to those of the uninterrupted run.
"""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn
from tinygrad_norm.nn import functional as F
from tinygrad_norm.optim import SGD, Adam
from tinygrad_norm.optim.lr_scheduler import CosineAnnealingLR, StepLR

N_SAMPLES, N_FEATURES, N_CLASSES, BATCH = 100, 12, 4, 16


def make_data():
    rng = np.random.default_rng(123)
    x = rng.standard_normal((N_SAMPLES, N_FEATURES)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    return x, y


def build(opt_name):
    """Model, optimizer, scheduler and loader, built from the library RNG like a script does.
    "adam-bn" adds BatchNorm1d: its running statistics and int64 batch counter must resume too."""
    norm = [nn.BatchNorm1d(24)] if opt_name.endswith("-bn") else []
    model = nn.Sequential(nn.Linear(N_FEATURES, 24), *norm, nn.ReLU(), nn.Dropout(0.3), nn.Linear(24, N_CLASSES))
    if opt_name == "sgd":
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        sched = StepLR(opt, step_size=5, gamma=0.7)
    else:
        opt = Adam(model.parameters(), lr=0.01, amsgrad=True)
        sched = CosineAnnealingLR(opt, T_max=20, eta_min=1e-4)
    x, y = make_data()
    loader = tn.data.DataLoader(x, y, batch_size=BATCH, shuffle=True, seed=7)
    return model, opt, sched, loader


def batches(loader, epoch, batch):
    """Batches from position (epoch, batch) on, with the position of the one after each."""
    while True:
        loader.set_epoch(epoch)
        for i, b in enumerate(loader):
            if i < batch:
                continue
            nxt = (epoch, i + 1) if i + 1 < len(loader) else (epoch + 1, 0)
            yield b, nxt
        epoch, batch = epoch + 1, 0


def train(model, opt, sched, loader, position, steps):
    """`steps` SGD steps from `position`; the scheduler steps after every step. Returns the new position."""
    model.train()
    it = batches(loader, *position)
    for _ in range(steps):
        (xb, yb), position = next(it)
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
    return position


def checkpoint(model, opt, sched, position):
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": tn.get_rng_state(), "data": {"epoch": position[0], "batch": position[1]}}


def resume(opt_name, path):
    """A fresh 'process': other RNG state, new objects, then everything loaded from the file."""
    tn.manual_seed(987654)  # whatever the new process would have drawn
    model, opt, sched, loader = build(opt_name)
    ckpt = tn.load(path)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    tn.set_rng_state(ckpt["rng"])
    return model, opt, sched, loader, (ckpt["data"]["epoch"], ckpt["data"]["batch"])


def params_of(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


TOTAL, SPLIT = 23, 10  # 7 batches per epoch: the split falls mid-epoch, the run spans 4 epochs


@pytest.mark.parametrize("opt_name", ["sgd", "adam", "adam-bn"])
def test_resumed_run_is_bitwise_identical(opt_name, tmp_path):
    tn.manual_seed(0)
    model, opt, sched, loader = build(opt_name)
    train(model, opt, sched, loader, (0, 0), TOTAL)
    expected = params_of(model)
    expected_lr = sched.get_last_lr()

    tn.manual_seed(0)
    model, opt, sched, loader = build(opt_name)
    position = train(model, opt, sched, loader, (0, 0), SPLIT)
    tn.save(checkpoint(model, opt, sched, position), tmp_path / "ckpt.npz")
    del model, opt, sched, loader

    model, opt, sched, loader, position = resume(opt_name, tmp_path / "ckpt.npz")
    assert position == (1, 3)
    train(model, opt, sched, loader, position, TOTAL - SPLIT)
    got = params_of(model)
    assert list(got) == list(expected)
    if opt_name.endswith("-bn"):
        assert got["1.num_batches_tracked"].dtype == np.int64 and got["1.num_batches_tracked"] == TOTAL
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert sched.get_last_lr() == expected_lr


@pytest.mark.parametrize("forget", ["rng", "optimizer", "data"])
def test_resume_without_every_piece_diverges(forget, tmp_path):
    """Controls: drop one part of the checkpoint and the run no longer matches, so the
    test above really depends on the RNG (dropout), the optimizer state and the data position."""
    tn.manual_seed(0)
    model, opt, sched, loader = build("sgd")
    train(model, opt, sched, loader, (0, 0), TOTAL)
    expected = params_of(model)

    tn.manual_seed(0)
    model, opt, sched, loader = build("sgd")
    position = train(model, opt, sched, loader, (0, 0), SPLIT)
    tn.save(checkpoint(model, opt, sched, position), tmp_path / "ckpt.npz")

    tn.manual_seed(987654)
    model, opt, sched, loader = build("sgd")
    ckpt = tn.load(tmp_path / "ckpt.npz")
    model.load_state_dict(ckpt["model"])
    sched.load_state_dict(ckpt["scheduler"])
    if forget != "optimizer":
        opt.load_state_dict(ckpt["optimizer"])
    if forget != "rng":
        tn.set_rng_state(ckpt["rng"])
    position = (0, 0) if forget == "data" else (ckpt["data"]["epoch"], ckpt["data"]["batch"])
    train(model, opt, sched, loader, position, TOTAL - SPLIT)
    got = params_of(model)
    assert any(not np.array_equal(got[k], expected[k]) for k in expected)


def test_dropout_is_active_in_these_runs():
    """The model really draws dropout masks from the library RNG in training mode."""
    tn.manual_seed(0)
    model, *_ = build("sgd")
    x = tn.tensor(make_data()[0][:8])
    model.train()
    a, b = model(x).detach().numpy(), model(x).detach().numpy()
    assert not np.array_equal(a, b)
    model.eval()
    np.testing.assert_array_equal(model(x).detach().numpy(), model(x).detach().numpy())
