"""`blas_threads(n)`: numpy's OpenBLAS limited to n threads inside a block.

NOTE: the lab's nets multiply small matrices (a batch of 60 by 784×100). Split over
two threads they gain nothing, and on a busy machine they lose badly: OpenBLAS's
threads wait for each other (a quick run of `ioffe` took 85 s with 2 threads
against 12 s with 1). Best effort: without OpenBLAS (or off Linux) nothing changes.
The thread control itself lives with the engine (kernels/threads.py), which also
uses it.
"""
from ..kernels.threads import _blas_controls as _openblas_thread_controls, blas_threads

__all__ = ["blas_threads"]
