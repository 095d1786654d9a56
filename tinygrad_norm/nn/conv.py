"""Convolution layers: Conv1d and Conv2d (cross-correlation, as in PyTorch).

    conv = nn.Conv2d(3, 16, kernel_size=3, padding=1)   # weight (16, 3, 3, 3), bias (16,)
    y = conv(x)                                           # (N, 3, H, W) -> (N, 16, H, W)

The computation is F.conv2d: im2col + one BLAS matmul per group, on numba kernels.
"""

from ..devices import check_device
from . import functional as F
from . import init
from .linear import _empty
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d"]


class _ConvNd(Module):
    """Shared constructor, init and repr of Conv1d/Conv2d (PyTorch's attribute names)."""

    _n = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if device is not None:
            check_device(device)
        n, name = self._n, type(self).__name__
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError(f"in_channels must be divisible by groups (in_channels={in_channels}, "
                             f"groups={groups})")
        if out_channels % groups != 0:
            raise ValueError(f"out_channels must be divisible by groups (out_channels={out_channels}, "
                             f"groups={groups})")
        if padding_mode != "zeros":
            if padding_mode in ("reflect", "replicate", "circular"):
                raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not implemented "
                                          f"in tinygrad_norm; only 'zeros' is")
            raise ValueError(f"padding_mode must be one of ['zeros', 'reflect', 'replicate', "
                             f"'circular'], but got padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = F._tuple(kernel_size, n, "kernel_size")
        self.stride = F._tuple(stride, n, "stride")
        self.dilation = F._tuple(dilation, n, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 f"{{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = F._tuple(padding, n, "padding")
        self.groups, self.padding_mode = int(groups), padding_mode
        self.transposed, self.output_padding = False, (0,) * n
        self.weight = Parameter(_empty((self.out_channels, self.in_channels // self.groups)
                                       + self.kernel_size, dtype))
        if bias:
            self.bias = Parameter(_empty((self.out_channels,), dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # fan_in = in_channels/groups·∏kernel_size
        init._layer_default_(self.weight, self.bias, draw_bias_at_zero_fan_in=False)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L) or (C_in, L) inputs.

    Args: in_channels, out_channels, kernel_size, stride=1, padding=0 (int, 1-tuple,
    'valid' or 'same'), dilation=1, groups=1, bias=True, padding_mode='zeros', dtype.

    Shape: (N, C_in, L) -> (N, C_out, L_out),
    L_out = ⌊(L + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1.
    """

    _n = 1

    def forward(self, input):
        return F.conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class Conv2d(_ConvNd):
    """2-d convolution over (N, C_in, H, W) or (C_in, H, W) inputs.

    Args: in_channels, out_channels, kernel_size (int or pair), stride=1,
    padding=0 (int, pair, 'valid' or 'same'), dilation=1, groups=1, bias=True,
    padding_mode='zeros' (the only one implemented), dtype.

    Shape: (N, C_in, H, W) -> (N, C_out, H_out, W_out),
    H_out = ⌊(H + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1 (same for W).

    Attributes: weight (C_out, C_in/groups, kh, kw), bias (C_out,), both from
    U(±1/√fan_in) with fan_in = C_in/groups·kh·kw, as in PyTorch.
    """

    _n = 2

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)
