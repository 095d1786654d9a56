"""PyTorch's dataset classes (torch.utils.data): Dataset, TensorDataset, Subset, random_split,
and the default collate that turns a list of samples into a batch.

    ds = TensorDataset(tn.tensor(x), tn.tensor(y))
    train, val = random_split(ds, [0.9, 0.1], generator=tn.Generator().manual_seed(0))
    loader = DataLoader(train, batch_size=64, shuffle=True)

The batched path: a dataset may define `__getitems__(indices)` (as torch's
DataLoader allows) and return a whole batch at once, instead of the loader
calling `__getitem__` once per sample in Python. Ours return a `Batch` (a tuple
of Tensors, first dim = len(indices)), which the loader yields as it is;
TensorDataset, Subset and tn.data.MNIST take this path.
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .. import random as _random
from ..tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "default_collate", "Batch"]


class Batch(tuple):
    """A collated batch returned by `__getitems__`: one Tensor per field, first dim = batch size."""

    def samples(self):
        """The per-sample form (a list of tuples), for a user's collate_fn."""
        return [tuple(field[i] for field in self) for i in range(len(self[0]))]


class Dataset:
    """Base class of map-style datasets: `__getitem__(i)` -> one sample, `__len__()`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


class TensorDataset(Dataset):
    """Samples are `tuple(t[i] for t in tensors)`; all tensors share their first dim."""

    _takes_index_arrays = True  # __getitems__ accepts an int64 array as well as a list

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} must be a Tensor, not {type(t).__name__}; "
                                f"wrap arrays with tn.tensor(x) or tn.from_numpy(x)")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; each needs a first dim (the samples)")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            raise ValueError(f"Size mismatch between tensors: first dims {sizes} (shapes "
                             f"{[tuple(t.shape) for t in tensors]})")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        idx = indices if isinstance(indices, np.ndarray) else np.asarray(indices, dtype=np.int64)
        # NOTE: fancy indexing copies: changing a batch in place never changes the dataset
        return Batch([Tensor._wrap(t._data[idx]) for t in self.tensors])

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    _takes_index_arrays = True

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)
        self._index_array = None  # self.indices as an int64 array, made on the first batch

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices):
        if getattr(self.dataset, "_takes_index_arrays", False):
            if self._index_array is None or len(self._index_array) != len(self.indices):
                self._index_array = np.asarray(self.indices, dtype=np.int64)
            return self.dataset.__getitems__(self._index_array[np.asarray(indices, dtype=np.int64)])
        inner = [self.indices[i] for i in indices]
        if hasattr(self.dataset, "__getitems__"):
            return self.dataset.__getitems__(inner)
        return [self.dataset[i] for i in inner]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping Subsets of the given lengths (ints summing to
    len(dataset), or fractions summing to 1: floors, then the remainder one by one from
    the first, as in PyTorch). `generator`: a tn.Generator (default: the library's)."""
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for frac, count in zip(lengths, counts):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {lengths.index(frac)} is not between 0 and 1")
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"Sum of input lengths ({sum(lengths)}) does not equal the length of the input "
                         f"dataset ({n})")
    rng = generator.rng if generator is not None else _random.generator()
    order = rng.permutation(n).tolist()
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, order[start:start + length]))
        start += length
    return out


def default_collate(batch):
    """A list of samples -> a batch, as torch's default_collate: Tensors and arrays are
    stacked, Python ints become int64, floats float64, bools bool; tuples and dicts are
    collated field by field; strings stay a list."""
    if isinstance(batch, Batch):
        return tuple(batch)
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {t.shape for t in batch}
        if len(shapes) > 1:
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, got shapes "
                               f"{sorted(shapes)}")
        return Tensor._wrap(np.stack([t._data for t in batch]))
    if isinstance(elem, np.ndarray):
        return Tensor._wrap(np.stack(batch))
    if isinstance(elem, (bool, np.bool_)):
        return Tensor._wrap(np.array(batch, bool))
    if isinstance(elem, (int, np.integer)):
        return Tensor._wrap(np.array(batch, np.int64))
    if isinstance(elem, (float, np.floating)):
        return Tensor._wrap(np.array(batch, np.float64 if isinstance(elem, float) else elem.dtype))
    if isinstance(elem, str):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, Sequence):
        if len({len(s) for s in batch}) > 1:
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        return tuple(default_collate(list(field)) for field in zip(*batch))
    raise TypeError(f"default_collate: batch must contain Tensors, numpy arrays, numbers, dicts or "
                    f"lists; found {type(elem).__name__}")
