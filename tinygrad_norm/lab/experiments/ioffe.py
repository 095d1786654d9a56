"""Ioffe & Szegedy 2015, Figure 1: a sigmoid MLP on MNIST with and without BatchNorm.

    tinygrad-norm run ioffe            # the CPU protocol of docs/protocols.md §1 (15K steps)
    tinygrad-norm run ioffe --quick    # 3K steps: every effect's direction, in well under a minute
    tinygrad-norm run ioffe --full     # paper scale: 50K steps

The protocol (docs/protocols.md §1):

    data       MNIST, x = pixels / 255 (784 inputs), 60 examples per mini-batch,
               shuffled each epoch; both nets see the same batches in the same order.
    nets       784-100-100-100-10, y = sigmoid(W u + b) in each hidden layer, a linear
               10-way output with cross-entropy loss. With BN: BatchNorm1d on W u
               *before* the sigmoid (its β replaces the bias b, §3.2). PyTorch's
               default Linear initialisation; the same seed for both nets.
    training   plain SGD, lr 0.5, 15K steps (50K in the paper).
    measured   (a) test accuracy (10,000 held-out images; BN in eval mode, with the
                   running statistics) every 250 steps up to 5K, then every 1K;
               (b, c) at the same steps, the 15th/50th/85th percentiles of the inputs of
                   the last hidden layer's sigmoids over a fixed probe set (the first
                   1000 test images), for each of the 100 units. BN in training mode on
                   the probe set (batch statistics), running buffers left untouched.

The claims (docs/protocols.md §1, with their thresholds' sources): BN reaches
0.95 / 0.90 test accuracy ≥ 1.5× / ≥ 3× sooner; it ends ≥ 0.4 points more
accurate (the margin: the same arm's spread over the calibration seeds); the
median of the sigmoid inputs drifts ≥ 2.5× less with BN and stays within ±0.5
of 0, while without BN it moves by more than 1; at step 0 the inputs are
collapsed without BN (p85 − p15 < 0.1). Sanity checks (by construction, not
counted): at step 0 with BN p85 − p15 = 2.07 ± 0.15; 300 steps from given
weights match PyTorch's numbers.
"""
import numpy as np

from ... import nn
from ...data import DataLoader, mnist_arrays
from ...models import ioffe_mlp
from ...nn import functional as F
from ...optim import SGD
from ...random import manual_seed
from ...tensor import Tensor, no_grad
from ..probe import preserved
from ..evaluate import accuracy, first_step_reaching
from ..plotting import new_figure, save_figure
from ..experiment import Claim, Experiment

# ------------------------------------------------------------------ settings

COMMON = dict(lr=0.5, batch_size=60, hidden=[100, 100, 100], probe_size=1000, unit=0,
              checkpoint_every=1000, crosscheck=True)
MODES = {
    # docs/protocols.md §1: the paper's protocol, shortened to 15K steps (the effects are all there by then)
    "default": dict(COMMON, steps=15000, dense_every=250, dense_until=5000, sparse_every=1000),
    # the paper's 50K steps
    "full": dict(COMMON, steps=50000, dense_every=250, dense_until=5000, sparse_every=1000),
    # a small budget that still shows every effect's direction (the test suite runs it)
    "quick": dict(COMMON, steps=3000, dense_every=250, dense_until=3000, sparse_every=1000, checkpoint_every=500),
}


def eval_schedule(cfg):
    """The evaluation steps: every `dense_every` up to `dense_until`, then every `sparse_every`, and the end."""
    steps = cfg["steps"]
    dense = range(0, min(cfg["dense_until"], steps) + 1, cfg["dense_every"])
    sparse = range(cfg["dense_until"], steps + 1, cfg["sparse_every"])
    return sorted(set(dense) | set(sparse) | {steps})


# ------------------------------------------------------------------ training

def train(lab, cfg):
    data = {"train": mnist_arrays("train"), "test": mnist_arrays("test")}
    arms = {}
    for arm, bn in (("bn", True), ("plain", False)):
        arms[arm] = train_network(lab, cfg, arm, bn, data)
    if cfg["crosscheck"]:
        for arm, bn in (("crosscheck_bn", True), ("crosscheck_plain", False)):
            arms[arm] = crosscheck(lab, cfg, arm, bn, data)
    return arms


def train_network(lab, cfg, arm, bn, data):
    """Train one net (with or without BN) and record Fig. 1's curves."""
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    probe = Tensor(x_test[:cfg["probe_size"]])
    manual_seed(cfg["seed"])                                    # the same seed for both nets
    model = ioffe_mlp(bn=bn, hidden=tuple(cfg["hidden"]))       # BN (if any) before each sigmoid
    optimizer = SGD(model.parameters(), lr=cfg["lr"])
    loader = DataLoader(x_train, y_train, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
                        seed=cfg["seed"])                       # the same batches for both nets
    curves = {"step": [], "test_accuracy": [], "p15": [], "p50": [], "p85": []}

    def evaluate(step, batch):
        curves["step"].append(step)
        curves["test_accuracy"].append(accuracy(model, x_test, y_test))
        p15, p50, p85 = np.percentile(last_sigmoid_inputs(model, probe), [15, 50, 85], axis=0)
        curves["p15"].append(p15.tolist())
        curves["p50"].append(p50.tolist())
        curves["p85"].append(p85.tolist())

    return lab.train(arm, model, optimizer, loader, steps=cfg["steps"],
                     loss_fn=lambda x, y: F.cross_entropy(model(x), y),
                     evaluate=evaluate, eval_steps=eval_schedule(cfg), curves=curves,
                     checkpoint_every=cfg["checkpoint_every"])




def last_sigmoid_inputs(model, probe):
    """The inputs of the last hidden layer's sigmoids on `probe`: an array (n_probe, units).

    For the BN net this is the BN output γ·x̂ + β of the training network (batch statistics
    of the probe set); `preserved` keeps the running statistics (and everything else) as they were.
    """
    last_sigmoid = [m for m in model.modules() if isinstance(m, nn.Sigmoid)][-1]
    seen = {}
    handle = last_sigmoid.register_forward_hook(lambda module, args, out: seen.update(x=args[0].numpy().copy()))
    try:
        with preserved(model), no_grad():
            model(probe)
    finally:
        handle.remove()
    return seen["x"]


# ------------------------------------------------------------------ the PyTorch cross-check (§1.5.5)

CROSSCHECK_SEED, CROSSCHECK_STEPS = 2015, 300
# PyTorch 2.13.0 CPU, float32, 1 thread: the same weights (crosscheck_weights), the same batches
# (DataLoader order of seed 0, epoch 0), SGD lr 0.5, 300 steps; then the test set in eval mode.
# The script is in docs/lab.md ("The PyTorch cross-check").
TORCH_REFERENCE = {
    "plain": {"train_loss_251_300": 2.3093537664413453, "test_loss": 2.3046205043792725, "test_accuracy": 0.1032},
    "bn": {"train_loss_251_300": 0.3542794552445412, "test_loss": 0.33713775873184204, "test_accuracy": 0.9018},
}


def crosscheck_weights(bn, seed=CROSSCHECK_SEED):
    """[(W, b or None)] for the four Linear layers: PyTorch's default init U(±1/√fan_in), drawn by numpy
    (so that both libraries start from the same numbers). The BN net's hidden layers have no bias."""
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out, bias in [(784, 100, not bn), (100, 100, not bn), (100, 100, not bn), (100, 10, True)]:
        k = 1 / np.sqrt(fan_in)
        w = rng.uniform(-k, k, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-k, k, fan_out).astype(np.float32) if bias else None
        weights.append((w, b))
    return weights


def crosscheck(lab, cfg, arm, bn, data):
    """300 steps of lr 0.5 from `crosscheck_weights`; the numbers to compare with TORCH_REFERENCE."""
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    model = ioffe_mlp(bn=bn)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for layer, (w, b) in zip(linears, crosscheck_weights(bn)):
        layer.weight._data[...] = w
        if b is not None:
            layer.bias._data[...] = b
    optimizer = SGD(model.parameters(), lr=0.5)
    loader = DataLoader(x_train, y_train, batch_size=60, shuffle=True, drop_last=True, seed=0)
    curves = {}

    def evaluate(step, batch):
        model.eval()
        with no_grad():
            logits = model(Tensor(x_test))
            curves["test_loss"] = float(F.cross_entropy(logits, Tensor(y_test)).item())
            curves["test_accuracy"] = float((logits.numpy().argmax(1) == y_test).mean())
        model.train()

    result = lab.train(arm, model, optimizer, loader, steps=CROSSCHECK_STEPS,
                       loss_fn=lambda x, y: F.cross_entropy(model(x), y),
                       evaluate=evaluate, eval_steps=[CROSSCHECK_STEPS], curves=curves, log_every=50)
    return result


# ------------------------------------------------------------------ claims (docs/protocols.md §1)

END_GAP = 0.004      # "ends more accurate": ≥ +0.4 points, the same-arm spread over seeds 100–102 (§1)


def _steps_ratio(bn, plain, level, at_least, section):
    """Claim 1: how many times sooner the BN net reaches `level` test accuracy (value: the ratio, or
    its lower bound when the plain net never gets there; None when BN never does)."""
    sb = first_step_reaching(bn["step"], bn["test_accuracy"], level)
    sp = first_step_reaching(plain["step"], plain["test_accuracy"], level)
    claim = f"BN reaches {level:.2f} test accuracy ≥ {at_least}× sooner than the plain net: steps(plain) / steps(BN)"
    if sb is None:
        measured, value = f"BN never reached {level:.2f} in {bn['step'][-1]} steps", None
    elif sb == 0:
        measured, value = "BN already at the level at step 0", None
    elif sp is None:
        value = bn["step"][-1] / sb
        measured = f"BN at step {sb}; plain never in {plain['step'][-1]} steps: ratio > {value:.2f}"
    else:
        value = sp / sb
        measured = f"BN at step {sb}, plain at {sp}: {value:.2f}×"
    return Claim.compare(claim, value, ">=", at_least, measured, section=section, log=True)


def median_drift(curves, from_step=1000):
    """Per unit, max − min over the evaluations at t ≥ from_step of the median sigmoid input; median over units."""
    steps = np.array(curves["step"])
    p50 = np.array(curves["p50"])[steps >= from_step]
    if len(p50) < 2:
        return None
    return float(np.median(p50.max(axis=0) - p50.min(axis=0)))


def claims(cfg, arms):
    bn, plain = arms["bn"], arms["plain"]
    for name, arm in (("BN", bn), ("plain", plain)):
        if arm["diverged_at"] is not None:
            return [Claim.compare("every claim of docs/protocols.md §1", None, ">=", 0,
                                  f"the {name} net diverged at step {arm['diverged_at']}", section="§1")]
    cb, cp = bn["curves"], plain["curves"]
    rows = [_steps_ratio(cb, cp, 0.95, 1.5, "1.1"), _steps_ratio(cb, cp, 0.90, 3, "1.2")]

    acc_b, acc_p = cb["test_accuracy"][-1], cp["test_accuracy"][-1]
    rows.append(Claim.compare(f"BN ends more accurate than the plain net (step {cb['step'][-1]}): BN − plain",
                              acc_b - acc_p, ">=", END_GAP,
                              f"BN {acc_b:.4f}, plain {acc_p:.4f}: gap {100 * (acc_b - acc_p):+.2f} points",
                              section="2", threshold=f"≥ +{100 * END_GAP:g} points"))

    db, dp = median_drift(cb), median_drift(cp)
    claim = "drift of the median sigmoid input (t ≥ 1K, per unit, median over units): plain / BN"
    if db is None or dp is None:
        rows.append(Claim.compare(claim, None, ">=", 2.5, "fewer than two evaluations at t ≥ 1000", section="3.1",
                                  log=True))
    else:
        ratio = dp / db if db > 0 else None
        rows.append(Claim.compare(claim, ratio, ">=", 2.5, f"BN {db:.3f}, plain {dp:.3f}: {dp / max(db, 1e-300):.2f}×",
                                  section="3.1", log=True))

    med_b = np.median(np.array(cb["p50"]), axis=1)       # per evaluation: the median over units of p50
    med_p = np.median(np.array(cp["p50"]), axis=1)
    worst = float(np.abs(med_b).max())
    rows.append(Claim.compare("with BN the median over units of p50 stays within ±0.5 of 0: max over evaluations "
                              "of its absolute value", worst, "<=", 0.5, f"{worst:.3f}", section="3.2"))
    moved = float(med_p.max() - med_p.min())
    rows.append(Claim.compare("without BN the median over units of p50 moves by more than 1.0 during training: "
                              "its range", moved, ">", 1.0,
                              f"range {moved:.3f} ({med_p.min():+.2f} … {med_p.max():+.2f})", section="3.3"))

    spread_p = float(np.median(np.array(cp["p85"][0]) - np.array(cp["p15"][0])))
    spread_b = float(np.median(np.array(cb["p85"][0]) - np.array(cb["p15"][0])))
    rows.append(Claim.compare("at step 0, without BN the sigmoid inputs are collapsed: p85 − p15 (median unit)",
                              spread_p, "<", 0.1, f"{spread_p:.4f}", section="4.1"))
    rows.append(Claim.compare("at step 0, with BN they are standardized: p85 − p15 ≈ 2.07 (±1.04 of a unit normal, "
                              "by construction)", spread_b, "between", (1.92, 2.22), f"{spread_b:.4f}",
                              section="4.2", kind="check", threshold="2.07 ± 0.15"))
    rows.append(_crosscheck_claim(arms))
    return rows


def _crosscheck_claim(arms):
    """The PyTorch cross-check (an engine test: a sanity check). value: max(loss diff / 2 %, acc diff / 1 point)."""
    claim = (f"{CROSSCHECK_STEPS} steps of lr 0.5 from the same weights reproduce PyTorch: "
             "loss within 2 %, test accuracy within 1 point (both nets)")
    threshold = "rel. loss diff ≤ 2 %, acc diff ≤ 0.01"
    if "crosscheck_bn" not in arms:
        return Claim.compare(claim, None, "<=", 1.0, "not run (crosscheck=False)", section="5", kind="check",
                             threshold=threshold)
    worst_loss, worst_acc, parts = 0.0, 0.0, []
    for net in ("bn", "plain"):
        result = arms[f"crosscheck_{net}"]
        if result["diverged_at"] is not None:
            return Claim.compare(claim, None, "<=", 1.0, f"{net} diverged at step {result['diverged_at']}",
                                 section="5", kind="check", threshold=threshold)
        ref, got = TORCH_REFERENCE[net], result["curves"]
        train_loss = result["train_loss"]["loss"][-1]   # the mean over steps 251–300
        rel = max(abs(train_loss - ref["train_loss_251_300"]) / ref["train_loss_251_300"],
                  abs(got["test_loss"] - ref["test_loss"]) / ref["test_loss"])
        acc = abs(got["test_accuracy"] - ref["test_accuracy"])
        worst_loss, worst_acc = max(worst_loss, rel), max(worst_acc, acc)
        parts.append(f"{net}: test loss {got['test_loss']:.4f} (torch {ref['test_loss']:.4f}), "
                     f"acc {got['test_accuracy']:.4f} (torch {ref['test_accuracy']:.4f})")
    measured = "; ".join(parts) + f"; worst loss diff {100 * worst_loss:.2f} %, acc diff {worst_acc:.4f}"
    # value: the worse of the two differences as a fraction of its bound (≤ 1 passes both)
    value = max(worst_loss / 0.02, worst_acc / 0.01)
    return Claim.compare(claim, value, "<=", 1.0, measured, section="5", kind="check", threshold=threshold)


# ------------------------------------------------------------------ figures

def figures(cfg, arms, out):
    colors = {"bn": "tab:blue", "plain": "tab:red"}
    labels = {"bn": "with BN", "plain": "without BN"}

    # (a) test accuracy
    fig = new_figure((10, 4))
    for ax, ylim, title in zip(fig.subplots(1, 2), [(0, 1.0), (0.7, 1.0)],
                               ["test accuracy", "(a) as in the paper: 0.7 … 1.0"]):
        for arm in ("plain", "bn"):
            c = arms[arm]["curves"]
            ax.plot(c["step"], c["test_accuracy"], color=colors[arm], label=labels[arm])
        ax.set_ylim(*ylim)
        ax.set_xlabel("training step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(f"Ioffe & Szegedy Fig. 1(a): MNIST sigmoid MLP, SGD lr {cfg['lr']}, batch {cfg['batch_size']}")
    save_figure(fig, out, "accuracy.png", 110)

    # (b, c) percentiles of one last-hidden-layer sigmoid input
    unit = cfg["unit"]
    fig = new_figure((10, 4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, arm, title in zip(axes, ("plain", "bn"), ("(b) without BN", "(c) with BN")):
        c = arms[arm]["curves"]
        steps = c["step"]
        p15, p50, p85 = (np.array(c[k]) for k in ("p15", "p50", "p85"))
        ax.fill_between(steps, p15[:, unit], p85[:, unit], color=colors[arm], alpha=0.2)
        for p, name in ((p15, "15th"), (p50, "50th"), (p85, "85th")):
            ax.plot(steps, p[:, unit], color=colors[arm], lw=1.5 if name == "50th" else 1)
            ax.plot(steps, np.median(p, axis=1), color="k", ls="--", lw=0.8)
        ax.plot([], [], color=colors[arm], label=f"unit {unit}: 15/50/85th percentiles")
        ax.plot([], [], color="k", ls="--", lw=0.8, label="median over the 100 units")
        ax.axhline(0, color="gray", lw=0.5)
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("input of a last-hidden-layer sigmoid")
    fig.suptitle(f"Ioffe & Szegedy Fig. 1(b, c): distribution over the first {cfg['probe_size']} test images")
    save_figure(fig, out, "percentiles.png", 110)
    return ["accuracy.png", "percentiles.png"]


EXPERIMENT = Experiment(
    name="ioffe",
    title="Ioffe & Szegedy 2015, Figure 1: sigmoid MLP on MNIST with and without BatchNorm",
    paper="S. Ioffe, C. Szegedy, Batch Normalization: Accelerating Deep Network Training by Reducing "
          "Internal Covariate Shift, ICML 2015 (arXiv:1502.03167), §4.1 and Fig. 1",
    protocol="§1",
    modes=MODES, train=train, claims=claims, figures=figures,
    summary="784-100-100-100-10 sigmoid MLP, batch 60, plain SGD (lr 0.5), with and without BatchNorm before "
            "each sigmoid: test accuracy, and the 15/50/85th percentiles of the last hidden layer's sigmoid "
            "inputs over training.",
)
