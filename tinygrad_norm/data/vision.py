"""torchvision-style datasets: `tn.data.MNIST` and `tn.data.FashionMNIST`.

    train = tn.data.MNIST("data", train=True, download=True, transform=transforms.ToTensor())
    image, label = train[0]            # a (1, 28, 28) float32 Tensor in [0, 1], an int
    loader = tn.data.DataLoader(train, batch_size=64, shuffle=True)

Without a transform an item is (28×28 uint8 ndarray, int label) (torchvision
gives a PIL image there). The files are found, downloaded and checked as by
`tn.data.mnist` (same checksums and structure checks); `root` may hold the four
IDX files directly, or in torchvision's `root/MNIST/raw/` (`FashionMNIST/raw/`)
layout; missing files are downloaded into the torchvision layout.

Batches: `__getitems__` gathers a whole batch with numpy. With no transform, or a
transform made only of pointwise steps (ToTensor, Normalize, a Compose of them),
a 256-entry table holds the transform of every pixel value; the whole set goes
through it once (on the first batch), identical to transforming image by image,
and each batch is then one gather. Any other transform is applied image by image.
"""
import os

import numpy as np

from ..tensor import Tensor
from .dataset import Batch, Dataset
from .datasets import ChecksumError, _DATASETS, _find, load_from

__all__ = ["MNIST", "FashionMNIST"]


class MNIST(Dataset):
    """`MNIST(root, train=True, transform=None, target_transform=None, download=True)`.

    Attributes: `data` (uint8 Tensor (N, 28, 28)), `targets` (int64 Tensor (N,)),
    `classes`, `root`, `train`, `transform`, `target_transform`, and `raw_folder`
    (the directory the files were read from).
    """

    name, folder = "mnist", "MNIST"
    _takes_index_arrays = True  # __getitems__ accepts an int64 array as well as a list
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=True, mirrors=None,
                 verify=True):
        self.root = os.path.expanduser(os.fspath(root))
        self.train, self.transform, self.target_transform = bool(train), transform, target_transform
        split = "train" if self.train else "test"
        images, labels, self.raw_folder = self._load(split, download, mirrors, verify)
        self.data, self.targets = Tensor._wrap(images), Tensor._wrap(labels)
        self._lut, self._lut_of = None, None

    def _candidates(self):
        return [self.root, os.path.join(self.root, self.folder, "raw")]

    def _load(self, split, download, mirrors, verify):
        files = _DATASETS[self.name][0]
        info = files[f"{split}-images"]
        first_error = None
        for directory in self._candidates():
            if _find(directory, info) is None:
                continue
            try:
                images, labels = load_from(self.name, split, directory, False, mirrors, verify)
                return images, labels, directory
            except ChecksumError as e:  # e.g. MNIST's files beside root/FashionMNIST/raw: look further
                first_error = first_error or e
        if first_error is not None:
            raise first_error
        if not download:
            raise FileNotFoundError(
                f"{type(self).__name__} {split} files ({info.name} or {info.name[:-3]}, and the labels) "
                f"are in none of {self._candidates()}; pass download=True, or put them there")
        target = os.path.join(self.root, self.folder, "raw")
        images, labels = load_from(self.name, split, target, True, mirrors, verify)
        return images, labels, target

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self):
        return int(self.data.shape[0])

    def __getitem__(self, index):
        img, target = self.data._data[index], int(self.targets._data[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def _transformed(self):
        """Every image through the (pointwise) transform, (N, 1, 28, 28), computed once per
        transform object via a table of the transform of each pixel value 0..255; None
        when the transform does not give one value per pixel."""
        if self._lut_of is not self.transform:
            # NOTE: one 16×16 image holding every value goes through the very same code as
            # an image would, so the table's entries are exactly the per-image results
            out = self.transform(np.arange(256, dtype=np.uint8).reshape(16, 16))
            ok = isinstance(out, Tensor) and out.shape == (1, 16, 16)
            # NOTE: the whole transformed set is kept (N·784 floats: 188 MB for MNIST train, what
            # mnist_arrays holds too): a batch is then one gather of rows, as fast as the array
            # path; gathering through the table at every batch cost 2.6× that.
            lut = out._data.reshape(256) if ok else None
            self._lut = None if lut is None else lut[self.data._data].reshape(len(self), 1, 28, 28)
            self._lut_of = self.transform
        return self._lut

    def __getitems__(self, indices):
        """A whole batch: a Batch (images, labels) on the fast paths, else a list of samples."""
        idx = np.asarray(indices, dtype=np.int64)
        if self.target_transform is None:
            labels = Tensor._wrap(self.targets._data[idx])
            if self.transform is None:
                return Batch((Tensor._wrap(self.data._data[idx]), labels))
            if getattr(self.transform, "pointwise", False) and self._transformed() is not None:
                return Batch((Tensor._wrap(self._lut[idx]), labels))
        return [self[int(i)] for i in idx]

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}", f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST, the same interface as MNIST; files directly in `root`, in
    `root/FashionMNIST/raw/`, or in `root/fashion_mnist/` (tn.data.fashion_mnist's place)."""

    name, folder = "fashion_mnist", "FashionMNIST"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]

    def _candidates(self):
        return [os.path.join(self.root, self.folder, "raw"), os.path.join(self.root, "fashion_mnist"),
                self.root]
