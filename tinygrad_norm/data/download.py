"""Download a file from a list of mirrors into a cache directory, safely.

    path = download_file("t10k-labels-idx1-ubyte.gz", mirrors, "~/.cache/tinygrad_norm",
                         verify=check)        # check(path) raises if the file is wrong

Guarantees:
- mirrors are tried in order; the first one whose file passes `verify` wins;
- the file is written to a temporary name in the destination directory and
  moved into place with `os.replace` only after `verify` accepted it, so a
  half-written or unverified file never appears under the final name (an
  interrupted download, even by Ctrl-C, leaves nothing behind);
- a progress bar (tqdm) goes to stderr;
- when every mirror fails, `DownloadError` lists each mirror and its error.
"""
import os
import re
import sys

from .._atomic import atomic_write
from .._progress import progress_bar

CHUNK = 1 << 16
TIMEOUT = 30  # seconds without data before a mirror counts as failed


class DownloadError(OSError):
    """No mirror delivered a valid file (an OSError, like the network errors behind it)."""


def atomic_write_bytes(path, data):
    """Write bytes to `path` atomically, creating its directory if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return atomic_write(path, lambda f: f.write(data))


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
        bar = progress_bar(None, filename, unit="B", unit_scale=True) if progress is True else None
        if bar is not None:
            def report(done, total, bar=bar):
                bar.total = total
                bar.update(done - bar.n)
        else:
            report = progress if callable(progress) else (lambda done, total: None)
        try:
            # NOTE: atomic: readers see no file or the whole verified file; a
            # failed or interrupted download leaves nothing behind.
            atomic_write(final, lambda f: _fetch(url, f, report), verify=verify)
            return final
        except Exception as e:  # noqa: BLE001 -- any failure means: try the next mirror
            reason = re.sub(r"[^\s'\"]*\.part\b", "the downloaded file", str(e))
            errors.append(f"  {url}: {type(e).__name__}: {reason}")
            print(f"{filename}: mirror {mirror} failed ({type(e).__name__}: {reason})", file=sys.stderr)
        finally:
            if bar is not None:
                bar.close()
    raise DownloadError(f"could not download {filename}: every mirror failed:\n" + "\n".join(errors) +
                        f"\nCheck the internet connection, or put the file into {dest_dir} yourself "
                        f"(set $TINYGRAD_NORM_DATA to use another directory).")
