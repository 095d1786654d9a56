"""`tn.utils.data`, as `torch.utils.data`: the same objects as in `tn.data`.

    from tinygrad_norm.utils.data import DataLoader, TensorDataset, random_split
"""
from ..data.dataset import Batch, Dataset, Subset, TensorDataset, default_collate, random_split
from ..data.loader import DataLoader

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "default_collate", "Batch"]
