"""One way to write a file: readers see either the old file or the whole new one.

Used for checkpoints (tn.save), results and reports (tn.lab), downloads and
rendered graphs.
"""
import os
import secrets


def atomic_write(path, write, verify=None):
    """Write `path` atomically.

    `write(fh)` fills a temporary binary file next to `path`; it is flushed and
    fsynced, `verify(temp_path)` may still reject it (by raising), and only then
    is it renamed over `path`. On any failure (Ctrl-C included) the temporary
    file is removed and `path` is untouched. The new file gets the mode
    `open()` would give it (0o666 minus the umask). Returns `path`.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
    return path


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); harmless where unsupported."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
