"""Download a file from a list of mirrors into a cache directory, safely.

    path = download_file("t10k-labels-idx1-ubyte.gz", mirrors, "~/.cache/tinygrad_norm",
                         verify=check)        # check(path) raises if the file is wrong

Guarantees:
- mirrors are tried in order; the first one whose file passes `verify` wins;
- the file is written to a temporary name in the destination directory and
  moved into place with `os.replace` only after `verify` accepted it, so a
  half-written or unverified file never appears under the final name (an
  interrupted download, even by Ctrl-C, leaves nothing behind);
- a progress bar goes to stderr;
- when every mirror fails, `DownloadError` lists each mirror and its error.
"""
import os
import re
import sys
import time

from .._atomic import atomic_write

CHUNK = 1 << 16
TIMEOUT = 30  # seconds without data before a mirror counts as failed


class DownloadError(OSError):
    """No mirror delivered a valid file (an OSError, like the network errors behind it)."""


def atomic_write_bytes(path, data):
    """Write bytes to `path` atomically, creating its directory if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return atomic_write(path, lambda f: f.write(data))


class ProgressBar:
    """`name [#######.............]  35%  3.4/9.9 MB` on stderr, redrawn at most 10×/s.

    On a terminal the line is redrawn in place; elsewhere (logs, CI) only the
    final line is written."""

    def __init__(self, name, total, stream=None, width=30):
        self.name, self.total, self.width = name, total, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = 0.0

    def line(self, done):
        mb = f"{done / 1e6:.1f}/{self.total / 1e6:.1f} MB" if self.total else f"{done / 1e6:.1f} MB"
        frac = min(done / self.total, 1.0) if self.total else 0.0
        bar = "#" * int(frac * self.width)
        pct = f"{100 * frac:3.0f}%" if self.total else "  ?%"
        return f"{self.name} [{bar:.<{self.width}}] {pct}  {mb}"

    def __call__(self, done, total):
        now = time.monotonic()
        if self.tty and now - self.last >= 0.1:
            self.last = now
            self.stream.write("\r" + self.line(done))
            self.stream.flush()

    def close(self, done):
        self.stream.write(("\r" if self.tty else "") + self.line(done) + "\n")
        self.stream.flush()


def _fetch(url, dest_file, progress):
    """Stream `url` into the open binary file; returns the number of bytes.
    Raises on HTTP errors and when fewer bytes arrive than Content-Length says."""
    import urllib.request  # NOTE: imported here: `import tinygrad_norm` stays fast
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        while True:
            try:
                chunk = response.read(CHUNK)
            except Exception as e:  # http.client.IncompleteRead, socket errors
                raise OSError(f"connection broken after {done} bytes ({type(e).__name__}: {e})") from None
            if not chunk:
                break
            dest_file.write(chunk)
            done += len(chunk)
            progress(done, total)
        if total is not None and done != total:
            raise OSError(f"truncated download: received {done} of {total} bytes")
        return done


def download_file(filename, mirrors, dest_dir, verify=None, progress=True):
    """Download `filename` into `dest_dir` from the first mirror that works.

    mirrors:  base URLs (the file is `mirror.rstrip('/') + '/' + filename`).
    verify:   `verify(path)` raises (any Exception) if the downloaded file is
              wrong (checksum, structure); the file then never enters `dest_dir`.
    progress: True for a progress bar on stderr, False for silence, or a
              callable `progress(bytes_done, bytes_total_or_None)`.
    Returns the final path. Raises DownloadError listing every mirror's error.
    """
    mirrors = list(mirrors)
    if not mirrors:
        raise DownloadError(f"cannot download {filename}: the list of mirrors is empty")
    os.makedirs(dest_dir, exist_ok=True)
    final = os.path.join(dest_dir, filename)
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        bar = ProgressBar(filename, None) if progress is True else None
        if bar is not None:
            def report(done, total, bar=bar):
                bar.total = total
                bar(done, total)
        else:
            report = progress if callable(progress) else (lambda done, total: None)
        received = []
        try:
            # NOTE: atomic: readers see no file or the whole verified file; a
            # failed or interrupted download leaves nothing behind.
            atomic_write(final, lambda f: received.append(_fetch(url, f, report)), verify=verify)
            if bar is not None:
                bar.close(received[0])
            return final
        except Exception as e:  # noqa: BLE001 -- any failure means: try the next mirror
            if bar is not None and bar.tty:
                bar.stream.write("\n")
            reason = re.sub(r"[^\s'\"]*\.part\b", "the downloaded file", str(e))
            errors.append(f"  {url}: {type(e).__name__}: {reason}")
            print(f"{filename}: mirror {mirror} failed ({type(e).__name__}: {reason})", file=sys.stderr)
    raise DownloadError(f"could not download {filename}: every mirror failed:\n" + "\n".join(errors) +
                        f"\nCheck the internet connection, or put the file into {dest_dir} yourself "
                        f"(set $TINYGRAD_NORM_DATA to use another directory).")
