"""Downloads against a local HTTP server on 127.0.0.1 (no test touches the internet):
mirrors in order, checksum before the cache, atomic writes, progress, errors."""
import gzip
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm.data import datasets, idx
from tinygrad_norm.data.download import DownloadError, download_file

MNIST_DIR = os.environ.get("TINYGRAD_NORM_DATA") or "/work/shared/datasets/mnist"
HAVE_MNIST = os.path.isfile(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz"))

GOOD = gzip.compress(idx.encode_idx(np.arange(5000, dtype=np.int32)), mtime=0)
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """/good/NAME: the file; /truncated/NAME: announces the full length, sends half and
    closes; /short/NAME: a correct HTTP answer holding only half the file;
    /corrupt/NAME: same length, bytes flipped; anything else: 404."""

    files = {}

    def do_GET(self):
        self.server.requests.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        data = self.files.get(name)
        if data is None or kind not in ("good", "truncated", "short", "corrupt"):
            self.send_error(404, "Not Found")
            return
        if kind == "short":
            data = data[: len(data) // 2]
        if kind == "corrupt":
            data = bytes(b ^ 0x55 for b in data[:64]) + data[64:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if kind == "truncated":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    Handler.files = {"data.gz": GOOD}
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def check_sha(path):
    got = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if got != GOOD_SHA:
        raise ValueError(f"checksum mismatch: sha256 {got}")


def test_good_mirror(server, tmp_path, capsys):
    httpd, url = server
    path = download_file("data.gz", [url + "/good"], tmp_path, verify=check_sha)
    assert path == os.path.join(tmp_path, "data.gz")
    assert open(path, "rb").read() == GOOD
    assert os.listdir(tmp_path) == ["data.gz"]  # no temporary file left
    err = capsys.readouterr().err
    assert "data.gz: 100%" in err  # the progress bar, on stderr


def test_mirrors_tried_in_order_until_one_is_valid(server, tmp_path, capsys):
    httpd, url = server
    mirrors = [url + "/missing", url + "/truncated", url + "/short", url + "/corrupt", url + "/good"]
    path = download_file("data.gz", mirrors, tmp_path, verify=check_sha)
    assert open(path, "rb").read() == GOOD
    assert httpd.requests == ["/missing/data.gz", "/truncated/data.gz", "/short/data.gz",
                              "/corrupt/data.gz", "/good/data.gz"]
    assert os.listdir(tmp_path) == ["data.gz"]
    err = capsys.readouterr().err
    assert f"mirror {url}/missing failed (HTTPError: HTTP Error 404" in err


def test_every_mirror_failing_lists_each_mirror_and_error(server, tmp_path):
    httpd, url = server
    mirrors = [url + "/missing", url + "/truncated", url + "/corrupt", "http://127.0.0.1:9/refused"]
    with pytest.raises(DownloadError) as info:
        download_file("data.gz", mirrors, tmp_path, verify=check_sha, progress=False)
    msg = str(info.value)
    assert "could not download data.gz: every mirror failed" in msg
    assert f"{url}/missing/data.gz: HTTPError: HTTP Error 404" in msg
    assert f"{url}/truncated/data.gz: OSError:" in msg and "of %d bytes" % len(GOOD) in msg
    assert f"{url}/corrupt/data.gz: ValueError: checksum mismatch" in msg
    assert "http://127.0.0.1:9/refused/data.gz: URLError" in msg
    assert str(tmp_path) in msg and "TINYGRAD_NORM_DATA" in msg
    assert os.listdir(tmp_path) == []  # nothing entered the cache


def test_interrupted_download_leaves_nothing(server, tmp_path):
    httpd, url = server
    Handler.files = {"big.gz": os.urandom(1 << 20)}
    seen = []

    def interrupt(done, total):
        seen.append((done, total))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_file("big.gz", [url + "/good"], tmp_path, progress=interrupt)
    assert seen == [(1 << 16, 1 << 20)]
    assert os.listdir(tmp_path) == []


def test_empty_mirror_list(tmp_path):
    with pytest.raises(DownloadError, match="list of mirrors is empty"):
        download_file("x.gz", [], tmp_path)


def test_progress_bar_shows_the_bytes(server, tmp_path, capsys):
    httpd, url = server
    Handler.files = {"big.gz": b"x" * (1 << 20)}
    download_file("big.gz", [url + "/good"], tmp_path, progress=True)
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("big.gz: 100%") and "1.05M/1.05M" in last


def test_mnist_downloads_from_module_mirrors(server, tmp_path, monkeypatch):
    """The whole path: tn.data.mnist finds no file, downloads the (small, fake) split
    from the mirrors attribute, verifies it and loads it; a corrupt mirror is skipped."""
    httpd, url = server
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    img_gz = gzip.compress(idx.encode_idx(images))
    lab_gz = gzip.compress(idx.encode_idx(labels))
    Handler.files = {"t10k-images-idx3-ubyte.gz": img_gz, "t10k-labels-idx1-ubyte.gz": lab_gz}
    fake = dict(datasets.MNIST_FILES)
    fake["test-images"] = datasets.FileInfo("t10k-images-idx3-ubyte.gz", hashlib.sha256(img_gz).hexdigest(),
                                            None, None)
    fake["test-labels"] = datasets.FileInfo("t10k-labels-idx1-ubyte.gz", hashlib.sha256(lab_gz).hexdigest(),
                                            None, None)
    monkeypatch.setitem(datasets._DATASETS, "mnist", (fake, "MNIST_MIRRORS", ""))
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [url + "/corrupt", url + "/good"])
    x, y = tn.data.mnist("test", root=tmp_path, progress=False)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert sorted(os.listdir(tmp_path)) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    # second call: served from the cache, no new request
    n = len(httpd.requests)
    tn.data.mnist("test", root=tmp_path, progress=False)
    assert len(httpd.requests) == n


@pytest.mark.skipif(not HAVE_MNIST, reason="MNIST files not found")
def test_real_mnist_download_checks_the_published_checksums(server, tmp_path):
    """Serve the real MNIST test files: they pass; a corrupt copy never enters the cache."""
    httpd, url = server
    names = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    Handler.files = {n: open(os.path.join(MNIST_DIR, n), "rb").read() for n in names}
    with pytest.raises(DownloadError, match=r"corrupt/t10k-images-idx3-ubyte.gz: (DataFileError|ChecksumError)"):
        tn.data.mnist("test", root=tmp_path, mirrors=[url + "/corrupt", url + "/short"], progress=False)
    assert os.listdir(tmp_path) == []
    x, y = tn.data.mnist("test", root=tmp_path, mirrors=[url + "/short", url + "/good"], progress=False)
    assert x.shape == (10000, 28, 28) and y[:4].tolist() == [7, 2, 1, 0]
    assert sorted(os.listdir(tmp_path)) == names
