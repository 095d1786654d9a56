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
    measured   every 250 steps, before the update, at layers #9 and #17: ‖G‖,
               ‖G − G'‖, the relative change ‖G − G'‖/‖G‖ and cos(G, G'); and the
               training loss.
    seeds      A and x come from `sub_seed(cfg, "data")` (or the setting data_seed),
               the weights from the run's seed: a sweep tells the two draws apart.

The claims (docs/protocols.md §2): BN does *not* reduce this ICS. At lr 1e-7 the
standard net's median cos before the loss plateau stays > 0.99 while BN's is
< 0.5, BN's median ‖G − G'‖ is ≥ 100× the standard net's and its relative change
≥ 10×; at lr 1e-6 BN's layer-17 cos before the plateau is below the standard
net's by ≥ 0.2; and still the BN net ends with a ≥ 1.5× lower loss at both lrs.
"Before the plateau": the probes until the loss has made 99 % of its descent.
On the plateau G → 0 and cos → 1 for both nets, so a median over all of
training mostly measures the time spent there.
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
from ..experiment import Claim, Experiment, sub_seed

COMMON = dict(depth=25, width=10, samples=1000, lrs=[1e-7, 1e-6], layers=[9, 17], checkpoint_every=1000,
              data_seed=None)                                # None: A and x from sub_seed(cfg, "data")
MODES = {
    # the paper's scale (it is tiny): 10K full-batch steps, ICS every 250
    "default": dict(COMMON, steps=10000, probe_every=250),
    "full": dict(COMMON, steps=10000, probe_every=250),
    # a fraction of the steps; the ICS gap is there from the start
    "quick": dict(COMMON, steps=1000, probe_every=50),
}


# thresholds (docs/protocols.md §2): BN/standard ratios of ‖G − G'‖ and of ‖G − G'‖/‖G‖; the margin of
# "below" in cos; the fraction of the loss's descent after which a net is "on its plateau"
L2_RATIO, REL_RATIO, COS_MARGIN, PLATEAU = 100.0, 10.0, 0.2, 0.99


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
    both from numpy's generator seeded with `sub_seed(cfg, "data")` (float64): the data has a seed of
    its own, apart from the weights' (the run's seed)."""
    rng = np.random.default_rng(sub_seed(cfg, "data"))
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
    manual_seed(sub_seed(cfg, "init"))                            # the same init stream for every net
    model = deep_linear_net(cfg, bn)
    optimizer = SGD(model.parameters(), lr=lr)
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    watched = {k: linears[k - 1] for k in cfg["layers"]}          # the paper counts layers from 1
    curves = {"step": [], "loss": []}
    for k in watched:
        curves[f"l2_{k}"], curves[f"cos_{k}"], curves[f"norm_{k}"] = [], [], []

    def evaluate(step, _):
        shift = ics(model, sum_of_squares, batch, lr, layers=list(watched.values()))
        curves["step"].append(step)
        curves["loss"].append(full_batch_loss(model, batch))
        for k, name in watched.items():
            curves[f"l2_{k}"].append(shift[name]["l2"])
            curves[f"cos_{k}"].append(shift[name]["cos"])
            curves[f"norm_{k}"].append(shift[name]["norm"])

    return lab.train(arm_name(bn, lr), model, optimizer, lambda step: batch, steps=cfg["steps"],
                     loss_fn=lambda x, y: sum_of_squares(model(x), y), evaluate=evaluate,
                     eval_steps=range(0, cfg["steps"] + 1, cfg["probe_every"]), curves=curves,
                     checkpoint_every=cfg["checkpoint_every"], log_every=cfg["probe_every"])


def full_batch_loss(model, batch):
    """The training loss at the current point (training mode; running statistics untouched)."""
    with preserved(model), no_grad():
        return float(sum_of_squares(model(batch[0]), batch[1]).item())


# ------------------------------------------------------------------ claims (docs/protocols.md §2)

def _array(values):
    return np.array([np.nan if x is None else x for x in values], dtype=np.float64)


def _median(values):
    v = _array(values)
    return float(np.nanmedian(v)) if np.any(np.isfinite(v)) else float("nan")


def before_plateau(curves, fraction=PLATEAU):
    """A mask over the probes: those whose loss is still above min + (1 − fraction)·(loss₀ − min), i.e. the
    probes before the loss has made `fraction` of its descent (all of them if it did not descend).

    NOTE: on the plateau the gradients vanish (G → 0) and cos(G, G') → 1 for either net, so a median
    over all of training mostly measures the time spent there (docs/protocols.md §2)."""
    loss = _array(curves["loss"])
    low, start = np.nanmin(loss), loss[0]
    if not start > low:
        return np.ones(len(loss), bool)
    return loss > low + (1 - fraction) * (start - low)


def _pre(curves, key):
    """The median of curves[key] over the probes before the plateau, and the last such step."""
    mask = before_plateau(curves)
    v = _array(curves[key])[mask]
    last = int(np.array(curves["step"])[mask][-1])
    return (float(np.nanmedian(v)) if np.any(np.isfinite(v)) else float("nan")), last


def relative_change(curves, k):
    """‖G − G'‖ / ‖G‖ at layer k, per probe (NaN where ‖G‖ = 0)."""
    l2, norm = _array(curves[f"l2_{k}"]), _array(curves[f"norm_{k}"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, l2 / norm, np.nan).tolist()


def claims(cfg, arms):
    diverged = [f"{a} diverged at step {r['diverged_at']}" for a, r in arms.items() if r["diverged_at"] is not None]
    if diverged:
        return [Claim.compare("every claim of docs/protocols.md §2", None, ">=", 0, "; ".join(diverged),
                              section="§2")]
    lo, hi = min(cfg["lrs"]), max(cfg["lrs"])
    last = cfg["layers"][-1]
    layers = cfg["layers"]

    def curves(bn, lr):
        c = dict(arms[arm_name(bn, lr)]["curves"])
        for k in layers:
            c[f"rel_{k}"] = relative_change(c, k)
        return c

    def pre(bn, lr, what, k):
        return _pre(curves(bn, lr), f"{what}_{k}")

    rows = []
    plain = {k: pre(False, lo, "cos", k) for k in layers}
    rows.append(Claim.compare(f"lr {lo:g}: the standard net's median cos(G, G') before the loss plateau > 0.99 at "
                              + " and ".join(f"#{k}" for k in layers) + " (the lower one)",
                              min(c for c, _ in plain.values()), ">", 0.99,
                              ", ".join(f"#{k}: {c:.4f}" for k, (c, _) in plain.items())
                              + f" (probes to step {plain[layers[0]][1]})", section="1"))
    bnc = {k: pre(True, lo, "cos", k) for k in layers}
    rows.append(Claim.compare(f"lr {lo:g}: BN's median cos(G, G') before the plateau < 0.5 at the same layers (the "
                              "higher one): more ICS with BN", max(c for c, _ in bnc.values()), "<", 0.5,
                              ", ".join(f"#{k}: {c:.3f}" for k, (c, _) in bnc.items())
                              + f" (probes to step {bnc[layers[0]][1]})", section="2"))
    for what, bound, section, name in (("l2", L2_RATIO, "3", "‖G − G'‖"),
                                       ("rel", REL_RATIO, "4", "relative change ‖G − G'‖/‖G‖")):
        meds = {k: (_median(curves(True, lo)[f"{what}_{k}"]), _median(curves(False, lo)[f"{what}_{k}"]))
                for k in layers}
        ratios = {k: b / p if p > 0 else float("nan") for k, (b, p) in meds.items()}
        finite = [r for r in ratios.values() if np.isfinite(r)]
        rows.append(Claim.compare(f"lr {lo:g}: BN's median {name} / the standard net's (the lower of the layers)",
                                  min(finite) if len(finite) == len(ratios) else None, ">=", bound,
                                  ", ".join(f"#{k}: {b:.3g} vs {p:.3g} ({ratios[k]:.3g}×)" for k, (b, p) in meds.items()),
                                  section=section, log=True))
    (cb, sb), (cp, sp) = pre(True, hi, "cos", last), pre(False, hi, "cos", last)
    rows.append(Claim.compare(f"lr {hi:g}: BN's median cos(G, G') at layer #{last} before the plateau is below the "
                              "standard net's: BN − standard", cb - cp, "<=", -COS_MARGIN,
                              f"BN {cb:.3f} (to step {sb}), standard {cp:.3f} (to step {sp}); over all probes "
                              f"{_median(curves(True, hi)[f'cos_{last}']):.3f} vs "
                              f"{_median(curves(False, hi)[f'cos_{last}']):.3f}", section="5"))
    for lr, section in ((hi, "6"), (lo, "7")):
        lp, lb = arms[arm_name(False, lr)]["curves"]["loss"][-1], arms[arm_name(True, lr)]["curves"]["loss"][-1]
        rows.append(Claim.compare(f"lr {lr:g}: BN still ends with a lower loss (step {cfg['steps']}): standard / BN",
                                  lp / lb if lb > 0 else None, ">=", 1.5, f"standard {lp:.4g}, BN {lb:.4g}: "
                                  f"{lp / lb:.2f}×", section=section, log=True))
    return rows


# ------------------------------------------------------------------ figures

def figures(cfg, arms, out):
    colors = {False: "tab:red", True: "tab:blue"}
    styles = dict(zip(cfg["layers"], ["-", "--", ":"]))
    fig = new_figure((17, 7))
    axes = fig.subplots(len(cfg["lrs"]), 4, squeeze=False)
    for row, lr in zip(axes, sorted(cfg["lrs"])):
        for bn in (False, True):
            c = arms[arm_name(bn, lr)]["curves"]
            label = "BN" if bn else "standard"
            row[0].semilogy(c["step"], c["loss"], color=colors[bn], label=label)
            for k in cfg["layers"]:
                row[1].plot(c["step"], c[f"cos_{k}"], color=colors[bn], ls=styles[k], label=f"{label}, layer #{k}")
                row[2].semilogy(c["step"], c[f"l2_{k}"], color=colors[bn], ls=styles[k], label=f"{label}, layer #{k}")
                if f"norm_{k}" in c:
                    row[3].semilogy(c["step"], relative_change(c, k), color=colors[bn], ls=styles[k],
                                    label=f"{label}, layer #{k}")
            if any(f"norm_{k}" in c for k in cfg["layers"]):
                mask = before_plateau(c)
                end = np.array(c["step"])[mask][-1]
                for ax in row:
                    ax.axvline(end, color=colors[bn], lw=0.6, ls=":")
        row[0].set_title(f"training loss (sum of squares), lr {lr:g}")
        row[1].set_title(f"cos(G, G'), lr {lr:g}")
        row[1].set_ylim(-1.05, 1.05)
        row[2].set_title(f"‖G − G'‖, lr {lr:g}")
        row[3].set_title(f"‖G − G'‖ / ‖G‖, lr {lr:g} (dotted: plateau reached)", fontsize=9)
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
