"""DataLoader: mini-batches of several equally long arrays, as tuples of Tensors.

    x, y = tn.data.mnist_arrays("train")                     # float32 (60000, 784), int64
    loader = tn.data.DataLoader(x, y, batch_size=60, shuffle=True, seed=0)
    for epoch in range(3):
        for xb, yb in loader:                                # Tensors (60, 784), (60,)
            ...

Shuffling (a fresh permutation at every `for` loop over the loader, as in PyTorch):
- `seed=None`: each epoch's permutation is drawn from the library generator
  (`tinygrad_norm.random.generator()`), so `tn.manual_seed(s)` before building
  the model and iterating reproduces the whole run.
- `seed=s`: epoch k's permutation depends only on (s, k): a new loader with the
  same seed gives the same sequence of epochs, independent of any other random
  draw. `loader.set_epoch(k)` selects the epoch the next iteration uses (to
  resume a run); `loader.epoch` counts the iterations started so far.
Dtypes are kept: uint8 MNIST images stay uint8 (convert with `.float() / 255`
or `mnist_arrays`, or pass `transform`).
"""
import numpy as np

from .. import random as _random
from ..tensor import Tensor


class DataLoader:
    """`DataLoader(*arrays, batch_size=1, shuffle=False, drop_last=False, seed=None, transform=None)`

    Args:
        *arrays: ndarrays or Tensors with the same first dimension (the samples).
        batch_size: samples per batch (keyword argument).
        shuffle: a new random order of the samples at every epoch.
        drop_last: skip the last batch when it is smaller than batch_size.
        seed: None = shuffle with the library generator (tn.manual_seed reproduces it);
            an int = epoch k uses a permutation determined by (seed, k) alone.
        transform: `transform(*batch)` -> the tuple (or single value) to yield, e.g.
            `lambda x, y: (x.float() / 255, y)`.
    Yields: a tuple of Tensors (one per array), never requiring grad.
    `len(loader)` is the number of batches per epoch.
    """

    def __init__(self, *arrays, batch_size=1, shuffle=False, drop_last=False, seed=None, transform=None):
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        data = []
        for i, a in enumerate(arrays):
            if isinstance(a, (int, np.integer)) and not isinstance(a, np.ndarray):
                raise TypeError(f"DataLoader: argument {i} is the number {a}; pass batch_size by keyword: "
                                f"DataLoader(x, y, batch_size={a})")
            arr = a._data if isinstance(a, Tensor) else np.asarray(a)
            if arr.ndim == 0:
                raise ValueError(f"DataLoader: array {i} is a scalar; each array needs a first "
                                 f"dimension indexing the samples")
            if arr.dtype.kind == "f" and arr.dtype not in (np.float32, np.float64):
                arr = arr.astype(np.float32)  # float16 -> float32, as Tensor does
            elif arr.dtype.kind not in "iufb":
                raise TypeError(f"DataLoader: array {i} has dtype {arr.dtype}; tensors hold numbers")
            data.append(arr)
        lengths = [len(a) for a in data]
        if len(set(lengths)) > 1:
            raise ValueError(f"DataLoader: all arrays must have the same length (first dimension), got "
                             f"lengths {', '.join(map(str, lengths))} (shapes "
                             f"{', '.join(str(a.shape) for a in data)})")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
        self.arrays = tuple(data)
        self.n = lengths[0]
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        self.seed, self.transform = seed, transform
        self.epoch = 0

    def __len__(self):
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def set_epoch(self, epoch):
        """Make the next iteration use epoch `epoch`'s order (with an explicit seed)."""
        self.epoch = int(epoch)

    def order(self, epoch=None):
        """The sample order of an epoch (an int64 array; arange when not shuffling).
        With seed=None this draws from the library generator."""
        if not self.shuffle:
            return np.arange(self.n)
        if self.seed is None:
            return _random.generator().permutation(self.n)
        epoch = self.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self):
        order = self.order()
        self.epoch += 1
        stop = len(self) * self.batch_size
        for start in range(0, stop, self.batch_size):
            index = order[start:start + self.batch_size]
            # NOTE: fancy indexing copies: changing a batch in place never changes the dataset
            batch = tuple(Tensor._wrap(a[index]) for a in self.arrays)
            yield self.transform(*batch) if self.transform is not None else batch

    def __repr__(self):
        shapes = ", ".join(str(a.shape) for a in self.arrays)
        return (f"DataLoader({shapes}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed})")
