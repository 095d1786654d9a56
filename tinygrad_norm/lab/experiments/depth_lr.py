"""Seed 001's learning-rate table: does the usable lr fall with depth without normalization?

    tinygrad-norm run depth-lr            # depths 5, 20, 50 × 9 lrs × {BN, no BN}, 1000 steps per run (≈ 7 min)
    tinygrad-norm run depth-lr --quick    # depths 5, 20 × 4 lrs, 300 steps (≈ 20 s)
    tinygrad-norm run depth-lr --full     # depths 5, 20, 50, 100, 3000 steps (≈ 50 min)

Seed 001 ("1. Necessitates Lower Learning Rates") states, without source or protocol:

    depth   without normalization   with normalization   speedup
    5       η = 0.01                η = 0.1              ~3-5×
    20      η = 0.001               η = 0.1              ~10-20×
    50      η = 0.0001              η = 0.1              ~50-100×
    100+    often infeasible        η = 0.1              enables training

The protocol below (docs/protocols.md §6), and every threshold in
`claims`, was fixed before the first run:

    data       MNIST, x = pixels / 255, batch 128, shuffled each epoch; every run
               sees the same batches in the same order.
    nets       784 → depth × [Linear(100) → (BN) → ReLU] → Linear(10), no residual
               connections; "depth" counts the hidden layers. With BN: BatchNorm1d
               after each hidden Linear, before the ReLU (that Linear has no bias:
               β replaces it). `tn.models.mlp`.
    init       He (kaiming normal, std √(2/fan_in)) for every Linear, zero biases, the
               same seed for every run. Why: He keeps the forward signal's scale at any
               depth (see the `init` experiment), so a net without BN that fails here
               fails because of its lr, not its init. PyTorch's default init (std
               1/√(3·fan_in)) shrinks the second moment 6× per ReLU layer: at depth 20
               the signal is ~1e-8 and no lr trains the net without BN, which would
               measure the init instead of the lr (setting init="torch" runs it).
    training   plain SGD (no momentum, no weight decay) at every lr of a half-decade
               grid 1e-4, 3e-4, 1e-3, …, 0.3, 1.0; a fixed budget of `steps` per run.
    diverged   the loss of a step is NaN/inf or above 10× the loss of step 0 (a
               cross-entropy of ~25: confidently wrong on every image); the run stops
               there (`lab.train(..., diverge_factor=10)`).
    stable     not diverged, and the mean training loss over the last 10 % of the steps
               is below ln(10)/2 = 1.151 (half the chance level): a run that stays
               finite but ends near chance (dead ReLUs, a collapsed output) is no
               usable lr. The largest stable lr is the largest lr of the grid whose run
               is stable (a lower bound when that is the grid's largest).
    speed      accuracy on a held-out set (the first 1000 test images, BN in eval
               mode) every 10 steps up to 100, every 25 up to 500, then every 50;
               steps to target = the first evaluation with accuracy ≥ 90 %. Each net's
               best lr: its stable lr reaching 90 % first (ties: the larger lr). The
               speedup at a depth is (steps of the net without BN) / (steps with BN),
               each at its best lr; a net that never gets there gives a bound.
    final      accuracy on all 10,000 test images at the end of each run.

    at init    at the deepest depth, with and without BN: the norm of every Linear's
               weight gradient on the batch of step 0 (measured, not judged).
    residual   residual=True runs bjorck's residual MLP (depth // 2 blocks) instead.

Divergence and speed are reported apart: "stable" is not diverging; "trains" is
the end-loss test above, within the budget; the speed is the steps to 90 %.
The claims (docs/protocols.md §6), per depth of the seed's table: the largest
stable (not diverging) lr without BN is the seed's η within one grid step (a
factor ≤ 3.5; the largest that trains is reported beside it); with BN, η = 0.1
trains; the speedup lies in the seed's band, widened by a factor 1.5 either way
for its "~". At 100+ layers: every lr diverges without BN, BN reaches 90 %. And
the trend: the largest stable lr without BN falls ≥ 10× from the shallowest to
the deepest net (the seed: 100× from 5 to 50 layers).
"""
import math

import numpy as np

from ...data import DataLoader, mnist_arrays
from ... import nn
from ...models import mlp, residual_mlp
from ...nn import functional as F
from ...optim import SGD
from ...random import manual_seed
from ..evaluate import accuracy, predictions_correct, first_step_reaching
from ..probe import loss_and_grads, preserved
from ..plotting import new_figure, save_figure
from ..experiment import Claim, Experiment

# ------------------------------------------------------------------ settings

LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
COMMON = dict(width=100, batch_size=128, lrs=LRS, init="he", diverge_factor=10.0, target=0.9, eval_size=1000,
              log_every=10, checkpoint_every=500, residual=False)
MODES = {
    "default": dict(COMMON, depths=[5, 20, 50], steps=1000),
    "full": dict(COMMON, depths=[5, 20, 50, 100], steps=3000),
    "quick": dict(COMMON, depths=[5, 20], steps=300, lrs=[1e-3, 1e-2, 0.1, 1.0]),
}
# seed 001's table: depth -> (lr without normalization, speedup band); depth ≥ 100: "often infeasible"
SEED_TABLE = {5: (0.01, (3, 5)), 20: (0.001, (10, 20)), 50: (0.0001, (50, 100))}
SEED_BN_LR = 0.1
INFEASIBLE_DEPTH = 100
STABLE_LOSS = math.log(10) / 2          # half the chance-level cross-entropy
GRID_STEP = 3.5                         # one step of the 1-3-10 grid (×3 or ×3.33), with rounding room
BAND_SLACK = 1.5                        # the seed's "~"
TREND = 10.0                            # the largest stable no-BN lr falls ≥ 10× from shallowest to deepest


def build(cfg, depth, bn):
    """784 → depth × [Linear(width) → (BN) → ReLU] → Linear(10), He (or PyTorch-default) init; with
    cfg["residual"], bjorck's residual MLP with depth // 2 blocks (depth linears in blocks) instead."""
    if cfg["residual"]:
        return residual_mlp(blocks=max(depth // 2, 1), width=cfg["width"], norm="batch" if bn else None,
                            init="he" if cfg["init"] == "he" else None)
    return mlp([784] + [cfg["width"]] * depth + [10], norm="batch" if bn else None,
               init="he" if cfg["init"] == "he" else None)


def gradient_norms_at_init(cfg, depth, bn, batch):
    """‖∂L/∂W‖ of every Linear (forward order) at init on `batch` (training mode, nothing left behind):
    measured, not judged (BN's gradient explosion in deep plain nets, Yang et al. 2019)."""
    manual_seed(cfg["seed"])
    model = build(cfg, depth, bn)
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    with preserved(model):
        _, grads = loss_and_grads(model, F.cross_entropy, batch, weights)
    return [float(np.linalg.norm(np.asarray(g, np.float64))) for g in grads]


def arm_name(depth, bn, lr):
    return f"d{depth}_{'bn' if bn else 'plain'}_lr{lr:g}"


def eval_schedule(steps):
    """Every 10 steps up to 100, every 25 up to 500, every 50 after; and the last step."""
    s = set(range(0, min(100, steps) + 1, 10)) | set(range(100, min(500, steps) + 1, 25))
    return sorted(s | set(range(500, steps + 1, 50)) | {steps})


# ------------------------------------------------------------------ training

def train(lab, cfg):
    x_train, y_train = mnist_arrays("train")
    x_test, y_test = mnist_arrays("test")
    arms = {}
    first = DataLoader(x_train, y_train, batch_size=cfg["batch_size"], shuffle=True, drop_last=True, seed=cfg["seed"])
    first.set_epoch(0)
    batch0 = next(iter(first))                                    # the batch of step 0
    deepest = max(cfg["depths"])
    arms[f"grad_init_d{deepest}"] = {"wall_time_s": 0.0, "depth": deepest,
                                     "grad_norms": {"plain": gradient_norms_at_init(cfg, deepest, False, batch0),
                                                    "bn": gradient_norms_at_init(cfg, deepest, True, batch0)}}
    for depth in cfg["depths"]:
        for bn in (False, True):
            for lr in cfg["lrs"]:
                arms[arm_name(depth, bn, lr)] = train_run(lab, cfg, depth, bn, lr, (x_train, y_train), (x_test, y_test))
    return arms


def train_run(lab, cfg, depth, bn, lr, train_data, test_data):
    x_test, y_test = test_data
    manual_seed(cfg["seed"])                                     # the same init for every lr
    model = build(cfg, depth, bn)
    loader = DataLoader(*train_data, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                        seed=cfg["seed"])                         # the same batches for every run
    curves = {"step": [], "accuracy": []}
    held_out = cfg["eval_size"]

    def evaluate(step, batch):
        if step < cfg["steps"]:
            curves["step"].append(step)
            curves["accuracy"].append(accuracy(model, x_test[:held_out], y_test[:held_out]))
            return
        correct = predictions_correct(model, x_test, y_test)     # the end: the whole test set
        curves["step"].append(step)
        curves["accuracy"].append(float(correct[:held_out].mean()))
        curves["test_accuracy"] = float(correct.mean())

    return lab.train(arm_name(depth, bn, lr), model, SGD(model.parameters(), lr=lr), loader, steps=cfg["steps"],
                     loss_fn=lambda x, y: F.cross_entropy(model(x), y), evaluate=evaluate,
                     eval_steps=eval_schedule(cfg["steps"]), curves=curves, checkpoint_every=cfg["checkpoint_every"],
                     log_every=cfg["log_every"], diverge_factor=cfg["diverge_factor"])


# ------------------------------------------------------------------ analysis (pure functions of the arms)

def end_loss(result):
    """The mean training loss over the last 10 % of the steps (from the logged window means), or None."""
    tl = result["train_loss"]
    tail = [v for s, v in zip(tl["step"], tl["loss"]) if s > 0.9 * result["steps"]]
    return float(np.mean(tail)) if tail else None


def is_stable(result):
    """Not diverged, all steps done, and the last 10 % of the steps average a loss below ln(10)/2."""
    if result["diverged_at"] is not None or result["steps_done"] < result["steps"]:
        return False
    loss = end_loss(result)
    return loss is not None and loss < STABLE_LOSS


def steps_to_target(result, target):
    """The first evaluation step with held-out accuracy ≥ target, or None."""
    c = result["curves"]
    return first_step_reaching(c.get("step", []), c.get("accuracy", []), target)


def largest_stable_lr(arms, depth, bn, lrs):
    """The largest lr whose run at (depth, bn) is stable (did not diverge *and* trained in the budget), or None."""
    stable = [lr for lr in lrs if is_stable(arms[arm_name(depth, bn, lr)])]
    return max(stable) if stable else None


def largest_finite_lr(arms, depth, bn, lrs):
    """The largest lr whose run at (depth, bn) did not diverge (whether or not it trained), or None."""
    ok = [lr for lr in lrs if arms[arm_name(depth, bn, lr)]["diverged_at"] is None]
    return max(ok) if ok else None


def best_run(arms, depth, bn, lrs, target):
    """(lr, steps to target) of the stable run reaching `target` first (ties: the larger lr);
    (lr, None) of the most accurate stable run if none reaches it; (None, None) without a stable run."""
    runs = [(lr, arms[arm_name(depth, bn, lr)]) for lr in lrs]
    stable = [(lr, r) for lr, r in runs if is_stable(r)]
    if not stable:
        return None, None
    reached = [(steps_to_target(r, target), -lr) for lr, r in stable if steps_to_target(r, target) is not None]
    if reached:
        steps, neg_lr = min(reached)
        return -neg_lr, steps
    lr, _ = max(stable, key=lambda item: (item[1]["curves"].get("test_accuracy", 0.0), item[0]))
    return lr, None


def speedup(plain_steps, bn_steps, budget):
    """(ratio, kind): kind "exact", "lower" (plain never reached: ratio > budget / bn_steps),
    "upper" (BN never reached: ratio < plain_steps / budget) or (None, None) if neither reached."""
    if bn_steps is not None and plain_steps is not None:
        return plain_steps / max(bn_steps, 1), "exact"
    if bn_steps is not None:
        return budget / max(bn_steps, 1), "lower"
    if plain_steps is not None:
        return plain_steps / budget, "upper"
    return None, None


def band_verdict(ratio, kind, band, slack=BAND_SLACK):
    """PASS (True), FAIL (False) or undecided (None): is the speedup inside [lo/slack, hi·slack]?"""
    lo, hi = band[0] / slack, band[1] * slack
    if kind == "exact":
        return lo <= ratio <= hi
    if kind == "lower":
        return False if ratio > hi else None        # only "> ratio" is known
    if kind == "upper":
        return False if ratio < lo else None
    return None


def within_grid_step(measured, expected):
    """True if measured is expected within a factor 3.5: the same lr or a neighbour on the 1-3-10 grid."""
    return measured is not None and expected / GRID_STEP <= measured <= expected * GRID_STEP


# ------------------------------------------------------------------ claims

def _lr(v):
    return "none" if v is None else f"{v:g}"


def claims(cfg, arms):
    lrs, target, steps = cfg["lrs"], cfg["target"], cfg["steps"]
    rows, largest = [], {}
    top = " (the grid's largest: a lower bound)"
    for depth in cfg["depths"]:
        lf, lp, lb = (largest_finite_lr(arms, depth, False, lrs), largest_stable_lr(arms, depth, False, lrs),
                      largest_stable_lr(arms, depth, True, lrs))
        largest[depth] = lf
        both = (f"largest lr not diverging {_lr(lf)}" + (top if lf == max(lrs) else "")
                + f"; largest that trains in {steps} steps (end loss < {STABLE_LOSS:.3f}) {_lr(lp)}")
        if depth in SEED_TABLE:
            seed_lr, band = SEED_TABLE[depth]
            rows.append(Claim.compare(f"{depth} layers, no BN: the largest stable (not diverging) lr is η = {seed_lr:g} "
                                      "(seed)", lf, "between", (seed_lr / GRID_STEP, seed_lr * GRID_STEP), both,
                                      section=f"{depth}.1", log=True,
                                      threshold=f"{seed_lr / GRID_STEP:.2g} … {seed_lr * GRID_STEP:.2g} (one grid step)"))
        elif depth >= INFEASIBLE_DEPTH:
            c = Claim.compare(f"{depth} layers, no BN: 'often infeasible': every lr of the grid diverges", lf, "<",
                              min(lrs), both, section=f"{depth}.1", log=True, threshold="none stable")
            c.passed = lf is None
            rows.append(c)
        else:
            continue                                        # a depth the seed says nothing about
        r01 = arms.get(arm_name(depth, True, SEED_BN_LR)) if SEED_BN_LR in lrs else None
        state = ("not run" if r01 is None else f"diverged at step {r01['diverged_at']}"
                 if r01["diverged_at"] is not None else f"end loss {end_loss(r01):.3f}")
        loss01 = None if r01 is None or r01["diverged_at"] is not None else end_loss(r01)
        rows.append(Claim.compare(f"{depth} layers, BN: η = {SEED_BN_LR:g} trains (seed): its end loss (last 10 % of "
                                  f"{steps} steps)", loss01, "<", STABLE_LOSS,
                                  f"lr {SEED_BN_LR:g} {state}; largest BN lr that trains {_lr(lb)}"
                                  + (top if lb == max(lrs) else ""), section=f"{depth}.2"))
        (plr, psteps), (blr, bsteps) = best_run(arms, depth, False, lrs, target), best_run(arms, depth, True, lrs, target)
        where = (f"no BN {'never' if psteps is None else f'step {psteps}'} (lr {_lr(plr)}), "
                 f"BN {'never' if bsteps is None else f'step {bsteps}'} (lr {_lr(blr)})")
        ratio, kind = speedup(psteps, bsteps, steps)
        prefix = {"exact": "", "lower": "> ", "upper": "< "}
        text = "not measurable (neither reached it)" if kind is None else f"{prefix[kind]}{ratio:.2g}×"
        if depth in SEED_TABLE:
            lo, hi = SEED_TABLE[depth][1]
            band = (lo / BAND_SLACK, hi * BAND_SLACK)
            # NOTE: a bound is no value: the claim is then judged PASS/FAIL/undecided by band_verdict alone
            c = Claim.compare(f"{depth} layers: BN reaches {target:.0%} held-out accuracy ~{lo}-{hi}× sooner (seed), "
                              "each net at its best lr: steps(no BN) / steps(BN)", ratio if kind == "exact" else None,
                              "between", band, f"{where}: {text}", section=f"{depth}.3", log=True)
            c.passed = band_verdict(ratio, kind, (lo, hi))
            rows.append(c)
        else:
            c = Claim.compare(f"{depth} layers: BN 'enables training': it reaches {target:.0%}, no BN does not",
                              None, ">=", 1, where, section=f"{depth}.3", threshold=f"BN reaches {target:.0%}, "
                              "no BN never")
            c.passed = bsteps is not None and psteps is None
            rows.append(c)
    known = [d for d in cfg["depths"] if d in SEED_TABLE]
    if len(known) >= 2:
        shallow, deep = min(known), max(known)
        a, b = largest[shallow], largest[deep]
        claim = (f"without BN the largest stable (not diverging) lr falls from {shallow} to {deep} layers: "
                 f"{shallow} / {deep} (seed: {SEED_TABLE[shallow][0] / SEED_TABLE[deep][0]:g}×)")
        if a is None or b is None:
            c = Claim.compare(claim, None, ">=", TREND, f"{shallow}: {_lr(a)}, {deep}: {_lr(b)}", section="trend",
                              log=True)
            c.passed = a is not None and b is None
            rows.append(c)
        else:
            rows.append(Claim.compare(claim, a / b, ">=", TREND, f"{shallow}: {a:g}, {deep}: {b:g}: {a / b:g}×",
                                      section="trend", log=True))
    return rows


# ------------------------------------------------------------------ figures

COLORS = {False: "tab:red", True: "tab:blue"}
LABELS = {False: "without BN", True: "with BN"}


def figures(cfg, arms, out):
    from matplotlib.patches import Rectangle
    depths, lrs = cfg["depths"], cfg["lrs"]

    # final test accuracy over (depth, lr)
    fig = new_figure((12, 1.3 + 0.75 * len(depths)))
    axes = fig.subplots(1, 2)
    for ax, bn in zip(axes, (False, True)):
        grid = np.full((len(depths), len(lrs)), np.nan)
        for i, depth in enumerate(depths):
            for j, lr in enumerate(lrs):
                r = arms[arm_name(depth, bn, lr)]
                if r["diverged_at"] is None:
                    grid[i, j] = r["curves"].get("test_accuracy", np.nan)
                    text = f"{grid[i, j]:.2f}"
                else:
                    text = f"div\n{r['diverged_at']}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="0.3" if r["diverged_at"] is not None else "k" if grid[i, j] > 0.5 else "w")
                if is_stable(r):
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.5, ec="k"))
            seed = SEED_BN_LR if bn else SEED_TABLE.get(depth, (None,))[0]
            if seed in lrs:
                ax.plot(lrs.index(seed), i - 0.32, "*", color="gold", ms=9, mec="k", mew=0.5)
        ax.imshow(grid, cmap="viridis", vmin=0.1, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs], fontsize=8)
        ax.set_yticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlabel("learning rate")
        ax.set_title(f"{LABELS[bn]}: test accuracy after {cfg['steps']} steps", fontsize=10)
    axes[0].set_ylabel("hidden layers")
    fig.suptitle("plain ReLU MLPs (width 100, He init), SGD batch 128. Framed: stable; ★: seed 001's lr; "
                 "div k: diverged at step k", fontsize=9)
    save_figure(fig, out, "accuracy_grid.png", 90)

    # largest stable lr and speedup vs depth, next to the seed's table
    fig = new_figure((11, 4))
    ax, ax2 = fig.subplots(1, 2)
    floor = min(lrs) / GRID_STEP
    for bn in (False, True):
        got = [largest_stable_lr(arms, d, bn, lrs) for d in depths]
        ax.semilogy(depths, [floor if v is None else v for v in got], "o-", color=COLORS[bn],
                    label=f"{LABELS[bn]}: measured")
        seed = [(d, SEED_BN_LR if bn else SEED_TABLE[d][0]) for d in depths if d in SEED_TABLE]
        if seed:
            ax.semilogy(*zip(*seed), "s--", mfc="none", ms=9, color=COLORS[bn], label=f"{LABELS[bn]}: seed 001")
    ax.axhline(floor, color="gray", lw=0.6, ls=":")
    ax.text(depths[-1], floor, "none stable ", fontsize=7, va="bottom", ha="right", color="gray")
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("largest stable learning rate")
    ax.set_title("largest stable lr (grid: half-decades; its largest is a lower bound)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower left")
    pts, bounds = [], []
    for d in depths:
        ratio, kind = speedup(best_run(arms, d, False, lrs, cfg["target"])[1],
                              best_run(arms, d, True, lrs, cfg["target"])[1], cfg["steps"])
        if kind == "exact":
            pts.append((d, ratio))
        elif kind is not None:
            bounds.append((d, ratio, kind))
        else:
            ax2.annotate("neither net\nreaches 90 %", (d, 0.5), xycoords=("data", "axes fraction"), fontsize=7,
                         ha="center")
        if d in SEED_TABLE:
            lo, hi = SEED_TABLE[d][1]
            ax2.plot([d, d], [lo, hi], color="gold", lw=8, alpha=0.6, solid_capstyle="butt",
                     label="seed 001's band" if d == min(x for x in depths if x in SEED_TABLE) else None)
    if pts:
        ax2.semilogy(*zip(*pts), "o", color="k", label="measured")
    for d, r, kind in bounds:
        ax2.semilogy(d, r, "^" if kind == "lower" else "v", color="k", mfc="none", ms=9,
                     label=f"bound ({'>' if kind == 'lower' else '<'})")
    ax2.set_yscale("log")
    ax2.set_xlabel("hidden layers")
    ax2.set_ylabel(f"steps to {cfg['target']:.0%}: no BN / BN")
    ax2.set_title("speedup from BN, each net at its best lr", fontsize=9)
    ax2.grid(alpha=0.3, which="both")
    handles, labels = ax2.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax2.legend(unique.values(), unique.keys(), fontsize=8)
    save_figure(fig, out, "largest_lr.png", 90)

    # held-out accuracy curves at each net's best lr
    fig = new_figure((4 * len(depths), 3.6))
    for ax, depth in zip(fig.subplots(1, len(depths), squeeze=False)[0], depths):
        for bn in (False, True):
            lr, _ = best_run(arms, depth, bn, lrs, cfg["target"])
            note = ""
            if lr is None:                                  # no stable lr: the most accurate finished run
                done = [(arms[arm_name(depth, bn, x)]["curves"].get("test_accuracy", -1), x) for x in lrs]
                acc, lr = max(done)
                if acc < 0:
                    continue
                note = " (not stable)"
            c = arms[arm_name(depth, bn, lr)]["curves"]
            ax.plot(c["step"], c["accuracy"], color=COLORS[bn], ls="--" if note else "-",
                    label=f"{LABELS[bn]}, lr {lr:g}{note}")
        ax.axhline(cfg["target"], color="k", lw=0.6, ls=":")
        ax.set_ylim(0, 1)
        ax.set_xlabel("step")
        ax.set_title(f"{depth} hidden layers: each net at its best lr", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.axes[0].set_ylabel(f"accuracy, first {cfg['eval_size']} test images")
    save_figure(fig, out, "curves.png", 90)
    names = ["accuracy_grid.png", "largest_lr.png", "curves.png"]

    grad = next((r for a, r in arms.items() if a.startswith("grad_init_d")), None)
    if grad is not None:                                   # the gradient norms per layer at init
        fig = new_figure((6.5, 4))
        ax = fig.subplots()
        for bn in (False, True):
            g = grad["grad_norms"]["bn" if bn else "plain"]
            ax.semilogy(np.arange(1, len(g) + 1), g, "o-", ms=3, color=COLORS[bn], label=LABELS[bn])
        ax.set_xlabel("linear layer (1 = input side)")
        ax.set_ylabel("‖∂L/∂W‖ at init (batch of step 0)")
        ax.set_title(f"{grad['depth']} hidden layers: weight-gradient norm per layer at init", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        names.append(save_figure(fig, out, "grad_init.png", 90))
    return names


EXPERIMENT = Experiment(
    name="depth_lr",
    title="Seed 001's learning-rate table: the largest stable lr vs depth, with and without BatchNorm",
    paper="Seed 001 (internal covariate shift page), '1. Necessitates Lower Learning Rates' (no source given)",
    protocol="§6",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="Plain ReLU MLPs (width 100, He init) of several depths on MNIST, with and without BatchNorm, trained "
            "with SGD at every lr of a half-decade grid: the largest stable lr per depth and the steps to 90 % "
            "held-out accuracy at each net's best lr, checked against the seed's table.",
)
