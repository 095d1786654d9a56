"""What the normalization-family experiments share (lab/experiments/_family.py), on tiny shapes."""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import nn
from tinygrad_norm.lab.experiments import _family as fam


def test_family_mlp_layers_and_shared_init():
    for norm, kind in (("bn", nn.BatchNorm1d), ("gn", nn.GroupNorm), ("ln", nn.LayerNorm), ("brn", nn.BatchRenorm1d),
                       ("rms", nn.RMSNorm), ("bn_unbiased", fam.UnbiasedBatchNorm1d)):
        model = fam.family_mlp(norm, hidden=(8, 8), groups=4, seed=3)
        layers = list(model)
        assert [type(m) for m in layers] == [nn.Linear, kind, nn.ReLU, nn.Linear, kind, nn.ReLU, nn.Linear]
        assert layers[0].bias is None and layers[-1].bias is not None
        assert model(tn.randn(4, 784)).shape == (4, 10)
    a, b = fam.family_mlp("bn", (8,), seed=3), fam.family_mlp("gn", (8,), groups=4, seed=3)
    assert np.array_equal(a[0].weight.numpy(), b[0].weight.numpy())        # the same draw for every norm
    assert fam.family_mlp("none", (8,), seed=0)[0].bias is not None
    with pytest.raises(ValueError, match="unknown norm 'xn'"):
        fam.family_mlp("xn")


def test_unbiased_batchnorm_normalizes_with_the_unbiased_variance():
    x = np.random.default_rng(0).normal(size=(4, 3)) * [1.0, 3.0, 0.1] + 2
    layer = fam.UnbiasedBatchNorm1d(3)
    layer.weight._data[...] = [1.0, 2.0, 0.5]
    layer.bias._data[...] = [0.0, 1.0, -1.0]
    y = layer(tn.tensor(x.astype(np.float32))).numpy()
    ref = (x - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + 1e-5) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(y, ref, atol=2e-5)
    np.testing.assert_allclose(layer.running_var.numpy(), 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    assert layer.num_batches_tracked.item() == 1
    layer.eval()                                          # eval: BatchNorm1d with the running statistics
    rm, rv = layer.running_mean.numpy(), layer.running_var.numpy()
    np.testing.assert_allclose(layer(tn.tensor(x.astype(np.float32))).numpy(),
                               (x - rm) / np.sqrt(rv + 1e-5) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0], atol=2e-5)


def test_batches_iid_and_non_iid():
    x = np.arange(60, dtype=np.float32)[:, None]
    y = np.arange(60) % 10
    iid = fam.Batches(x, y, 8, seed=1)
    assert iid.per_epoch == 7
    epoch0 = np.concatenate([iid(i)[0].numpy().ravel() for i in range(7)])
    assert len(set(epoch0)) == 56                                           # no repeats within an epoch
    assert np.array_equal(fam.Batches(x, y, 8, seed=1)(9)[0].numpy(), iid(9)[0].numpy())   # pure in (seed, step)
    assert not np.array_equal(iid(0)[0].numpy(), iid(7)[0].numpy())         # a new order each epoch
    skewed = fam.Batches(x, y, 6, seed=2, classes_per_batch=3)
    for i in range(skewed.per_epoch):
        labels = skewed(i)[1].numpy()
        assert sorted(np.unique(labels, return_counts=True)[1]) == [2, 2, 2]   # 3 classes × 2 images
    assert skewed.per_epoch == 10
    seen = []
    fam.Batches(x, y, 6, seed=2, hooks=[seen.append])(5)
    assert seen == [5]
    with pytest.raises(ValueError, match="not a multiple"):
        fam.Batches(x, y, 7, seed=0, classes_per_batch=3)


def test_schedules():
    lr = fam.step_lr(0.1, 100)
    assert [lr(s) for s in (0, 59, 60, 84, 85, 99)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    r, d = fam.renorm_schedule(100, 3.0, 5.0)
    assert (r(0), d(0), r(10), d(10)) == (1.0, 0.0, 1.0, 0.0)
    assert r(35) == pytest.approx(2.0) and d(25) == pytest.approx(2.5) and (r(60), d(40), r(99)) == (3.0, 5.0, 3.0)
    model = fam.family_mlp("brn", (4,), seed=0)
    opt = tn.optim.SGD(model.parameters(), lr=1.0)
    fam.lr_hook(opt, lr)(70)
    fam.renorm_hook(model, (r, d))(35)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01) and model[1].r_max == pytest.approx(2.0)


def test_population_statistics_is_algorithm_2_and_restores_the_model():
    model = fam.family_mlp("bn", (5,), seed=0)
    x = np.random.default_rng(1).random((40, 784)).astype(np.float32)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with fam.population_statistics(model, x, batch=10, seed=4) as m:
        assert not m.training
        bn = m[1]
        perm = np.random.default_rng(4).permutation(40)
        h = [(x[perm[i:i + 10]].astype(np.float64) @ m[0].weight.numpy().T.astype(np.float64)) for i in (0, 10, 20, 30)]
        np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(0) for b in h], 0), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(bn.running_var.numpy(), np.mean([b.var(0, ddof=1) for b in h], 0), rtol=1e-4)
    assert model.training and model[1].momentum == 0.1
    assert all(np.array_equal(v.numpy(), before[k]) for k, v in model.state_dict().items())


def test_error_evaluations():
    model = fam.family_mlp("bn", (6,), seed=0)
    x = np.random.default_rng(2).random((30, 784)).astype(np.float32)
    y = np.random.default_rng(3).integers(0, 10, 30)
    buffers = [b.numpy().copy() for b in model.buffers()]
    e = fam.batch_stats_error(model, x, y, batch=10)
    assert all(np.array_equal(b.numpy(), a) for b, a in zip(model.buffers(), buffers))   # running stats untouched
    model.eval()
    with tn.no_grad():
        running = np.mean(model(tn.tensor(x)).numpy().argmax(1) != y)
    model.train()
    with tn.no_grad():   # training mode: each batch of 10 normalized with its own statistics
        logits = np.concatenate([model(tn.tensor(x[i:i + 10])).numpy() for i in range(0, 30, 10)])
    assert e == pytest.approx(np.mean(logits.argmax(1) != y))
    model = fam.family_mlp("bn", (6,), seed=0)
    assert fam.eval_error(model, x, y) == pytest.approx(running) and model.training
    assert fam.pct(0.0123) == "1.23 %" and fam.pct(None) == "—"
