"""Wu & He 2018 (Group Normalization), Fig. 1 / Table 2: BatchNorm at small batches (docs/protocols.md §9).

    tinygrad-norm run small-batch            # 4 norms × N ∈ {32, 8, 4, 2}, 6,000 images, 2 epochs
    tinygrad-norm run small-batch --quick    # 4 norms × N ∈ {32, 4, 2}, 1,500 images: the directions
    tinygrad-norm run small-batch --full     # the calibrated CPU protocol: 12,000 images

The paper's ResNet-50 on ImageNet becomes an MLP with per-feature statistics over the
N values of a batch (a small CNN does not show the effect: BN2d pools over N·H·W):

    data       MNIST, x = pixels / 255; `n_train` training images drawn by the "data" seed
               (12,000 in the calibrated CPU protocol, 6,000 by default), the 10,000 test images.
    net        784-256-256-256-10, each hidden layer Linear (no bias) → Norm → ReLU;
               Norm ∈ {BatchNorm1d, GroupNorm(32, 256), LayerNorm(256), BatchRenorm1d};
               PyTorch's default init from the run's seed (every arm the same weights).
    training   batch N ∈ {32, 8, 4, 2}, 2 epochs (the same number of epochs for every N),
               SGD momentum 0.9, weight decay 1e-4, lr 0.1·N/32 (linear scaling), ÷10 at
               60 % and 85 % of the steps. Batch orders from the run's seed (shared by the
               norms at each N). BRN: α = 0.01, plain BN for the first 10 % of the steps,
               then r_max → 1.5 (at 60 %) and d_max → 0.5 (at 40 %): the values Wu & He
               used for their BRN row.
    measured   test error: BN and BRN in eval mode (running statistics); BN also with the
               statistics of each test batch of 500 images (training mode, buffers untouched).

The claims (docs/protocols.md §9), thresholds fixed on seeds 100-102 before the judging
seeds 0-4 ran (docs/protocols.md §9 gives the calibration and each deviation):

    9.1  BN's error at N = 2 exceeds its error at N = 32 by ≥ 3 points.
    9.2  GN does not degrade as the batch shrinks: max over N < 32 of err(N) − err(32) ≤ 1 point.
         (the calibrated protocol: "varies by ≤ 1 point over N". At a fixed number of epochs N = 32 gets 1/16 of
         N = 2's steps, and GN and LN are under-trained there: 1.5-3 points *worse* at 32 in the
         calibration. The paper's point is that GN's statistics do not depend on N, i.e. no
         degradation at small N, so the claim is one-sided; the range is reported beside it.)
    9.3  the same for LN.
    9.4  at N = 4, GN beats BN by ≥ 0.5 points.
    9.5  at N = 2, GN beats BN by ≥ 5 points.
    9.6  at N = 32, BN is at least as good as GN: BN − GN ≤ 0.5 points (the paper: BN better by 0.5;
         the calibrated protocol: "within ~1 point"; here BN is 2-4 points better, see 9.2).
    9.7  at N = 2, BN evaluated with the test batches' own statistics (500 images) is ≥ 1 point
         better than with its running statistics: part of the damage is the train/test mismatch.
    9.8  at N = 2, BRN beats BN by ≥ 5 points (Wu & He: 26.3 vs 27.3 at batch 4).
"""
import numpy as np

from ...optim import SGD
from ..experiment import Claim, Experiment, sub_seed
from ..plotting import new_figure, save_figure
from ._family import (COLORS, LABELS, Batches, batch_stats_error, family_mlp, final, lr_hook, mnist_subset, pct,
                      renorm_hook, renorm_schedule, step_lr, train_arm)

# ------------------------------------------------------------------ settings

COMMON = dict(norms=["bn", "gn", "ln", "brn"], batch_sizes=[32, 8, 4, 2], hidden=[256, 256, 256], groups=32,
              epochs=2, base_lr=0.1, momentum=0.9, weight_decay=1e-4, drops=[0.6, 0.85], test_batch=500,
              brn_r_max=1.5, brn_d_max=0.5, n_train=6000, checkpoint_every=2000, log_every=50)
MODES = {
    "default": dict(COMMON),                                           # docs/protocols.md §9: half of §3.3's images
    "full": dict(COMMON, n_train=12000),                               # the calibrated CPU protocol (docs/protocols.md §9)
    "quick": dict(COMMON, n_train=1500, batch_sizes=[32, 4, 2]),       # the directions, in ~30 s
}
# docs/protocols.md §9 thresholds (points of test error)
BN_DROP, FLAT, GN_AHEAD_4, GN_AHEAD_2, BN_NOT_WORSE, BATCH_STATS_GAIN, BRN_AHEAD = 3.0, 1.0, 0.5, 5.0, 0.5, 1.0, 5.0


def arm_name(norm, n):
    return f"{norm}_{n}"


def steps_for(cfg, n):
    return cfg["epochs"] * (cfg["n_train"] // n)


# ------------------------------------------------------------------ training

def train(lab, cfg):
    data = mnist_subset(cfg)
    x, y = data["train"]
    x_test, y_test = data["test"]
    arms = {}
    for n in cfg["batch_sizes"]:
        steps = steps_for(cfg, n)
        for norm in cfg["norms"]:
            model = family_mlp(norm, cfg["hidden"], cfg["groups"], seed=sub_seed(cfg, "init"))
            optimizer = SGD(model.parameters(), lr=cfg["base_lr"] * n / 32, momentum=cfg["momentum"],
                            weight_decay=cfg["weight_decay"])
            hooks = [lr_hook(optimizer, step_lr(cfg["base_lr"] * n / 32, steps, cfg["drops"]))]
            if norm == "brn":
                hooks.append(renorm_hook(model, renorm_schedule(steps, cfg["brn_r_max"], cfg["brn_d_max"])))
            batches = Batches(x, y, n, sub_seed(cfg, "order"), hooks=hooks)
            extra = None
            if norm == "bn":
                def extra(model, step, batch):
                    return {"batch_stats_error": batch_stats_error(model, x_test, y_test, cfg["test_batch"])}
            arms[arm_name(norm, n)] = train_arm(lab, cfg, arm_name(norm, n), model, optimizer, batches, steps, data,
                                                extra=extra)
    return arms


# ------------------------------------------------------------------ claims

def errors(cfg, arms, norm, key="test_error"):
    """{N: final error or None} of one norm."""
    return {n: final(arms[arm_name(norm, n)], key) for n in cfg["batch_sizes"] if arm_name(norm, n) in arms}


def _points(a, b):
    """100·(a − b), or None."""
    return None if a is None or b is None else 100 * (a - b)


def claims(cfg, arms):
    err = {norm: errors(cfg, arms, norm) for norm in cfg["norms"]}
    rows = []

    def at(norm, n):
        return err.get(norm, {}).get(n)

    drop = _points(at("bn", 2), at("bn", 32))
    rows.append(Claim.compare(f"BN's error at N = 2 exceeds its error at N = 32 by ≥ {BN_DROP:g} points", drop,
                              ">=", BN_DROP, section="9.1",
                              measured=f"{pct(at('bn', 2))} vs {pct(at('bn', 32))}: "
                                       + ("—" if drop is None else f"{drop:+.2f} points")))
    largest = max(cfg["batch_sizes"])
    for section, norm in (("9.2", "gn"), ("9.3", "ln")):
        row = err.get(norm, {})
        values = list(row.values())
        worst = None if not values or None in values or len(values) < 2 else \
            100 * (max(v for n, v in row.items() if n != largest) - row[largest])
        spread = None if worst is None else 100 * (max(values) - min(values))
        shown = ", ".join(f"{n}: {pct(v)}" for n, v in row.items())
        rows.append(Claim.compare(f"{LABELS[norm]} does not degrade as the batch shrinks: max over N < {largest} of "
                                  f"err(N) − err({largest}) ≤ {FLAT:g} point", worst, "<=", FLAT, section=section,
                                  measured=f"{shown}; " + ("—" if worst is None else
                                                           f"{worst:+.2f} points (range {spread:.2f})")))
    for section, n, margin in (("9.4", 4, GN_AHEAD_4), ("9.5", 2, GN_AHEAD_2)):
        gap = _points(at("bn", n), at("gn", n))
        rows.append(Claim.compare(f"at N = {n}, GN beats BN by ≥ {margin:g} points", gap, ">=", margin,
                                  section=section, measured=f"BN {pct(at('bn', n))}, GN {pct(at('gn', n))}"
                                  + ("" if gap is None else f": {gap:+.2f} points")))
    gap = _points(at("bn", 32), at("gn", 32))
    rows.append(Claim.compare(f"at N = 32, BN is at least as good as GN: BN − GN ≤ {BN_NOT_WORSE:g} points", gap, "<=",
                              BN_NOT_WORSE, section="9.6",
                              measured=f"BN {pct(at('bn', 32))}, GN {pct(at('gn', 32))}"
                              + ("" if gap is None else f": BN − GN {gap:+.2f} points")))
    stats = errors(cfg, arms, "bn", "batch_stats_error").get(2) if "bn" in cfg["norms"] else None
    gain = _points(at("bn", 2), stats)
    rows.append(Claim.compare(f"at N = 2, BN with the test batches' own statistics ({cfg['test_batch']} images) is "
                              f"≥ {BATCH_STATS_GAIN:g} points better than with its running statistics", gain, ">=",
                              BATCH_STATS_GAIN, section="9.7",
                              measured=f"running {pct(at('bn', 2))}, batch statistics {pct(stats)}"
                              + ("" if gain is None else f": {gain:+.2f} points")))
    gap = _points(at("bn", 2), at("brn", 2))
    rows.append(Claim.compare(f"at N = 2, BRN beats BN by ≥ {BRN_AHEAD:g} points", gap, ">=", BRN_AHEAD,
                              section="9.8", measured=f"BN {pct(at('bn', 2))}, BRN {pct(at('brn', 2))}"
                              + ("" if gap is None else f": {gap:+.2f} points")))
    return rows


# ------------------------------------------------------------------ figures

def figures(cfg, arms, out):
    sizes = sorted(cfg["batch_sizes"], reverse=True)
    fig = new_figure((10, 4))
    axes = fig.subplots(1, 2)
    for ax, ylim in zip(axes, (None, (0, 12))):
        for norm in cfg["norms"]:
            err = errors(cfg, arms, norm)
            ax.plot(range(len(sizes)), [np.nan if err.get(n) is None else 100 * err[n] for n in sizes], "o-",
                    color=COLORS[norm], label=LABELS[norm] + (" (running statistics)" if norm == "bn" else ""))
        stats = errors(cfg, arms, "bn", "batch_stats_error")
        ax.plot(range(len(sizes)), [np.nan if stats.get(n) is None else 100 * stats[n] for n in sizes], "o--",
                color=COLORS["bn"], alpha=0.6, label=f"BN (test-batch statistics, {cfg['test_batch']})")
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([str(n) for n in sizes])
        ax.set_xlabel("batch size N (images per batch)")
        ax.set_ylabel("test error (%)")
        if ylim:
            ax.set_ylim(*ylim)
            ax.set_title("zoom: 0 … 12 %")
        else:
            ax.set_title("test error vs batch size")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Wu & He Fig. 1 on an MNIST MLP: {cfg['n_train']} images, {cfg['epochs']} epochs, lr 0.1·N/32")
    save_figure(fig, out, "error_vs_batch.png", 110)
    return ["error_vs_batch.png"]


EXPERIMENT = Experiment(
    name="small_batch",
    title="Wu & He 2018, Fig. 1: BatchNorm vs GroupNorm, LayerNorm and Batch Renorm at small batches",
    paper="Y. Wu, K. He, Group Normalization, ECCV 2018 (arXiv:1803.08494), Fig. 1 and Table 2",
    protocol="§9",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="784-256-256-256-10 ReLU MLP on an MNIST subset with BN, GN(32), LN or BRN before each ReLU, trained "
            "at batch 32, 8, 4 and 2 (2 epochs, lr 0.1·N/32): the test error vs the batch size.",
)
