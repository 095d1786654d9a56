"""Santurkar et al. 2018, Fig. 3(b): internal covariate shift in a deep linear network.

    tinygrad-norm run santurkar_ics            # the paper's scale: 10K full-batch steps (docs/protocols.md §2)
    tinygrad-norm run santurkar_ics --quick    # 1K steps: the direction of every effect

Does BatchNorm reduce internal covariate shift? Santurkar et al. measure it
directly (Def. 2.1, `tn.lab.ics`): how much the gradient of layer i changes when
the layers before it take their step. The protocol (docs/protocols.md §2):

    data       x ~ N(0, I₁₀), 1000 samples = one full batch; target y = A x with
               A a 10×10 matrix of i.i.d. N(0, 1) entries.
    nets       25 linear layers 10×10 (no bias, no nonlinearity), Glorot-uniform
               init, float64. With BN: BatchNorm1d (trainable γ, β) after every
               layer but the last.
    training   full-batch gradient descent on the *sum* of squared errors,
               lr 1e-7 and 1e-6, 10,000 steps.
    measured   every 250 steps, before the update, at layers #9 and #17: ‖G − G'‖
               and cos(G, G'); and the training loss.

The claims (docs/protocols.md §2): BN does *not* reduce this ICS. At lr 1e-7 the
standard net's cos stays > 0.99 while BN's median cos is < 0.5, and BN's
‖G − G'‖ is ≥ 100× larger; at lr 1e-6 BN's layer-17 cos is below the standard
net's; and still the BN net ends with a ≥ 1.5× lower loss at both lrs.
"""
import numpy as np

from ... import nn
from ...nn import functional as F
from ...optim import SGD
from ...random import manual_seed
from ...tensor import Tensor, no_grad
from ..ics import ics
from ..probe import preserved
from ..plotting import new_figure, save_figure
from ..experiment import Claim, Experiment

COMMON = dict(depth=25, width=10, samples=1000, lrs=[1e-7, 1e-6], layers=[9, 17], checkpoint_every=1000)
MODES = {
    # the paper's scale (it is tiny): 10K full-batch steps, ICS every 250
    "default": dict(COMMON, steps=10000, probe_every=250),
    "full": dict(COMMON, steps=10000, probe_every=250),
    # a fraction of the steps; the ICS gap is there from the start
    "quick": dict(COMMON, steps=1000, probe_every=50),
}


def deep_linear_net(cfg, bn):
    """25 × Linear(10, 10, bias=False), Glorot-uniform; with BN, BatchNorm1d after all but the last."""
    layers = []
    for i in range(cfg["depth"]):
        linear = nn.Linear(cfg["width"], cfg["width"], bias=False)
        nn.init.xavier_uniform_(linear.weight)
        layers.append(linear)
        if bn and i < cfg["depth"] - 1:
            layers.append(nn.BatchNorm1d(cfg["width"]))
    return nn.Sequential(*layers).double()


def sum_of_squares(out, y):
    return F.mse_loss(out, y, reduction="sum")


def arm_name(bn, lr):
    return f"{'bn' if bn else 'plain'}_lr{lr:g}"


# ------------------------------------------------------------------ training

def full_batch(cfg):
    """The one full batch (x, Ax): x ~ N(0, I) of (samples, width), A (width × width) i.i.d. N(0, 1),
    both from numpy's generator seeded with cfg["seed"] (float64)."""
    rng = np.random.default_rng(cfg["seed"])
    A = rng.standard_normal((cfg["width"], cfg["width"]))
    x = rng.standard_normal((cfg["samples"], cfg["width"]))
    return Tensor(x), Tensor(x @ A.T)


def train(lab, cfg):
    batch = full_batch(cfg)
    arms = {}
    for lr in cfg["lrs"]:
        for bn in (False, True):
            arms[arm_name(bn, lr)] = train_network(lab, cfg, bn, lr, batch)
    return arms


def train_network(lab, cfg, bn, lr, batch):
    """Full-batch GD of one net at one lr, measuring ICS at the watched layers every `probe_every` steps."""
    manual_seed(cfg["seed"])                                      # the same init stream for every net
    model = deep_linear_net(cfg, bn)
    optimizer = SGD(model.parameters(), lr=lr)
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    watched = {k: linears[k - 1] for k in cfg["layers"]}          # the paper counts layers from 1
    curves = {"step": [], "loss": []}
    for k in watched:
        curves[f"l2_{k}"], curves[f"cos_{k}"] = [], []

    def evaluate(step, _):
        shift = ics(model, sum_of_squares, batch, lr, layers=list(watched.values()))
        curves["step"].append(step)
        curves["loss"].append(full_batch_loss(model, batch))
        for k, name in watched.items():
            curves[f"l2_{k}"].append(shift[name]["l2"])
            curves[f"cos_{k}"].append(shift[name]["cos"])

    return lab.train(arm_name(bn, lr), model, optimizer, lambda step: batch, steps=cfg["steps"],
                     loss_fn=lambda x, y: sum_of_squares(model(x), y), evaluate=evaluate,
                     eval_steps=range(0, cfg["steps"] + 1, cfg["probe_every"]), curves=curves,
                     checkpoint_every=cfg["checkpoint_every"], log_every=cfg["probe_every"])


def full_batch_loss(model, batch):
    """The training loss at the current point (training mode; running statistics untouched)."""
    with preserved(model), no_grad():
        return float(sum_of_squares(model(batch[0]), batch[1]).item())


# ------------------------------------------------------------------ claims (docs/protocols.md §2)

def _median(values):
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    return float(np.nanmedian(v)) if np.any(np.isfinite(v)) else float("nan")


def claims(cfg, arms):
    diverged = [f"{a} diverged at step {r['diverged_at']}" for a, r in arms.items() if r["diverged_at"] is not None]
    if diverged:
        return [Claim("every claim of docs/protocols.md §2", "; ".join(diverged), "training completes", False,
                      section="§2.5.2")]
    lo, hi = min(cfg["lrs"]), max(cfg["lrs"])
    last = cfg["layers"][-1]

    def med(bn, lr, what, k):
        return _median(arms[arm_name(bn, lr)]["curves"][f"{what}_{k}"])

    rows = []
    plain_cos = [med(False, lo, "cos", k) for k in cfg["layers"]]
    bn_cos = [med(True, lo, "cos", k) for k in cfg["layers"]]
    rows.append(Claim(f"lr {lo:g}: the standard net's median cos(G, G') > 0.99 at layers "
                      + " and ".join(f"#{k}" for k in cfg["layers"]),
                      ", ".join(f"#{k}: {c:.4f}" for k, c in zip(cfg["layers"], plain_cos)), "> 0.99 at each",
                      all(c > 0.99 for c in plain_cos), min(plain_cos), section="2 (plain cos)"))
    rows.append(Claim(f"lr {lo:g}: BN's median cos(G, G') < 0.5 at the same layers (more ICS with BN)",
                      ", ".join(f"#{k}: {c:.3f}" for k, c in zip(cfg["layers"], bn_cos)), "< 0.5 at each",
                      all(c < 0.5 for c in bn_cos), max(bn_cos), section="2 (BN cos)"))
    ratios = [med(True, lo, "l2", k) / med(False, lo, "l2", k) for k in cfg["layers"]]
    rows.append(Claim(f"lr {lo:g}: BN's median ‖G − G'‖ ≥ 100× the standard net's",
                      ", ".join(f"#{k}: {med(True, lo, 'l2', k):.3g} vs {med(False, lo, 'l2', k):.3g} ({r:.0f}×)"
                                for k, r in zip(cfg["layers"], ratios)),
                      "≥ 100× at each", all(r >= 100 for r in ratios), min(ratios), section="2 (‖G − G'‖)"))
    cb, cp = med(True, hi, "cos", last), med(False, hi, "cos", last)
    rows.append(Claim(f"lr {hi:g}: BN's median cos(G, G') at layer #{last} is below the standard net's",
                      f"BN {cb:.3f}, standard {cp:.3f}", "BN < standard", cb < cp, cb - cp,
                      section=f"2 (lr {hi:g})"))
    for lr in (hi, lo):
        lp, lb = arms[arm_name(False, lr)]["curves"]["loss"][-1], arms[arm_name(True, lr)]["curves"]["loss"][-1]
        rows.append(Claim(f"lr {lr:g}: BN still ends with a ≥ 1.5× lower loss (step {cfg['steps']})",
                          f"standard {lp:.4g}, BN {lb:.4g}: {lp / lb:.2f}×", "ratio ≥ 1.5", lp / lb >= 1.5, lp / lb,
                          section=f"2 (loss, lr {lr:g})"))
    return rows


# ------------------------------------------------------------------ figures

def figures(cfg, arms, out):
    colors = {False: "tab:red", True: "tab:blue"}
    styles = dict(zip(cfg["layers"], ["-", "--", ":"]))
    fig = new_figure((13, 7))
    axes = fig.subplots(len(cfg["lrs"]), 3, squeeze=False)
    for row, lr in zip(axes, sorted(cfg["lrs"])):
        for bn in (False, True):
            c = arms[arm_name(bn, lr)]["curves"]
            label = "BN" if bn else "standard"
            row[0].semilogy(c["step"], c["loss"], color=colors[bn], label=label)
            for k in cfg["layers"]:
                row[1].plot(c["step"], c[f"cos_{k}"], color=colors[bn], ls=styles[k], label=f"{label}, layer #{k}")
                row[2].semilogy(c["step"], c[f"l2_{k}"], color=colors[bn], ls=styles[k], label=f"{label}, layer #{k}")
        row[0].set_title(f"training loss (sum of squares), lr {lr:g}")
        row[1].set_title(f"cos(G, G'), lr {lr:g}")
        row[1].set_ylim(-1.05, 1.05)
        row[2].set_title(f"‖G − G'‖, lr {lr:g}")
        for ax in row:
            ax.grid(alpha=0.3)
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
    fig.suptitle("Santurkar et al. Fig. 3(b): internal covariate shift of a 25-layer deep linear network")
    save_figure(fig, out, "ics.png", 100)
    return ["ics.png"]


EXPERIMENT = Experiment(
    name="santurkar_ics",
    title="Santurkar et al. 2018, Fig. 3(b): BatchNorm does not reduce internal covariate shift (deep linear net)",
    paper="S. Santurkar, D. Tsipras, A. Ilyas, A. Madry, How Does Batch Normalization Help Optimization?, "
          "NeurIPS 2018 (arXiv:1805.11604), §2.2, Def. 2.1 and Fig. 3",
    protocol="§2",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="25-layer 10×10 deep linear network, 1000 Gaussian samples fitting y = Ax, full-batch GD on the sum "
            "of squared errors at lr 1e-7 and 1e-6, with and without BatchNorm: ICS (‖G − G'‖, cos(G, G')) at "
            "layers #9 and #17 every 250 steps, and the loss.",
)
