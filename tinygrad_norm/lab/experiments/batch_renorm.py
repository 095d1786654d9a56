"""Ioffe 2017 (Batch Renormalization): BN vs BRN at batch 4 and with non-i.i.d. batches (docs/protocols.md §10).

    tinygrad-norm run batch-renorm            # 4,000 images, 2 epochs per arm
    tinygrad-norm run batch-renorm --quick    # 1,500 images: the directions
    tinygrad-norm run batch-renorm --full     # 12,000 images

The paper's Inception-v3 on ImageNet becomes the MLP of §9 (docs/protocols.md §10, the CPU version):

    data       MNIST, x = pixels / 255; `n_train` images drawn by the "data" seed; the
               10,000 test images (i.i.d., in eval mode).
    net        784-256-256-256-10, Linear (no bias) → BatchNorm1d or BatchRenorm1d → ReLU;
               the same initial weights for every arm.
    training   SGD momentum 0.9, weight decay 1e-4, lr 0.1·N/32, ÷10 at 60 % and 85 %,
               2 epochs. Arms:
                 bn_4, brn_4             batch 4, i.i.d. (the paper's 4-example microbatches);
                 bn_iid                  batch 10, i.i.d. (the reference for the non-i.i.d. arms);
                 bn_noniid, brn_noniid   batch 10 = 2 classes × 5 images (the paper: 16 labels ×
                                         2 images out of 1000 classes; with 10 classes, 2 per
                                         batch keeps a batch as far from the population);
               BRN: α = 0.01; r_max = 1, d_max = 0 for the first 10 % of the steps, then
               linear ramps to r_max = 3 at 60 % and d_max = 5 at 40 % (the paper: 5k, 40k
               and 25k of its steps).
    measured   test error every 1/10 of the run; at the same steps, on that step's batch, the
               r and d BRN would use before clipping (median and 5/95th percentiles over the
               768 channels) and the fraction of channels clipped.
    check      BRN with r_max = 1, d_max = 0 throughout equals BN: 50 steps at batch 4 from
               the same weights and batches give the same weights (float32 round-off).

The claims (docs/protocols.md §10), thresholds fixed on seeds 100-102 before the judging
seeds 0-4 ran (docs/protocols.md §10):

    10.1  non-i.i.d. batches hurt BN: err(bn_noniid) / err(bn_iid) ≥ 1.3 (the paper: 21.7 % → 33.0 %
          top-1 error, 1.52×; calibrated 1.60-1.79×).
    10.2  BRN recovers most of it: (err(bn_noniid) − err(brn_noniid)) / (err(bn_noniid) − err(bn_iid))
          ≥ 0.5 (the paper: all of it; calibrated 79-90 %).
    10.3  at batch 4, BRN beats BN: err(bn_4) − err(brn_4) ≥ 1 point (the paper: 74.2 % → 76.5 %
          accuracy, 2.3 points; calibrated 2.0-3.8).
"""
import numpy as np

from ... import nn
from ...optim import SGD
from ...tensor import Tensor, no_grad
from ..experiment import Claim, Experiment, sub_seed
from ..plotting import new_figure, save_figure
from ..probe import preserved
from ._family import (COLORS, Batches, family_mlp, final, lr_hook, mnist_subset, pct, renorm_hook,
                      renorm_schedule, step_lr, train_arm)

# ------------------------------------------------------------------ settings

COMMON = dict(hidden=[256, 256, 256], epochs=2, base_lr=0.1, momentum=0.9, weight_decay=1e-4, drops=[0.6, 0.85],
              small_batch=4, batch_size=10, classes_per_batch=2, r_max=3.0, d_max=5.0, renorm_start=0.1,
              r_end=0.6, d_end=0.4, evaluations=10, equality_steps=50, n_train=4000, checkpoint_every=2000,
              log_every=50)
MODES = {
    "default": dict(COMMON),                          # docs/protocols.md §10
    "full": dict(COMMON, n_train=12000),
    "quick": dict(COMMON, n_train=1500, evaluations=5),
}
# docs/protocols.md §10 thresholds
HURT, RECOVER, SMALL_GAIN, EQUAL_TOL = 1.3, 0.5, 1.0, 1e-4
ARMS = {  # arm: (norm, batch-size key, non-i.i.d.)
    "bn_4": ("bn", "small_batch", False), "brn_4": ("brn", "small_batch", False),
    "bn_iid": ("bn", "batch_size", False),
    "bn_noniid": ("bn", "batch_size", True), "brn_noniid": ("brn", "batch_size", True),
}


def lr_for(cfg, n):
    return cfg["base_lr"] * n / 32


# ------------------------------------------------------------------ training

def train(lab, cfg):
    data = mnist_subset(cfg)
    arms = {arm: train_one(lab, cfg, arm, data) for arm in ARMS}
    arms.update(equality_check(lab, cfg, data))
    return arms


def train_one(lab, cfg, arm, data):
    norm, size_key, non_iid = ARMS[arm]
    n = cfg[size_key]
    x, y = data["train"]
    model = family_mlp(norm, cfg["hidden"], seed=sub_seed(cfg, "init"))
    optimizer = SGD(model.parameters(), lr=lr_for(cfg, n), momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    batches = Batches(x, y, n, sub_seed(cfg, "order"), classes_per_batch=cfg["classes_per_batch"] if non_iid else None)
    steps = cfg["epochs"] * batches.per_epoch
    schedule = renorm_schedule(steps, cfg["r_max"], cfg["d_max"], cfg["renorm_start"], cfg["r_end"], cfg["d_end"])
    hooks = [lr_hook(optimizer, step_lr(lr_for(cfg, n), steps, cfg["drops"]))]
    if norm == "brn":
        hooks.append(renorm_hook(model, schedule))
    batches.hooks = hooks
    eval_steps = sorted({int(round(k * steps / cfg["evaluations"])) for k in range(cfg["evaluations"] + 1)})
    def extra(model, step, batch):
        if norm != "brn":
            return {}
        rows = {"r_max": schedule[0](step), "d_max": schedule[1](step)}
        if batch is not None:     # NOTE: None after the last step: the clips are recorded, r and d are not
            rows.update(renorm_corrections(model, batch[0]))
        return rows

    return train_arm(lab, cfg, arm, model, optimizer, batches, steps, data, eval_steps=eval_steps, extra=extra)


def renorm_corrections(model, x):
    """On batch x (training mode, model untouched): the unclipped r = σ_B/σ and d = (μ_B − μ)/σ of every
    BatchRenorm1d channel: {"r_p5", "r_p50", "r_p95", "d_p5", "d_p50", "d_p95", "clipped"} (clipped: the
    fraction of channels where r or d is outside the current clips)."""
    layers = [m for m in model.modules() if isinstance(m, nn.BatchRenorm1d)]
    r_all, d_all, clipped = [], [], []
    handles = []

    def hook(module, args):   # NOTE: a pre-hook: the running statistics before this batch updates them
        h = np.asarray(args[0].numpy(), np.float64)
        sigma_b = np.sqrt(h.var(0) + module.eps)
        sigma, mu = module.running_std.numpy().astype(np.float64), module.running_mean.numpy().astype(np.float64)
        r, d = sigma_b / sigma, (h.mean(0) - mu) / sigma
        r_all.append(r)
        d_all.append(d)
        clipped.append((r > module.r_max) | (r < 1 / module.r_max) | (np.abs(d) > module.d_max))
    for m in layers:
        handles.append(m.register_forward_pre_hook(hook))
    try:
        with preserved(model), no_grad():
            model(x if isinstance(x, Tensor) else Tensor(x))
    finally:
        for h in handles:
            h.remove()
    r, d = np.concatenate(r_all), np.concatenate(d_all)
    p = lambda v, q: float(np.percentile(v, q))
    return {"r_p5": p(r, 5), "r_p50": p(r, 50), "r_p95": p(r, 95), "d_p5": p(d, 5), "d_p50": p(d, 50),
            "d_p95": p(d, 95), "clipped": float(np.concatenate(clipped).mean())}


def equality_check(lab, cfg, data):
    """BN and BRN(r_max = 1, d_max = 0) for `equality_steps` steps at batch 4 from the same weights."""
    x, y = data["train"]
    arms, weights = {}, {}
    for norm in ("bn", "brn"):
        model = family_mlp(norm, cfg["hidden"], seed=sub_seed(cfg, "init"))
        optimizer = SGD(model.parameters(), lr=lr_for(cfg, cfg["small_batch"]), momentum=cfg["momentum"],
                        weight_decay=cfg["weight_decay"])
        batches = Batches(x, y, cfg["small_batch"], sub_seed(cfg, "order"))
        arm = f"equal_{norm}"
        arms[arm] = train_arm(lab, cfg, arm, model, optimizer, batches, cfg["equality_steps"], data)
        weights[norm] = np.concatenate([m.weight.detach().numpy().ravel() for m in model.modules()
                                        if isinstance(m, nn.Linear)])
    arms["equal_brn"]["curves"]["max_weight_diff"] = float(np.abs(weights["bn"] - weights["brn"]).max())
    return arms


# ------------------------------------------------------------------ claims

def claims(cfg, arms):
    e = {arm: final(arms[arm]) for arm in ARMS}
    rows = []
    ratio = None if None in (e["bn_noniid"], e["bn_iid"]) or e["bn_iid"] == 0 else e["bn_noniid"] / e["bn_iid"]
    rows.append(Claim.compare(f"non-i.i.d. batches ({cfg['classes_per_batch']} classes per batch of "
                              f"{cfg['batch_size']}) hurt BN's eval error ≥ {HURT:g}×", ratio, ">=", HURT, log=True,
                              section="10.1", measured=f"{pct(e['bn_noniid'])} vs {pct(e['bn_iid'])} i.i.d."
                              + ("" if ratio is None else f": {ratio:.2f}×")))
    lost = None if None in (e["bn_noniid"], e["bn_iid"]) else e["bn_noniid"] - e["bn_iid"]
    share = None if lost is None or e["brn_noniid"] is None or lost <= 0 else (e["bn_noniid"] - e["brn_noniid"]) / lost
    rows.append(Claim.compare(f"BRN recovers ≥ {RECOVER:.0%} of the non-i.i.d. loss", share, ">=", RECOVER,
                              section="10.2", measured=f"BRN {pct(e['brn_noniid'])} (BN {pct(e['bn_noniid'])}, "
                              f"i.i.d. {pct(e['bn_iid'])})" + ("" if share is None else f": {share:.0%} recovered")))
    gain = None if None in (e["bn_4"], e["brn_4"]) else 100 * (e["bn_4"] - e["brn_4"])
    rows.append(Claim.compare(f"at batch {cfg['small_batch']}, BRN beats BN by ≥ {SMALL_GAIN:g} points", gain, ">=",
                              SMALL_GAIN, section="10.3", measured=f"BN {pct(e['bn_4'])}, BRN {pct(e['brn_4'])}"
                              + ("" if gain is None else f": {gain:+.2f} points")))
    diff = arms.get("equal_brn", {}).get("curves", {}).get("max_weight_diff")
    rows.append(Claim.compare(f"BRN with r_max = 1, d_max = 0 equals BN ({cfg['equality_steps']} steps at batch "
                              f"{cfg['small_batch']}, same weights and batches: max |ΔW|)", diff, "<=", EQUAL_TOL,
                              section="10.0", kind="check",
                              measured="not run" if diff is None else f"{diff:.2e}"))
    return rows


# ------------------------------------------------------------------ figures

def figures(cfg, arms, out):
    fig = new_figure((12, 4))
    ax_err, ax_r, ax_d = fig.subplots(1, 3)
    styles = {"bn_4": ("bn", ":"), "brn_4": ("brn", ":"), "bn_iid": ("bn", "-"), "bn_noniid": ("bn", "--"),
              "brn_noniid": ("brn", "--")}
    for arm, (norm, ls) in styles.items():
        c = arms[arm]["curves"]
        ax_err.plot(np.array(c["step"]) / max(c["step"][-1], 1), 100 * np.array(c["test_error"]), ls, marker="o",
                    ms=3, color=COLORS[norm], label=arm)
    ax_err.set_yscale("log")
    ax_err.set_xlabel("fraction of training")
    ax_err.set_ylabel("test error (%)")
    ax_err.set_title("test error (eval mode)")
    ax_err.legend(fontsize=8)
    for arm, ls in (("brn_noniid", "--"), ("brn_4", ":")):
        c = arms[arm]["curves"]
        if "r_p50" not in c:
            continue
        steps = np.array(c["step"][:len(c["r_p50"])]) / max(c["step"][-1], 1)
        for ax, key in ((ax_r, "r"), (ax_d, "d")):
            ax.fill_between(steps, c[f"{key}_p5"], c[f"{key}_p95"], alpha=0.15, color=COLORS["brn"] if ls == "--"
                            else "tab:pink")
            ax.plot(steps, c[f"{key}_p50"], ls, color=COLORS["brn"], label=f"{arm}: median, 5-95 %")
    c = arms["brn_noniid"]["curves"]
    steps = np.array(c["step"]) / max(c["step"][-1], 1)
    ax_r.plot(steps, c["r_max"], "k-", lw=1, label="clip r_max, 1/r_max")
    ax_r.plot(steps, 1 / np.array(c["r_max"]), "k-", lw=1)
    ax_d.plot(steps, c["d_max"], "k-", lw=1, label="clip ±d_max")
    ax_d.plot(steps, -np.array(c["d_max"]), "k-", lw=1)
    ax_r.set_yscale("log")
    for ax, title in ((ax_r, "r = σ_B/σ before clipping"), (ax_d, "d = (μ_B − μ)/σ before clipping")):
        ax.set_xlabel("fraction of training")
        ax.set_title(title)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    ax_err.grid(alpha=0.3)
    fig.suptitle(f"Batch Renormalization on an MNIST MLP: batch {cfg['small_batch']} and non-i.i.d. batches "
                 f"({cfg['classes_per_batch']} classes × {cfg['batch_size'] // cfg['classes_per_batch']})")
    save_figure(fig, out, "renorm.png", 110)
    return ["renorm.png"]


EXPERIMENT = Experiment(
    name="batch_renorm",
    title="Ioffe 2017: Batch Renormalization at batch 4 and with non-i.i.d. batches",
    paper="S. Ioffe, Batch Renormalization: Towards Reducing Minibatch Dependence in Batch-Normalized Models, "
          "NeurIPS 2017 (arXiv:1702.03275), §4",
    protocol="§10",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="The 784-256-256-256-10 MLP with BatchNorm1d or BatchRenorm1d (the paper's r_max/d_max schedule, "
            "scaled): test error at batch 4 and with batches of 2 classes × 5 images, and the r, d corrections.",
)
