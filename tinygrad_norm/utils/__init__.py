"""`tn.utils`: where PyTorch scripts look for `utils.data` (`from tinygrad_norm.utils.data import DataLoader`)."""
from . import data  # noqa: F401
