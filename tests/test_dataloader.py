"""tn.data.DataLoader: batches, len, dtypes, reproducible shuffles, errors."""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.data import DataLoader


def data(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return x, y


def collect(loader):
    return [tuple(t.numpy().copy() for t in batch) for batch in loader]


def test_sequential_batches_and_len():
    x, y = data(10)
    loader = DataLoader(x, y, batch_size=4)
    assert len(loader) == 3
    batches = collect(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(batches[1][0], x[4:8])
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64


def test_drop_last():
    x, y = data(10)
    loader = DataLoader(x, y, batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [b[1].tolist() for b in collect(loader)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(x, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(x, batch_size=11, drop_last=True)) == 0
    assert len(DataLoader(x, batch_size=11)) == 1


def test_yields_tensors_without_grad_and_keeps_dtypes():
    images = np.zeros((6, 28, 28), np.uint8)
    labels = tn.tensor(np.arange(6))
    (xb, yb), = list(DataLoader(images, labels, batch_size=6))[:1]
    assert isinstance(xb, tn.Tensor) and isinstance(yb, tn.Tensor)
    assert xb.dtype == np.uint8 and xb.shape == (6, 28, 28)   # images stay uint8
    assert yb.dtype == np.int64 and not xb.requires_grad
    half = np.ones((4, 2), np.float16)
    assert next(iter(DataLoader(half, batch_size=2)))[0].dtype == np.float32


def test_batches_are_copies():
    x, y = data(4)
    xb, _ = next(iter(DataLoader(x, y, batch_size=2)))
    xb.numpy()[:] = -1
    assert x[0, 0] == 0


def test_transform():
    images = np.full((4, 2, 2), 255, np.uint8)
    labels = np.arange(4)
    loader = DataLoader(images, labels, batch_size=2, transform=lambda x, y: (x.float() / 255, y))
    xb, yb = next(iter(loader))
    assert xb.dtype == np.float32 and np.all(xb.numpy() == 1.0)
    assert yb.tolist() == [0, 1]


def test_shuffle_is_a_permutation_each_epoch_and_differs_between_epochs():
    x, y = data(50)
    loader = DataLoader(x, y, batch_size=7, shuffle=True, seed=3)
    e1 = np.concatenate([b[1] for b in collect(loader)])
    e2 = np.concatenate([b[1] for b in collect(loader)])
    assert sorted(e1.tolist()) == list(range(50)) and sorted(e2.tolist()) == list(range(50))
    assert e1.tolist() != e2.tolist()  # reshuffled every epoch, as in PyTorch
    assert e1.tolist() != list(range(50))
    for xb, yb in collect(loader):  # rows stay paired with their labels
        np.testing.assert_array_equal(xb, x[yb])


def test_explicit_seed_epoch_k_is_reproducible():
    x, y = data(30)
    a = DataLoader(x, y, batch_size=8, shuffle=True, seed=7)
    epochs_a = [np.concatenate([b[1] for b in collect(a)]) for _ in range(3)]
    tn.manual_seed(123)  # the library generator does not matter with an explicit seed
    b = DataLoader(x, y, batch_size=8, shuffle=True, seed=7)
    epochs_b = [np.concatenate([b_[1] for b_ in collect(b)]) for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
    assert a.epoch == 3
    c = DataLoader(x, y, batch_size=8, shuffle=True, seed=7)
    c.set_epoch(2)  # resume at epoch 2
    np.testing.assert_array_equal(np.concatenate([b_[1] for b_ in collect(c)]), epochs_a[2])
    np.testing.assert_array_equal(c.order(epoch=1), epochs_a[1])
    d = DataLoader(x, y, batch_size=8, shuffle=True, seed=8)
    assert np.concatenate([b_[1] for b_ in collect(d)]).tolist() != epochs_a[0].tolist()


def test_seed_none_follows_manual_seed():
    x, y = data(40)
    tn.manual_seed(5)
    loader = DataLoader(x, y, batch_size=40, shuffle=True)
    run1 = [collect(loader)[0][1] for _ in range(2)]
    tn.manual_seed(5)
    run2 = [collect(loader)[0][1] for _ in range(2)]
    np.testing.assert_array_equal(run1[0], run2[0])
    np.testing.assert_array_equal(run1[1], run2[1])
    assert run1[0].tolist() != run1[1].tolist()
    # it is exactly a permutation drawn from the library generator
    tn.manual_seed(5)
    np.testing.assert_array_equal(run1[0], np.random.default_rng(5).permutation(40))


def test_length_mismatch_names_the_lengths():
    with pytest.raises(ValueError, match=r"same length .*got lengths 10, 9 \(shapes \(10, 3\), \(9,\)\)"):
        DataLoader(np.zeros((10, 3)), np.zeros(9), batch_size=2)


def test_bad_arguments():
    x, y = data(4)
    with pytest.raises(TypeError, match="pass batch_size by keyword: DataLoader\\(x, y, batch_size=2\\)"):
        DataLoader(x, y, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        DataLoader(x, batch_size=0)
    with pytest.raises(ValueError, match="needs at least one array"):
        DataLoader(batch_size=2)
    with pytest.raises(ValueError, match="array 0 is a scalar"):
        DataLoader(np.float32(3), batch_size=1)
    with pytest.raises(ValueError, match="seed must be None or a non-negative integer"):
        DataLoader(x, batch_size=1, seed=-1)
