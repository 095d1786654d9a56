"""Draw docs/figures/norm_axes.png: which inputs each normalization layer pools its statistics over.

    python docs/figures/norm_axes.py        # rewrites docs/figures/norm_axes.png

The picture is not drawn by hand: for each layer, the highlighted cells are the
inputs x[n', c', s'] whose gradient ∂y[n, c, s]/∂x[n', c', s'] is non-zero for one
chosen output y[n, c, s] (the dark cell) — computed by tinygrad_norm's autograd
on the layer itself. For a normalization those are exactly the entries that share
its mean and variance: its *normalization group*. (Wu & He 2018, Figure 2, computed.)

Input layout (N, C, S): N samples down, C channels across, S = H·W positions of
each channel side by side.
"""
import pathlib

import numpy as np

import tinygrad_norm as tn
from tinygrad_norm import nn

N, C, S = 4, 6, 4              # small enough to see every cell
WHERE = (1, 2, 1)              # the output entry whose group is shown: sample 1, channel 2, position 1


def normalization_group(layer, shape=(N, C, S), where=WHERE, seed=0):
    """Boolean mask of `shape`: the inputs the output entry y[where] depends on (∂y[where]/∂x ≠ 0).

    The layer runs in training mode on a random float64 input. With an
    elementwise affine γ, β, the group is the same (γ, β are per channel or per
    feature, not pooled), so this is the set of entries that share y[where]'s
    statistics.
    """
    tn.manual_seed(seed)
    x = tn.randn(*shape, dtype=tn.float64, requires_grad=True)
    layer.double().train()
    y = layer(x)
    y[where].backward()
    return np.abs(x.grad.numpy()) > 1e-12


def layers():
    """(title, layer, 4-d layout?) for each member of the family, on (N, C, S) = (4, 6, 4) inputs."""
    return [
        ("BatchNorm1d(C)\nper channel, over N and S", nn.BatchNorm1d(C)),
        ("LayerNorm((C, S))\nper sample, over C and S", nn.LayerNorm((C, S))),
        ("InstanceNorm1d(C)\nper sample and channel, over S", nn.InstanceNorm1d(C)),
        ("GroupNorm(3 groups, C)\nper sample, over C/G channels and S", nn.GroupNorm(3, C)),
        ("RMSNorm((C, S))\nlike LayerNorm, no centring", nn.RMSNorm((C, S))),
        ("LocalResponseNorm(3)\nneighbouring channels, one position", nn.LocalResponseNorm(3)),
    ]


def draw(path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    fig = Figure(figsize=(13, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    cmap = ListedColormap(["#f2f2f2", "#7fb3e0", "#1f4e99"])
    for ax, (title, layer) in zip(axes.ravel(), layers()):
        group = normalization_group(layer)
        image = group.astype(int).reshape(N, C * S)
        image[WHERE[0], WHERE[1] * S + WHERE[2]] = 2
        ax.imshow(image, cmap=cmap, vmin=0, vmax=2, aspect="equal")
        ax.set_xticks([c * S + (S - 1) / 2 for c in range(C)], [f"c{c}" for c in range(C)], fontsize=8)
        ax.set_yticks(range(N), [f"n{n}" for n in range(N)], fontsize=8)
        ax.set_xticks([c * S - 0.5 for c in range(1, C)], minor=True)
        ax.tick_params(which="minor", length=0)
        ax.grid(which="minor", axis="x", color="black", lw=1.2)
        ax.set_title(f"{title}\n{int(group.sum())} of {group.size} entries", fontsize=9)
    fig.suptitle("The normalization group of one output (dark): the inputs it is normalized with, "
                 "found by autograd.\nRows: samples n; columns: channels c, each with its S = H·W positions",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path


if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parent / "norm_axes.png"
    print(draw(out))
