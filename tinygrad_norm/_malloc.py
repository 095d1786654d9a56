"""Keep freed memory for reuse instead of handing it back to the OS (glibc only).

NOTE: a training step allocates and frees arrays of the same sizes every step
(activations, gradients). By default glibc serves large blocks with fresh
`mmap`s and returns freed memory to the OS, so every new 16 MB array is
page-faulted in again: 3–10 ms per array here, more than the kernel that fills
it (BatchNorm2d on 32×32×64×64 went from 2.9–5.2× its memory-traffic floor to
1.4–1.6× with this setting). PyTorch avoids the same cost with a caching
allocator; we ask glibc to keep up to 256 MB of freed heap (`mallopt`).

Skipped when the user set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_
themselves, or TINYGRAD_NORM_MALLOC=system; a no-op without glibc.
"""
import os

KEEP_BYTES = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>

configured = False


def configure():
    """Apply the setting once; returns whether glibc accepted it."""
    global configured
    if configured:
        return True
    if os.environ.get("TINYGRAD_NORM_MALLOC") == "system" or any(
            k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return False
    configured = bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES))
    return configured
