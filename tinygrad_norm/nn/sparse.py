"""`nn.Embedding`: a lookup table of learned vectors, as `torch.nn.Embedding`."""
from ..devices import check_device
from ..random import generator
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter


class Embedding(Module):
    """`Embedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False)`.

    weight (num_embeddings, embedding_dim), initialised N(0, 1) as in PyTorch (the
    `padding_idx` row zero, and it gets no gradient). Input: integer indices (*);
    output (*, embedding_dim).

        >>> emb = nn.Embedding(10, 3, padding_idx=0)
        >>> emb(tn.tensor([[0, 2], [4, 9]])).shape
        (2, 2, 3)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None,
                 dtype=None):
        super().__init__()
        if device is not None:
            check_device(device)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("Padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            data = generator().standard_normal((num_embeddings, embedding_dim)).astype(dtype or "float32")
            if padding_idx is not None:
                data[padding_idx] = 0
        else:
            data = _weight._data if isinstance(_weight, Tensor) else _weight
            if tuple(data.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Shape of weight {tuple(data.shape)} does not match num_embeddings and "
                                 f"embedding_dim ({num_embeddings}, {embedding_dim})")
        self.weight = Parameter(data, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding holding a copy of `embeddings` (2-D); frozen by default."""
        if embeddings.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings._data.copy(), _freeze=freeze)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        return s
