"""tn.data: MNIST / Fashion-MNIST loading and a DataLoader.

    images, labels = tn.data.mnist("train")               # uint8 (60000, 28, 28), int64 (60000,)
    x, y = tn.data.mnist_arrays("train")                   # float32 (60000, 784) in [0, 1]
    for xb, yb in tn.data.DataLoader(x, y, batch_size=60, shuffle=True):
        ...

    train = tn.data.MNIST(root, train=True, transform=tn.data.transforms.ToTensor())   # torchvision style
    loader = tn.utils.data.DataLoader(train, batch_size=64, shuffle=True)           # torch.utils.data style

Files: idx.py (the IDX format), download.py (mirrors, atomic download,
progress bar), datasets.py (where the MNIST files are, checksums, loading),
dataset.py (Dataset, TensorDataset, Subset, random_split, collate), loader.py,
vision.py (MNIST, FashionMNIST datasets), transforms.py.
"""
from .download import DownloadError, download_file
from .idx import DataFileError, read_idx, write_idx
from .loader import DataLoader
from .datasets import ChecksumError, default_root, fashion_mnist, mnist, mnist_arrays
from .dataset import Dataset, Subset, TensorDataset, default_collate, random_split
from .vision import MNIST, FashionMNIST
from . import transforms  # noqa: E402  (tn.data.transforms: ToTensor, Normalize, Compose)

__all__ = ["mnist", "fashion_mnist", "mnist_arrays", "DataLoader", "default_root", "read_idx",
           "write_idx", "download_file", "DataFileError", "ChecksumError", "DownloadError",
           "MNIST", "FashionMNIST", "Dataset", "TensorDataset", "Subset", "random_split", "default_collate"]
