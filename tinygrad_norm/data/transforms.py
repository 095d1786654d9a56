"""`tn.data.transforms`: torchvision's ToTensor, Normalize and Compose, for porting.

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    x = transform(image)           # a 28×28 uint8 image -> a (1, 28, 28) float32 Tensor

Numerics are torchvision's: ToTensor divides uint8 by 255 in float32;
Normalize computes (x − mean) / std per channel in the input's dtype.
Transforms marked `pointwise` map each pixel value on its own, so a dataset of
uint8 images can apply a whole pipeline of them as one 256-entry lookup table
(tn.data.MNIST does, with the same values as the per-image calls).
"""
import numpy as np

from ..tensor import Tensor

__all__ = ["Compose", "ToTensor", "Normalize", "Lambda"]


class Compose:
    """Apply the transforms one after another."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    @property
    def pointwise(self):
        return all(getattr(t, "pointwise", False) for t in self.transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToTensor:
    """An image (H, W) or (H, W, C) ndarray -> a (C, H, W) float32 Tensor; uint8 values are
    divided by 255 (to [0, 1]), other dtypes are kept as they are (as in torchvision)."""

    pointwise = True

    def __call__(self, pic):
        arr = pic._data if isinstance(pic, Tensor) else pic
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"ToTensor: pic should be an ndarray image (H, W) or (H, W, C), got "
                            f"{type(pic).__name__}")
        if arr.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional, got {arr.ndim} dims "
                             f"(shape {arr.shape})")
        chw = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        if chw.dtype == np.uint8:
            return Tensor._wrap(chw.astype(np.float32) / np.float32(255))
        return Tensor._wrap(np.ascontiguousarray(chw))

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x − mean[c]) / std[c] for each channel c of a (..., C, H, W) float Tensor."""

    pointwise = True

    def __init__(self, mean, std, inplace=False):
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std, self.inplace = tuple(float(s) for s in np.atleast_1d(std)), inplace
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std evaluated to zero after conversion to float, leading to "
                             f"division by zero (std={self.std})")

    def __call__(self, tensor):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize: input should be a Tensor (apply ToTensor first), got "
                            f"{type(tensor).__name__}")
        x = tensor._data
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: input should be a float tensor, got {x.dtype}")
        if x.ndim < 3:
            raise ValueError(f"Normalize: expected a tensor image of shape (..., C, H, W), got shape "
                             f"{x.shape}")
        C = x.shape[-3]
        if len(self.mean) not in (1, C) or len(self.std) not in (1, C):
            raise ValueError(f"Normalize: {len(self.mean)} means and {len(self.std)} stds for an image "
                             f"with {C} channels")
        mean = np.asarray(self.mean, x.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, x.dtype).reshape(-1, 1, 1)
        return Tensor._wrap((x - mean) / std)

    def __repr__(self):
        return f"Normalize(mean={list(self.mean)}, std={list(self.std)})"


class Lambda:
    """Apply a user function (not pointwise as far as the datasets can tell)."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self):
        return "Lambda()"
