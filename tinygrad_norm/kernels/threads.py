"""Coarse-grained threads for the big layers: split the batch, one part per core.

    parts = split(N, work)                 # [(0, 64), (64, 128)] on two cores
    results = run_parts(fn, parts)         # fn(n0, n1) for each part, in parallel

Each part runs serial numba kernels (`kernel.serial`) and single-threaded BLAS
calls in its own Python thread; both release the GIL. The threads meet once, at
the end, instead of at every kernel and every matmul.

NOTE: numpy's OpenBLAS and numba's parallel twins each split every call over
the cores and wait at its end. A convolution step makes dozens of such calls;
on the shared 2-core machine, with other processes running (load 10-18), the
waits dominated: a Conv2d(32, 32) layer took 0.73 s wall with two BLAS threads
and 0.43 s with one, and smaller im2col chunks (more calls) were up to 20x
slower. Split once, the parts never wait for each other.
NOTE: numba's workqueue threading layer must not be entered from two threads
at once, so code run in parts calls the kernels' serial twins (`twin`).
"""
import os
import threading
from contextlib import contextmanager

# How many parts (threads) a large layer is split into ($TINYGRAD_NORM_THREADS).
THREADS = int(os.environ.get("TINYGRAD_NORM_THREADS", min(os.cpu_count() or 1, 8)))
# Work below this many output elements stays in one part (a thread hand-off costs ~50 µs).
MIN_PART_WORK = 1 << 18

_pool = None
_in_part = threading.local()  # .active: this thread runs one of several parts
_blas = None  # [(get_num_threads, set_num_threads)] of the loaded OpenBLAS libraries


def split(N, work):
    """Contiguous sample ranges, one per part: THREADS of them when `work` (output
    elements) is large enough and there are enough samples, else one."""
    parts = max(1, min(THREADS, N, work // MIN_PART_WORK))
    bounds = [N * k // parts for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts)]


def run_parts(fn, parts):
    """[fn(n0, n1) for each part], the first in this thread and the others in a pool,
    with numpy's BLAS single-threaded meanwhile when there is more than one part."""
    global _pool
    if len(parts) == 1:
        return [fn(*parts[0])]
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor  # on first use: it is not free to import
        _pool = ThreadPoolExecutor(max_workers=THREADS - 1, thread_name_prefix="tinygrad_norm")

    def in_part(n0, n1):
        _in_part.active = True
        try:
            return fn(n0, n1)
        finally:
            _in_part.active = False
    with blas_threads(1):
        futures = [_pool.submit(in_part, *p) for p in parts[1:]]
        first = in_part(*parts[0])
        return [first] + [f.result() for f in futures]


def twin(kernel):
    """The kernel to call here: its serial twin inside one of several parts, else the
    kernel itself (which takes its parallel twin for large arrays).
    NOTE: a serial im2col is ~1.5x slower than the parallel twin on one thread
    (13 vs 21 ms on the 32-channel 28×28 layer), so a single part keeps the twin."""
    return kernel.serial if getattr(_in_part, "active", False) else kernel


def _blas_controls():
    """The (get, set) thread controls of the OpenBLAS libraries in this process,
    found once through /proc/self/maps (Linux; elsewhere none)."""
    global _blas
    if _blas is None:
        import ctypes
        _blas = []
        try:
            with open("/proc/self/maps") as f:
                paths = sorted({line.split()[-1] for line in f if "openblas" in line.rsplit("/", 1)[-1].lower()})
        except OSError:
            paths = []
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
                get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    _blas.append((get, put))
                    break
    return _blas


@contextmanager
def blas_threads(n):
    """numpy's OpenBLAS limited to n threads inside the block (None: unchanged; best
    effort: without OpenBLAS, or off Linux, nothing changes)."""
    controls = _blas_controls() if n is not None else []
    before = [get() for get, _ in controls]
    for _, put in controls:
        put(int(n))
    try:
        yield
    finally:
        for (_, put), b in zip(controls, before):
            put(b)
