"""Santurkar et al. 2018, §2.1 and Fig. 2: "noisy" BatchNorm — BN helps without stable distributions.

    tinygrad-norm run noisy-bn            # the CPU version: 4 MNIST MLPs × 3000 steps (≈ 1 min)
    tinygrad-norm run noisy-bn --quick    # 1000 steps: the direction of every effect
    tinygrad-norm run noisy-bn --full     # 6000 steps

If BatchNorm worked by keeping each layer's input distribution stable, then
shaking those distributions after BN at every step should undo its benefit.
Santurkar et al. (App. A.2.1, Algorithm 1) do exactly that, and the noisy-BN
net still nearly matches BN. `DistributionNoise` is their noise: after every BN
layer, at every training step, per unit j

    μ_t ~ U(−n_μ, n_μ),  σ_t ~ U(1, n_σ)                   (new each step)
    m_ij ~ U(μ_t − r_μ, μ_t + r_μ),  s_ij ~ N(σ_t, r_σ)     (per sample i)
    a_ij ← s_ij · a_ij + m_ij

with n_μ = 0.5, n_σ = 1.25, r_μ = r_σ = 0.1 (r_σ read as the std, docs/protocols.md §4).

The protocol (docs/protocols.md §4, on santurkar_landscape's MNIST MLP): 784 →
8 × [Linear(100) → (BN) → (noise) → ReLU] → Linear(10), He init, zero biases,
x = pixels / 255; SGD lr 0.1, batch 128, 3000 steps; the same seed and batches
for all four arms:

    plain        the standard net
    bn           BN after each hidden Linear
    noisy_bn     BN followed by the noise
    noisy_plain  the standard net with the same noise where BN's output would be

Measured: the training loss (100-step window means of the loss each step
optimizes, so the noisy arms' include their noise) and the test accuracy every
500 steps (eval mode: BN uses its running statistics and the noise is replaced
by its mean, a ↦ 1.125·a; the accuracy with the noise simply removed is
recorded too, as `test_accuracy_identity`; see DistributionNoise).

The claims (docs/protocols.md §4, made precise here before the first run):
"within ~10 % of BN": the mean of the window means over the last third of the
steps is ≤ 1.10 × BN's, and its final test accuracy is within 1 point of BN's;
"well below the standard net's": that mean is ≤ 0.8 × the standard net's;
"the noise stalls the standard net": none of its window means drops below 2.0.
NOTE: one choice came after the first run: at test time the noise is replaced
by its mean. The first run removed it, and the noisy-BN net lost about 3
points (default run: 0.942 vs BN's 0.974) to the 1.125× scale its layers were
trained on, not to the noise's instability (with the mean: 0.9735). Both accuracies are in results.json and the report.

What this protocol shows (seed 0): the claims mostly FAIL, for reasons worth
knowing. The noisy standard net trains (test accuracy ≈ 0.97): with nothing to
hold its scale, it grows its pre-activations (std 0.5–0.8 per layer at init,
1.3–4.7 after 3000 steps), so the fixed-size noise becomes relatively small;
the paper's VGG did not escape this way. With He init the standard MLP trains
about as fast as the BN one, so noisy BN cannot be "well below" it; and the
noisy arms' training loss carries the noise itself, about twice BN's. The BN
net does fit through the noise: with the noise's mean at test time its test
accuracy matches BN's.
"""
import numpy as np

from ... import nn
from ...data import DataLoader, mnist_arrays
from ...nn import functional as F
from ...optim import SGD
from ...random import generator, manual_seed
from ...tensor import Tensor
from ..plotting import new_figure, save_figure
from ..experiment import Claim, Experiment
from ..evaluate import accuracy
from .santurkar_landscape import santurkar_mlp

# ------------------------------------------------------------------ the noise (Algorithm 1)


class DistributionNoise(nn.Module):
    """Santurkar et al.'s Algorithm 1: a ← s·a + m with fresh random s, m at every call.

    Input (N, C) or (N, C, H, W) (for images H and W count as batch: one μ_t, σ_t per
    channel). Per channel j: μ_t ~ U(−n_mu, n_mu), σ_t ~ U(1, n_sigma); per element:
    m ~ U(μ_t − r_mu, μ_t + r_mu), s ~ N(σ_t, r_sigma) (r_sigma is a std). Draws come from
    the library's generator (`tn.manual_seed` reproduces them). The gradient is that of
    the affine map a ↦ s·a + m with s, m constants: ∂L/∂a = s · ∂L/∂(output).

    In eval mode (`at_eval`): "mean" (default) applies the noise's expectation,
    a ↦ E[s]·a + E[m] = (1 + n_sigma)/2 · a, as Dropout's eval mode is its expectation;
    "identity" returns a unchanged. The paper does not say.
    NOTE: E[s] = 1.125, not 1: the next layers are trained on inputs scaled by about
    1.125 and BN's running statistics are collected on them, so the identity at eval
    shifts every layer's input (noisy_bn's default run: test accuracy 0.942 instead of 0.974).
    """

    def __init__(self, num_features, n_mu=0.5, n_sigma=1.25, r_mu=0.1, r_sigma=0.1, at_eval="mean"):
        super().__init__()
        if n_sigma < 1 or min(n_mu, r_mu, r_sigma) < 0:
            raise ValueError(f"DistributionNoise needs n_sigma ≥ 1 and n_mu, r_mu, r_sigma ≥ 0, got "
                             f"n_mu={n_mu}, n_sigma={n_sigma}, r_mu={r_mu}, r_sigma={r_sigma}")
        if at_eval not in ("mean", "identity"):
            raise ValueError(f"at_eval must be 'mean' or 'identity', got {at_eval!r}")
        self.num_features, self.n_mu, self.n_sigma, self.r_mu, self.r_sigma = num_features, n_mu, n_sigma, r_mu, r_sigma
        self.at_eval = at_eval

    def sample(self, shape):
        """(s, m): float64 arrays of `shape` (N, C, ...), drawn in this order: μ_t, σ_t, m, s."""
        if len(shape) < 2 or shape[1] != self.num_features:
            raise ValueError(f"DistributionNoise({self.num_features}) expects input (N, {self.num_features}, ...), "
                             f"got shape {tuple(shape)}")
        rng = generator()                      # NOTE: looked up per call: manual_seed replaces the generator
        per_channel = (1, shape[1]) + (1,) * (len(shape) - 2)
        mu = rng.uniform(-self.n_mu, self.n_mu, shape[1]).reshape(per_channel)
        sigma = rng.uniform(1.0, self.n_sigma, shape[1]).reshape(per_channel)
        m = rng.uniform(mu - self.r_mu, mu + self.r_mu, shape)
        s = rng.normal(sigma, self.r_sigma, shape)
        return s, m

    def forward(self, x):
        if not self.training:
            return x * ((1.0 + self.n_sigma) / 2) if self.at_eval == "mean" else x   # E[m] = E[μ_t] = 0
        s, m = self.sample(x.shape)
        return x * Tensor._wrap(s.astype(x.dtype)) + Tensor._wrap(m.astype(x.dtype))

    def extra_repr(self):
        return (f"{self.num_features}, n_mu={self.n_mu}, n_sigma={self.n_sigma}, r_mu={self.r_mu}, "
                f"r_sigma={self.r_sigma}, at_eval={self.at_eval!r}")


# ------------------------------------------------------------------ settings

COMMON = dict(lr=0.1, batch_size=128, depth=8, width=100, n_mu=0.5, n_sigma=1.25, r_mu=0.1, r_sigma=0.1,
              test_every=500, log_every=100, checkpoint_every=1000)
MODES = {
    # docs/protocols.md §4, on the §3 MLP, with its 3000 steps
    "default": dict(COMMON, steps=3000),
    # twice as long: does the noisy standard net start training eventually?
    "full": dict(COMMON, steps=6000),
    # the direction of every effect
    "quick": dict(COMMON, steps=1000),
}
ARMS = {"plain": (False, False), "bn": (True, False), "noisy_bn": (True, True), "noisy_plain": (False, True)}
LABELS = {"plain": "standard", "bn": "BN", "noisy_bn": "noisy BN", "noisy_plain": "standard + noise"}
COLORS = {"plain": "tab:red", "bn": "tab:blue", "noisy_bn": "tab:green", "noisy_plain": "tab:orange"}
MATCH_RATIO, MATCH_ACCURACY, BELOW_RATIO, STALL_LOSS = 1.10, 0.01, 0.8, 2.0


def mean_scale(cfg):
    """E[s] = E[σ_t] = (1 + n_σ) / 2: what DistributionNoise multiplies by in eval mode."""
    return (1.0 + cfg["n_sigma"]) / 2


def build(cfg, bn, noisy):
    """The arm's MLP (santurkar_landscape.santurkar_mlp) with DistributionNoise where BN's output is."""
    def noise(num_features):
        return DistributionNoise(num_features, cfg["n_mu"], cfg["n_sigma"], cfg["r_mu"], cfg["r_sigma"])
    return santurkar_mlp(bn, noise=noise if noisy else None, depth=cfg["depth"], width=cfg["width"])


# ------------------------------------------------------------------ training

def train(lab, cfg):
    data = {"train": mnist_arrays("train"), "test": mnist_arrays("test")}
    return {arm: train_network(lab, cfg, arm, bn, noisy, data) for arm, (bn, noisy) in ARMS.items()}


def train_network(lab, cfg, arm, bn, noisy, data):
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    manual_seed(cfg["seed"])                                    # the same init stream for every arm
    model = build(cfg, bn, noisy)
    optimizer = SGD(model.parameters(), lr=cfg["lr"])
    loader = DataLoader(x_train, y_train, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                        seed=cfg["seed"])                       # the same batches for every arm
    noise = [m for m in model.modules() if isinstance(m, DistributionNoise)]
    curves = {"step": [], "test_accuracy": []} | ({"test_accuracy_identity": []} if noise else {})

    def evaluate(step, _):
        curves["step"].append(step)
        curves["test_accuracy"].append(accuracy(model, x_test, y_test))   # eval mode: the noise's mean
        if noise:                                                           # and, for comparison, no noise
            for m in noise:
                m.at_eval = "identity"
            curves["test_accuracy_identity"].append(accuracy(model, x_test, y_test))
            for m in noise:
                m.at_eval = "mean"

    return lab.train(arm, model, optimizer, loader, steps=cfg["steps"],
                     loss_fn=lambda x, y: F.cross_entropy(model(x), y), evaluate=evaluate,
                     eval_steps=sorted(set(range(0, cfg["steps"] + 1, cfg["test_every"])) | {cfg["steps"]}),
                     curves=curves, checkpoint_every=cfg["checkpoint_every"], log_every=cfg["log_every"])


# ------------------------------------------------------------------ claims (docs/protocols.md §4)

def last_third_loss(result):
    """The mean of the training-loss window means whose window ends after 2/3 of the steps."""
    steps, loss = np.array(result["train_loss"]["step"]), np.array(result["train_loss"]["loss"], dtype=np.float64)
    late = steps > 2 * result["steps"] / 3
    return float(loss[late].mean()) if late.any() else float("nan")


def claims(cfg, arms):
    diverged = [f"{a} diverged at step {r['diverged_at']}" for a, r in arms.items()
                if r["diverged_at"] is not None and a != "noisy_plain"]
    if diverged:
        return [Claim("every claim of docs/protocols.md §4", "; ".join(diverged), "training completes", False,
                      section="§2.5.1")]
    late = {a: last_third_loss(arms[a]) for a in ("plain", "bn", "noisy_bn")}
    acc = {a: arms[a]["curves"]["test_accuracy"][-1] for a in arms if arms[a]["curves"]["test_accuracy"]}
    rows = []
    ratio = late["noisy_bn"] / late["bn"]
    rows.append(Claim(f"noisy BN's training loss stays within ~10 % of BN's (mean over the last third of "
                      f"{cfg['steps']} steps of the 100-step window means)",
                      f"noisy BN {late['noisy_bn']:.4f}, BN {late['bn']:.4f}: {ratio:.2f}×",
                      f"ratio ≤ {MATCH_RATIO}", ratio <= MATCH_RATIO, ratio, section="1 (loss vs BN)"))
    gap = acc["bn"] - acc["noisy_bn"]
    identity = arms["noisy_bn"]["curves"]["test_accuracy_identity"][-1]
    rows.append(Claim(f"noisy BN nearly matches BN in test accuracy (at test time the noise is replaced by its "
                      f"mean, a ↦ {mean_scale(cfg):g}·a)",
                      f"noisy BN {acc['noisy_bn']:.4f}, BN {acc['bn']:.4f}: gap {100 * gap:+.2f} points "
                      f"(with the noise removed instead: {identity:.4f})",
                      f"BN − noisy BN ≤ {100 * MATCH_ACCURACY:g} point", gap <= MATCH_ACCURACY, gap,
                      section="1 (accuracy vs BN)"))
    below = late["noisy_bn"] / late["plain"]
    rows.append(Claim("noisy BN's training loss is well below the standard net's (the same last-third mean)",
                      f"noisy BN {late['noisy_bn']:.4f}, standard {late['plain']:.4f}: {below:.2f}×; test accuracy "
                      f"{acc['noisy_bn']:.4f} vs {acc['plain']:.4f}",
                      f"ratio ≤ {BELOW_RATIO}", below <= BELOW_RATIO, below, section="1 (vs standard)"))
    noisy = arms["noisy_plain"]
    windows = noisy["train_loss"]["loss"]
    if noisy["diverged_at"] is not None:
        measured, ok, low = f"diverged at step {noisy['diverged_at']} (loss not finite): it does not train", True, None
    elif not windows:
        measured, ok, low = "no complete 100-step window", None, None
    else:
        low = float(np.min(windows))
        measured = (f"lowest window mean {low:.4f}; last {windows[-1]:.4f}; test accuracy "
                    f"{acc.get('noisy_plain', float('nan')):.4f}")
        ok = low >= STALL_LOSS
    rows.append(Claim(f"the same noise in the standard net stalls it: no window mean of its training loss below "
                      f"{STALL_LOSS} in {cfg['steps']} steps", measured, f"every window ≥ {STALL_LOSS}", ok, low,
                      section="1 (noisy standard)"))
    return rows


# ------------------------------------------------------------------ figures

def figures(cfg, arms, out):
    fig = new_figure((11, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for arm in ARMS:
        r = arms[arm]
        loss_ax.plot(r["train_loss"]["step"], r["train_loss"]["loss"], color=COLORS[arm], label=LABELS[arm])
        acc_ax.plot(r["curves"]["step"], r["curves"]["test_accuracy"], color=COLORS[arm], marker="o", ms=3,
                    label=LABELS[arm])
        if "test_accuracy_identity" in r["curves"]:
            acc_ax.plot(r["curves"]["step"], r["curves"]["test_accuracy_identity"], color=COLORS[arm], ls=":",
                        lw=1, label=f"{LABELS[arm]}, noise removed at test")
    loss_ax.set_yscale("log")
    loss_ax.axhline(STALL_LOSS, color="gray", ls="--", lw=0.8)
    loss_ax.set_title("training loss (100-step means; noisy arms with their noise)", fontsize=9)
    acc_ax.set_title(f"test accuracy (eval mode: the noise's mean, a ↦ {mean_scale(cfg):g}·a)", fontsize=9)
    acc_ax.set_ylim(0.85, 1.0)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Santurkar et al. Fig. 2 on MNIST: 8×100 ReLU MLP, He init, SGD lr {cfg['lr']}, noise after "
                 f"BN (n_μ {cfg['n_mu']}, n_σ {cfg['n_sigma']}, r_μ {cfg['r_mu']}, r_σ {cfg['r_sigma']})",
                 fontsize=10)
    save_figure(fig, out, "noisy_bn.png", 90)
    return ["noisy_bn.png"]


EXPERIMENT = Experiment(
    name="noisy_bn",
    title="Santurkar et al. 2018, Fig. 2: noisy BatchNorm trains nearly as well as BatchNorm",
    paper="S. Santurkar, D. Tsipras, A. Ilyas, A. Madry, How Does Batch Normalization Help Optimization?, "
          "NeurIPS 2018 (arXiv:1805.11604), §2.1, Fig. 2 and App. A.2.1 (Algorithm 1)",
    protocol="§4",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="MNIST MLP 8×100 ReLU, He init, SGD lr 0.1, batch 128, four arms: standard, BN, BN followed by "
            "Algorithm 1's time-varying noise (per unit μ_t ~ U(−0.5, 0.5), σ_t ~ U(1, 1.25) each step; per "
            "sample m ~ U(μ_t ± 0.1), s ~ N(σ_t, 0.1); a ← s·a + m), and the standard net with the same noise. "
            "Training loss (noise on) and test accuracy (the noise replaced by its mean).",
)
