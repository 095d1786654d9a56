"""Initialization in a 50-layer ReLU MLP, with and without BatchNorm (seed 001's demonstration).

    tinygrad-norm run init            # forward statistics + 300 SGD steps per net (< 3 min)
    tinygrad-norm run init --quick    # forward statistics + 40 steps per net (the test suite runs it)

The protocol:

    forward    the seed's program: x ~ N(0, 1) of shape (128, 256); 50 layers
               h ← relu(h W), W (256, 256) with i.i.d. N(0, s²) entries, no bias;
               s = 0.01 ("small"), 1.0 ("large"), √(2/256) ("He"). With BN:
               h ← relu(BN(h W)) (batch statistics, γ = 1, β = 0, ε = 1e-5).
               Drawn with np.random.RandomState(42) in the seed's order (x, 50 small,
               50 large, 50 He); the same numbers are run in float64 and in float32.
               Per layer: mean, std, the fraction of exact zeros and of non-finite entries.
    training   MNIST (pixels / 255), 784 → 50 × 256 (ReLU) → 10, the same three
               inits (fan-in 784 for He's first layer), with BN before every ReLU
               or without; hidden layers without bias (as the seed; BN's β adds one).
               SGD lr 0.001, momentum 0.9, batch 64, float32, the same batches for all
               (lr 0.01 trains only He without BN in 300 steps; see docs/lab.md).
    why        two more arms test why the large init does not train with BN: under BN a
               hidden weight matrix's effective lr is lr/‖w‖², 128× (first layer 392×)
               smaller at std 1 than at He's std; and the output layer, which no BN
               follows, gives logits of std ≈ 11. large_bn_out: large hidden weights, the
               output layer at He's std; large_bn_lr: large everywhere, each hidden
               weight's lr × fan_in/2. Reported with the "BN trains" claim, not judged.

Thresholds, from first principles. A ReLU layer multiplies the second moment by
n·s²/2 (n = 256): √(n s²/2) = 0.113 per layer for s = 0.01, 11.3 for s = 1, 1 for He.
Over 50 layers that is 10^-47 and 10^+53: "vanishes" is std < 1e-10, "explodes"
is std > 1e10 (or non-finite); He "keeps its scale" within a factor 10 of layer 1.
With BN each pre-activation is standardized over the batch, so the post-ReLU
std of N(0, 1) is √(1/2 − 1/(2π)) = 0.584 at every layer: we ask ±0.05 (a sanity
check: true by construction, not counted among the claims).
A net "trains" when it did not diverge and its mean training loss over the last
window is 10 % below chance, < 0.9 · ln 10 = 2.072: a net that ignores its input
can at best predict the label frequencies (entropy 2.301 on MNIST), so a loss
clearly below that means it uses the input.
"""
import math

import numpy as np

from ... import nn
from ...data import DataLoader, mnist_arrays
from ...nn import functional as F
from ...optim import SGD, Adam
from ...random import generator, manual_seed
from ..evaluate import accuracy
from ..plotting import new_figure, save_figure
from ..experiment import Claim, Experiment

# ------------------------------------------------------------------ settings

INITS = ("small", "large", "he")
LABELS = {"small": "small (std 0.01)", "large": "large (std 1.0)", "he": "He (std √(2/fan_in))"}
COMMON = dict(depth=50, width=256, small_std=0.01, large_std=1.0, stats_batch=128, stats_seed=42, bn_eps=1e-5,
              optimizer="sgd", lr=0.001, momentum=0.9, batch_size=64, test_size=2000)   # optimizer: "sgd" | "adam"
MODES = {
    "default": dict(COMMON, steps=300, log_every=10),
    "full": dict(COMMON, steps=1000, log_every=10, test_size=10000),
    # the test suite runs this: forward statistics are complete, training is short
    "quick": dict(COMMON, steps=40, log_every=4, test_size=1000),
}
VANISH, EXPLODE, HE_FACTOR = 1e-10, 1e10, 10.0
BN_RELU_STD = math.sqrt(0.5 - 1 / (2 * math.pi))      # std of relu(z), z ~ N(0, 1): 0.5838
BN_TOL = 0.05
TRAIN_LOSS = 0.9 * math.log(10)                      # 10 % below the chance-level cross-entropy


def init_std(init, fan_in, cfg):
    """The std of the N(0, std²) weights of a layer with `fan_in` inputs."""
    return {"small": cfg["small_std"], "large": cfg["large_std"], "he": math.sqrt(2 / fan_in)}[init]


# ------------------------------------------------------------------ forward statistics (the seed's program)

def seed_weights(cfg):
    """x (128, 256) and {init: [W] * 50} drawn as the seed draws them (legacy RandomState, same order)."""
    rng = np.random.RandomState(cfg["stats_seed"])
    n, depth = cfg["width"], cfg["depth"]
    x = rng.randn(cfg["stats_batch"], n)
    weights = {init: [rng.randn(n, n) * init_std(init, n, cfg) for _ in range(depth)] for init in INITS}
    return x, weights


def forward_stats(x, weights, bn, dtype, eps=1e-5):
    """Per layer of h ← relu(h W) (or relu(BN(h W))) computed in `dtype`: a dict of lists.

    NOTE: the statistics are taken in float64 of the `dtype` activations: np.std in float32
    would square values of 1e-25 to 0 and of 1e20 to inf, and report under/overflow of the
    statistic instead of the activations' own.
    """
    h = x.astype(dtype)
    out = {"mean": [], "std": [], "zero_fraction": [], "nonfinite_fraction": []}
    with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        for w in weights:
            z = h @ w.astype(dtype)
            if bn:
                z = (z - z.mean(0)) / np.sqrt(z.var(0) + dtype(eps))
            h = np.maximum(z, dtype(0))                # NOTE: np.maximum propagates NaN (as relu should)
            h64 = h.astype(np.float64)
            finite = np.isfinite(h64)
            out["mean"].append(float(h64.mean()))
            out["std"].append(float(h64.std()))
            out["zero_fraction"].append(float((h == 0).mean()))
            out["nonfinite_fraction"].append(float(1 - finite.mean()))
    return out


def all_forward_stats(cfg):
    x, weights = seed_weights(cfg)
    stats = {}
    for init in INITS:
        for bn in (False, True):
            for dtype in (np.float64, np.float32):
                key = f"{init}_{'bn' if bn else 'plain'}_{np.dtype(dtype).name}"
                stats[key] = forward_stats(x, weights[init], bn, dtype, cfg["bn_eps"])
    return stats


# ------------------------------------------------------------------ training

def build(init, bn, cfg, output_init=None):
    """784 → depth × width (ReLU, BN before it if `bn`) → 10, N(0, std²) weights, zero output bias.
    output_init: the init of the output layer alone (default: `init`)."""
    layers, fan_in = [], 784
    for _ in range(cfg["depth"]):
        layers.append(nn.Linear(fan_in, cfg["width"], bias=False))
        if bn:
            layers.append(nn.BatchNorm1d(cfg["width"], eps=cfg["bn_eps"]))
        layers.append(nn.ReLU())
        fan_in = cfg["width"]
    layers.append(nn.Linear(fan_in, 10))
    model = nn.Sequential(*layers)
    rng = generator()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for m in linears:
        fan = m.weight.shape[1]
        # NOTE: every layer is drawn from the same stream whatever output_init is: the hidden weights of
        # large_bn_out are those of large_bn
        which = output_init if (m is linears[-1] and output_init is not None) else init
        m.weight._data[...] = rng.standard_normal(m.weight.shape) * init_std(which, fan, cfg)
        if m.bias is not None:
            m.bias._data[...] = 0
    return model


# the two arms that test why the large init does not train with BN (docs/protocols.md §7)
EXPLAIN = {"large_bn_out": "only the output layer rescaled to He's std",
           "large_bn_lr": "the hidden weights' lr × ‖w_large‖²/‖w_He‖² = fan_in/2"}


def make_optimizer(model, cfg, hidden_lr_factor=False):
    """SGD (momentum) or Adam at cfg["lr"]; hidden_lr_factor: each hidden weight matrix (the ones BN
    normalizes) gets lr × fan_in/2, i.e. × ‖w‖² of std 1 over ‖w‖² of He's std: under BN a weight
    matrix's effective learning rate is lr/‖w‖², so this gives the large init He's effective lr."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    hidden = {id(m.weight) for m in linears[:-1]}
    groups = [{"params": [m.weight], "lr": cfg["lr"] * m.weight.shape[1] / 2} for m in linears[:-1]] \
        if hidden_lr_factor else []
    rest = [p for p in model.parameters() if not (hidden_lr_factor and id(p) in hidden)]
    groups.append({"params": rest})
    if cfg["optimizer"] == "adam":
        return Adam(groups, lr=cfg["lr"])
    return SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"])


def train(lab, cfg):
    x_train, y_train = mnist_arrays("train")
    x_test, y_test = mnist_arrays("test")
    x_test, y_test = x_test[:cfg["test_size"]], y_test[:cfg["test_size"]]
    arms = {"forward": {"stats": all_forward_stats(cfg), "wall_time_s": 0.0}}
    runs = [(f"{init}_{'bn' if bn else 'plain'}", init, bn, None, False) for init in INITS for bn in (False, True)]
    runs += [("large_bn_out", "large", True, "he", False), ("large_bn_lr", "large", True, None, True)]
    for arm, init, bn, output_init, lr_factor in runs:
        manual_seed(cfg["seed"])
        model = build(init, bn, cfg, output_init)
        optimizer = make_optimizer(model, cfg, lr_factor)
        loader = DataLoader(x_train, y_train, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                            seed=cfg["seed"])              # the same batches for every net
        curves = {}

        def evaluate(step, batch, model=model, curves=curves):
            curves["test_accuracy"] = accuracy(model, x_test, y_test)

        arms[arm] = lab.train(arm, model, optimizer, loader, steps=cfg["steps"],
                              loss_fn=lambda x, y, model=model: F.cross_entropy(model(x), y),
                              evaluate=evaluate, eval_steps=[cfg["steps"]], curves=curves,
                              checkpoint_every=cfg["steps"], log_every=cfg["log_every"])
    return arms


def trains(result):
    """(trained?, last-window mean loss or None): not diverged and the last window's loss < 0.9 ln 10."""
    if result["diverged_at"] is not None or not result["train_loss"]["loss"]:
        return False, None
    last = result["train_loss"]["loss"][-1]
    return last < TRAIN_LOSS, last


# ------------------------------------------------------------------ claims

def _fmt(v):
    """A number for the report; None (a non-finite number read back from results.json) is "inf/nan"."""
    if v is None:
        return "inf/nan"
    return "nan" if v != v else ("inf" if v == float("inf") else f"{v:.3g}")


def _first(values, test):
    """1-based index of the first layer where test(value) holds, or None."""
    return next((i + 1 for i, v in enumerate(values) if test(v)), None)


def _state(r):
    last = trains(r)[1]
    return (f"diverged at step {r['diverged_at']}" if r["diverged_at"] is not None
            else f"loss {last:.3f}, test acc {r['curves'].get('test_accuracy', float('nan')):.3f}")


def claims(cfg, arms):
    s = arms["forward"]["stats"]
    L = cfg["depth"]
    rows = []

    v64 = s["small_plain_float64"]["std"][-1]
    z32 = s["small_plain_float32"]["zero_fraction"]
    rows.append(Claim.compare(f"small init without BN: activation std at layer {L} vanishes (seed: 1.23e-89)", v64,
                              "<", VANISH, f"float64 {v64:.3g} (theory 0.113^{L} ≈ {0.113 ** L * 0.58:.1g}); float32: "
                              f"all zeros from layer {_first(z32, lambda z: z == 1.0)}", section="small", log=True))

    v64 = s["large_plain_float64"]["std"][-1]
    nf32 = s["large_plain_float32"]["nonfinite_fraction"]
    std32 = s["large_plain_float32"]["std"]
    # NOTE: a non-finite float64 std explodes too: it enters the rule as the largest float
    rows.append(Claim.compare(f"large init without BN: activation std at layer {L} explodes (seed: inf)",
                              v64 if math.isfinite(v64) else np.finfo(np.float64).max, ">", EXPLODE,
                              f"float64 {v64:.3g}; float32: inf from layer {_first(std32, lambda v: v is None or not math.isfinite(v))}, "
                              f"non-finite entries {100 * nf32[-1]:.0f} % at layer {L} (std {_fmt(std32[-1])})",
                              section="large", log=True, threshold=f"> {EXPLODE:g} or not finite"))

    he = s["he_plain_float64"]["std"]
    ratio = max(he) / min(he)
    rows.append(Claim.compare(f"He init without BN keeps the std within a factor {HE_FACTOR:g} over {L} layers "
                              f"(seed: layer {L} std 0.8234): max/min over layers", ratio, "<=", HE_FACTOR,
                              f"layer 1 {he[0]:.4f}, layer {L} {he[-1]:.4f}, max/min {ratio:.2f}", section="He",
                              log=True))

    worst, where = 0.0, ""
    for init in INITS:
        for dt in ("float64", "float32"):
            dev = np.abs(np.array(s[f"{init}_bn_{dt}"]["std"]) - BN_RELU_STD)
            if not np.all(np.isfinite(dev)):
                worst, where = float("inf"), f"{init} {dt}"
            elif dev.max() > worst:
                worst, where = float(dev.max()), f"{init} {dt}"
    rows.append(Claim.compare("with BN every init keeps the post-ReLU std at √(1/2 − 1/2π) = 0.584 at every layer "
                              "(float32 and float64; by construction)", worst if math.isfinite(worst) else None, "<=",
                              BN_TOL, f"largest deviation {worst:.4f} ({where})", section="BN stats", kind="check",
                              threshold=f"|std − 0.584| ≤ {BN_TOL}"))

    thr = f"< 0.9·ln10 = {TRAIN_LOSS:.3f} (last-window loss, {cfg['steps']} steps; diverged: not trained)"
    losses = {a: trains(arms[a])[1] for a in arms if a != "forward"}
    bn_arms = [f"{i}_bn" for i in INITS]
    worst_bn = None if any(losses[a] is None for a in bn_arms) else max(losses[a] for a in bn_arms)
    explain = "; ".join(f"{a} ({EXPLAIN[a]}): {_state(arms[a])}" for a in EXPLAIN if a in arms)
    rows.append(Claim.compare("with BN all three inits train (seed: BN makes training insensitive to the init): "
                              "the worst last-window loss", worst_bn, "<", TRAIN_LOSS,
                              "; ".join(f"{a}: {_state(arms[a])}" for a in bn_arms)
                              + (f". Why large does not (measured, not judged): {explain}" if explain else ""),
                              section="BN trains", threshold=thr))
    rows.append(Claim.compare("without BN, He trains", losses["he_plain"], "<", TRAIN_LOSS,
                              f"he_plain: {_state(arms['he_plain'])}", section="He trains", threshold=thr))
    bad = [losses[a] for a in ("small_plain", "large_plain")]
    # NOTE: a diverged net did not train: it enters the rule as an infinite loss (the largest float)
    better = min(np.finfo(np.float64).max if v is None else v for v in bad)
    rows.append(Claim.compare("without BN, small and large do not train: the better last-window loss of the two",
                              better, ">=", TRAIN_LOSS,
                              "; ".join(f"{a}: {_state(arms[a])}" for a in ("small_plain", "large_plain")),
                              section="plain fails", threshold=f"≥ {TRAIN_LOSS:.3f} (or diverged)"))
    return rows


# ------------------------------------------------------------------ figures

COLORS = {"small": "tab:blue", "large": "tab:red", "he": "tab:green"}


def figures(cfg, arms, out):
    s = arms["forward"]["stats"]
    layers = np.arange(1, cfg["depth"] + 1)

    fig = new_figure((11, 4.2))
    for ax, norm, title in zip(fig.subplots(1, 2), ("plain", "bn"), ("without BN", "with BN")):
        for init in INITS:
            for dt, ls in (("float64", "-"), ("float32", "--")):
                std = np.array(s[f"{init}_{norm}_{dt}"]["std"])
                std = np.where(np.isfinite(std) & (std > 0), std, np.nan)   # log axis: 0/inf/nan not drawn
                ax.plot(layers, std, ls=ls, color=COLORS[init], label=f"{LABELS[init]}, {dt}")
            st = np.array(s[f"{init}_{norm}_float32"]["std"])
            for bad, edge in ((st == 0, 0.02), (~np.isfinite(st), 0.98)):   # 0 at the bottom, inf/nan at the top
                if bad.any():
                    ax.plot(layers[bad], np.full(bad.sum(), edge), "x", color=COLORS[init], ms=3,
                            transform=ax.get_xaxis_transform())
        if norm == "plain":
            ax.set_yscale("log")
        else:                                          # NOTE: linear axis, the curves would be flat on a log one
            ax.axhline(BN_RELU_STD, color="k", lw=0.6, ls=":")
            ax.set_ylim(BN_RELU_STD - 2 * BN_TOL, BN_RELU_STD + 2 * BN_TOL)
        ax.set_xlabel("layer")
        ax.set_title(f"{title} (log; x: float32 std is 0 (bottom) or inf/nan (top))" if norm == "plain"
                     else f"{title} (linear; dotted: √(1/2 − 1/2π) = {BN_RELU_STD:.3f})", fontsize=9)
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel("std of the activations")
    fig.axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{cfg['depth']}-layer ReLU MLP, width {cfg['width']}, x ~ N(0,1) batch {cfg['stats_batch']}: "
                 "forward statistics at init")
    save_figure(fig, out, "std_per_layer.png", 110)

    fig = new_figure((7, 4.2))
    ax = fig.subplots()
    for init in INITS:
        for norm, ls in (("plain", "--"), ("bn", "-")):
            r = arms[f"{init}_{norm}"]
            tl = r["train_loss"]
            label = f"{init}, {'BN' if norm == 'bn' else 'no BN'}"
            if r["diverged_at"] is not None:
                label += f" (diverged at step {r['diverged_at']})"
            ax.plot(tl["step"], tl["loss"], ls=ls, color=COLORS[init], label=label, marker=".")
    ax.axhline(math.log(10), color="gray", lw=0.8, label="chance (ln 10)")
    ax.axhline(TRAIN_LOSS, color="k", lw=0.6, ls=":", label="'trains' threshold")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"training loss (mean over {cfg['log_every']} steps)")
    finite = [v for i in INITS for n in ("plain", "bn") for v in arms[f"{i}_{n}"]["train_loss"]["loss"]
              if math.isfinite(v)]
    ax.set_yscale("log")                             # large init with BN starts near 17, the rest near ln 10
    ax.set_ylim(0.3, max([5.0] + finite) * 1.2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, handlelength=3)
    ax.set_title(f"MNIST, SGD lr {cfg['lr']} momentum {cfg['momentum']}, batch {cfg['batch_size']}")
    save_figure(fig, out, "training_loss.png", 110)
    return ["std_per_layer.png", "training_loss.png"]


EXPERIMENT = Experiment(
    name="init",
    title="Initialization of a 50-layer ReLU MLP: small, large and He, with and without BatchNorm",
    paper="Seed 001 (internal covariate shift page): the 50-layer initialization demonstration; "
          "He et al. 2015 (arXiv:1502.01852) for He init",
    protocol="§7",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="Forward statistics per layer at init (the seed's numpy program, float64 and float32) for std 0.01, "
            "1.0 and He weights with and without BN; then each of the six nets is trained on MNIST.",
)
