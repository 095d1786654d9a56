"""Example models: the networks of the papers this library reproduces.

    model = tn.models.ioffe_mlp(bn=True)              # 784-100-100-100-10 sigmoid, BN before each sigmoid
    model, x = tn.models.example("cnn_bn", batch=4)   # a model and an input batch for it

Used by the examples, the laboratory and `tinygrad-norm graph MODEL`.
`norm` arguments name the normalization: None (none), "batch", "group",
"layer", "instance", "rms", "batch_renorm", "mean_only" (see `make_norm`).
"""
from . import nn
from .factory import randn

__all__ = ["make_norm", "mlp", "ioffe_mlp", "small_cnn", "ResidualBlock", "residual_mlp", "example",
           "EXAMPLES"]


def make_norm(kind, num_features, dims=1, groups=8):
    """The normalization layer `kind` for `num_features` channels.

    dims=1: inputs (N, C) (after a Linear); dims=2: inputs (N, C, H, W) (after a Conv2d).
    "layer" on images is GroupNorm(1, C) (statistics over C, H, W per sample, per-channel γ, β);
    "group" is GroupNorm(min(groups, C), C); "instance" on (N, C) is not defined.
    """
    if kind is None or kind == "none":
        return nn.Identity()
    two = dims == 2
    if kind == "batch":
        return nn.BatchNorm2d(num_features) if two else nn.BatchNorm1d(num_features)
    if kind == "batch_renorm":
        return nn.BatchRenorm2d(num_features) if two else nn.BatchRenorm1d(num_features)
    if kind == "mean_only":
        return nn.MeanOnlyBatchNorm2d(num_features) if two else nn.MeanOnlyBatchNorm1d(num_features)
    if kind == "group":
        return nn.GroupNorm(min(groups, num_features), num_features)
    if kind == "layer":
        return nn.GroupNorm(1, num_features) if two else nn.LayerNorm(num_features)
    if kind == "instance":
        if not two:
            raise ValueError("instance norm needs (N, C, H, W) inputs (dims=2)")
        return nn.InstanceNorm2d(num_features, affine=True)
    if kind == "rms":
        if two:
            raise ValueError("rms norm is defined here for (N, C) inputs only (dims=1)")
        return nn.RMSNorm(num_features)
    raise ValueError(f"unknown norm {kind!r}; expected None, 'batch', 'batch_renorm', 'mean_only', "
                     f"'group', 'layer', 'instance' or 'rms'")


def _activation(name):
    layers = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
    if name not in layers:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(layers)}")
    return layers[name]()


def _init_(model, init):
    """init: None (PyTorch's defaults), "he" (kaiming normal, zero biases), or a float
    std (N(0, std²) weights, zero biases) for every Linear and Conv2d."""
    if init is None:
        return model
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if init == "he":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(init, (int, float)) and not isinstance(init, bool):
                nn.init.normal_(m.weight, 0.0, float(init))
            else:
                raise ValueError(f"init must be None, 'he' or a std (float), got {init!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def mlp(sizes, norm=None, activation="relu", bias=None, init=None, groups=8):
    """A fully connected net: sizes = (in, hidden..., out).

    Each hidden layer is Linear → norm → activation (the norm before the nonlinearity,
    as in Ioffe & Szegedy §3.2); the last layer is a plain Linear (logits).
    bias=None drops the hidden Linears' bias when a norm follows (β subsumes it).
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least (in, out) sizes, got {sizes}")
    hidden_bias = (norm in (None, "none")) if bias is None else bias
    layers = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(nn.Linear(n_in, n_out, bias=hidden_bias))
        if norm not in (None, "none"):
            layers.append(make_norm(norm, n_out, dims=1, groups=groups))
        layers.append(_activation(activation))
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return _init_(nn.Sequential(*layers), init)


def ioffe_mlp(bn=False, hidden=(100, 100, 100), activation="sigmoid", bias=None, init=None, norm=None):
    """Ioffe & Szegedy 2015 §4.1: MNIST MLP 784-100-100-100-10 with sigmoid units;
    with `bn=True`, BatchNorm1d between each hidden Linear (no bias) and its sigmoid.
    `init` as in `mlp` (the paper: "small random Gaussian values", std not stated);
    `norm` overrides `bn` with another normalization."""
    kind = norm if norm is not None else ("batch" if bn else None)
    return mlp((784, *hidden, 10), norm=kind, activation=activation, bias=bias, init=init)


def small_cnn(norm="batch", channels=(16, 32, 32), num_classes=10, groups=8, init=None):
    """A 3-conv MNIST CNN: [Conv3×3 → norm → ReLU] × 3 with 2×2 max-pooling after the
    first two, global average pooling, Linear → logits. Input (N, 1, 28, 28)."""
    layers, c_in = [], 1
    for i, c in enumerate(channels):
        layers.append(nn.Conv2d(c_in, c, 3, padding=1, bias=norm in (None, "none")))
        if norm not in (None, "none"):
            layers.append(make_norm(norm, c, dims=2, groups=groups))
        layers.append(nn.ReLU())
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return _init_(nn.Sequential(*layers), init)


class ResidualBlock(nn.Module):
    """h ← ReLU(h + N₂(W₂ · ReLU(N₁(W₁ h)))): the block of the residual MLP (docs/protocols.md §5)."""

    def __init__(self, width, norm="batch"):
        super().__init__()
        bias = norm in (None, "none")
        self.fc1 = nn.Linear(width, width, bias=bias)
        self.norm1 = make_norm(norm, width)
        self.fc2 = nn.Linear(width, width, bias=bias)
        self.norm2 = make_norm(norm, width)

    def forward(self, h):
        return (h + self.norm2(self.fc2(self.norm1(self.fc1(h)).relu()))).relu()


def residual_mlp(blocks=10, width=100, norm="batch", init="he", num_inputs=784, num_classes=10):
    """Linear(784 → width) + ReLU, `blocks` ResidualBlocks, Linear(width → 10) (docs/protocols.md §5:
    He init, zero biases)."""
    layers = [nn.Linear(num_inputs, width), nn.ReLU()]
    layers += [ResidualBlock(width, norm) for _ in range(blocks)]
    layers.append(nn.Linear(width, num_classes))
    return _init_(nn.Sequential(*layers), init)


# name -> (builder, input shape without the batch dim, description)
EXAMPLES = {
    "mlp": (lambda: ioffe_mlp(bn=False), (784,), "Ioffe & Szegedy MLP 784-100-100-100-10, sigmoid"),
    "mlp_bn": (lambda: ioffe_mlp(bn=True), (784,), "the same MLP with BatchNorm1d before each sigmoid"),
    "cnn": (lambda: small_cnn(norm=None), (1, 28, 28), "3-conv CNN, no normalization"),
    "cnn_bn": (lambda: small_cnn(norm="batch"), (1, 28, 28), "3-conv CNN with BatchNorm2d"),
    "resblock": (lambda: ResidualBlock(100, norm="batch"), (100,), "one residual block with BatchNorm1d"),
    "resmlp": (lambda: residual_mlp(blocks=10), (784,), "residual MLP: 10 blocks with BatchNorm1d"),
}


def example(name, batch=4, seed=0):
    """(model, input batch) of an example model, built reproducibly from `seed`
    (the library's random state is restored afterwards)."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example model {name!r}; choose from {', '.join(EXAMPLES)}")
    from .random import get_rng_state, manual_seed, set_rng_state
    state = get_rng_state()
    try:
        manual_seed(seed)
        build, shape, _ = EXAMPLES[name]
        model = build()
        x = randn(batch, *shape)
    finally:
        set_rng_state(state)
    return model, x
