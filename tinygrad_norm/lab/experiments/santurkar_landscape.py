"""Santurkar et al. 2018, Figs. 4 and 10: BatchNorm smooths the loss landscape.

    tinygrad-norm run santurkar-landscape            # docs/protocols.md §3 (≈ 2 min)
    tinygrad-norm run santurkar-landscape --quick    # 1K MLP steps, 2K DLN steps: the direction of every effect
    tinygrad-norm run santurkar-landscape --full     # the same as the default (see below)

At every probed step of training, with g = ∇L(θ_t) on that step's batch, the
loss and its gradient are evaluated at θ_t − η·g for a range of step sizes η
(`tn.lab.landscape_probe`; BN in training mode on the same batch, the model left
untouched). Three numbers per probe: the loss range over η (max − min of
L(θ_t − ηg)), the gradient predictiveness max_η ‖∇L(θ_t − ηg) − ∇L(θ_t)‖ and the
effective β-smoothness max_η ‖∇L(θ_t − ηg) − ∇L(θ_t)‖ / ‖ηg‖. Two parts:

(a) Fig. 4 on a CPU scale (docs/protocols.md §3): the paper's VGG on CIFAR-10 becomes
    an MNIST MLP 784 → 8 × [Linear(100) → (BN) → ReLU] → Linear(10), He init
    (kaiming-normal, fan_in) for both nets, zero biases (the BN net's hidden
    Linears have none: β replaces them), x = pixels / 255. SGD lr 0.1, batch
    128, 3000 steps, the same seed and batches for both nets; probes every 100
    steps at η ∈ {0.5, 1, …, 4} × lr; test accuracy (BN in eval mode) every 500.
(b) Fig. 10: santurkar_ics's 25-layer 10×10 deep linear network (the same nets,
    data and sum-of-squares loss, imported from santurkar_ics.py), full-batch GD
    at lr 1e-6 for 10,000 steps; probes every 50 steps at 8 step sizes
    η ∈ [1/100, 30] × lr (a log grid).
    NOTE: the paper probes every step. The standard net's spikes are short: with
    probes every 250 steps (santurkar_ics's ICS grid) seed 1's largest spike, at
    step 100, fell between two probes and the claims failed; every 50 steps
    costs ~20 % more and catches it.

The claims (docs/protocols.md §3): in every window of the MLP's training
(steps 0–500, 500–1500, 1500–3000) the median loss range is ≥ 5× and the median
gradient predictiveness ≥ 2× smaller with BN; the effective β differs in its
spikes, not its median: its 90th percentile over probe steps is ≥ 5 % larger
without BN (the margin: one arm's seed-to-seed spread); both MLPs reach 0.96 test
accuracy. On the DLN, the *maximum* over training
of the loss range and of the gradient change is ≥ 10× larger without BN (a
threshold of ours, not calibrated: Fig. 10 shows orders of magnitude; its
medians overlap).

"full" is the default: part (b) already runs at the paper's scale, and the
paper's scale of part (a) is a different model (VGG on CIFAR-10), not a bigger
budget of this one.
"""
import math

import numpy as np

from ... import nn
from ...data import DataLoader, mnist_arrays
from ...nn import functional as F
from ...optim import SGD
from ...random import generator, manual_seed
from ..landscape import landscape_probe
from ..evaluate import accuracy
from ..plotting import new_figure, save_figure
from ..experiment import Claim, Experiment
from .santurkar_ics import deep_linear_net, full_batch, sum_of_squares

# ------------------------------------------------------------------ settings

DLN_ETAS = [float(f) for f in np.geomspace(0.01, 30, 8)]          # × lr: 0.01, 0.031, …, 30
COMMON = dict(lr=0.1, batch_size=128, depth=8, width=100, init="he", eta_factors=[0.5 * k for k in range(1, 9)],
              probe_every=100, test_every=500, windows=[0, 500, 1500, 3000], checkpoint_every=1000,
              dln_depth=25, dln_width=10, dln_samples=1000, dln_lr=1e-6, dln_eta_factors=DLN_ETAS,
              dln_probe_every=50, data_seed=None)              # data_seed: the DLN's A and x (santurkar_ics)
MODES = {
    # docs/protocols.md §3 (MLP) and the DLN at the paper's scale (§2)
    "default": dict(COMMON, steps=3000, dln_steps=10000),
    # the same: see the module docstring
    "full": dict(COMMON, steps=3000, dln_steps=10000),
    # a small budget that shows the direction of every effect
    "quick": dict(COMMON, steps=1000, windows=[0, 250, 500, 1000], dln_steps=2000),
}
LOSS_RANGE_RATIO, GRAD_RATIO, ACCURACY, DLN_RATIO = 5.0, 2.0, 0.96, 10.0
# "spikes more": ≥ 5 % larger; one arm's 90th percentile moved by ≤ 2 % between calibration seeds (protocols.md §3)
BETA_RATIO = 1.05
LABELS = {"plain": "standard", "bn": "BN", "dln_plain": "standard", "dln_bn": "BN"}
COLORS = {"plain": "tab:red", "bn": "tab:blue", "dln_plain": "tab:red", "dln_bn": "tab:blue"}


def santurkar_mlp(bn, noise=None, depth=8, width=100, inputs=784, classes=10, init="he"):
    """inputs → depth × [Linear(width) → (BatchNorm1d) → (noise) → ReLU] → Linear(classes).

    init "he" (kaiming-normal, fan_in: W ~ N(0, 2/fan_in)) or "glorot" (the paper's: Glorot-normal,
    W ~ N(0, 2/(fan_in + fan_out))) for every Linear, zero biases; with
    BN the hidden Linears have no bias. `noise`: None, or `noise(num_features)` -> a Module
    put where BN's output is (after BN, or after the Linear without BN); see noisy_bn.py.
    """
    sizes = [inputs] + [width] * depth + [classes]
    # NOTE: all the weights are drawn first, in layer order, so every variant (BN or not, noise or
    # not) starts from the same weights for the same seed; the Linears' own default init is overwritten.
    rng = generator()
    if init not in ("he", "glorot"):
        raise ValueError(f"santurkar_mlp: init must be 'he' or 'glorot', got {init!r}")
    weights = [rng.normal(0.0, math.sqrt(2.0 / (n_in if init == "he" else n_in + n_out)), (n_out, n_in))
               for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    layers = []
    for i, w in enumerate(weights):
        hidden = i < depth
        linear = nn.Linear(w.shape[1], w.shape[0], bias=not (bn and hidden))
        linear.weight._data[...] = w
        if linear.bias is not None:
            linear.bias._data[...] = 0
        layers.append(linear)
        if hidden:
            if bn:
                layers.append(nn.BatchNorm1d(w.shape[0]))
            if noise is not None:
                layers.append(noise(w.shape[0]))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)




def _new_probe_curves():
    return {"step": [], "loss": [], "loss_min": [], "loss_max": [], "loss_range": [], "grad_min": [],
            "grad_max": [], "beta": [], "losses": [], "grad_changes": []}


def _record(curves, step, probe):
    curves["step"].append(step)
    for key, name in (("loss", "loss"), ("loss_min", "loss_min"), ("loss_max", "loss_max"),
                      ("loss_range", "loss_range"), ("grad_min", "grad_change_min"),
                      ("grad_max", "gradient_predictiveness"), ("beta", "beta_smoothness"),
                      ("losses", "losses"), ("grad_changes", "grad_changes")):
        curves[key].append(probe[name])


# ------------------------------------------------------------------ training

def train(lab, cfg):
    data = {"train": mnist_arrays("train"), "test": mnist_arrays("test")}
    arms = {}
    for arm, bn in (("plain", False), ("bn", True)):
        arms[arm] = train_mlp(lab, cfg, arm, bn, data)
    dln_cfg = _dln_cfg(cfg)
    batch = full_batch(dln_cfg)
    for arm, bn in (("dln_plain", False), ("dln_bn", True)):
        arms[arm] = train_dln(lab, cfg, arm, bn, dln_cfg, batch)
    return arms


def train_mlp(lab, cfg, arm, bn, data):
    """Part (a): SGD on MNIST, probing the landscape every `probe_every` steps on that step's batch."""
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    manual_seed(cfg["seed"])                                    # the same init stream for both nets
    model = santurkar_mlp(bn, depth=cfg["depth"], width=cfg["width"], init=cfg["init"])
    optimizer = SGD(model.parameters(), lr=cfg["lr"])
    loader = DataLoader(x_train, y_train, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                        seed=cfg["seed"])                       # the same batches for both nets
    etas = [f * cfg["lr"] for f in cfg["eta_factors"]]
    curves = _new_probe_curves() | {"test_step": [], "test_accuracy": []}

    def evaluate(step, batch):
        if batch is not None and step % cfg["probe_every"] == 0:
            _record(curves, step, landscape_probe(model, F.cross_entropy, batch, etas))
        if step % cfg["test_every"] == 0 or step == cfg["steps"]:
            curves["test_step"].append(step)
            curves["test_accuracy"].append(accuracy(model, x_test, y_test))

    schedule = set(range(0, cfg["steps"], cfg["probe_every"])) | set(range(0, cfg["steps"] + 1, cfg["test_every"]))
    return lab.train(arm, model, optimizer, loader, steps=cfg["steps"],
                     loss_fn=lambda x, y: F.cross_entropy(model(x), y), evaluate=evaluate,
                     eval_steps=sorted(schedule | {cfg["steps"]}), curves=curves,
                     checkpoint_every=cfg["checkpoint_every"], log_every=cfg["probe_every"])


def _dln_cfg(cfg):
    """The settings santurkar_ics's `deep_linear_net` and `full_batch` read."""
    return {"depth": cfg["dln_depth"], "width": cfg["dln_width"], "samples": cfg["dln_samples"], "seed": cfg["seed"],
            "data_seed": cfg["data_seed"]}


def train_dln(lab, cfg, arm, bn, dln_cfg, batch):
    """Part (b): full-batch GD of the deep linear net, probing every `dln_probe_every` steps."""
    manual_seed(cfg["seed"])
    model = deep_linear_net(dln_cfg, bn)
    optimizer = SGD(model.parameters(), lr=cfg["dln_lr"])
    etas = [f * cfg["dln_lr"] for f in cfg["dln_eta_factors"]]
    curves = _new_probe_curves()

    def evaluate(step, _):
        _record(curves, step, landscape_probe(model, sum_of_squares, batch, etas))

    return lab.train(arm, model, optimizer, lambda step: batch, steps=cfg["dln_steps"],
                     loss_fn=lambda x, y: sum_of_squares(model(x), y), evaluate=evaluate,
                     eval_steps=range(0, cfg["dln_steps"], cfg["dln_probe_every"]), curves=curves,
                     checkpoint_every=cfg["checkpoint_every"], log_every=cfg["dln_probe_every"])


# ------------------------------------------------------------------ claims (docs/protocols.md §3)

def _values(values):
    """A float64 array with None (a non-finite number in results.json) as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def window_edges(cfg):
    """[(lo, hi)] of the windows of probe steps (lo ≤ step < hi; the last one includes its end),
    `windows` cut at the number of steps."""
    edges = sorted({min(e, cfg["steps"]) for e in cfg["windows"]} | {0, cfg["steps"]})
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def windowed_medians(curves, key, cfg):
    """[(lo, hi, median of curves[key] over the probe steps in [lo, hi))] (NaN: no probe there)."""
    steps, values = np.array(curves["step"]), _values(curves[key])
    rows = []
    windows = window_edges(cfg)
    for i, (lo, hi) in enumerate(windows):
        inside = (steps >= lo) & ((steps < hi) | ((steps == hi) & (i == len(windows) - 1)))
        v = values[inside]
        rows.append((lo, hi, float(np.nanmedian(v)) if np.any(np.isfinite(v)) else float("nan")))
    return rows


def _window_claim(cfg, arms, key, what, at_least, section):
    plain, bn = windowed_medians(arms["plain"]["curves"], key, cfg), windowed_medians(arms["bn"]["curves"], key, cfg)
    ratios = [p / b if b > 0 else float("nan") for (_, _, p), (_, _, b) in zip(plain, bn)]
    measured = "; ".join(f"steps {lo}–{hi}: {p:.3g} vs {b:.3g} ({r:.1f}×)"
                         for (lo, hi, p), (_, _, b), r in zip(plain, bn, ratios))
    worst = min(ratios) if all(np.isfinite(ratios)) else None      # NOTE: a window without a ratio: not measured
    return Claim.compare(f"MLP: median {what} over the probes of each window, standard / BN (the lowest window)",
                         worst, ">=", at_least, measured, section=section, log=True)


def claims(cfg, arms):
    diverged = [f"{a} diverged at step {r['diverged_at']}" for a, r in arms.items() if r["diverged_at"] is not None]
    if diverged:
        return [Claim.compare("every claim of docs/protocols.md §3", None, ">=", 0, "; ".join(diverged),
                              section="§3")]
    rows = [_window_claim(cfg, arms, "loss_range", "loss range over η", LOSS_RANGE_RATIO, "1"),
            _window_claim(cfg, arms, "grad_max", "gradient predictiveness max ‖Δg‖", GRAD_RATIO, "2")]

    bp, bb = _values(arms["plain"]["curves"]["beta"]), _values(arms["bn"]["curves"]["beta"])
    p90p, p90b = float(np.nanpercentile(bp, 90)), float(np.nanpercentile(bb, 90))
    meds = "; ".join(f"{lo}–{hi}: {p:.3g} vs {b:.3g}" for (lo, hi, p), (_, _, b) in
                     zip(windowed_medians(arms["plain"]["curves"], "beta", cfg),
                         windowed_medians(arms["bn"]["curves"], "beta", cfg)))
    rows.append(Claim.compare("MLP: effective β-smoothness spikes more without BN: its 90th percentile over the probe "
                              "steps, standard / BN (the medians need not differ)", p90p / p90b, ">=", BETA_RATIO,
                              f"90th percentile {p90p:.3g} vs {p90b:.3g}: {p90p / p90b:.3f}×; medians {meds}",
                              section="3", log=True))

    acc = {a: arms[a]["curves"]["test_accuracy"][-1] for a in ("plain", "bn")}
    rows.append(Claim.compare(f"MLP: both nets reach ≥ {ACCURACY} test accuracy (step {cfg['steps']}): the lower one",
                              min(acc.values()), ">=", ACCURACY, f"standard {acc['plain']:.4f}, BN {acc['bn']:.4f}",
                              section="4"))

    for key, what, section in (("loss_range", "loss range over η", "5"), ("grad_max", "gradient change max ‖Δg‖", "6")):
        vp, vb = _values(arms["dln_plain"]["curves"][key]), _values(arms["dln_bn"]["curves"][key])
        # NOTE: a probe whose loss overflowed is NaN/None here; the max skips it (it would only add to the gap)
        mp, mb = float(np.nanmax(vp)), float(np.nanmax(vb))
        ratio = mp / mb if mb > 0 else None
        at = arms["dln_plain"]["curves"]["step"][int(np.nanargmax(vp))]
        rows.append(Claim.compare(f"DLN: the maximum over training of the {what}, standard / BN (ours, not calibrated; "
                                  "the medians may overlap)", ratio, ">=", DLN_RATIO,
                                  f"max {mp:.3g} (step {at}) vs {mb:.3g}: {mp / mb if mb > 0 else float('inf'):.3g}×; "
                                  f"medians {np.nanmedian(vp):.3g} vs {np.nanmedian(vb):.3g}", section=section,
                                  log=True))
    return rows


# ------------------------------------------------------------------ figures

def _landscape_panels(axes, arms, names, log):
    """Fig. 4 / Fig. 10: loss band over η, gradient-change band over η, effective β; per arm."""
    for a in names:
        c = arms[a]["curves"]
        steps = c["step"]
        color, label = COLORS[a], LABELS[a]
        axes[0].fill_between(steps, _values(c["loss_min"]), _values(c["loss_max"]), color=color, alpha=0.35,
                             label=label, lw=0)
        axes[1].fill_between(steps, _values(c["grad_min"]), _values(c["grad_max"]), color=color, alpha=0.35,
                             label=label, lw=0)
        axes[2].plot(steps, _values(c["beta"]), color=color, label=label, lw=1)
    titles = ["(a) loss landscape: L(θ − ηg) over η",
              "(b) gradient predictiveness: ‖∇L(θ − ηg) − ∇L(θ)‖ over η",
              "(c) effective β-smoothness"]
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if log:
            ax.set_yscale("log")


def figures(cfg, arms, out):
    files = []
    for names, log, fname, title in (
            (("plain", "bn"), True, "landscape_mlp.png",
             f"Santurkar et al. Fig. 4 on MNIST: 8×100 ReLU MLP, He init, SGD lr {cfg['lr']}, "
             f"η ∈ [{min(cfg['eta_factors']):g}, {max(cfg['eta_factors']):g}] × lr"),
            (("dln_plain", "dln_bn"), True, "landscape_dln.png",
             f"Santurkar et al. Fig. 10: 25-layer deep linear net, lr {cfg['dln_lr']:g}, "
             f"η ∈ [{min(cfg['dln_eta_factors']):g}, {max(cfg['dln_eta_factors']):g}] × lr")):
        if any(not arms[a]["curves"]["step"] for a in names):
            continue
        fig = new_figure((13, 3.8))
        _landscape_panels(fig.subplots(1, 3), arms, names, log)
        fig.suptitle(title, fontsize=10)
        save_figure(fig, out, fname, 90)
        files.append(fname)
    return files


EXPERIMENT = Experiment(
    name="santurkar_landscape",
    title="Santurkar et al. 2018, Figs. 4 and 10: BatchNorm makes the loss landscape smoother",
    paper="S. Santurkar, D. Tsipras, A. Ilyas, A. Madry, How Does Batch Normalization Help Optimization?, "
          "NeurIPS 2018 (arXiv:1805.11604), §3.2, App. A.2.2, Figs. 4 and 10",
    protocol="§3",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="(a) MNIST MLP 8×100 ReLU, He init, SGD lr 0.1, batch 128, with and without BN: every 100 steps the "
            "loss range, gradient predictiveness and effective β along the gradient for η ∈ [0.5, 4] × lr. "
            "(b) The 25-layer deep linear net of santurkar_ics at lr 1e-6: the same probes every 50 steps for "
            "η ∈ [1/100, 30] × lr, where the gap is in the worst case, not the median.",
)
