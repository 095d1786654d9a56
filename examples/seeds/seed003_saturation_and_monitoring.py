"""Seed 003 (the "Internal Covariate Shift" wiki page): its worked examples, recomputed with tinygrad_norm.

    python examples/seeds/seed003_saturation_and_monitoring.py

What is reproduced (functions return plain dicts, `main()` prints them):
    saturation()             demonstrate_saturation(): sigmoid of 1000 draws of N(0, 1) and of N(5, 1); the
                             mean activation and the mean gradient (by autograd) over the sample, next to the
                             exact expectations (Gauss–Hermite quadrature) and the plug-in values σ(μ), σ′(μ)
    track_training()         SimpleNetwork (784-256-128-10, ReLU) trained with the seed's train_and_monitor
                             (SGD lr 0.01, cross-entropy), h1/h2 statistics tracked per epoch as the seed does
                             and with tn.lab.ActivationMonitor; the same net with BatchNorm for contrast.
                             Data: synthetic MNIST-shaped inputs (10 noisy prototypes in [0, 1]^784)
    seed_stable_network()    the seed's build_stable_network(), run as written: it raises
    build_stable_network()   a working version, and its statistics at initialization
    identity_recovery()      "the network can learn γ = σ, β = μ to recover the original distribution"

What the seed got wrong (details in examples/seeds/README.md):
  * Its printed output for the shifted inputs (mean activation 0.9933, mean gradient 0.0065) is not a mean
    over inputs: those are σ(5) = 0.99331 and σ′(5) = 0.00665, the values AT the mean. The expectations for
    x ~ N(5, 1) are E[σ(x)] = 0.98920 and E[σ′(x)] = 0.010505; a 1000-sample mean is within ±0.0004 of
    them (1 standard error), so the seed's numbers are ≈ 10 standard errors off. Its centred "mean
    gradient" 0.1966 is 6.8 standard errors below E[σ′(x)] = 0.20662 for x ~ N(0, 1) (it equals σ′(1) =
    0.19661 to four digits). Its code prints the shifted gradient with 6 decimals; the output shows 4.
    So the gradient shrinks by a factor 0.0508 (≈ 20×) under the shift, not the printed 0.033 (≈ 30×).
  * build_stable_network() cannot run: it reads `model[0]` inside the expression that creates `model`
    (UnboundLocalError), and even then nn.init.kaiming_normal_ returns a Parameter, which is not a layer
    for nn.Sequential (TypeError).
  * The "Visualization" block uses np without importing numpy (NameError when run on its own).
"""
import os
import sys
import traceback

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import tinygrad_norm as tn  # noqa: E402
from tinygrad_norm import nn  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402

SEED_SAYS = {"centred": {"activation": 0.4998, "gradient": 0.1966},     # quoted, never used as results
             "shifted": {"activation": 0.9933, "gradient": 0.0065}}


# ------------------------------------------------------------------ sigmoid saturation

def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def gaussian_expectation(f, mu, sigma=1.0, nodes=120):
    """E[f(x)] for x ~ N(mu, sigma²) by Gauss–Hermite quadrature (probabilists' weight e^(−t²/2))."""
    t, w = hermegauss(nodes)
    return float(np.sum(w * f(mu + sigma * t)) / np.sqrt(2 * np.pi))


def saturation(n=1000, seed=0):
    """For x ~ N(0, 1) ("centred") and x ~ N(5, 1) ("shifted"): the sample means over n draws (tn.randn) of
    σ(x) and of σ′(x) (σ′ from autograd: the gradient of Σσ(x) w.r.t. x), the exact expectations and their
    standard errors √(Var/n) by quadrature, and the plug-in values σ(μ), σ′(μ). "draws": the sample."""
    tn.manual_seed(seed)
    out = {}
    for name, mu in (("centred", 0.0), ("shifted", 5.0)):
        x = (tn.randn(n, dtype=tn.float64) + mu).detach()
        x.requires_grad = True
        y = tn.sigmoid(x)
        y.sum().backward()
        act, grad = y.detach().numpy(), x.grad.numpy()
        d_sigmoid = lambda v: _sigmoid(v) * (1 - _sigmoid(v))  # noqa: E731
        row = {"mu": mu, "draws": x.detach().numpy().copy(),
               "sample_activation": float(act.mean()), "sample_gradient": float(grad.mean())}
        for key, f in (("activation", _sigmoid), ("gradient", d_sigmoid)):
            e = gaussian_expectation(f, mu)
            var = gaussian_expectation(lambda v: f(v) ** 2, mu) - e ** 2
            row[f"expected_{key}"] = e
            row[f"se_{key}"] = float(np.sqrt(var / n))
            row[f"plugin_{key}"] = float(f(np.float64(mu)))
        out[name] = row
    return out


# ------------------------------------------------------------------ activation statistics during training

class SimpleNetwork(nn.Module):
    """The seed's SimpleNetwork (784-256-128-10, ReLU), optionally with BatchNorm1d before each ReLU.
    The ReLUs are modules (relu1, relu2) so that tn.lab.ActivationMonitor can watch them."""

    def __init__(self, bn=False):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)
        self.bn1 = nn.BatchNorm1d(256) if bn else nn.Identity()
        self.bn2 = nn.BatchNorm1d(128) if bn else nn.Identity()
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()

    def forward(self, x, return_activations=False):
        h1 = self.relu1(self.bn1(self.fc1(x)))
        h2 = self.relu2(self.bn2(self.fc2(h1)))
        out = self.fc3(h2)
        if return_activations:
            return out, {"h1": h1, "h2": h2}
        return out


def synthetic_digits(n, seed=0):
    """MNIST-shaped stand-in: 10 random prototypes in [0, 1]^784 (20 % of the pixels on), each sample its
    class prototype plus N(0, 0.3²) noise, clipped to [0, 1]. Returns float32 (n, 784) and int64 (n,)."""
    rng = np.random.default_rng(1000)
    prototypes = (rng.random((10, 784)) < 0.2).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = np.clip(prototypes[y] + 0.3 * rng.standard_normal((n, 784)), 0, 1).astype(np.float32)
    return x, y


def _batches(x, y, batch_size, rng=None):
    idx = np.arange(len(y)) if rng is None else rng.permutation(len(y))
    for i in range(0, len(y), batch_size):
        j = idx[i:i + batch_size]
        yield tn.tensor(x[j]), tn.tensor(y[j])


TRACK_BATCH = 100            # batch size of the tracking passes
WIDTHS = {"relu1": 256, "relu2": 128}


def track_activation_statistics(model, x, y, batch_size=TRACK_BATCH):
    """The seed's function: eval mode, per batch h.mean() and h.var() (torch's default var is unbiased) of
    all entries, averaged over the batches."""
    model.eval()
    stats = {"h1_mean": [], "h1_var": [], "h2_mean": [], "h2_var": []}
    with tn.no_grad():
        for xb, _ in _batches(x, y, batch_size):
            _, acts = model(xb, return_activations=True)
            for k in ("h1", "h2"):
                stats[f"{k}_mean"].append(acts[k].mean().item())
                stats[f"{k}_var"].append(acts[k].var().item())
    return {k: float(np.mean(v)) for k, v in stats.items()}


def train_and_monitor(model, epochs=10, lr=0.01, batch_size=32, n_train=1000, seed=0):
    """The seed's train_and_monitor (SGD, cross-entropy; its defaults: 10 epochs, lr 0.01), plus an
    ActivationMonitor on relu1/relu2 that records only the tracking passes: means over the batches of its
    per-batch mean, std, unbiased variance std²·N/(N−1) (N entries per batch; the seed's measure) and dead
    fraction."""
    if n_train % TRACK_BATCH:
        raise ValueError(f"n_train must be a multiple of {TRACK_BATCH} (equal tracking batches), got {n_train}")
    x, y = synthetic_digits(n_train, seed)
    optimizer = tn.optim.SGD(model.parameters(), lr=lr)
    history = {"epoch": [], "loss": [], "h1_mean": [], "h1_var": [], "h2_mean": [], "h2_var": [],
               "monitor": {"relu1": [], "relu2": []}}
    order = np.random.default_rng(seed)
    with tn.lab.ActivationMonitor(model, modules=["relu1", "relu2"]) as mon:
        for epoch in range(epochs):
            model.train()
            total, count = 0.0, 0
            with mon.paused():
                for xb, yb in _batches(x, y, batch_size, order):
                    optimizer.zero_grad()
                    loss = F.cross_entropy(model(xb), yb)
                    loss.backward()
                    optimizer.step()
                    total, count = total + loss.item(), count + 1
            mon.clear()
            stats = track_activation_statistics(model, x, y)
            history["epoch"].append(epoch)
            history["loss"].append(total / count)
            for k, v in stats.items():
                history[k].append(v)
            for name in ("relu1", "relu2"):
                h = mon.history[name]["output"]
                entries = TRACK_BATCH * WIDTHS[name]
                history["monitor"][name].append({
                    "mean": float(np.mean(h["mean"])), "std": float(np.mean(h["std"])),
                    "var_unbiased": float(np.mean(np.square(h["std"]) * entries / (entries - 1))),
                    "dead": float(np.mean(h["saturated"]))})
    return history


def track_training(epochs=10, seed=0):
    """The seed's experiment without BN and the same net with BN before each ReLU (same init, same batches)."""
    out = {}
    for bn in (False, True):
        tn.manual_seed(seed)
        out["bn" if bn else "plain"] = train_and_monitor(SimpleNetwork(bn=bn), epochs=epochs, seed=seed)
    return out


# ------------------------------------------------------------------ the "stable network" builder

SEED_BUILDER = '''
def build_stable_network():
    """Design choices that reduce ICS impact."""

    model = nn.Sequential(
        # 1. Careful initialization (Xavier/He)
        nn.Linear(784, 256),
        nn.init.kaiming_normal_(model[0].weight, mode='fan_in'),

        # 2. Residual connections help
        # 3. Use ReLU family (less saturation)
        nn.ReLU(),

        # 4. Normalization layers
        nn.BatchNorm1d(256),

        nn.Linear(256, 10)
    )

    return model
'''


def seed_stable_network():
    """Run the seed's build_stable_network() as written (with nn = tinygrad_norm.nn) and, with its first bug
    removed (the Linear created beforehand), again. Returns {"as_written": "Error: message",
    "model_defined_first": "Error: message"} ("ran" where nothing is raised)."""
    out = {}
    scope = {"nn": nn}
    exec(SEED_BUILDER, scope)                           # noqa: S102 — the seed's own code, verbatim
    try:
        scope["build_stable_network"]()
        out["as_written"] = "ran"
    except Exception as e:                              # noqa: BLE001 — we report whatever it raises
        out["as_written"] = f"{type(e).__name__}: {e}"
    try:
        first = nn.Linear(784, 256)
        nn.Sequential(first, nn.init.kaiming_normal_(first.weight, mode="fan_in"), nn.ReLU(), nn.BatchNorm1d(256),
                      nn.Linear(256, 10))
        out["model_defined_first"] = "ran"
    except Exception as e:                              # noqa: BLE001
        out["model_defined_first"] = "".join(traceback.format_exception_only(type(e), e)).strip()
    return out


def build_stable_network(bn_before_relu=False):
    """A working version: He (Kaiming) init of the first layer, ReLU and BatchNorm1d, as the seed intended.
    The seed orders Linear → ReLU → BatchNorm; bn_before_relu=True gives Linear → BatchNorm → ReLU (Ioffe &
    Szegedy's placement, and seed 001's "Linear → Normalize → Activate")."""
    first = nn.Linear(784, 256)
    nn.init.kaiming_normal_(first.weight, mode="fan_in", nonlinearity="relu")   # std √2/√784
    nn.init.zeros_(first.bias)
    middle = [nn.BatchNorm1d(256), nn.ReLU()] if bn_before_relu else [nn.ReLU(), nn.BatchNorm1d(256)]
    return nn.Sequential(first, *middle, nn.Linear(256, 10))


def stable_network_stats(seed=0):
    """For both orders: the first layer's weight std (vs √(2/784)) and, on 256 synthetic inputs in training
    mode, every layer's output mean and std (ActivationMonitor), plus the ReLU's dead fraction."""
    out = {}
    x, _ = synthetic_digits(256, seed=seed + 1)
    for order, flag in (("linear_relu_bn (seed)", False), ("linear_bn_relu", True)):
        tn.manual_seed(seed)
        model = build_stable_network(bn_before_relu=flag)
        with tn.lab.ActivationMonitor(model) as mon, tn.no_grad():
            model(tn.tensor(x))
        layers = {name: {k: mon.history[name]["output"][k][0] for k in ("mean", "std", "saturated")}
                  for name in mon.names}
        out[order] = {"weight_std": float(model[0].weight.detach().numpy().std()), "he_std": float(np.sqrt(2 / 784)),
                      "layers": layers, "kinds": {name: type(model[int(name)]).__name__ for name in mon.names}}
    return out


# ------------------------------------------------------------------ γ and β undo the normalization

def identity_recovery(seed=0):
    """BatchNorm1d(4) in training mode on x ~ N(3, 2²) (64 samples): with γ = √(σ²_B + ε), β = μ_B the output
    is the input (exactly, up to rounding); with the seed's γ = σ_B the output is off by the ε term
    (x − μ)(σ/√(σ² + ε) − 1). Returns the two max |y − x| (float64)."""
    tn.manual_seed(seed)
    x = tn.randn(64, 4, dtype=tn.float64) * 2 + 3
    mu, var = x.mean(0), x.var(0, correction=0)
    out = {}
    for name, gamma in (("gamma_sqrt_var_plus_eps", (var + 1e-5).sqrt()), ("gamma_sigma", var.sqrt())):
        bn = nn.BatchNorm1d(4).double()
        nn.init.zeros_(bn.bias)
        with tn.no_grad():
            bn.weight.copy_(gamma)
            bn.bias.copy_(mu)
            y = bn(x)
        out[name] = float((y - x).abs().max().item())
    return out


# ------------------------------------------------------------------ printing

def main():
    s = saturation()
    print("Seed 003: sigmoid saturation, x ~ N(μ, 1), n = 1000 (σ′ by autograd)")
    print(f"  {'':8s} {'':10s} {'sample mean':>12s} {'± 1 s.e.':>9s} {'E[·] exact':>11s} {'at the mean':>12s}"
          f" {'seed says':>10s}")
    for name in ("centred", "shifted"):
        r = s[name]
        for key, label in (("activation", "σ(x)"), ("gradient", "σ′(x)")):
            print(f"  {name + ',' if key == 'activation' else '':8s} {label:10s} {r['sample_' + key]:12.6f} "
                  f"{r['se_' + key]:9.6f} {r['expected_' + key]:11.6f} {r['plugin_' + key]:12.6f} "
                  f"{SEED_SAYS[name][key]:10.4f}")
    ratio = s["shifted"]["expected_gradient"] / s["centred"]["expected_gradient"]
    print(f"  The seed's shifted values are σ(5) and σ′(5) (the column 'at the mean'), not means over inputs. "
          f"The shift shrinks the mean gradient by {ratio:.4f} (≈ {1 / ratio:.0f}×), not by "
          f"{SEED_SAYS['shifted']['gradient'] / SEED_SAYS['centred']['gradient']:.3f}.")

    print("\nActivation statistics during training (seed's train_and_monitor; synthetic 784-d data, SGD lr 0.01)")
    t = track_training()
    for net, h in t.items():
        print(f"  {net}:")
        for e in h["epoch"]:
            m1, m2 = h["monitor"]["relu1"][e], h["monitor"]["relu2"][e]
            print(f"    Epoch {e}: Loss={h['loss'][e]:.4f}, h1_mean={h['h1_mean'][e]:.4f}, h1_var={h['h1_var'][e]:.4f},"
                  f" h2_mean={h['h2_mean'][e]:.4f}, h2_var={h['h2_var'][e]:.4f} | monitor: h1 std {m1['std']:.4f}"
                  f" dead {100 * m1['dead']:.1f} %, h2 std {m2['std']:.4f} dead {100 * m2['dead']:.1f} %")

    print("\nbuild_stable_network()")
    b = seed_stable_network()
    print(f"  the seed's code, as written:      {b['as_written']}")
    print(f"  with the Linear created first:    {b['model_defined_first']}")
    for order, r in stable_network_stats().items():
        print(f"  working version, {order}: first-layer weight std {r['weight_std']:.5f} (He: √(2/784) = "
              f"{r['he_std']:.5f}); outputs at init (training mode, 256 inputs):")
        for name, st in r["layers"].items():
            sat = f", dead {100 * st['saturated']:.1f} %" if st["saturated"] is not None else ""
            print(f"    [{name}] {r['kinds'][name]:12s} mean {st['mean']:+.4f}  std {st['std']:.4f}{sat}")

    i = identity_recovery()
    print("\nγ and β undo the normalization: max |BN(x) − x| with γ = √(σ²_B+ε), β = μ_B: "
          f"{i['gamma_sqrt_var_plus_eps']:.1e}; with the seed's γ = σ_B: {i['gamma_sigma']:.1e} (the ε term)")


if __name__ == "__main__":
    main()
