"""The library's one random number generator.

Every random draw of tinygrad_norm (randn, rand, dropout masks, init, shuffles
without an explicit seed) comes from `generator()`, so `tn.manual_seed(s)`
makes a whole run reproducible. `get_rng_state()`/`set_rng_state()` save and
restore it (checkpoints store it as a uint8 array, no pickle).
"""
import json

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the library's generator (a numpy PCG64)."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed expects a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def seed():
    """Reseed from the operating system's entropy; returns the seed used."""
    s = int(np.random.SeedSequence().entropy % (1 << 63))
    manual_seed(s)
    return s


def generator():
    """The current numpy Generator."""
    return _generator


def get_rng_state():
    """The generator's state as a uint8 Tensor (JSON bytes), like torch.get_rng_state."""
    from .tensor import Tensor
    state = json.dumps(_generator.bit_generator.state).encode()
    return Tensor(np.frombuffer(state, np.uint8).copy())


def set_rng_state(state):
    """Restore a state returned by `get_rng_state`."""
    from .tensor import Tensor
    arr = state._data if isinstance(state, Tensor) else np.asarray(state)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError(f"set_rng_state expects the 1-D uint8 array of get_rng_state, "
                         f"got dtype {arr.dtype} and shape {arr.shape}")
    try:
        decoded = json.loads(arr.tobytes().decode())
        bit_generator = np.random.PCG64()
        bit_generator.state = decoded
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"set_rng_state: not a state saved by get_rng_state ({e})") from None
    global _generator
    _generator = np.random.Generator(bit_generator)


class Generator:
    """`tn.Generator()`: a random generator of its own, as `torch.Generator`, for
    `random_split(..., generator=)` and `DataLoader(..., generator=)`:
    `tn.Generator().manual_seed(42)` gives the same draws whatever else is drawn.
    `.rng` is the numpy Generator behind it."""

    def __init__(self, device="cpu"):
        from .devices import check_device
        check_device(device)
        self.manual_seed(int(np.random.SeedSequence().entropy % (1 << 63)))

    def manual_seed(self, seed):
        """Reseed; returns self (so `tn.Generator().manual_seed(0)` works)."""
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"manual_seed expects a non-negative integer, got {seed!r}")
        self._seed, self.rng = int(seed), np.random.default_rng(int(seed))
        return self

    def initial_seed(self):
        return self._seed

    def __repr__(self):
        return f"Generator(seed={self._seed})"
