"""Bjorck et al. 2018: BatchNorm lets a deep residual net take large steps (docs/protocols.md §5).

    tinygrad-norm run bjorck            # docs/protocols.md §5: 7 lrs × 2 nets × 1500 steps (≈ 1.5 min)
    tinygrad-norm run bjorck --quick    # 4 lrs × 300 steps: the direction of every effect (≈ 15 s)
    tinygrad-norm run bjorck --full     # 7 lrs × 4690 steps (10 epochs)

The paper trains a 110-layer ResNet on CIFAR-10; its CPU version (docs/protocols.md §5)
keeps what makes the unnormalized net explode, residual connections plus He init:

    data       MNIST, x = pixels / 255, batch 128, shuffled each epoch; every net
               sees the same batches in the same order.
    net        Linear(784 → 100) + ReLU, then 10 blocks h ← ReLU(h + N(W₂·ReLU(N(W₁h)))),
               then Linear(100 → 10) (`tn.models.residual_mlp`): 22 linears. N is
               BatchNorm1d or the identity. He (kaiming-normal) init, zero biases,
               the same seed for every net.
    lr sweep   plain SGD at lr 0.001 … 1.0 (half-decades), 1500 steps; test accuracy
               on the 10,000 test images (BN in eval mode). "div": the loss of a step
               is NaN/inf or more than 1000× the loss of step 0; the arm stops there.
               "Stable" = not div. NOTE: plain SGD replaces the paper's momentum,
               weight decay and augmentation: the claims are about the step a net
               tolerates, and with no momentum the lr is the step.
    at init    BN in training mode, model untouched:
               (a) relative loss L(θ − αg)/L(θ), g = ∇L(θ), α on a log grid 1e-4 … 1
                   (`tn.lab.landscape_probe`), on the batches of steps 0, 3 and 6 (the
                   paper's mini-batches 1, 4 and 7), all at the initial θ;
               on the batch of step 0:
               (b) the std of every linear's output, of every block's output and (BN)
                   of every normalized pre-activation N(·);
               (c) the weight gradient of the middle linear (#11 of 22): its histogram,
                   RMS and largest |g|.

The claims (docs/protocols.md §5): the largest stable lr with BN is ≥ 10× the largest
without; the best BN accuracy beats the best without by ≥ 1 point; at lr 0.001 BN
is not better by more than 1 point; at init the relative loss without BN exceeds
10³ for some α ≤ 0.1 while with BN it stays < 3 for α ≤ 0.3 (on every batch);
without BN the last block's output std is ≥ 10× the first's. A last row compares
the middle layer's gradients: Bjorck et al. see them "almost two orders of
magnitude" larger without BN; we ask for one (RMS ratio ≥ 10×, fixed before the
first measurement): our 22 layers grow activations ~40×, the paper's 110 layers
by ~10⁵. Sanity check (by construction): with BN the normalized pre-activations
have std 1 ± 0.05 in every block.
"""
import math

import numpy as np

from ... import nn
from ...data import DataLoader, mnist_arrays
from ...models import ResidualBlock, residual_mlp
from ...nn import functional as F
from ...optim import SGD
from ...random import manual_seed
from ...tensor import no_grad
from ..landscape import landscape_probe
from ..probe import loss_and_grads, preserved
from ..evaluate import accuracy
from ..plotting import new_figure, save_figure
from ..experiment import Claim, Experiment

# ------------------------------------------------------------------ settings

LRS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
ALPHAS = sorted({round(a * 10.0 ** k, 12) for k in range(-4, 0) for a in (1, 2, 3, 5)} | {1.0})  # 1e-4 … 1
COMMON = dict(blocks=10, width=100, batch_size=128, lrs=LRS, diverge_factor=1000.0, alphas=ALPHAS,
              middle_layer=11, histogram_bins=60, checkpoint_every=500, log_every=50,
              init_batches=[0, 3, 6])                     # the paper's mini-batches 1, 4 and 7
MODES = {
    "default": dict(COMMON, steps=1500),                                  # docs/protocols.md §5
    "full": dict(COMMON, steps=4690),                                     # 10 epochs of 469 batches
    "quick": dict(COMMON, steps=300, lrs=[0.001, 0.01, 0.1, 1.0], checkpoint_every=300, log_every=20),
}
# docs/protocols.md §5 thresholds
LR_RATIO, EXPLODE, BN_SMOOTH, GROWTH, BN_STD_TOL, GRAD_RATIO = 10.0, 1e3, 3.0, 10.0, 0.05, 10.0
# margins of the direction claims (docs/protocols.md §5): ≈ 3× the binomial σ of an accuracy difference
BEST_GAP, SMALL_LR_GAP = 0.01, 0.01
# docs/protocols.md §5: PyTorch, seed 0 (shown next to ours in the report and docs)
TORCH_ACCURACY = {"plain": {0.001: 0.872, 0.003: 0.918, 0.01: 0.934},
                  "bn": {0.001: 0.836, 0.003: 0.905, 0.01: 0.944, 0.03: 0.960, 0.1: 0.961, 0.3: 0.967, 1.0: 0.952}}
TORCH_RELATIVE_LOSS = {"plain": {0.003: 0.55, 0.01: 2.2, 0.03: 31, 0.1: 2.8e4, 0.3: 1.6e10, 1.0: 3.6e19},
                       "bn": {0.003: 0.72, 0.01: 0.65, 0.03: 0.61, 0.1: 0.77, 0.3: 2.5, 1.0: 18}}


def build(cfg, bn):
    """The residual MLP of docs/protocols.md §5 with BatchNorm1d (bn=True) or the identity as N."""
    return residual_mlp(blocks=cfg["blocks"], width=cfg["width"], norm="batch" if bn else None, init="he")


def net_name(bn):
    return "bn" if bn else "plain"


def arm_name(bn, lr):
    return f"{net_name(bn)}_lr{lr:g}"


# ------------------------------------------------------------------ measurements at init

def relative_loss(model, batch, alphas):
    """L(θ − αg)/L(θ) for each α, g = ∇L(θ) on `batch` (cross-entropy; training mode; model untouched).

    Returns {"alphas", "loss" (L(θ)), "grad_norm", "relative" [per α]}. A loss that overflows is inf.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        probe = landscape_probe(model, F.cross_entropy, batch, alphas)
    return {"alphas": probe["etas"], "loss": probe["loss"], "grad_norm": probe["grad_norm"],
            "relative": [loss / probe["loss"] for loss in probe["losses"]]}


def _std(t):
    return float(np.asarray(t.detach().numpy(), np.float64).std())


def activation_stds(model, x):
    """On the batch x (training mode, model untouched), the std over all entries of:
    every Linear's output ("linear", in forward order), every ResidualBlock's output
    ("block") and every BatchNorm's output ("norm": [N₁, N₂] per block; [] without BN)."""
    seen = {"linear": [], "block": [], "norm": []}
    hooks = []
    for m in model.modules():
        kind = ("linear" if isinstance(m, nn.Linear) else "block" if isinstance(m, ResidualBlock)
                else "norm" if isinstance(m, nn.BatchNorm1d) else None)
        if kind is not None:
            hooks.append(m.register_forward_hook(lambda module, args, out, kind=kind: seen[kind].append(_std(out))))
    try:
        with preserved(model), no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    norms = seen["norm"]
    seen["norm"] = [norms[i:i + 2] for i in range(0, len(norms), 2)]
    return seen


def weight_gradient(model, batch, layer, bins):
    """The gradient of linear #`layer`'s weight (1-based, forward order) on `batch` at the current θ:
    {"layer", "rms", "max_abs", "p99_abs", "counts", "edges"} (a histogram over ±max|g|)."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)][layer - 1]
    with preserved(model):
        _, (g,) = loss_and_grads(model, F.cross_entropy, batch, [linear.weight])
    g = np.asarray(g, np.float64).ravel()
    top = float(np.abs(g).max())
    counts, edges = np.histogram(g, bins=bins, range=(-top, top) if top > 0 else None)
    return {"layer": layer, "rms": float(np.sqrt(np.mean(g * g))), "max_abs": top,
            "p99_abs": float(np.percentile(np.abs(g), 99)), "counts": counts.tolist(), "edges": edges.tolist()}


def measure_at_init(model, batch, cfg, more_batches=()):
    """Everything measured at initialization on the batch of step 0 (model untouched), and the relative
    loss on `more_batches` too (the batches of the later steps in `init_batches`, at the same θ)."""
    return {"relative_loss": relative_loss(model, batch, cfg["alphas"]),
            "relative_loss_batches": [relative_loss(model, b, cfg["alphas"]) for b in more_batches],
            "std": activation_stds(model, batch[0]),
            "gradient": weight_gradient(model, batch, cfg["middle_layer"], cfg["histogram_bins"])}


# ------------------------------------------------------------------ training

def train(lab, cfg):
    x_train, y_train = mnist_arrays("train")
    x_test, y_test = mnist_arrays("test")

    def loader():
        return DataLoader(x_train, y_train, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                          seed=cfg["seed"])                       # the same batches for every net
    first = loader()
    first.set_epoch(0)
    wanted = sorted(set(cfg["init_batches"]) | {0})
    batches = {}
    for step, b in enumerate(first):                              # the batches of steps 0, 3, 6 (epoch 0)
        if step in wanted:
            batches[step] = b
        if step >= wanted[-1]:
            break
    arms = {}
    for bn in (False, True):
        manual_seed(cfg["seed"])
        arms[f"init_{net_name(bn)}"] = {"init": measure_at_init(build(cfg, bn), batches[0], cfg,
                                                                [batches[k] for k in wanted if k != 0]),
                                        "wall_time_s": 0.0}
    for lr in cfg["lrs"]:
        for bn in (False, True):
            manual_seed(cfg["seed"])                              # the same init as measured above
            model = build(cfg, bn)
            curves = {}

            def evaluate(step, batch, model=model, curves=curves):
                curves["test_accuracy"] = accuracy(model, x_test, y_test)

            arms[arm_name(bn, lr)] = lab.train(
                arm_name(bn, lr), model, SGD(model.parameters(), lr=lr), loader(), steps=cfg["steps"],
                loss_fn=lambda x, y, model=model: F.cross_entropy(model(x), y),
                evaluate=evaluate, eval_steps=[cfg["steps"]], curves=curves,
                checkpoint_every=cfg["checkpoint_every"], log_every=cfg["log_every"],
                diverge_factor=cfg["diverge_factor"])
    return arms




# ------------------------------------------------------------------ claims (docs/protocols.md §5)

def sweep(cfg, arms, bn):
    """[(lr, test accuracy or None if diverged, diverged_at or None)] over the lr grid."""
    rows = []
    for lr in cfg["lrs"]:
        r = arms[arm_name(bn, lr)]
        div = r["diverged_at"]
        rows.append((lr, None if div is not None else r["curves"]["test_accuracy"], div))
    return rows


def largest_stable_lr(rows):
    """The largest lr of a sweep that did not diverge (None if every lr diverged)."""
    stable = [lr for lr, acc, div in rows if div is None]
    return max(stable) if stable else None


def best(rows):
    """(lr, accuracy) of the most accurate stable run, or (None, None)."""
    done = [(acc, lr) for lr, acc, div in rows if div is None]
    if not done:
        return None, None
    acc, lr = max(done)
    return lr, acc


def _max_where(alphas, values, at_most):
    v = [x for a, x in zip(alphas, values) if a <= at_most * (1 + 1e-9)]
    return max(v, key=lambda x: -math.inf if x != x else x) if v else None


def worst_relative_loss(init, at_most):
    """The largest relative loss over α ≤ at_most and over every batch measured at init (None: none)."""
    curves = [init["relative_loss"]] + [r for r in init.get("relative_loss_batches", [])]
    tops = [_max_where(r["alphas"], r["relative"], at_most) for r in curves]
    tops = [t for t in tops if t is not None]
    return max(tops, key=lambda x: math.inf if x != x else x) if tops else None


def claims(cfg, arms):
    plain, bn = sweep(cfg, arms, False), sweep(cfg, arms, True)
    rows = []

    lp, lb = largest_stable_lr(plain), largest_stable_lr(bn)
    claim = f"the largest stable lr with BN / the largest without (calibrated: 1.0 vs 0.01)"
    text = f"BN {lb if lb is None else f'{lb:g}'}, no BN {lp if lp is None else f'{lp:g}'}"
    if lb is None or lp is None:
        # NOTE: no BN diverging at every lr while BN trains is a pass whose ratio is unbounded
        c = Claim.compare(claim, None, ">=", LR_RATIO, text + ": a net diverged at every lr", section="1.1", log=True)
        c.passed = True if (lb is not None and lp is None) else None
        rows.append(c)
    else:
        ratio = lb / lp
        bound = " (BN stable at the largest lr tried: a lower bound)" if lb == max(cfg["lrs"]) else ""
        rows.append(Claim.compare(claim, ratio, ">=", LR_RATIO, f"{text}: {ratio:.3g}×{bound}", section="1.1",
                                  log=True))

    (blr, bacc), (plr, pacc) = best(bn), best(plain)
    claim = "the best BN accuracy beats the best no-BN accuracy: BN − no BN (calibrated: 0.967 vs 0.934)"
    if bacc is None or pacc is None:
        rows.append(Claim.compare(claim, None, ">=", BEST_GAP, "a net diverged at every lr", section="1.2",
                                  threshold=f"≥ +{100 * BEST_GAP:g} point"))
    else:
        rows.append(Claim.compare(claim, bacc - pacc, ">=", BEST_GAP,
                                  f"BN {bacc:.4f} (lr {blr:g}), no BN {pacc:.4f} (lr {plr:g}): "
                                  f"{100 * (bacc - pacc):+.2f} points", section="1.2",
                                  threshold=f"≥ +{100 * BEST_GAP:g} point"))

    lo = min(cfg["lrs"])
    (_, ab, _), (_, ap, _) = bn[0], plain[0]
    claim = f"at the smallest lr ({lo:g}) BN is not better than no BN: BN − no BN (calibrated: 0.836 vs 0.872)"
    if ab is None or ap is None:
        rows.append(Claim.compare(claim, None, "<=", SMALL_LR_GAP, "a net diverged", section="1.3",
                                  threshold=f"≤ +{100 * SMALL_LR_GAP:g} point"))
    else:
        rows.append(Claim.compare(claim, ab - ap, "<=", SMALL_LR_GAP,
                                  f"BN {ab:.4f}, no BN {ap:.4f}: {100 * (ab - ap):+.2f} points", section="1.3",
                                  threshold=f"≤ +{100 * SMALL_LR_GAP:g} point"))

    ip, ib = arms["init_plain"]["init"], arms["init_bn"]["init"]
    nb = 1 + len(ip.get("relative_loss_batches", []))
    top = worst_relative_loss(ip, 0.1)
    rows.append(Claim.compare(f"at init, without BN the relative loss L(θ−αg)/L(θ) exceeds {EXPLODE:g} for some "
                              f"α ≤ 0.1 (max over α and {nb} batches; calibrated 2.8e4 at α = 0.1)",
                              top if top is None or math.isfinite(top) else np.finfo(np.float64).max, ">", EXPLODE,
                              f"max over α ≤ 0.1: {top:.3g}; per batch "
                              + ", ".join(f"{_max_where(r['alphas'], r['relative'], 0.1):.3g}" for r in
                                          [ip["relative_loss"]] + ip.get("relative_loss_batches", [])),
                              section="2.1", log=True))
    top = worst_relative_loss(ib, 0.3)
    rows.append(Claim.compare(f"at init, with BN the relative loss stays < 3 for α ≤ 0.3 (max over α and {nb} "
                              "batches; calibrated 2.5 at α = 0.3)", top, "<", BN_SMOOTH,
                              f"max over α ≤ 0.3: {top:.3g}; per batch "
                              + ", ".join(f"{_max_where(r['alphas'], r['relative'], 0.3):.3g}" for r in
                                          [ib["relative_loss"]] + ib.get("relative_loss_batches", [])),
                              section="2.2", log=True))

    blocks = ip["std"]["block"]
    growth = blocks[-1] / blocks[0]
    lin = ip["std"]["linear"]
    rows.append(Claim.compare(f"at init, without BN the last block's output std / the first's",
                              growth, ">=", GROWTH,
                              f"block 1 {blocks[0]:.3g}, block {len(blocks)} {blocks[-1]:.3g}: {growth:.1f}× "
                              f"(linear outputs {lin[0]:.2f} → {lin[-1]:.1f}; calibrated 0.48 → 20.4)",
                              section="3", log=True))
    norms = [s for pair in ib["std"]["norm"] for s in pair]
    worst = max(abs(s - 1) for s in norms)
    rows.append(Claim.compare("at init, with BN the normalized pre-activations have std ≈ 1 in every block "
                              "(train-mode BN: by construction)", worst, "<=", BN_STD_TOL,
                              f"{min(norms):.4f} … {max(norms):.4f} over {len(norms)} BN layers", section="3 (BN)",
                              kind="check", threshold=f"|std − 1| ≤ {BN_STD_TOL:g}"))

    gp, gb = ip["gradient"], ib["gradient"]
    ratio = gp["rms"] / gb["rms"]
    rows.append(Claim.compare(f"at init, the weight gradient of the middle linear (#{gp['layer']}): RMS without BN / "
                              "with (Bjorck: ~100×, 'almost two orders of magnitude')", ratio, ">=", GRAD_RATIO,
                              f"RMS {gp['rms']:.3g} vs {gb['rms']:.3g}: {ratio:.1f}×; max |g| {gp['max_abs']:.3g} vs "
                              f"{gb['max_abs']:.3g}: {gp['max_abs'] / gb['max_abs']:.1f}×", section="4", log=True))
    return rows


# ------------------------------------------------------------------ figures

COLORS = {"plain": "tab:red", "bn": "tab:blue"}
LABELS = {"plain": "without BN", "bn": "with BN"}


def figures(cfg, arms, out):
    names = []

    # accuracy vs lr, and the training loss of every run
    fig = new_figure((11, 4))
    ax, ax2 = fig.subplots(1, 2)
    for bn in (False, True):
        net = net_name(bn)
        rows = sweep(cfg, arms, bn)
        ok = [(lr, acc) for lr, acc, div in rows if acc is not None]
        if ok:
            ax.semilogx(*zip(*ok), "o-", color=COLORS[net], label=LABELS[net])
        for lr, acc, div in rows:
            if acc is None:
                ax.plot(lr, 0.0, "x", color=COLORS[net], ms=9, mew=2, transform=ax.get_xaxis_transform())
                ax.annotate(f"div ({div})", (lr, 0.06), xycoords=("data", "axes fraction"), color=COLORS[net],
                            fontsize=8, ha="center", rotation=90, va="bottom")
        ref = TORCH_ACCURACY[net]
        ax.semilogx(list(ref), list(ref.values()), ":", color=COLORS[net], alpha=0.7, label=f"{LABELS[net]}, PyTorch")
        lrs = sorted(cfg["lrs"])
        for i, lr in enumerate(lrs):
            tl = arms[arm_name(bn, lr)]["train_loss"]
            if tl["step"]:
                ax2.semilogy(tl["step"], tl["loss"], color=COLORS[net], alpha=0.25 + 0.75 * i / max(len(lrs) - 1, 1),
                             label=f"{LABELS[net]}, lr {lr:g}" if i in (0, len(lrs) - 1) else None)
    accs = [acc for bn in (False, True) for _, acc, _ in sweep(cfg, arms, bn) if acc is not None]
    ax.set_ylim(min([0.8] + [a - 0.02 for a in accs]), 1.0)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"test accuracy after {cfg['steps']} steps")
    ax.set_title("lr sweep (x: diverged, with the step)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    ax2.set_xlabel("step")
    ax2.set_ylabel(f"training loss (mean over {cfg['log_every']} steps)")
    ax2.set_title("training loss, every lr (darker: larger lr; diverged runs end early)", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle("Bjorck et al.: residual MLP on MNIST (10 blocks), SGD batch 128")
    names.append(save_figure(fig, out, "lr_sweep.png", 90))

    # relative loss vs α (log-log)
    fig = new_figure((6, 4.2))
    ax = fig.subplots()
    for net in ("plain", "bn"):
        rl = arms[f"init_{net}"]["init"]["relative_loss"]
        rel = np.array(rl["relative"], np.float64)
        rel = np.where(np.isfinite(rel), rel, np.nan)
        ax.loglog(rl["alphas"], rel, "o-", ms=3, color=COLORS[net], label=LABELS[net])
        ref = TORCH_RELATIVE_LOSS[net]
        ax.loglog(list(ref), list(ref.values()), "s", mfc="none", color=COLORS[net], alpha=0.7,
                  label=f"{LABELS[net]}, PyTorch")
    ax.axhline(1, color="gray", lw=0.6)
    ax.axhline(EXPLODE, color="k", lw=0.6, ls=":", label=f"{EXPLODE:g} (divergence)")
    ax.set_xlabel("step size α")
    ax.set_ylabel("L(θ − α∇L) / L(θ)")
    ax.set_title("relative loss of one gradient step at init (batch of step 0)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    names.append(save_figure(fig, out, "relative_loss.png", 90))

    # activation std per layer
    fig = new_figure((11, 4))
    ax, ax2 = fig.subplots(1, 2)
    for net in ("plain", "bn"):
        s = arms[f"init_{net}"]["init"]["std"]
        ax.semilogy(np.arange(1, len(s["linear"]) + 1), s["linear"], "o-", ms=3, color=COLORS[net],
                    label=f"{LABELS[net]}: linear outputs")
        ax2.semilogy(np.arange(1, len(s["block"]) + 1), s["block"], "o-", color=COLORS[net],
                     label=f"{LABELS[net]}: block output h")
        if s["norm"]:
            for i, ls in ((0, "--"), (1, ":")):
                ax2.semilogy(np.arange(1, len(s["norm"]) + 1), [p[i] for p in s["norm"]], ls, color=COLORS[net],
                             label=f"{LABELS[net]}: N{i + 1} output (normalized)")
    ax.set_xlabel("linear layer (1 = input layer, 22 = output layer)")
    ax.set_ylabel("std over the batch of step 0")
    ax.set_title("std of every linear's output at init", fontsize=10)
    ax2.set_xlabel("residual block")
    ax2.set_title("std per block at init", fontsize=10)
    for a in (ax, ax2):
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=8)
    names.append(save_figure(fig, out, "activations.png", 90))

    # gradient histograms
    fig = new_figure((11, 3.8))
    for ax, net in zip(fig.subplots(1, 2), ("plain", "bn")):
        g = arms[f"init_{net}"]["init"]["gradient"]
        edges = np.array(g["edges"])
        ax.stairs(g["counts"], edges, fill=True, color=COLORS[net], alpha=0.7)
        ax.set_yscale("log")
        ax.set_xlabel(f"∂L/∂W of linear #{g['layer']} (block 5's second)")
        ax.set_title(f"{LABELS[net]}: RMS {g['rms']:.2g}, max |g| {g['max_abs']:.2g}", fontsize=10)
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel("count (of 100 × 100)")
    ratio = arms["init_plain"]["init"]["gradient"]["rms"] / arms["init_bn"]["init"]["gradient"]["rms"]
    fig.suptitle(f"weight gradients of a middle layer at init: {ratio:.0f}× larger (RMS) without BN")
    names.append(save_figure(fig, out, "gradients.png", 90))
    return names


EXPERIMENT = Experiment(
    name="bjorck",
    title="Bjorck et al. 2018: BatchNorm enables large learning rates (residual MLP on MNIST)",
    paper="J. Bjorck, C. Gomes, B. Selman, K. Q. Weinberger, Understanding Batch Normalization, "
          "NeurIPS 2018 (arXiv:1806.02375)",
    protocol="§5",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="A residual MLP (10 blocks, width 100, He init) on MNIST with BatchNorm or without: an lr sweep "
            "(0.001 … 1.0, plain SGD, batch 128; div = NaN or loss > 1000× initial), and at init the relative "
            "loss of one gradient step, the activation std per layer and a middle layer's weight gradients.",
)
