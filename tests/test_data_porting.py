"""torch-style data: tn.utils.data (Dataset, TensorDataset, Subset, random_split, DataLoader
over a dataset), tn.data.MNIST / FashionMNIST layouts, tn.data.transforms."""
import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.data import transforms as T
from tinygrad_norm.data import write_idx
from tinygrad_norm.utils.data import (Batch, DataLoader, Dataset, Subset, TensorDataset, default_collate,
                                      random_split)

# torch: torch.tensor(PIXELS, dtype=uint8).float().div(255), then .sub(0.1307).div(0.3081) in float32
PIXELS = [0, 1, 2, 127, 128, 200, 254, 255]
TO_TENSOR = [0.0, 0.003921568859368563, 0.007843137718737125, 0.49803921580314636, 0.501960813999176,
             0.7843137383460999, 0.9960784316062927, 1.0]
NORMALIZED = [-0.4242129623889923, -0.4114847183227539, -0.3987565040588379, 1.192272663116455,
              1.2050011157989502, 2.121433973312378, 2.808758497238159, 2.821486711502075]
NORMALIZE = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])


def fake_mnist(directory, n=12, split="t10k", seed=0):
    """A tiny MNIST-format split (uint8 images, labels 0..9) in `directory`."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    write_idx(directory / f"{split}-images-idx3-ubyte.gz", images)
    write_idx(directory / f"{split}-labels-idx1-ubyte.gz", labels)
    return images, labels.astype(np.int64)


def test_transforms_match_torchvision():
    img = np.array([PIXELS], np.uint8)
    x = T.ToTensor()(img)
    assert x.shape == (1, 1, 8) and x.dtype == np.float32
    assert x.numpy().ravel().tolist() == TO_TENSOR                          # bit for bit
    assert NORMALIZE(img).numpy().ravel().tolist() == NORMALIZED
    rgb = np.zeros((2, 3, 3), np.uint8)
    assert T.ToTensor()(rgb).shape == (3, 2, 3)                            # HWC -> CHW
    with pytest.raises(TypeError, match="apply ToTensor first"):
        T.Normalize((0.5,), (0.5,))(img)
    with pytest.raises(ValueError, match="2 means and 2 stds for an image with 1 channels"):
        T.Normalize((0.5, 0.5), (0.5, 0.5))(x)
    assert repr(NORMALIZE) == "Compose(\n    ToTensor()\n    Normalize(mean=[0.1307], std=[0.3081])\n)"


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_mnist_dataset_layouts_items_and_batches(tmp_path, layout):
    directory = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    images, labels = fake_mnist(directory)
    raw = tn.data.MNIST(tmp_path, train=False, download=False, verify=False)
    assert raw.raw_folder == str(directory) and len(raw) == 12
    img, label = raw[3]
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (28, 28)
    assert isinstance(label, int) and label == labels[3]
    assert raw.data.dtype == np.uint8 and raw.targets.dtype == np.int64
    ds = tn.data.MNIST(tmp_path, train=False, download=False, verify=False, transform=NORMALIZE)
    x, y = ds[5]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and y == labels[5]
    batch = ds.__getitems__([5, 0, 5])
    assert isinstance(batch, Batch)
    np.testing.assert_array_equal(batch[0].numpy()[0], x.numpy())         # table = per image, exactly
    np.testing.assert_array_equal(batch[1].numpy(), labels[[5, 0, 5]])
    slow = tn.data.MNIST(tmp_path, train=False, download=False, verify=False,
                         transform=T.Compose([T.Lambda(lambda im: im), NORMALIZE]))
    assert isinstance(slow.__getitems__([5]), list)                        # not pointwise: per image
    a = [b for b in DataLoader(ds, batch_size=5)]
    b = [b for b in DataLoader(slow, batch_size=5)]
    assert len(a) == 3 and a[2][0].shape == (2, 1, 28, 28)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())


def test_mnist_missing_files_and_fashion_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST test files .* are in none of"):
        tn.data.MNIST(tmp_path, train=False, download=False)
    images, _ = fake_mnist(tmp_path / "FashionMNIST" / "raw", seed=1)
    fashion = tn.data.FashionMNIST(tmp_path, train=False, download=False, verify=False)
    np.testing.assert_array_equal(fashion.data.numpy(), images)
    assert fashion.classes[9] == "Ankle boot"
    assert "Number of datapoints: 12" in repr(fashion) and "Split: Test" in repr(fashion)


def test_tensor_dataset_subset_and_random_split():
    x, y = tn.randn(10, 3), tn.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10 and ds[2][1].item() == 2
    with pytest.raises(ValueError, match="Size mismatch between tensors"):
        TensorDataset(x, tn.arange(9))
    with pytest.raises(TypeError, match="must be a Tensor, not ndarray"):
        TensorDataset(np.zeros(3))
    sub = Subset(ds, [7, 1, 4])
    assert len(sub) == 3 and sub[0][1].item() == 7
    assert sub.__getitems__([2, 0])[1].tolist() == [4, 7]
    a, b = random_split(ds, [7, 3], generator=tn.Generator().manual_seed(0))
    c, d = random_split(ds, [7, 3], generator=tn.Generator().manual_seed(0))
    assert (len(a), len(b)) == (7, 3) and a.indices == c.indices
    assert sorted(a.indices + b.indices) == list(range(10))
    parts = random_split(ds, [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [5, 3, 2]
    assert [len(p) for p in random_split(TensorDataset(tn.arange(11)), [0.5, 0.5])] == [6, 5]
    with pytest.raises(ValueError, match=r"Sum of input lengths \(9\) does not equal the length of the "
                                         r"input dataset \(10\)"):
        random_split(ds, [5, 4])


class Squares(Dataset):
    """A plain map-style dataset: __getitem__ only (the per-sample path)."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.full(2, i, np.float32), i * i


def test_dataloader_over_a_dataset_like_pytorch():
    loader = DataLoader(Squares(), batch_size=3)
    assert len(loader) == 3 and isinstance(loader.dataset, Squares)
    batches = list(loader)
    xb, yb = batches[0]
    assert xb.shape == (3, 2) and xb.dtype == np.float32 and yb.dtype == np.int64
    assert yb.tolist() == [0, 1, 4] and batches[2][1].tolist() == [36]
    assert len(DataLoader(Squares(), 3, drop_last=True)) == 2
    shuffled = DataLoader(Squares(), batch_size=7, shuffle=True, generator=tn.Generator().manual_seed(3))
    again = DataLoader(Squares(), batch_size=7, shuffle=True, generator=tn.Generator().manual_seed(3))
    epochs = [next(iter(shuffled))[1].tolist() for _ in range(3)]
    assert all(sorted(e) == [0, 1, 4, 9, 16, 25, 36] for e in epochs)
    assert epochs == [next(iter(again))[1].tolist() for _ in range(3)]    # the generator decides
    assert len({tuple(e) for e in epochs}) == 3                           # a new order each epoch
    # accepted for porting: worker/pinning options; a custom collate_fn sees samples
    loader = DataLoader(Squares(), batch_size=2, num_workers=1, pin_memory=True,
                        collate_fn=lambda samples: [s[1] for s in samples])
    assert next(iter(loader)) == [0, 1]
    ds = TensorDataset(tn.arange(4), tn.arange(4) * 2)
    assert next(iter(DataLoader(ds, batch_size=2, collate_fn=lambda s: len(s)))) == 2   # Batch -> samples
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        DataLoader(Squares(), batchsize=2)


def test_array_form_still_works_and_exposes_its_dataset():
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    loader = DataLoader(x, y, batch_size=4, shuffle=True, seed=0)
    again = DataLoader(x, y, batch_size=4, shuffle=True, seed=0)
    assert [b[1].tolist() for b in loader] == [b[1].tolist() for b in again]
    assert isinstance(loader.dataset, TensorDataset) and len(loader.dataset) == 10
    with pytest.raises(TypeError, match="pass batch_size by keyword"):
        DataLoader(x, 4)


def test_default_collate_rules():
    out = default_collate([(1, 2.5, True, "a", {"k": np.ones(2)}), (2, 3.5, False, "b", {"k": np.zeros(2)})])
    ints, floats, bools, strs, d = out
    assert ints.dtype == np.int64 and floats.dtype == np.float64 and bools.dtype == np.bool_
    assert strs == ["a", "b"] and d["k"].shape == (2, 2)
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([tn.zeros(2), tn.zeros(3)])
