"""MNIST and Fashion-MNIST: find, download, verify and load the IDX files.

    images, labels = tn.data.mnist("train")       # uint8 (60000, 28, 28), int64 (60000,)
    x, y = tn.data.mnist_arrays("test")            # float32 (10000, 784) in [0, 1], int64

Where the files live (the first that is set):
  1. the `root` argument,
  2. the environment variable `$TINYGRAD_NORM_DATA`,
  3. the user's cache directory: `$XDG_CACHE_HOME/tinygrad_norm` or
     `~/.cache/tinygrad_norm` on Linux, `~/Library/Caches/tinygrad_norm` on macOS,
     `%LOCALAPPDATA%\\tinygrad_norm\\Cache` on Windows.
MNIST's files sit directly in that directory, Fashion-MNIST's in its
subfolder `fashion_mnist/`, under their standard names
(`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
`t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`), gzipped or not
(`train-images-idx3-ubyte`). Missing files are downloaded when
`download=True`, from `MNIST_MIRRORS` / `FASHION_MNIST_MIRRORS` (module
attributes, or the `mirrors=` argument), tried in order.

Checks. Every load checks the structure (magic number, shapes, image and
label counts, label range) and, unless `verify=False`, the checksums: the
sha256 (or md5) of the published `.gz` file, or, for MNIST, the sha256 of the
decompressed content (so a file that was gunzipped, or re-compressed by a
mirror, is still recognized). The Fashion-MNIST table holds the published gz
sha256 and md5 (agreeing across several independent sources) but no
decompressed-content checksum: an uncompressed Fashion-MNIST file is checked
for structure only, and a re-compressed one fails the check (pass verify=False).
"""
import hashlib
import os
import sys
from dataclasses import dataclass

import numpy as np

from .download import download_file
from .idx import DataFileError, decompress, parse_idx


class ChecksumError(DataFileError):
    """A data file's content is not the published file's."""


@dataclass(frozen=True)
class FileInfo:
    """One published file: its name and checksums (None where unknown)."""
    name: str             # e.g. "train-images-idx3-ubyte.gz"
    sha256: str | None    # of the published .gz file
    md5: str | None       # of the published .gz file
    raw_sha256: str | None  # of the decompressed IDX content


MNIST_FILES = {
    "train-images": FileInfo("train-images-idx3-ubyte.gz",
                             "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                             "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                             "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels": FileInfo("train-labels-idx1-ubyte.gz",
                             "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                             "d53e105ee54ea40749a09fcbcd1e9432",
                             "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test-images": FileInfo("t10k-images-idx3-ubyte.gz",
                            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                            "9fb629c4189551a2d022fa330f9573f3",
                            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test-labels": FileInfo("t10k-labels-idx1-ubyte.gz",
                            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                            "ec29112dd5afa0611ce80d1b7f02629c",
                            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

FASHION_MNIST_FILES = {
    "train-images": FileInfo("train-images-idx3-ubyte.gz",
                             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                             "8d4fb7e6c68d591d4c3dfef9ec88bf0d", None),
    "train-labels": FileInfo("train-labels-idx1-ubyte.gz",
                             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                             "25c81989df183df01b3e8a0aad5dffbe", None),
    "test-images": FileInfo("t10k-images-idx3-ubyte.gz",
                            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                            "bef4ecab320f06d8554ea6380940ec79", None),
    "test-labels": FileInfo("t10k-labels-idx1-ubyte.gz",
                            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                            "bb300cfdad3c16e7a12a480ee83cd310", None),
}

# Tried in order. Overridable: assign to these attributes or pass mirrors=[...].
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",        # PyTorch's mirror
    "https://storage.googleapis.com/cvdf-datasets/mnist/",   # TensorFlow's mirror
    "http://yann.lecun.com/exdb/mnist/",                     # the original site
]
FASHION_MNIST_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]

# Mean and std of the training pixels scaled to [0, 1] (the constants of
# torchvision examples; tests check the MNIST pair against the data).
STATS = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}

_DATASETS = {  # name -> (files, name of the mirrors attribute, subfolder)
    "mnist": (MNIST_FILES, "MNIST_MIRRORS", ""),
    "fashion_mnist": (FASHION_MNIST_FILES, "FASHION_MNIST_MIRRORS", "fashion_mnist"),
}


# ------------------------------------------------------------------ directories

def default_root():
    """`$TINYGRAD_NORM_DATA` if set, else the user's cache directory for tinygrad_norm."""
    env = os.environ.get("TINYGRAD_NORM_DATA")
    if env:
        return os.path.expanduser(env)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "tinygrad_norm", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/tinygrad_norm")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "tinygrad_norm")


def dataset_dir(dataset="mnist", root=None):
    """The directory holding `dataset`'s files."""
    _, _, sub = _DATASETS[dataset]
    root = os.path.expanduser(os.fspath(root)) if root is not None else default_root()
    return os.path.join(root, sub) if sub else root


# --------------------------------------------------------------------- checking

def _hex(algorithm, data):
    return hashlib.new(algorithm, data, usedforsecurity=False).hexdigest()


def check_content(raw, content, info, path):
    """Raise ChecksumError unless the file bytes `raw` (gzipped or not; `content`
    is their decompressed form) match the published checksums of `info`.

    Accepted: the published .gz (its sha256 or its md5), or any
    file whose decompressed content has the known content sha256. When neither
    checksum applies (an uncompressed file without a content checksum) nothing
    is checked here."""
    is_gz = raw is not content
    if is_gz:
        if info.sha256 is not None and _hex("sha256", raw) == info.sha256:
            return
        if info.md5 is not None and _hex("md5", raw) == info.md5:
            return
    if info.raw_sha256 is not None:
        got = _hex("sha256", content)
        if got == info.raw_sha256:
            return
        raise ChecksumError(
            f"{path}: checksum mismatch: the decompressed content has sha256 {got}, expected "
            f"{info.raw_sha256} ({info.name}); the file is corrupt or not the published one. "
            f"Delete it to download it again.")
    if is_gz and (info.sha256 or info.md5):
        algo, want = ("sha256", info.sha256) if info.sha256 else ("md5", info.md5)
        raise ChecksumError(
            f"{path}: checksum mismatch: {algo} {_hex(algo, raw)}, expected {want} (the published "
            f"{info.name}); the file is corrupt or not the published one. Delete it to download it again.")


def load_checked(path, info, kind, verify=True):
    """Read one IDX file, check structure ("images": (N, 28, 28) uint8; "labels":
    (N,) uint8 in 0..9) and, if `verify`, checksums. Returns the ndarray."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    content = decompress(raw, path)
    array = parse_idx(content, path)
    if kind == "images":
        if array.ndim != 3 or array.shape[1:] != (28, 28) or array.dtype != np.uint8:
            raise DataFileError(f"{path}: wrong dimensions: expected uint8 images of shape (N, 28, 28), "
                                f"got {array.dtype} of shape {array.shape}")
    else:
        if array.ndim != 1 or array.dtype != np.uint8:
            raise DataFileError(f"{path}: wrong dimensions: expected uint8 labels of shape (N,), "
                                f"got {array.dtype} of shape {array.shape}")
        if array.size and array.max() > 9:
            raise DataFileError(f"{path}: label {int(array.max())} out of range 0..9")
    if verify:
        check_content(raw, content, info, path)
    return array


# ---------------------------------------------------------------------- loading

def _find(directory, info):
    """The existing path of `info`'s file in `directory` (uncompressed first), or None."""
    for name in (info.name[:-3], info.name):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _checker(info, kind):
    return lambda path: load_checked(path, info, kind)


def load(dataset, split="train", root=None, download=True, mirrors=None, verify=True, progress=True):
    """(images uint8 [N,28,28], labels int64 [N]) of `dataset` ("mnist" or "fashion_mnist")."""
    if dataset not in _DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(_DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return load_from(dataset, split, dataset_dir(dataset, root), download, mirrors, verify, progress)


def load_from(dataset, split, directory, download=True, mirrors=None, verify=True, progress=True):
    """`load` with the directory of the files given exactly (tn.data.MNIST's layouts)."""
    files, mirrors_attr, _ = _DATASETS[dataset]
    arrays = {}
    for kind in ("images", "labels"):
        info = files[f"{split}-{kind}"]
        path = _find(directory, info)
        if path is None:
            if not download:
                raise FileNotFoundError(
                    f"{dataset} {split} {kind}: neither {info.name} nor {info.name[:-3]} is in {directory}; "
                    f"pass download=True, or put the files there, or point $TINYGRAD_NORM_DATA "
                    f"(or root=) to the directory that has them")
            urls = mirrors if mirrors is not None else getattr(sys.modules[__name__], mirrors_attr)
            path = download_file(info.name, urls, directory, verify=_checker(info, kind), progress=progress)
        arrays[kind] = load_checked(path, info, kind, verify=verify)
    images, labels = arrays["images"], arrays["labels"]
    if len(images) != len(labels):
        raise DataFileError(f"{directory}: {dataset} {split} has {len(images)} images but "
                            f"{len(labels)} labels (files {files[split + '-images'].name} and "
                            f"{files[split + '-labels'].name})")
    return images, labels.astype(np.int64)


def mnist(split="train", root=None, download=True, mirrors=None, verify=True, progress=True):
    """MNIST digits: `(images uint8 [N, 28, 28], labels int64 [N])`, N = 60000 (train) or 10000 (test).

    Args:
        split: "train" or "test".
        root: the directory with the IDX files. Default: `$TINYGRAD_NORM_DATA`, then
            the user cache directory (see `default_root()`).
        download: download missing files (checksum verified before they enter the cache).
        mirrors: base URLs to download from, in order. Default: `MNIST_MIRRORS`.
        verify: check the files' checksums on every load (≈0.1 s); structure is always checked.
        progress: progress bar on stderr while downloading.
    Raises DataFileError / ChecksumError naming the file and the problem,
    FileNotFoundError (download=False, files missing), DownloadError (every mirror failed).
    """
    return load("mnist", split, root, download, mirrors, verify, progress)


def fashion_mnist(split="train", root=None, download=True, mirrors=None, verify=True, progress=True):
    """Fashion-MNIST (Zalando): same signature and format as `mnist`; files in `root/fashion_mnist/`.
    Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
    7 Sneaker, 8 Bag, 9 Ankle boot."""
    return load("fashion_mnist", split, root, download, mirrors, verify, progress)


def mnist_arrays(split="train", flatten=True, normalize=True, dataset="mnist", dtype=np.float32, **kwargs):
    """MNIST (or Fashion-MNIST) as float arrays ready for a model: `(x, y)`.

    x: `dtype` array of shape (N, 784) if `flatten`, else (N, 1, 28, 28) (NCHW for conv nets).
    normalize:
        True or "unit": pixels / 255, in [0, 1];
        "standard": (pixels / 255 − mean) / std with the training set's mean and std
            (`STATS`: MNIST 0.1307, 0.3081; Fashion-MNIST 0.2860, 0.3530);
        False: raw pixel values 0..255 as floats.
    y: int64 labels (N,). Other keyword arguments (root, download, ...) go to `mnist`.
    """
    if not (normalize is True or normalize is False or normalize in ("unit", "standard")):
        raise ValueError(f"normalize must be True/'unit', 'standard' or False, got {normalize!r}")
    images, labels = load(dataset, split, **kwargs)
    x = images.astype(dtype)
    if normalize is not False:
        x /= 255
    if normalize == "standard":
        mean, std = STATS[dataset]
        x -= np.dtype(dtype).type(mean)
        x /= np.dtype(dtype).type(std)
    x = x.reshape(len(x), 784) if flatten else x.reshape(len(x), 1, 28, 28)
    return x, labels
