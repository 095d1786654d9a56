"""`blas_threads(n)`: numpy's OpenBLAS limited to n threads inside a block.

NOTE: the lab's nets multiply small matrices (a batch of 60 by 784×100). Split over
two threads they gain nothing, and on a busy machine they lose badly: OpenBLAS's
threads wait for each other (a quick run of `ioffe` took 85 s with 2 threads
against 12 s with 1). Best effort: without OpenBLAS (or off Linux) nothing changes.
"""
import ctypes
from contextlib import contextmanager


def _openblas_thread_controls():
    """[(get_num_threads, set_num_threads)] of the OpenBLAS libraries loaded in this
    process (found through /proc/self/maps, so Linux only; elsewhere [])."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if len(line.split()) >= 6 and "openblas" in line.split()[-1].rsplit("/", 1)[-1].lower()})
    except OSError:
        return []
    controls = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
            get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                controls.append((get, put))
                break
    return controls


@contextmanager
def blas_threads(n):
    """Run the block with numpy's OpenBLAS limited to `n` threads (None: unchanged)."""
    controls = _openblas_thread_controls() if n is not None else []
    before = [get() for get, _ in controls]
    for _, put in controls:
        put(int(n))
    try:
        yield
    finally:
        for (_, put), b in zip(controls, before):
            put(b)
