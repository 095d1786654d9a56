"""Index-based functionals: `one_hot` and `embedding` (PyTorch's torch.nn.functional forms).

    F.one_hot(tn.tensor([0, 2]), num_classes=3)   # [[1, 0, 0], [0, 0, 1]] (int64)
    F.embedding(tn.tensor([[1, 2]]), weight)      # weight[indices]: (1, 2, embedding_dim)

Re-exported by nn/functional.py.
"""
import numpy as np

from ..tensor import Function, Tensor

__all__ = ["one_hot", "embedding"]


def _indices(input, fname):
    idx = input._data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{fname}: expected an integer index tensor (int64, as tn.tensor([1, 2]) "
                           f"gives), got dtype {idx.dtype}; cast it with .long()")
    return idx


def one_hot(tensor, num_classes=-1):
    """(*) int64 class indices -> (*, num_classes) int64 with a 1 at each index.
    num_classes=-1: one more than the largest index."""
    idx = _indices(tensor, "one_hot")
    if idx.size and idx.min() < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {int(idx.min())}")
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
        if not idx.size:
            raise RuntimeError("one_hot: can not infer the total number of classes from an empty "
                               "tensor; pass num_classes")
    elif idx.size and idx.max() >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes ({num_classes}), "
                           f"got {int(idx.max())}")
    out = np.zeros(idx.shape + (int(num_classes),), np.int64)
    np.put_along_axis(out, idx[..., None].astype(np.intp), 1, axis=-1)
    return Tensor._wrap(out)


class Embedding(Function):
    """y = W[idx];  dW = Σ over the positions holding row r of g (np.add.at), zero at padding_idx,
    each row's sum divided by its count in idx with scale_grad_by_freq."""
    name = "embedding"

    def forward(self, weight, idx, padding_idx, scale_grad_by_freq):
        self.idx, self.rows, self.padding_idx = idx, weight.shape[0], padding_idx
        self.scale = scale_grad_by_freq
        return weight[idx]

    def backward(self, g):
        dw = np.zeros((self.rows,) + g.shape[self.idx.ndim:], g.dtype)
        g2 = g.reshape((-1,) + dw.shape[1:])
        flat = self.idx.reshape(-1)
        if self.scale:
            counts = np.bincount(flat, minlength=self.rows).astype(g.dtype)
            g2 = g2 / counts[flat].reshape((-1,) + (1,) * (g2.ndim - 1))
        np.add.at(dw, flat, g2)
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0
        return dw


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of `weight` (num_embeddings, embedding_dim) picked by the integer `input` (*):
    output (*, embedding_dim). The row at `padding_idx` gets no gradient. With `max_norm`,
    the rows looked up are first rescaled in place to norm ≤ max_norm (as in PyTorch)."""
    idx = _indices(input, "embedding")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
                           f"{tuple(weight.shape)}")
    n = weight.shape[0]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = int(idx.max()) if idx.max() >= n else int(idx.min())
        raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings")
    idx = np.where(idx < 0, idx + n, idx).astype(np.intp)
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"Padding_idx must be within num_embeddings, got {padding_idx} for {n}")
        padding_idx = padding_idx % n
    if max_norm is not None:
        rows = np.unique(idx)
        w = weight._data
        norms = np.linalg.norm(w[rows], ord=norm_type, axis=1)
        big = norms > max_norm
        w[rows[big]] *= (max_norm / (norms[big] + 1e-7))[:, None].astype(w.dtype)
    return Embedding.apply(weight, idx=idx, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
