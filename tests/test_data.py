"""tn.data: the IDX reader and its validation, MNIST/Fashion-MNIST loading, roots."""
import gzip
import hashlib
import os

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.data import datasets as mnist_mod, idx
from tinygrad_norm.data import ChecksumError, DataFileError, read_idx, write_idx

MNIST_DIR = os.environ.get("TINYGRAD_NORM_DATA") or "/work/shared/datasets/mnist"
HAVE_MNIST = os.path.isfile(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz")) or \
    os.path.isfile(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte"))
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="MNIST files not found ($TINYGRAD_NORM_DATA)")


def small_split(tmp_path, n=5, n_labels=None, sub="", gz=True):
    """Write a tiny MNIST-format test split into tmp_path/sub; returns (images, labels, dir)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n_labels if n_labels is not None else n).astype(np.uint8)
    d = tmp_path / sub
    ext = ".gz" if gz else ""
    write_idx(d / ("t10k-images-idx3-ubyte" + ext), images)
    write_idx(d / ("t10k-labels-idx1-ubyte" + ext), labels)
    return images, labels, d


# ---------------------------------------------------------------- IDX format

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, dtype, gz):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == (2, 3, 4)
    np.testing.assert_array_equal(a, b)
    b[0, 0, 0] = 7  # the result is writable and native-endian
    assert b.dtype.isnative


def test_idx_header_bytes_follow_the_format():
    # uint8 (2, 3): magic 00 00 08 02, dims 2 and 3 big-endian, then the 6 values
    data = idx.encode_idx(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert data == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5])
    # int16 values are stored big-endian
    assert idx.encode_idx(np.array([258], np.int16))[-2:] == bytes([1, 2])


def test_idx_wrong_magic(tmp_path):
    p = tmp_path / "bad-idx"
    p.write_bytes(b"\x08\x03\x00\x00" + bytes(20))
    with pytest.raises(DataFileError, match=r"bad-idx: wrong magic number 0x08030000"):
        read_idx(p)
    p.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))  # unknown type code
    with pytest.raises(DataFileError, match="wrong magic number 0x00004201"):
        read_idx(p)


def test_idx_truncated_header_and_content(tmp_path):
    full = idx.encode_idx(np.zeros((4, 28, 28), np.uint8))
    p = tmp_path / "short"
    p.write_bytes(full[:2])
    with pytest.raises(DataFileError, match="short: truncated IDX file"):
        read_idx(p)
    p.write_bytes(full[:10])
    with pytest.raises(DataFileError, match="truncated IDX header"):
        read_idx(p)
    p.write_bytes(full[:-1])
    with pytest.raises(DataFileError, match=r"short: truncated content: .*shape \(4, 28, 28\) \(3152 bytes\).*3151"):
        read_idx(p)
    p.write_bytes(full + b"\x00\x00")
    with pytest.raises(DataFileError, match="2 unexpected bytes after the content"):
        read_idx(p)


def test_idx_truncated_and_corrupt_gzip(tmp_path):
    data = gzip.compress(idx.encode_idx(np.arange(1000, dtype=np.int32)))
    p = tmp_path / "x.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match=r"x.gz: truncated gzip file"):
        read_idx(p)
    bad = bytearray(data)
    bad[-8] ^= 0xFF  # the CRC32 of the content
    p.write_bytes(bytes(bad))
    with pytest.raises(DataFileError, match=r"x.gz: corrupt gzip file"):
        read_idx(p)


def test_write_idx_is_atomic_and_leaves_no_temp(tmp_path):
    write_idx(tmp_path / "a", np.ones(3, np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["a"]


# ------------------------------------------------------------ MNIST loading

def test_small_split_loads(tmp_path):
    images, labels, d = small_split(tmp_path)
    x, y = tn.data.mnist("test", root=tmp_path, download=False, verify=False)
    assert x.dtype == np.uint8 and x.shape == (5, 28, 28)
    assert y.dtype == np.int64 and y.shape == (5,)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_uncompressed_files_are_found(tmp_path):
    images, labels, _ = small_split(tmp_path, gz=False)
    x, y = tn.data.mnist("test", root=tmp_path, download=False, verify=False)
    np.testing.assert_array_equal(x, images)


def test_count_mismatch_names_both_files(tmp_path):
    small_split(tmp_path, n=5, n_labels=4)
    with pytest.raises(DataFileError, match=r"has 5 images but 4 labels .*t10k-images-idx3-ubyte.gz.*"
                                            r"t10k-labels-idx1-ubyte.gz"):
        tn.data.mnist("test", root=tmp_path, download=False, verify=False)


def test_wrong_dimensions(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 32, 32), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte.gz: wrong dimensions: .*\(N, 28, 28\)"
                                            r".*\(3, 32, 32\)"):
        tn.data.mnist("test", root=tmp_path, download=False, verify=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((3, 1), np.uint8))
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte.gz: wrong dimensions"):
        tn.data.mnist("test", root=tmp_path, download=False, verify=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 12, 3], np.uint8))
    with pytest.raises(DataFileError, match=r"label 12 out of range 0..9"):
        tn.data.mnist("test", root=tmp_path, download=False, verify=False)


def test_checksum_mismatch_names_file_and_digests(tmp_path):
    small_split(tmp_path)  # structurally valid, but not the published MNIST files
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte.gz: checksum mismatch: .*expected "
                                            r"0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"):
        tn.data.mnist("test", root=tmp_path, download=False)
    small_split(tmp_path, sub="fashion_mnist")  # Fashion: only the gz checksums are known
    with pytest.raises(ChecksumError, match=r"fashion_mnist.t10k-images-idx3-ubyte.gz: checksum mismatch: "
                                            r"sha256 [0-9a-f]{64}, expected 346e55b948d973a97e58"):
        tn.data.fashion_mnist("test", root=tmp_path, download=False)


def test_check_content_accepts_published_gz_by_sha256_or_md5():
    raw = b"\x1f\x8b not really gzip"
    content = b"content"
    info = mnist_mod.FileInfo("f.gz", hashlib.sha256(raw).hexdigest(), None, "0" * 64)
    mnist_mod.check_content(raw, content, info, "f.gz")  # gz sha256 matches
    info = mnist_mod.FileInfo("f.gz", "0" * 64, hashlib.md5(raw).hexdigest(), None)
    mnist_mod.check_content(raw, content, info, "f.gz")  # md5 matches
    # re-compressed file: the gz digests differ but the content digest matches
    info = mnist_mod.FileInfo("f.gz", "0" * 64, None, hashlib.sha256(content).hexdigest())
    mnist_mod.check_content(raw, content, info, "f.gz")
    with pytest.raises(ChecksumError, match="f.gz: checksum mismatch: the decompressed content"):
        mnist_mod.check_content(raw, b"other", info, "f.gz")


def test_missing_files_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"neither t10k-images-idx3-ubyte.gz nor t10k-images-idx3-ubyte"
                                                r" is in .*TINYGRAD_NORM_DATA"):
        tn.data.mnist("test", root=tmp_path / "empty", download=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        tn.data.mnist("val", download=False)
    with pytest.raises(ValueError, match="normalize must be"):
        tn.data.mnist_arrays("test", normalize="zscore", root="/nonexistent", download=False)


# ------------------------------------------------------------------- roots

def test_default_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGRAD_NORM_DATA", str(tmp_path / "env"))
    assert tn.data.default_root() == str(tmp_path / "env")
    monkeypatch.delenv("TINYGRAD_NORM_DATA")
    if os.sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert tn.data.default_root() == str(tmp_path / "xdg" / "tinygrad_norm")
        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert tn.data.default_root() == str(tmp_path / "home" / ".cache" / "tinygrad_norm")


def test_env_root_is_used_and_argument_wins(monkeypatch, tmp_path):
    images, _, _ = small_split(tmp_path, sub="a")
    other, _, _ = small_split(tmp_path, n=3, sub="b")
    monkeypatch.setenv("TINYGRAD_NORM_DATA", str(tmp_path / "a"))
    assert tn.data.mnist("test", download=False, verify=False)[0].shape == (5, 28, 28)
    assert tn.data.mnist("test", root=tmp_path / "b", download=False, verify=False)[0].shape == (3, 28, 28)


def test_fashion_lives_in_its_subfolder(tmp_path):
    images, labels, _ = small_split(tmp_path, n=4, sub="fashion_mnist")
    x, y = tn.data.fashion_mnist("test", root=tmp_path, download=False, verify=False)
    np.testing.assert_array_equal(x, images)
    with pytest.raises(FileNotFoundError):
        tn.data.mnist("test", root=tmp_path, download=False)


# -------------------------------------------------------------- real MNIST

@needs_mnist
def test_real_mnist_test_split():
    x, y = tn.data.mnist("test", root=MNIST_DIR, download=False)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]   # the well-known first test labels
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x.min() == 0 and x.max() == 255


@needs_mnist
def test_real_mnist_train_and_normalization_constants():
    x, y = tn.data.mnist_arrays("train", root=MNIST_DIR, download=False)
    assert x.shape == (60000, 784) and x.dtype == np.float32 and y.shape == (60000,)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y[:5].tolist() == [5, 0, 4, 1, 9]
    mean, std = mnist_mod.STATS["mnist"]
    assert abs(float(x.mean(dtype=np.float64)) - mean) < 1e-4
    assert abs(float(x.std(dtype=np.float64)) - std) < 1e-4
    xs, _ = tn.data.mnist_arrays("test", flatten=False, normalize="standard", root=MNIST_DIR, download=False)
    raw, _ = tn.data.mnist("test", root=MNIST_DIR, download=False)
    assert xs.shape == (10000, 1, 28, 28) and xs.dtype == np.float32
    np.testing.assert_allclose(xs[:, 0], (raw / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    x255, _ = tn.data.mnist_arrays("test", normalize=False, dtype=np.float64, root=MNIST_DIR, download=False)
    np.testing.assert_array_equal(x255, raw.reshape(10000, 784).astype(np.float64))


@needs_mnist
def test_recompressed_or_gunzipped_mnist_passes_the_content_checksum(tmp_path):
    # The published gz of the labels, gunzipped: the gz digest no longer applies,
    # the content digest does.
    content = gzip.decompress((open(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz"), "rb")).read())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(content)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(gzip.decompress(open(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz"), "rb").read()),
                      compresslevel=1))
    x, y = tn.data.mnist("test", root=tmp_path, download=False)
    assert y[:3].tolist() == [7, 2, 1]
    # a single changed label is caught
    bad = bytearray(content)
    bad[-1] = (bad[-1] + 1) % 10
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(bad))
    with pytest.raises(ChecksumError, match=r"t10k-labels-idx1-ubyte: checksum mismatch"):
        tn.data.mnist("test", root=tmp_path, download=False)
