"""Devices, for porting: this engine computes on the CPU only.

    device = tn.device("cuda" if tn.cuda.is_available() else "cpu")   # -> device(type='cpu')
    model.to(device); x = x.to(device, tn.float64)

`tn.device(...)` accepts every device string PyTorch accepts ("cpu", "cuda:0",
"mps", ...), as `torch.device` does: naming a GPU is not an error until data
is sent there. `Tensor.to`, `Module.to`, `.cuda()` and `.mps()` requests for
anything but the CPU raise `DeviceError`, saying this engine runs on the CPU.

`parse_to(args, kwargs)` reads the arguments of `to()` for Tensor and Module alike:
`to(device)`, `to(dtype)`, `to(device, dtype)`, `to(tensor)` (its dtype),
`to(device=..., dtype=..., non_blocking=..., copy=...)`.
"""
import numpy as np

# torch.device's list of device types (its error message names them too)
DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
                "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


builtin_type = type  # NOTE: `device.__init__` takes an argument named `type`, as torch.device does


class DeviceError(RuntimeError):
    """A request for a device other than the CPU."""


class device:
    """`tn.device("cpu")`, `tn.device("cuda", 0)`, `tn.device("cuda:1")`: a device name, as
    `torch.device`. `.type` is the kind ("cpu"), `.index` the number or None.
    A device compares equal to another with the same type and index, and to its string."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002  (torch's argument name)
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string like 'cpu' or 'cuda:0', got "
                            f"{builtin_type(type).__name__}")
        name, _, number = type.partition(":")
        if name not in DEVICE_TYPES:
            raise RuntimeError(f"Expected one of {', '.join(DEVICE_TYPES)} device type at start of "
                               f"device string: {type}")
        if number:
            if index is not None:
                raise RuntimeError(f"device(): type {type!r} already has an index; do not pass "
                                   f"index={index} too")
            if not number.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(number)
        self.type, self.index = name, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return (f"device(type='{self.type}')" if self.index is None
                else f"device(type='{self.type}', index={self.index})")

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except RuntimeError:
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


CPU = device("cpu")


def check_device(dev):
    """Raise DeviceError unless `dev` (a device, a string or an int) names the CPU."""
    if isinstance(dev, (int, np.integer)) and not isinstance(dev, bool):
        dev = device("cuda", int(dev))  # torch: an int is an accelerator's index
    dev = device(dev)
    if dev.type != "cpu":
        raise DeviceError(
            f"device {str(dev)!r} is not available: tinygrad_norm runs on the CPU only "
            f"(tn.cuda.is_available() and tn.backends.mps.is_available() are False). Use "
            f"tn.device('cpu'), or pick it as PyTorch scripts do: "
            f"tn.device('cuda' if tn.cuda.is_available() else 'cpu')")
    return dev


def _is_dtype(value):
    if isinstance(value, np.dtype) or (isinstance(value, builtin_type) and issubclass(value, np.generic)):
        return True
    if value in (float, int, bool):
        return True
    return False


def parse_to(args, kwargs, owner="to"):
    """The arguments of `to()` -> (dtype or None, copy). Raises DeviceError for a GPU,
    TypeError for anything that is neither a device nor a dtype."""
    from .tensor import Tensor  # noqa: PLC0415  (tensor.py imports this module)
    unknown = set(kwargs) - {"device", "dtype", "non_blocking", "copy", "memory_format"}
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    dtype = kwargs.get("dtype")
    if kwargs.get("device") is not None:
        check_device(kwargs["device"])
    if len(args) > 4:
        raise TypeError(f"{owner}() takes at most 4 positional arguments (device, dtype, non_blocking, "
                        f"copy), got {len(args)}")
    for i, a in enumerate(args):
        if isinstance(a, bool):
            continue  # non_blocking / copy given by position
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, device) or (isinstance(a, (int, np.integer))):
            check_device(a)
        elif isinstance(a, str):
            if a.partition(":")[0] in DEVICE_TYPES:
                check_device(a)
            else:
                try:
                    dtype = np.dtype(a)
                except TypeError:
                    device(a)  # raises naming the device types
        elif _is_dtype(a):
            dtype = a
        else:
            raise TypeError(f"{owner}(): argument {i} must be a device or a dtype, got "
                            f"{builtin_type(a).__name__}")
    return (None if dtype is None else np.dtype(dtype)), bool(kwargs.get("copy", False))
