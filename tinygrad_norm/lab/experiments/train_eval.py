"""BatchNorm's train/inference discrepancy and AdaBN under a domain shift (docs/protocols.md §11).

    tinygrad-norm run train-eval            # 5 nets × 600 steps, then the evaluations
    tinygrad-norm run train-eval --quick    # 5 nets × 200 steps
    tinygrad-norm run train-eval --full     # 5 nets × 2000 steps

One BN net can be evaluated three ways, and the three disagree when the
statistics BN saw in training are not the ones it is tested with:

    running      eval mode: the running averages (PyTorch's momentum m: each batch weighs m);
    population   Ioffe & Szegedy Alg. 2: the running statistics recomputed over the training
                 images in one pass (E[μ_B], E[s²_B], batches of the training size N);
    test batch   training mode on the test images, batches of B: each batch's own statistics.

The protocol:

    data       MNIST, x = pixels / 255; `n_train` images drawn by the "data" seed; the 10,000
               test images, clean and shifted three ways:
                 contrast  x' = 0.3·x + 0.35 (grey, low contrast: an affine map of the pixels);
                 inverted  x' = 1 − x;
                 noise     x' = x + N(0, 0.3²) per pixel (the "data" seed).
    nets       784-256-256-256-10, Linear (no bias) → BatchNorm1d → ReLU (the MLP of §9).
    training   SGD momentum 0.9, weight decay 1e-4, constant lr 0.1·N/32, `steps` steps;
               nets (N, m) = (8, 0.1), (32, 0.1), (128, 0.1), (32, 0.01), (32, 0.5), the same
               initial weights. The (32, 0.1) net gets one *kick*: at `kick_at`·steps one step at
               `kick`× the lr (a large learning-rate step), then the normal lr again.
    measured   at ¼, ½, ¾ and the end of each run: the test error with running, population
               and test-batch (B = 500 and B = N) statistics. Around the kick: running and
               population errors at 0, 1, 2, 5, 10, 20, 40 steps after it.
               At the end of the (32, 0.1) net: the shifted test sets with running statistics,
               with AdaBN (Li et al. 2016: population statistics recomputed on the shifted
               training images, labels unused) and with test-batch statistics (B = 500).

The claims (thresholds fixed on seeds 100-102 before the judging seeds 0-4 ran; §11):

    11.1  right after the kick, running and population statistics disagree: |running − population|
          ≥ 0.5 points (calibrated 0.65-3.3; 0.1-0.4 without a kick).
    11.2  40 steps later (4/m) the lag is gone: |running − population| ≤ 0.75 points.
    11.3  a long average lags more: at step steps/2, running − population is ≥ 0.5 points larger
          at m = 0.01 than at m = 0.1 (calibrated 1.2-1.8).
    11.4  at N = 32, test-batch statistics of 500 images match the population's: |Δ| ≤ 0.5 points.
    11.5  at N = 8, test batches of 8 (their own statistics) cost ≥ 3 points against the population
          statistics (calibrated 6.3-7.0).
    11.6  inverted images: running statistics give ≥ 50 % error, and so does AdaBN: re-estimated
          statistics cannot undo the sign flip of every first-layer unit.
    11.7  additive noise: AdaBN is better than the running statistics (gain ≥ 0 points; AdaBN's
          claim, which the calibration contradicted: −0.3 to −0.8; kept as the paper states it).
    11.8  low contrast: the running statistics lose ≥ 20 points against the clean error.
    check low contrast: AdaBN gives the clean error of Alg. 2's statistics within 0.2 points (an
          affine pixel map is an affine map of each first-layer unit, which re-estimated
          statistics undo: true by construction).
"""
import numpy as np

from ...optim import SGD
from ..experiment import Claim, Experiment, sub_seed
from ..plotting import new_figure, save_figure
from ._family import (Batches, batch_stats_error, eval_error, family_mlp, lr_hook, mnist_subset, pct,
                      population_statistics, train_arm)

# ------------------------------------------------------------------ settings

NETS = [(8, 0.1), (32, 0.1), (128, 0.1), (32, 0.01), (32, 0.5)]
AFTER_KICK = [0, 1, 2, 5, 10, 20, 40]
COMMON = dict(nets=[list(n) for n in NETS], hidden=[256, 256, 256], base_lr=0.1, sgd_momentum=0.9,
              weight_decay=1e-4, kick=10.0, kick_at=0.5, after_kick=AFTER_KICK, test_batch=500,
              contrast=[0.3, 0.35], noise=0.3, n_train=6000, checkpoint_every=2000, log_every=50)
MODES = {
    "default": dict(COMMON, steps=600),
    "full": dict(COMMON, steps=2000, n_train=60000),
    "quick": dict(COMMON, steps=150, n_train=2000),
}
KICKED = (32, 0.1)
# docs/protocols.md §11 thresholds (points of test error)
LAG, LAG_GONE, LONG_LAG, MATCH, SMALL_TEST, INVERTED_RUNNING, NOISE_GAIN, CONTRAST_LOSS, CONTRAST_EXACT = \
    0.5, 0.75, 0.5, 0.5, 3.0, 0.5, 0.0, 20.0, 0.2


def arm_name(n, m):
    return f"bn_N{n}_m{m:g}"


def shifted(x, kind, cfg):
    """The shifted copy of images x (N, 784): "contrast", "inverted" or "noise"."""
    if kind == "contrast":
        a, b = cfg["contrast"]
        return (a * x + b).astype(np.float32)
    if kind == "inverted":
        return (1.0 - x).astype(np.float32)
    if kind == "noise":
        rng = np.random.default_rng([sub_seed(cfg, "data"), len(x)])
        return (x + rng.normal(0.0, cfg["noise"], x.shape)).astype(np.float32)
    raise ValueError(f"unknown shift {kind!r}")


SHIFTS = ("contrast", "inverted", "noise")


# ------------------------------------------------------------------ training

def train(lab, cfg):
    data = mnist_subset(cfg)
    x, y = data["train"]
    x_test, y_test = data["test"]
    steps = cfg["steps"]
    arms = {}
    for n, m in cfg["nets"]:
        model = family_mlp("bn", cfg["hidden"], seed=sub_seed(cfg, "init"))
        for layer in model.modules():
            if hasattr(layer, "running_var"):
                layer.momentum = m
        lr = cfg["base_lr"] * n / 32
        optimizer = SGD(model.parameters(), lr=lr, momentum=cfg["sgd_momentum"], weight_decay=cfg["weight_decay"])
        kicked = (n, m) == KICKED
        kick_step = int(cfg["kick_at"] * steps)
        schedule = (lambda s, lr=lr: lr * cfg["kick"] if s == kick_step else lr) if kicked else (lambda s, lr=lr: lr)
        batches = Batches(x, y, n, sub_seed(cfg, "order"), hooks=[lr_hook(optimizer, schedule)])
        quarters = [steps // 4, steps // 2, 3 * steps // 4, steps]
        around = [kick_step + 1 + k for k in cfg["after_kick"]] if kicked else []
        eval_steps = sorted(set(quarters) | set(around))

        def extra(model, step, batch, n=n, quarters=quarters, kicked=kicked):
            rows = {}
            with population_statistics(model, x, n, seed=sub_seed(cfg, "order")):
                rows["population_error"] = eval_error(model, x_test, y_test)
            if step in quarters:
                rows["quarter_step"] = step
                rows["batch500_error"] = batch_stats_error(model, x_test, y_test, cfg["test_batch"])
                rows["batchN_error"] = batch_stats_error(model, x_test, y_test, n)
            if kicked and step == steps:
                rows["shift"] = domain_shift(cfg, model, x, x_test, y_test, n)
            return rows

        arms[arm_name(n, m)] = train_arm(lab, cfg, arm_name(n, m), model, optimizer, batches, steps, data,
                                         eval_steps=eval_steps, extra=extra)
    return arms


def domain_shift(cfg, model, x, x_test, y_test, n):
    """{shift: {"running", "adabn", "test_batch"}} errors on the shifted test images, and {"clean": ...}."""
    out = {"clean": {"running": eval_error(model, x_test, y_test)}}
    with population_statistics(model, x, n, seed=sub_seed(cfg, "order")):
        out["clean"]["adabn"] = eval_error(model, x_test, y_test)   # Alg. 2 on the clean images
    for kind in SHIFTS:
        xs_test, xs_train = shifted(x_test, kind, cfg), shifted(x, kind, cfg)
        row = {"running": eval_error(model, xs_test, y_test),
               "test_batch": batch_stats_error(model, xs_test, y_test, cfg["test_batch"])}
        with population_statistics(model, xs_train, n, seed=sub_seed(cfg, "order")):
            row["adabn"] = eval_error(model, xs_test, y_test)
        out[kind] = row
    return out


# ------------------------------------------------------------------ claims

def _at(curves, key, step):
    """curves[key] at evaluation `step` (the keys recorded at every evaluation), or None."""
    if step not in curves.get("step", []) or key not in curves:
        return None
    return curves[key][curves["step"].index(step)]


def _quarter(curves, key, step):
    if step not in curves.get("quarter_step", []):
        return None
    return curves[key][curves["quarter_step"].index(step)]


def _pts(a, b):
    return None if a is None or b is None else 100 * (a - b)


def claims(cfg, arms):
    steps = cfg["steps"]
    c = {tuple(net): (arms[arm_name(*net)]["curves"] if arms[arm_name(*net)]["diverged_at"] is None else {})
         for net in cfg["nets"]}
    kc = c.get(KICKED, {})
    kick_step = int(cfg["kick_at"] * steps)
    rows = []
    first, last = kick_step + 1 + cfg["after_kick"][0], kick_step + 1 + cfg["after_kick"][-1]
    lag = _pts(_at(kc, "test_error", first), _at(kc, "population_error", first))
    rows.append(Claim.compare(f"right after a {cfg['kick']:g}× learning-rate step, the running averages lag: "
                              f"|running − population| ≥ {LAG:g} points", None if lag is None else abs(lag), ">=", LAG,
                              section="11.1",
                              measured=f"running {pct(_at(kc, 'test_error', first))}, population "
                              f"{pct(_at(kc, 'population_error', first))}"))
    gone = _pts(_at(kc, "test_error", last), _at(kc, "population_error", last))
    rows.append(Claim.compare(f"{cfg['after_kick'][-1]} steps later the lag is gone: |running − population| ≤ "
                              f"{LAG_GONE:g} points", None if gone is None else abs(gone), "<=", LAG_GONE,
                              section="11.2", measured=f"running {pct(_at(kc, 'test_error', last))}, population "
                              f"{pct(_at(kc, 'population_error', last))}"))

    half = steps // 2

    def half_gap(net):
        return _pts(_at(c.get(net, {}), "test_error", half), _at(c.get(net, {}), "population_error", half))
    g_long, g_short = half_gap((32, 0.01)), half_gap((32, 0.1))
    diff = None if g_long is None or g_short is None else g_long - g_short
    rows.append(Claim.compare(f"a long running average lags more: at step {half}, running − population is ≥ "
                              f"{LONG_LAG:g} points larger at m = 0.01 than at m = 0.1", diff, ">=", LONG_LAG,
                              section="11.3",
                              measured=f"m = 0.01: {_fmt(g_long)}, m = 0.1: {_fmt(g_short)} points"))
    c32 = c.get((32, 0.1), {})
    match = _pts(_quarter(c32, "batch500_error", steps), _at(c32, "population_error", steps))
    rows.append(Claim.compare(f"at N = 32, test batches of {cfg['test_batch']} match the population statistics: "
                              f"|Δ| ≤ {MATCH:g} points", None if match is None else abs(match), "<=", MATCH,
                              section="11.4", measured=f"test batches {pct(_quarter(c32, 'batch500_error', steps))}, "
                              f"population {pct(_at(c32, 'population_error', steps))}"))
    c8 = c.get((8, 0.1), {})
    small = _pts(_quarter(c8, "batchN_error", steps), _at(c8, "population_error", steps))
    rows.append(Claim.compare(f"at N = 8, test batches of 8 cost ≥ {SMALL_TEST:g} points against the population "
                              "statistics", small, ">=", SMALL_TEST, section="11.5",
                              measured=f"test batches of 8 {pct(_quarter(c8, 'batchN_error', steps))}, population "
                              f"{pct(_at(c8, 'population_error', steps))}"))
    shift = (kc.get("shift") or [None])[-1] or {}
    inv = shift.get("inverted", {})
    rows.append(Claim.compare(f"inverted images: running statistics give ≥ {INVERTED_RUNNING:.0%} error",
                              inv.get("running"), ">=", INVERTED_RUNNING, section="11.6 (running)",
                              measured=pct(inv.get("running"))))
    rows.append(Claim.compare(f"inverted images: AdaBN does not undo an inversion (a sign flip of every first-layer "
                              f"unit): AdaBN error ≥ {INVERTED_RUNNING:.0%}", inv.get("adabn"), ">=", INVERTED_RUNNING,
                              section="11.6 (AdaBN)", measured=f"AdaBN {pct(inv.get('adabn'))}, running "
                              f"{pct(inv.get('running'))}"))
    noise = shift.get("noise", {})
    rows.append(Claim.compare(f"noise σ = {cfg['noise']:g}: AdaBN is better than the running statistics "
                              f"(gain ≥ {NOISE_GAIN:g} points)", _pts(noise.get("running"), noise.get("adabn")), ">=", NOISE_GAIN,
                              section="11.7", measured=f"AdaBN {pct(noise.get('adabn'))}, running "
                              f"{pct(noise.get('running'))}"))
    con, clean = shift.get("contrast", {}), shift.get("clean", {}).get("running")
    clean_population = shift.get("clean", {}).get("adabn")
    rows.append(Claim.compare(f"low contrast: the running statistics lose ≥ {CONTRAST_LOSS:g} points against the "
                              "clean error", _pts(con.get("running"), clean), ">=", CONTRAST_LOSS, section="11.8",
                              measured=f"{pct(con.get('running'))} vs clean {pct(clean)}"))
    exact = _pts(con.get("adabn"), clean_population)
    rows.append(Claim.compare(f"low contrast: AdaBN gives the clean error of Alg. 2's statistics within "
                              f"{CONTRAST_EXACT:g} points (an affine pixel map, undone by re-estimated statistics)",
                              None if exact is None else abs(exact), "<=", CONTRAST_EXACT, section="11.8 (AdaBN)",
                              kind="check", measured=f"AdaBN {pct(con.get('adabn'))} vs clean {pct(clean_population)}"))
    return rows


def _fmt(v):
    return "—" if v is None else f"{v:+.2f}"


# ------------------------------------------------------------------ figures

def figures(cfg, arms, out):
    steps = cfg["steps"]
    kick_step = int(cfg["kick_at"] * steps)
    fig = new_figure((13, 4))
    ax_kick, ax_gap, ax_shift = fig.subplots(1, 3)
    kc = arms[arm_name(*KICKED)]["curves"]
    s = np.array(kc["step"])
    ax_kick.plot(s, 100 * np.array(kc["test_error"]), "o-", label="running averages (eval mode)")
    ax_kick.plot(s, 100 * np.array(kc["population_error"]), "s--", label="population statistics (Alg. 2)")
    ax_kick.axvline(kick_step, color="k", lw=0.8, ls=":")
    ax_kick.set_yscale("log")
    ax_kick.set_xlabel("step")
    ax_kick.set_ylabel("test error (%)")
    ax_kick.set_title(f"N = 32, m = 0.1: one {cfg['kick']:g}× lr step at {kick_step}")
    ax_kick.legend(fontsize=8)
    labels, kinds = [], (("test_error", "running"), ("population_error", "population"),
                         ("batch500_error", f"test batches of {cfg['test_batch']}"), ("batchN_error", "test batches of N"))
    values = {k: [] for k, _ in kinds}
    for n, m in cfg["nets"]:
        c = arms[arm_name(n, m)]["curves"]
        labels.append(f"N={n}\nm={m:g}")
        for k, _ in kinds:
            v = _quarter(c, k, steps) if k.startswith("batch") else _at(c, k, steps)
            values[k].append(np.nan if v is None else 100 * v)
    width = 0.2
    for i, (k, name) in enumerate(kinds):
        ax_gap.bar(np.arange(len(labels)) + (i - 1.5) * width, values[k], width, label=name)
    ax_gap.set_xticks(range(len(labels)))
    ax_gap.set_xticklabels(labels, fontsize=8)
    ax_gap.set_ylabel("test error at the end (%)")
    ax_gap.set_title("three ways to evaluate one BN net")
    ax_gap.legend(fontsize=7)
    shift = (kc.get("shift") or [{}])[-1]
    if shift:
        names = ["clean"] + list(SHIFTS)
        for i, (k, name) in enumerate((("running", "running"), ("adabn", "AdaBN"), ("test_batch", "test batches"))):
            ax_shift.bar(np.arange(len(names)) + (i - 1) * 0.27,
                         [100 * shift[nm].get(k, shift[nm]["running"] if nm == "clean" else np.nan) for nm in names],
                         0.27, label=name)
        ax_shift.set_xticks(range(len(names)))
        ax_shift.set_xticklabels(names)
        ax_shift.set_yscale("log")
        ax_shift.set_ylabel("test error (%)")
        ax_shift.set_title("domain shift (N = 32 net)")
        ax_shift.legend(fontsize=8)
    for ax in (ax_kick, ax_gap, ax_shift):
        ax.grid(alpha=0.3)
    fig.suptitle("BatchNorm: running averages, population statistics, test-batch statistics, AdaBN")
    save_figure(fig, out, "train_eval.png", 110)
    return ["train_eval.png"]


EXPERIMENT = Experiment(
    name="train_eval",
    title="BatchNorm's train/inference discrepancy: running averages, population statistics, test batches, AdaBN",
    paper="S. Ioffe, C. Szegedy, Batch Normalization (arXiv:1502.03167), Alg. 2; Y. Li et al., Revisiting Batch "
          "Normalization For Practical Domain Adaptation (AdaBN, arXiv:1603.04779)",
    protocol="§11",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="BN MLPs trained at batch 8/32/128 and momentum 0.01/0.1/0.5, evaluated with running averages, "
            "population statistics and test-batch statistics; the lag after a large lr step; inverted, "
            "low-contrast and noisy MNIST with and without AdaBN.",
)
