"""Karpathy, makemore part 3: activation, gradient and update:data diagnostics of a deep tanh MLP.

    tinygrad-norm run diagnostics            # docs/protocols.md §8: 1000 steps
    tinygrad-norm run diagnostics --quick    # 300 steps: every effect's direction
    tinygrad-norm run diagnostics --full     # 5000 steps

The protocol (docs/protocols.md §8):

    data       names.txt is not available here, so MNIST (as §7.2 allows), standardized
               ((x/255 − 0.1307) / 0.3081) so the first layer sees unit-variance inputs,
               as Karpathy's embeddings C ~ N(0, 1) are. Batch 32, shuffled.
    nets       Karpathy's "PyTorch-ified" net with 784 inputs: 5 × [Linear(·, 100) → (BN) → Tanh],
               then Linear(100, 10) → (BN); 6 Linear layers. His init: W ~ N(0, 1)/√fan_in
               times the gain 5/3 on every Linear (with BN the output Linear too, as his
               notebook); the last layer is made "less confident": BN's γ × 0.1 with BN,
               W × 0.1 (instead of the gain) without. With BN the Linear
               layers have no bias (β replaces it); without BN they have a zero bias.
    arms       bn          BN, gain 5/3 (his net)
               bn_gain1    BN, gain 1   (BN makes the gain matter much less)
               plain       no BN, gain 5/3
               plain_gain1 no BN, gain 1 (the Tanh std decays with depth)
    training   plain SGD, lr 0.1, 1000 steps (his lr before the 150K decay).
    measured   at a few steps (with that step's batch, before its update; running statistics
               and gradients left untouched): per Tanh layer the mean, std and saturated
               fraction (|t| > 0.97) of its output and the mean/std of ∂L/∂t (ActivationMonitor),
               per weight matrix std(grad)/std(W); histograms of all three at the last
               diagnostic step; and at every step log10(lr·std(grad)/std(W)) per weight matrix.

The claims are the lecture's invariants (docs/protocols.md §8) for the BN net after training: < 5 % saturated and
Tanh std 0.6–0.7 in every layer, gradient std within 2× across layers, update:data
ratios within 10^−3.5 … 10^−2; and without BN at gain 1 the Tanh std decays with depth.
NOTE: Karpathy's own BatchNorm1d normalizes with the unbiased variance; ours (PyTorch's)
with the biased one: a factor √(32/31) on the normalized values at batch 32.
"""
from contextlib import contextmanager

import numpy as np

from ... import nn
from ...data import DataLoader, mnist_arrays
from ...nn import functional as F
from ...optim import SGD
from ...random import generator, manual_seed
from ..monitor import ActivationMonitor
from ..probe import preserved
from ..plotting import new_figure, save_figure
from ..experiment import Claim, Experiment

COMMON = dict(lr=0.1, batch_size=32, hidden=100, layers=6, gain=5 / 3, last_scale=0.1, bins=50,
              checkpoint_every=500)
MODES = {
    "default": dict(COMMON, steps=1000, diag_every=100),    # docs/protocols.md §8: 1000 steps
    "full": dict(COMMON, steps=5000, diag_every=250),
    "quick": dict(COMMON, steps=300, diag_every=100),
}
ARMS = {"bn": (True, "gain"), "bn_gain1": (True, 1.0), "plain": (False, "gain"), "plain_gain1": (False, 1.0)}
SATURATED_MAX, STD_RANGE, GRAD_SPREAD_MAX, RATIO_RANGE = 0.05, (0.6, 0.7), 2.0, (-3.5, -2.0)


def diag_schedule(cfg):
    """Diagnostic steps: every `diag_every`, and the last step (steps − 1: its batch, before its update)."""
    return sorted(set(range(0, cfg["steps"], cfg["diag_every"])) | {cfg["steps"] - 1})


def karpathy_mlp(bn, gain, hidden=100, layers=6, inputs=784, classes=10, last_scale=0.1):
    """(layers − 1) × [Linear → (BN) → Tanh] + Linear → (BN), Karpathy's init (see the module docstring)."""
    rng = generator()
    sizes = [inputs] + [hidden] * (layers - 1) + [classes]
    mods = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == layers - 1
        lin = nn.Linear(fan_in, fan_out, bias=not bn)
        w = rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)
        # NOTE: as the notebook (`for layer in layers[:-1]: layer.weight *= gain`): with BN the last
        # module is the BatchNorm, so every Linear gets the gain; without BN the last Linear gets ×0.1.
        w *= last_scale if (last and not bn) else gain
        lin.weight._data[...] = w.astype(np.float32)
        if not bn:
            lin.bias._data[...] = 0
        mods.append(lin)
        if bn:
            norm = nn.BatchNorm1d(fan_out)
            if last:
                norm.weight._data[...] *= last_scale      # "make less confident"
            mods.append(norm)
        if not last:
            mods.append(nn.Tanh())
    return nn.Sequential(*mods)


class RatioSGD(SGD):
    """SGD that records log10(lr·std(grad)/std(W)) of every weight matrix before each update.

    NOTE: Karpathy divides by std(W) after the update; the difference is of order lr·grad/W ≈ 1e-3 relative.
    """

    def __init__(self, params, lr, curves):
        super().__init__(params, lr=lr)
        # NOTE: a resume replaces the contents of `curves`, so look curves["ratio"] up at every step
        self.curves = curves                               # curves["ratio"]: {weight index: [per step]}

    def step(self, closure=None):
        lr = self.param_groups[0]["lr"]
        weights = [p for p in self.param_groups[0]["params"] if p.ndim == 2]
        for i, p in enumerate(weights):
            r = lr * p.grad._data.std() / p._data.std() if p.grad is not None else np.nan
            self.curves["ratio"][str(i)].append(float(np.log10(r)) if r > 0 else float("nan"))
        return super().step(closure)


def _hist(a, bins, lim):
    """Histogram of `a` on [−lim, lim] (entries outside are left out), as JSON-ready lists."""
    a = np.asarray(a, np.float64).ravel()
    counts, edges = np.histogram(a, bins=bins, range=(-lim, lim))
    return {"counts": counts.tolist(), "edges": edges.tolist()}


def train(lab, cfg):
    x, y = mnist_arrays("train", normalize="standard")
    return {arm: train_network(lab, cfg, arm, bn, cfg["gain"] if g == "gain" else g, x, y)
            for arm, (bn, g) in ARMS.items()}


def train_network(lab, cfg, arm, bn, gain, x, y):
    manual_seed(cfg["seed"])
    model = karpathy_mlp(bn, gain, cfg["hidden"], cfg["layers"], last_scale=cfg["last_scale"])
    weights = [p for p in model.parameters() if p.ndim == 2]
    curves = {"step": [], "act_mean": [], "act_std": [], "saturated": [], "grad_mean": [], "grad_std": [],
              "grad_data": [], "ratio": {str(i): [] for i in range(len(weights))}, "hist": None}
    optimizer = RatioSGD(model.parameters(), cfg["lr"], curves)
    loader = DataLoader(x, y, batch_size=cfg["batch_size"], shuffle=True, drop_last=True, seed=cfg["seed"])
    last = diag_schedule(cfg)[-1]

    def evaluate(step, batch):
        captured = {"act": {}, "grad": {}}
        with preserved(model), ActivationMonitor(model, nn.Tanh) as mon, _capture(model, captured, step == last):
            F.cross_entropy(model(batch[0]), batch[1]).backward()
            grads = [w.grad.numpy().copy() for w in weights]
        if step == last:   # the histograms of Karpathy's lecture
            acts = [captured["act"][i] for i in range(len(captured["act"]))]
            gouts = [captured["grad"][i] for i in range(len(captured["grad"]))]
            # one range per kind, shared by the layers: ±5 × the largest std (the tails are long)
            glim, wlim = (5 * max(float(a.std()) for a in arrays) or 1.0 for arrays in (gouts, grads))
            curves["hist"] = {"act": [_hist(a, cfg["bins"], 1.0) for a in acts],
                              "grad": [_hist(g, cfg["bins"], glim) for g in gouts],
                              "wgrad": [_hist(g, cfg["bins"], wlim) for g in grads]}
        curves["step"].append(step)
        for key, what, stat in (("act_mean", "output", "mean"), ("act_std", "output", "std"),
                                ("saturated", "output", "saturated"), ("grad_mean", "grad", "mean"),
                                ("grad_std", "grad", "std")):
            curves[key].append([mon.history[n][what][stat][0] for n in mon.names])
        curves["grad_data"].append([float(g.std() / w.detach().numpy().std()) for g, w in zip(grads, weights)])

    return lab.train(arm, model, optimizer, loader, steps=cfg["steps"],
                     loss_fn=lambda xb, yb: F.cross_entropy(model(xb), yb),
                     evaluate=evaluate, eval_steps=diag_schedule(cfg), curves=curves,
                     checkpoint_every=cfg["checkpoint_every"])


@contextmanager
def _capture(model, captured, enabled):
    """Copy each Tanh's output and the gradient reaching it into `captured` (for the histograms)."""
    handles = []
    if enabled:
        for i, tanh in enumerate(m for m in model if isinstance(m, nn.Tanh)):
            def hook(module, args, out, i=i):
                captured["act"][i] = out.detach().numpy().copy()

                def grad_hook(g):
                    captured["grad"][i] = g.numpy().copy()   # returns None: the gradient is unchanged
                out.register_hook(grad_hook)
            handles.append(tanh.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


# ------------------------------------------------------------------ claims (docs/protocols.md §8 invariants)

def final_ratios(arm, tail=0.1):
    """Per weight matrix: the mean of log10(update:data) over the last `tail` of the steps."""
    out = []
    for key in sorted(arm["curves"]["ratio"], key=int):
        r = np.array(arm["curves"]["ratio"][key], dtype=np.float64)
        n = max(int(len(r) * tail), 1)
        out.append(float(np.nanmean(r[-n:])))
    return out


def _fmt(values, spec=".3f"):
    return ", ".join(format(v, spec) for v in values)


def worst_in_band(values, band):
    """The value of `values` nearest to (or farthest beyond) an edge of `band` = (lo, hi): all values lie
    in the band if and only if this one does."""
    lo, hi = band
    return min(values, key=lambda v: min(v - lo, hi - v))


def claims(cfg, arms):
    for name, arm in arms.items():
        if arm["diverged_at"] is not None:
            return [Claim.compare("every invariant of docs/protocols.md §8", None, ">=", 0,
                                  f"{name} diverged at step {arm['diverged_at']}", section="§8")]
    bn, plain1 = arms["bn"]["curves"], arms["plain_gain1"]["curves"]
    step = bn["step"][-1]
    sat, std, gstd = bn["saturated"][-1], bn["act_std"][-1], bn["grad_std"][-1]
    rows = [Claim.compare(f"with BN, < 5 % of every Tanh layer's outputs saturated (|t| > 0.97) at step {step}: "
                          "the largest fraction", max(sat), "<", SATURATED_MAX,
                          "per layer: " + _fmt([100 * s for s in sat], ".1f") + " %", section="sat",
                          threshold="< 5 %"),
            Claim.compare(f"with BN, the Tanh-output std is 0.6–0.7 in every layer at step {step}",
                          worst_in_band(std, STD_RANGE), "between", STD_RANGE, "per layer: " + _fmt(std),
                          section="std")]
    spread = max(gstd) / min(gstd)
    rows.append(Claim.compare(f"with BN, the std of ∂L/∂(Tanh output) is within 2× across layers at step {step}: "
                              "max/min", spread, "<=", GRAD_SPREAD_MAX,
                              "per layer: " + _fmt(gstd, ".2e") + f"; max/min {spread:.2f}", section="grad",
                              log=True))
    ratios = final_ratios(arms["bn"])
    hidden, output = ratios[:-1], ratios[-1]
    rows.append(Claim.compare("with BN, log10(lr·std(grad)/std(W)) of every hidden weight matrix is within −3.5 … −2 "
                              "(mean over the last 10 % of the steps)", worst_in_band(hidden, RATIO_RANGE), "between",
                              RATIO_RANGE, "W1…W5: " + _fmt(hidden, ".2f"), section="update (hidden)"))
    rows.append(Claim.compare("with BN, the same for the output weight matrix W6 (gain 5/3 as in the notebook)",
                              output, "between", RATIO_RANGE, f"W6: {output:.2f}", section="update (output)"))
    s0 = plain1["act_std"][0]
    steps_down = [b / a for a, b in zip(s0[:-1], s0[1:])]          # < 1 at every layer: decays
    rows.append(Claim.compare("without BN at gain 1, the Tanh-output std decays with depth (at init, step 0): "
                              "the largest layer-to-layer ratio", max(steps_down), "<", 1.0,
                              "per layer: " + _fmt(s0) + f"; last/first {s0[-1] / s0[0]:.2f}", section="decay",
                              threshold="< 1 (strictly decreasing)"))
    gap = max(abs(a - b) for a, b in zip(std, arms["bn_gain1"]["curves"]["act_std"][-1]))
    rows.append(Claim.compare("with BN the statistics stop depending on the gain: Tanh std at gain 5/3 vs 1, "
                              f"largest difference over layers at step {step}", gap, "<=", 0.05, f"{gap:.3f}",
                              section="gain", threshold="≤ 0.05 (ours)"))
    return rows


# ------------------------------------------------------------------ figures

COLORS = {"bn": "tab:blue", "bn_gain1": "tab:cyan", "plain": "tab:red", "plain_gain1": "tab:orange"}
LABELS = {"bn": "BN, gain 5/3", "bn_gain1": "BN, gain 1", "plain": "no BN, gain 5/3", "plain_gain1": "no BN, gain 1"}


def _figure(rows, cols, size):
    fig = new_figure(size)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _hist_panel(ax, hists, title, xlabel):
    for i, h in enumerate(hists):
        edges = np.array(h["edges"])
        centers = (edges[:-1] + edges[1:]) / 2
        counts = np.array(h["counts"], np.float64)
        density = counts / max(counts.sum(), 1) / np.diff(edges)      # as Karpathy's density=True
        ax.plot(centers, density, label=f"layer {i + 1}")
    ax.set_title(title, fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    ax.legend(fontsize=6)


def figures(cfg, arms, out):
    names = [a for a in ARMS if arms[a]["curves"].get("hist")]   # a diverged arm has no histograms
    if not names:
        return []
    step = {a: arms[a]["curves"]["step"][-1] for a in names}
    files = []
    for key, what, fname in (("act", "Tanh output", "activations.png"),
                             ("grad", "∂L/∂(Tanh output)", "gradients.png"),
                             ("wgrad", "∂L/∂W", "weight_gradients.png")):
        fig, axes = _figure(1, len(names), (4 * len(names), 3.4))
        for ax, a in zip(axes[0], names):
            c = arms[a]["curves"]
            hists = c["hist"][key]
            if key == "act":
                extra = "\n" + " ".join(f"{s:.2f}/{100 * p:.0f}%" for s, p in zip(c["act_std"][-1], c["saturated"][-1]))
            elif key == "grad":
                extra = "\nstd " + " ".join(f"{s:.1e}" for s in c["grad_std"][-1])
            else:
                extra = "\ngrad:data " + " ".join(f"{s:.2g}" for s in c["grad_data"][-1])
            _hist_panel(ax, hists, f"{LABELS[a]} (step {step[a]}){extra}", what)
        fig.suptitle(f"histograms of {what} per layer" + (" (std/saturated per layer in titles)" if key == "act" else ""))
        save_figure(fig, out, fname, 100)
        files.append(fname)

    fig, axes = _figure(1, len(names), (4 * len(names), 3.4))
    for ax, a in zip(axes[0], names):
        ratio = arms[a]["curves"]["ratio"]
        for k in sorted(ratio, key=int):
            ax.plot(ratio[k], lw=0.7, label=f"W{int(k) + 1}")
        ax.axhline(-3, color="k", ls="--", lw=1)
        ax.axhspan(*RATIO_RANGE, color="gray", alpha=0.15)
        ax.set_title(LABELS[a], fontsize=9)
        ax.set_xlabel("training step")
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("log10(lr·std(grad) / std(W))")
    fig.suptitle("update:data ratio per weight matrix (dashed: Karpathy's −3; band: −3.5 … −2)")
    save_figure(fig, out, "update_ratio.png", 100)
    files.append("update_ratio.png")

    fig, axes = _figure(1, 3, (13, 3.6))   # per-layer summary: std, saturation, gradient std
    for a in names:
        c = arms[a]["curves"]
        depth = np.arange(1, len(c["act_std"][-1]) + 1)
        color = COLORS[a]
        axes[0][0].plot(depth, c["act_std"][0], ls=":", marker=".", color=color, label=f"{LABELS[a]}, step 0")
        axes[0][0].plot(depth, c["act_std"][-1], marker="o", color=color, label=f"{LABELS[a]}, step {step[a]}")
        axes[0][1].plot(depth, 100 * np.array(c["saturated"][-1]), marker="o", color=color, label=LABELS[a])
        axes[0][2].semilogy(depth, c["grad_std"][-1], marker="o", color=color, label=LABELS[a])
    for ax, t in zip(axes[0], ("Tanh-output std", "saturated % (|t| > 0.97)", "std of ∂L/∂(Tanh output)")):
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("layer")
        ax.legend(fontsize=6)
    axes[0][0].axhspan(*STD_RANGE, color="gray", alpha=0.15)
    axes[0][1].axhline(100 * SATURATED_MAX, color="k", ls="--", lw=0.8)
    save_figure(fig, out, "layer_stats.png", 100)
    files.append("layer_stats.png")
    return files


EXPERIMENT = Experiment(
    name="diagnostics",
    title="Karpathy, makemore part 3: activation, gradient and update:data diagnostics with and without BN",
    paper="A. Karpathy, \"Building makemore Part 3: Activations & Gradients, BatchNorm\" (Neural Networks: "
          "Zero to Hero, 2022), notebook makemore_part3_bn.ipynb",
    protocol="§8",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="6-layer tanh MLP of width 100 (Karpathy's init: gain 5/3, last layer ×0.1) on standardized MNIST "
            "(names.txt is not available), batch 32, SGD lr 0.1, with and without BatchNorm and at gains 5/3 "
            "and 1: per-layer activation/gradient statistics and histograms, and the update:data ratio per step.",
)
