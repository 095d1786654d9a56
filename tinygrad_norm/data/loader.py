"""DataLoader: mini-batches from a Dataset (PyTorch's form) or from equally long arrays.

    loader = tn.data.DataLoader(dataset, batch_size=64, shuffle=True)   # torch.utils.data style
    x, y = tn.data.mnist_arrays("train")                               # float32 (60000, 784), int64
    loader = tn.data.DataLoader(x, y, batch_size=60, shuffle=True, seed=0)
    for epoch in range(3):
        for xb, yb in loader:                                          # Tensors (60, 784), (60,)
            ...

The two forms are one loader: arrays are wrapped in a TensorDataset. Each batch
comes from the dataset's `__getitems__(indices)` when it has one (one numpy
gather for a TensorDataset or tn.data.MNIST), else from `__getitem__` per
sample, then `collate_fn` (default: `default_collate`, which stacks).

Shuffling (a fresh permutation at every `for` loop over the loader, as in PyTorch):
- `generator=g` (a tn.Generator): each epoch's permutation is drawn from g;
- `seed=None` (default): drawn from the library generator, so `tn.manual_seed(s)`
  before building the model and iterating reproduces the whole run;
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
from .dataset import Batch, Dataset, TensorDataset, default_collate

# accepted for porting and ignored: batches are made in this process (no workers to start)
_IGNORED = ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "timeout",
            "worker_init_fn", "multiprocessing_context", "pin_memory_device", "in_order")


def _is_dataset(obj):
    return (isinstance(obj, Dataset) or (hasattr(obj, "__getitem__") and hasattr(obj, "__len__")
            and not isinstance(obj, (np.ndarray, Tensor, str, bytes))))


def _as_array(a, i):
    """Argument i of the array form, as an ndarray of numbers with a first dim."""
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
    return arr


class DataLoader:
    """`DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, generator=None, collate_fn=None)`
    or `DataLoader(*arrays, batch_size=1, shuffle=False, drop_last=False, seed=None, transform=None)`.

    Args:
        dataset: a Dataset (anything with __getitem__ and __len__), as in PyTorch; or
        *arrays: ndarrays or Tensors with the same first dimension (the samples).
        batch_size: samples per batch (by keyword in the array form).
        shuffle: a new random order of the samples at every epoch.
        drop_last: skip the last batch when it is smaller than batch_size.
        generator: a tn.Generator to draw the shuffles from.
        seed: None = shuffle with the library generator (tn.manual_seed reproduces it);
            an int = epoch k uses a permutation determined by (seed, k) alone.
        collate_fn: a list of samples -> a batch (default: default_collate).
        transform: `transform(*batch)` -> the tuple (or single value) to yield, e.g.
            `lambda x, y: (x.float() / 255, y)`.
        num_workers, pin_memory, persistent_workers, ...: accepted and ignored (batches are
            made in this process).
    Yields: a tuple of Tensors (one per field), never requiring grad.
    `len(loader)` is the number of batches per epoch; `loader.dataset` the dataset.
    """

    def __init__(self, *arrays, batch_size=1, shuffle=False, drop_last=False, seed=None, transform=None,
                 generator=None, collate_fn=None, sampler=None, batch_sampler=None, **ignored):
        unknown = set(ignored) - set(_IGNORED)
        if unknown:
            raise TypeError(f"DataLoader got an unexpected keyword argument {sorted(unknown)[0]!r}")
        if sampler is not None or batch_sampler is not None:
            raise NotImplementedError("DataLoader: sampler and batch_sampler are not supported; use "
                                      "shuffle=True, or a Subset of the dataset")
        if not arrays:
            raise ValueError("DataLoader needs at least one array, or a dataset")
        if _is_dataset(arrays[0]):
            if len(arrays) > 3:
                raise TypeError("DataLoader(dataset, batch_size, shuffle): pass the other arguments by "
                                "keyword")
            dataset, positional = arrays[0], arrays[1:]
            if positional:
                batch_size = positional[0]
            if len(positional) > 1:
                shuffle = positional[1]
            self.arrays = None
        else:
            data = [_as_array(a, i) for i, a in enumerate(arrays)]
            lengths = [len(a) for a in data]
            if len(set(lengths)) > 1:
                raise ValueError(f"DataLoader: all arrays must have the same length (first dimension), got "
                                 f"lengths {', '.join(map(str, lengths))} (shapes "
                                 f"{', '.join(str(a.shape) for a in data)})")
            self.arrays = tuple(data)
            dataset = TensorDataset(*[Tensor._wrap(a) for a in data])
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
        if generator is not None and not isinstance(generator, _random.Generator):
            raise TypeError(f"generator must be a tn.Generator, got {type(generator).__name__}")
        self.dataset = dataset
        self.n = len(dataset)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        self.seed, self.transform, self.generator = seed, transform, generator
        self.collate_fn = collate_fn
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
        With seed=None this draws from the generator (the loader's, or the library's)."""
        if not self.shuffle:
            return np.arange(self.n)
        if self.generator is not None:
            return self.generator.rng.permutation(self.n)
        if self.seed is None:
            return _random.generator().permutation(self.n)
        epoch = self.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def _fetch(self, getitems, index):
        """One batch for the sample indices `index` (an int64 array)."""
        if getitems is None:
            data = [self.dataset[int(i)] for i in index]
        else:
            # NOTE: our datasets take the index array as it is; others get a list, as torch gives
            data = getitems(index if getattr(self.dataset, "_takes_index_arrays", False) else index.tolist())
        if isinstance(data, Batch):
            if self.collate_fn is None:
                return tuple(data)
            data = data.samples()
        return (self.collate_fn or default_collate)(data)

    def __iter__(self):
        order = self.order()
        self.epoch += 1
        stop = len(self) * self.batch_size
        getitems = getattr(self.dataset, "__getitems__", None)
        for start in range(0, stop, self.batch_size):
            batch = self._fetch(getitems, order[start:start + self.batch_size])
            if self.transform is not None:
                batch = self.transform(*batch) if isinstance(batch, tuple) else self.transform(batch)
            yield batch

    def __repr__(self):
        what = (", ".join(str(a.shape) for a in self.arrays) if self.arrays is not None
                else type(self.dataset).__name__)
        return (f"DataLoader({what}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed})")
