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
recorded too, as `test_accuracy_identity`; see DistributionNoise). At the same
steps, the paper's second half: on a fixed probe batch (the first 256 training
images), in training mode as a step sees them (the noise drawn, nothing left
behind), every ReLU input's per-unit mean and std (`unit_mean`, `unit_std`) and
each layer's pooled std (`layer_std`); their change between probes measures how
unstable the distributions are (`instability`).

The claims (docs/protocols.md §4, ours: the paper gives no numbers): the noise
makes noisy BN's distributions ≥ 1.5× as unstable as the standard net's; noisy BN
is within 1 point of BN in test accuracy and ≥ 0.4 points above the standard
net; the noisy standard net stalls (no 100-step mean below 2.0). Sanity check:
noisy BN's distributions move ≥ 3× more than BN's (the noise does it by
construction). The noisy arms' training losses are reported, not judged: they
carry the noise (about twice BN's).
NOTE: one choice came after the first run: at test time the noise is replaced
by its mean. The first run removed it, and the noisy-BN net lost about 3
points (default run: 0.942 vs BN's 0.974) to the 1.125× scale its layers were
trained on, not to the noise's instability (with the mean: 0.9735). Both
accuracies are in results.json and the report. What the runs show is in
docs/lab.md (noisy_bn), with the recorded figures.
"""
import numpy as np

from ... import nn
from ...data import DataLoader, mnist_arrays
from ...nn import functional as F
from ...optim import SGD
from ...random import generator, manual_seed
from ...tensor import Tensor, no_grad
from ..probe import preserved
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
              test_every=500, log_every=100, checkpoint_every=1000, probe_size=256, init="he")
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
MATCH_ACCURACY, BEATS_STANDARD, STALL_LOSS = 0.01, 0.004, 2.0
# the distributions' instability (docs/protocols.md §4): noisy BN vs the standard net (a claim, ours)
# and vs BN (a sanity check: the noise moves each unit's mean by E|U − U'| = n_μ·2/3 by construction)
UNSTABLE_VS_STANDARD, UNSTABLE_VS_BN = 1.5, 3.0


def mean_scale(cfg):
    """E[s] = E[σ_t] = (1 + n_σ) / 2: what DistributionNoise multiplies by in eval mode."""
    return (1.0 + cfg["n_sigma"]) / 2


def build(cfg, bn, noisy):
    """The arm's MLP (santurkar_landscape.santurkar_mlp) with DistributionNoise where BN's output is."""
    def noise(num_features):
        return DistributionNoise(num_features, cfg["n_mu"], cfg["n_sigma"], cfg["r_mu"], cfg["r_sigma"])
    return santurkar_mlp(bn, noise=noise if noisy else None, depth=cfg["depth"], width=cfg["width"],
                         init=cfg["init"])


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
    curves = {"step": [], "test_accuracy": [], "unit_mean": [], "unit_std": [], "layer_std": []} | (
        {"test_accuracy_identity": []} if noise else {})
    probe = Tensor(x_train[:cfg["probe_size"]])

    def evaluate(step, _):
        curves["step"].append(step)
        means, stds = relu_input_stats(model, probe)
        curves["unit_mean"].append(means.tolist())
        curves["unit_std"].append(stds.tolist())
        curves["layer_std"].append([float(v) for v in np.sqrt((stds ** 2 + (means - means.mean(1, keepdims=True)) ** 2)
                                                              .mean(1))])
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


def relu_input_stats(model, probe):
    """The inputs of every ReLU on `probe`, in training mode as a training step sees them (batch statistics,
    the noise drawn): per layer and unit, their mean and std over the probe batch, two arrays (layers, units).
    `preserved` leaves the model, its running statistics and the random generator as they were."""
    seen = []
    hooks = [m.register_forward_hook(lambda module, args, out: seen.append(np.asarray(args[0].numpy(), np.float64)))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with preserved(model), no_grad():
            model(probe)
    finally:
        for h in hooks:
            h.remove()
    return np.array([a.mean(0) for a in seen]), np.array([a.std(0) for a in seen])


def instability(curves):
    """How much the ReLU inputs' distributions move between consecutive probes: the mean over layers, units
    and probe pairs of |Δ mean| + |Δ std| (None with fewer than two probes)."""
    m, s = np.array(curves["unit_mean"]), np.array(curves["unit_std"])
    if len(m) < 2:
        return None
    return float(np.mean(np.abs(np.diff(m, axis=0)) + np.abs(np.diff(s, axis=0))))


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
        return [Claim.compare("every claim of docs/protocols.md §4", None, ">=", 0, "; ".join(diverged),
                              section="§4")]
    late = {a: last_third_loss(arms[a]) for a in ("plain", "bn", "noisy_bn")}
    acc = {a: arms[a]["curves"]["test_accuracy"][-1] for a in arms if arms[a]["curves"]["test_accuracy"]}
    moved = {a: instability(arms[a]["curves"]) for a in ARMS if arms[a]["diverged_at"] is None}
    rows = []
    text = ", ".join(f"{LABELS[a]} {v:.3g}" for a, v in moved.items() if v is not None)
    ok = all(moved.get(a) for a in ("noisy_bn", "plain", "bn"))
    rows.append(Claim.compare("the noise makes noisy BN's ReLU-input distributions unstable: their change between "
                              f"probes (every {cfg['test_every']} steps; per unit |Δ mean| + |Δ std|), noisy BN / standard",
                              moved["noisy_bn"] / moved["plain"] if ok else None, ">=", UNSTABLE_VS_STANDARD, text,
                              section="1", log=True))
    rows.append(Claim.compare("the same, noisy BN / BN (the noise moves the distributions by construction)",
                              moved["noisy_bn"] / moved["bn"] if ok else None, ">=", UNSTABLE_VS_BN, text,
                              section="1 (vs BN)", kind="check", log=True))
    gap = acc["bn"] - acc["noisy_bn"]
    identity = arms["noisy_bn"]["curves"]["test_accuracy_identity"][-1]
    rows.append(Claim.compare(f"noisy BN nearly matches BN in test accuracy (at test time the noise is replaced by its "
                              f"mean, a ↦ {mean_scale(cfg):g}·a): BN − noisy BN", gap, "<=", MATCH_ACCURACY,
                              f"noisy BN {acc['noisy_bn']:.4f}, BN {acc['bn']:.4f}: gap {100 * gap:+.2f} points "
                              f"(with the noise removed instead: {identity:.4f}); not judged: training loss over the "
                              f"last third {late['noisy_bn']:.4f} vs {late['bn']:.4f} "
                              f"({late['noisy_bn'] / late['bn']:.2f}×, the noise included)", section="2",
                              threshold=f"≤ {100 * MATCH_ACCURACY:g} point"))
    beat = acc["noisy_bn"] - acc["plain"]
    rows.append(Claim.compare("noisy BN beats the standard net in test accuracy: noisy BN − standard", beat, ">=",
                              BEATS_STANDARD, f"noisy BN {acc['noisy_bn']:.4f}, standard {acc['plain']:.4f}: "
                              f"{100 * beat:+.2f} points; not judged: last-third training loss "
                              f"{late['noisy_bn']:.4f} vs {late['plain']:.4f}", section="3",
                              threshold=f"≥ +{100 * BEATS_STANDARD:g} points"))
    noisy = arms["noisy_plain"]
    windows = noisy["train_loss"]["loss"]
    claim = (f"the same noise in the standard net stalls it: its lowest 100-step training loss in {cfg['steps']} "
             "steps")
    if noisy["diverged_at"] is not None:
        c = Claim.compare(claim, None, ">=", STALL_LOSS,
                          f"diverged at step {noisy['diverged_at']} (loss not finite): it does not train", section="4")
        c.passed = True                                     # NOTE: diverging is not training: the claim holds
        rows.append(c)
    else:
        low = float(np.min(windows)) if windows else None
        grown = noisy["curves"]["layer_std"]
        rows.append(Claim.compare(claim, low, ">=", STALL_LOSS,
                                  "no complete 100-step window" if low is None else
                                  f"lowest window mean {low:.4f}; last {windows[-1]:.4f}; test accuracy "
                                  f"{acc.get('noisy_plain', float('nan')):.4f}; its ReLU inputs' std per layer "
                                  f"{min(grown[0]):.2f}–{max(grown[0]):.2f} at step 0, {min(grown[-1]):.2f}–"
                                  f"{max(grown[-1]):.2f} at step {noisy['curves']['step'][-1]}", section="4"))
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
