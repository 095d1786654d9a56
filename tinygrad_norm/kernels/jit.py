"""The one place that talks to numba: the `kernel` decorator.

Every kernel of tinygrad_norm is a plain Python function over numpy arrays that
uses `prange` for its outer loop. `@kernel(reference)` compiles it *twice*,
lazily, on first call:

  * a serial version, for small arrays (a parallel launch costs ~3 µs);
  * a `parallel=True` version, for arrays of at least `PARALLEL_MIN` elements.

Both are cached on disk (`cache=True`), so a warm process compiles nothing.
`NUMBA_DISABLE_JIT=1` turns every kernel back into the Python function above it
(`prange` is then `range`), which is handy with a debugger.

numba itself is imported on the first kernel call, not at `import
tinygrad_norm` (importing numba takes ~0.3 s). Kernel modules therefore take
`prange` from here: it is `range` until numba is loaded, and the real
`numba.prange` is put into the kernel's module just before compiling.

Each kernel carries the numpy function it must agree with (`.reference`); the
test suite runs every registered kernel against its reference.
"""
import os
import types

# Arrays with at least this many elements use the multi-threaded twin
# ($TINYGRAD_NORM_PARALLEL_MIN overrides it).
# NOTE: a parallel launch with numba's workqueue threads (the layer chosen below)
# costs about what a serial pass over 2^20 float32 does; below that the launch
# costs more than the second core saves (docs/engine.md has the figures).
PARALLEL_MIN = int(os.environ.get("TINYGRAD_NORM_PARALLEL_MIN", 1 << 20))

# NOTE: numpy's error model: x / 0 gives inf or nan as in numpy, where numba's
# default ("python") tests every division for zero to raise ZeroDivisionError,
# and that test keeps LLVM from vectorising any loop that divides.
# Changing a flag here needs the kernels' numba cache (__pycache__/*.nbi, *.nbc)
# deleted: numba keys its cache by signature and bytecode, not by flags (a new
# install of the package gets new source timestamps, which invalidate it).
ERROR_MODEL = "numpy"

# name -> Kernel, filled by the decorator; the tests iterate over it.
REGISTRY = {}

# Kernel modules write `from .jit import prange`; see the module docstring.
prange = range


class Kernel:
    """A numba kernel with a serial and a parallel twin and a numpy reference."""

    def __init__(self, fn, reference, n_in, n_out, scalars, reassociate, example, mutates=()):
        self.name = fn.__name__
        self.py_func = fn
        self.reference = reference
        # Signature: kernel(*inputs, *outputs, *scalars); reference(*inputs, *scalars)
        # returns the output (or a tuple of them). `scalars` are example values.
        self.n_in, self.n_out, self.scalars = n_in, n_out, tuple(scalars)
        # In-place kernels (n_out == 0) update the inputs at these positions; the
        # reference returns their new values, in this order.
        self.mutates = tuple(mutates)
        # example(rng, dtype) -> tuple of input arrays for the tests; by default
        # n_in flat arrays of values in [0.5, 2) (valid for log, sqrt, pow, div).
        self.example = example or (lambda rng, dtype: tuple(
            rng.uniform(0.5, 2.0, 37).astype(dtype) for _ in range(n_in)))
        self.reassociate = reassociate
        self._serial = self._parallel = None

    def _build(self):
        """Create both numba dispatchers (compilation itself happens per signature)."""
        import numba

        _choose_threading_layer(numba)
        module_globals = self.py_func.__globals__
        module_globals["prange"] = numba.prange
        stamp = _jit_device_functions(module_globals)
        # NOTE: `reassoc` lets LLVM vectorise running sums; unlike full fastmath
        # it keeps nan/inf semantics (a diverging run must still show up as nan).
        flags = dict(cache=True, nogil=True, error_model=ERROR_MODEL,
                     fastmath={"reassoc", "contract"} if self.reassociate else False)
        fn = self.py_func
        self._serial = numba.njit(**flags)(fn)
        # NOTE: numba's on-disk cache is keyed by the function's qualname, not
        # by the compile flags, so the parallel twin must be a copy of the
        # function with a qualname of its own; otherwise the two versions
        # would overwrite each other's cache entries.
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel",
                                  fn.__defaults__, fn.__closure__)
        twin.__qualname__ = fn.__qualname__ + "_parallel"
        twin.__module__ = fn.__module__
        self._parallel = numba.njit(parallel=True, **flags)(twin)
        _restamp(self._serial, stamp)
        _restamp(self._parallel, stamp)

    @property
    def serial(self):
        if self._serial is None:
            self._build()
        return self._serial

    @property
    def parallel(self):
        if self._parallel is None:
            self._build()
        return self._parallel

    def __call__(self, *args):
        """Run the serial twin, or the parallel one when an array is large."""
        if self._serial is None:
            self._build()
        for a in args:
            if getattr(a, "size", 0) >= PARALLEL_MIN:
                return self._parallel(*args)
        return self._serial(*args)

    def __repr__(self):
        return f"<kernel {self.name}>"


def _choose_threading_layer(numba):
    """Use numba's `workqueue` threads unless the user picked a layer.

    NOTE: with the OpenMP layer, idle numba workers spin and steal the cores
    from OpenBLAS's threads; workqueue threads sleep between parallel loops.
    """
    import os

    if "NUMBA_THREADING_LAYER" not in os.environ and numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"


def device(fn=None, *, reassociate=False, inline=False):
    """Decorator for a helper called *from* kernels (not from Python).

    It stays a plain Python function until the first kernel of its module is
    built; then it is replaced, in the module, by a cached numba function.
    `inline=True` pastes its body into every caller (numba's inline="always").
    NOTE: LLVM does not inline one numba function into another, and a call
    passes every array as a dozen scalars: inline the helpers called once per
    row or per statistic.
    """
    def mark(f):
        f._tn_device = {"cache": True, "error_model": ERROR_MODEL,
                        "fastmath": {"reassoc", "contract"} if reassociate else False}
        if inline:
            f._tn_device["inline"] = "always"
        return f
    return mark(fn) if fn is not None else mark


def _jit_device_functions(module_globals):
    """Replace every `@device` helper a kernel's module can reach by a cached numba
    function: the helpers in its globals and, transitively, those in the globals of
    the helpers' own modules (a helper may call helpers of another file; each
    helper gets one numba function, shared by every module naming it). Returns
    the source stamp of the modules reached (see _restamp)."""
    import numba

    reached = _reach(module_globals)
    for g in reached.values():
        for name, value in list(g.items()):
            fn, options = _device_options(value)
            if options is None or value is not fn:   # not a helper, or compiled already
                continue
            jitted = getattr(fn, "_tn_jitted", None)
            if jitted is None:
                jitted = fn._tn_jitted = numba.njit(**options)(fn)
                _restamp(jitted, _source_stamp(_reach(fn.__globals__)))
            g[name] = jitted
    return _source_stamp(reached)


def _device_options(value):
    """(the Python function, its @device options or None) of a module global."""
    fn = getattr(value, "py_func", value)
    return fn, getattr(fn, "_tn_device", None)


def _reach(module_globals, reached=None):
    """{module name: globals} of this module and of every module whose @device
    helpers it names, transitively."""
    reached = {} if reached is None else reached
    if module_globals.get("__name__") not in reached:
        reached[module_globals.get("__name__")] = module_globals
        for value in list(module_globals.values()):
            fn, options = _device_options(value)
            if options is not None:
                _reach(fn.__globals__, reached)
    return reached


def _source_stamp(reached):
    """(file name, mtime, size) of every module reached."""
    stamp = []
    for g in reached.values():
        path = g.get("__file__")
        if path:
            st = os.stat(path)
            stamp.append((os.path.relpath(path, os.path.dirname(__file__)), st.st_mtime, st.st_size))
    return tuple(sorted(stamp))


def _restamp(dispatcher, stamp):
    """Key a numba function's disk cache by the files of every module it can call into.

    NOTE: numba keys a cache entry by the stamp (mtime, size) of the function's
    own file only, so editing a helper in another file would silently reuse the
    old machine code (numba documents this limitation). The stamp numba compares
    is replaced by that of all the files reached (a private attribute of numba's
    cache: where it is missing, nothing changes)."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if cache_file is not None and hasattr(cache_file, "_source_stamp"):
        cache_file._source_stamp = stamp


def kernel(reference, n_in=1, n_out=1, scalars=(), reassociate=False, example=None, mutates=()):
    """Decorator: register `fn(*inputs, *outputs, *scalars)` as a kernel that
    must agree with `reference(*inputs, *scalars)` (which returns the output,
    or a tuple of them). `scalars` and `example(rng, dtype) -> inputs` give the
    test suite values to run it on; `reassociate` allows vectorised sums.
    An in-place kernel has n_out=0 and `mutates`: the positions of the inputs
    it updates, whose new values the reference returns."""
    def wrap(fn):
        k = Kernel(fn, reference, n_in, n_out, scalars, reassociate, example, mutates)
        REGISTRY[k.name] = k
        return k
    return wrap
