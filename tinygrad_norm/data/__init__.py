"""tn.data: MNIST / Fashion-MNIST loading and a DataLoader.

    images, labels = tn.data.mnist("train")               # uint8 (60000, 28, 28), int64 (60000,)
    x, y = tn.data.mnist_arrays("train")                   # float32 (60000, 784) in [0, 1]
    for xb, yb in tn.data.DataLoader(x, y, batch_size=60, shuffle=True):
        ...

Files: idx.py (the IDX format), download.py (mirrors, atomic download,
progress bar), datasets.py (where the MNIST files are, checksums, loading), loader.py.
"""
from .download import DownloadError, download_file
from .idx import DataFileError, read_idx, write_idx
from .loader import DataLoader
from .datasets import ChecksumError, default_root, fashion_mnist, mnist, mnist_arrays

__all__ = ["mnist", "fashion_mnist", "mnist_arrays", "DataLoader", "default_root", "read_idx",
           "write_idx", "download_file", "DataFileError", "ChecksumError", "DownloadError"]
