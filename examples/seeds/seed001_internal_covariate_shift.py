"""Seed 001 (the "internal covariate shift" course page): its worked examples, recomputed with tinygrad_norm.

    python examples/seeds/seed001_internal_covariate_shift.py

What is reproduced (each function returns plain dicts, `main()` prints them):
    covariate_shift_table()     the train/test table (x ∈ [0, 10], mean 5, var 4 / x ∈ [8, 20], mean 14, var 9)
    activation_drift()          the seed's first program: a ReLU layer whose weights take 100 random steps
    init_demo()                 the 50-layer small / large / He initialization demo, float64 and float32
                                (the lab experiment's own functions: tinygrad_norm/lab/experiments/init.py)
    kl_shift()                  the KL-divergence estimate of the shift a weight change causes
    gradient_predictiveness()   the seed's measurement, rewritten so that it runs: a model with several
                                parameter tensors, a random unit direction, BatchNorm in training mode

What the seed got wrong (details in examples/seeds/README.md):
  * Init demo: its "Output" block was not produced by its program. With np.random.seed(42) and its draw
    order, the layer-50 std is 5.56e-48 for std-0.01 weights (seed: 1.23e-89), 4.16e52 for std-1 weights
    (seed: inf; float64 only overflows above 1.8e308, and in float32 every entry is NaN by layer 38, so
    np.std prints nan) and 0.7934 for He (seed: 0.8234). Each ReLU layer multiplies the RMS of the
    activations by √(n·s²/2): 0.113 for s = 0.01, 11.3 for s = 1, 1 for He. It also says "gradients
    vanish/explode", but the program only measures forward activations.
  * Drift simulation: "The statistics change dramatically" — they do not. Over the 100 steps the output
    mean goes 0.5642 → 0.5731 (+1.6 %) and the std 0.8594 → 0.8553 (−0.5 %): 100 steps of N(0, 0.01²)
    noise add a variance of 100·1e-4 = 0.01 to weights of variance 0.25 (+4 % in variance, ≈ +2 % in std).
  * Gradient predictiveness: the code cannot run and measures the wrong thing. It puts BatchNorm in eval
    mode (running statistics 0/1 at init, so BN is ≈ the identity and the "BN net" is the plain net); its
    "random direction" is the normalized parameter vector itself; its parameter-update loop indexes the
    wrong tensor (`original_params[idx // numel]`) and `direction.view(p.shape)` fails (the direction has
    the numel of all parameters); `loss.backward()` without zeroing accumulates into old `.grad`s.
  * The KL program imports scipy, which it never uses (it fails where scipy is not installed); otherwise
    it runs. The seed prints no numbers for it; here they are, with the exact population values.
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import tinygrad_norm as tn  # noqa: E402
from tinygrad_norm import nn  # noqa: E402
from tinygrad_norm.lab.experiments.init import COMMON, INITS, forward_stats, seed_weights  # noqa: E402
from tinygrad_norm.lab.probe import flat, loss_and_grads, preserved, trainable  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402

SEED_INIT = {"small": "1.23e-89", "large": "inf", "he": "0.8234"}   # the seed's "Output" (quoted, not used)


# ------------------------------------------------------------------ the covariate-shift table

def _normal_mass(mu, sigma, lo, hi):
    """P(lo ≤ X ≤ hi) for X ~ N(mu, sigma²)."""
    cdf = lambda v: 0.5 * (1 + math.erf((v - mu) / (sigma * math.sqrt(2))))  # noqa: E731
    return cdf(hi) - cdf(lo)


def covariate_shift_table():
    """Is the seed's table (train: x ∈ [0, 10], mean 5, var 4; test: x ∈ [8, 20], mean 14, var 9)
    consistent? Uniform distributions on those ranges have variances 100/12 and 144/12, so the
    table describes something else, e.g. normals N(5, 2²) and N(14, 3²), which put most (not all)
    of their mass in the ranges. Returned numbers are exact (closed forms)."""
    return {
        "uniform_train": {"mean": 5.0, "var": 10.0 ** 2 / 12},
        "uniform_test": {"mean": 14.0, "var": 12.0 ** 2 / 12},
        "normal_train_mass_in_range": _normal_mass(5, 2, 0, 10),
        "normal_test_mass_in_range": _normal_mass(14, 3, 8, 20),
        # a layer standardizing with the TRAINING statistics sees test inputs with this mean and std
        "test_standardized_with_train_stats": {"mean": (14 - 5) / 2, "std": 3 / 2},
    }


# ------------------------------------------------------------------ activation drift

def activation_drift(steps=100, seed=42):
    """The seed's program: W = randn(10, 10)·0.5, b = 0, X = randn(1000, 10) (np.random.seed(42), same draw
    order); each step h = relu(X W + b) (computed with tinygrad_norm), record mean and std, then
    W += randn(10, 10)·0.01, b += randn(10)·0.01. Returns the histories and the expected std ratio
    √((n(0.5² + T·0.01²) + T·0.01²) / (n·0.5²)) of the pre-activations after T steps (n = 10 inputs)."""
    rng = np.random.RandomState(seed)
    W = rng.randn(10, 10) * 0.5
    b = np.zeros(10)
    X = tn.tensor(rng.randn(1000, 10))
    means, stds = [], []
    for _ in range(steps):
        h = F.relu(X @ tn.tensor(W) + tn.tensor(b))
        means.append(float(h.mean().item()))
        stds.append(float(h.std(correction=0).item()))     # np.std: population std
        W += rng.randn(10, 10) * 0.01
        b += rng.randn(10) * 0.01
    n, T = 10, steps - 1        # the last recorded forward follows steps − 1 updates
    expected = math.sqrt((n * (0.25 + T * 1e-4) + T * 1e-4) / (n * 0.25))
    return {"mean": means, "std": stds, "expected_std_ratio": expected}


# ------------------------------------------------------------------ the 50-layer init demo

def init_demo():
    """The seed's 50-layer ReLU network (x (128, 256), W (256, 256), no bias) with std 0.01 / 1.0 / He
    weights, drawn as the seed draws them, run in float64 and float32 (the statistics are taken in
    float64). Returns {init: {"float64": stats, "float32": stats}}, stats = per-layer lists of
    mean, std, zero_fraction, nonfinite_fraction (lab/experiments/init.py: seed_weights, forward_stats),
    plus "per_layer_factor" √(n·s²/2), the theoretical growth of the RMS per layer."""
    x, weights = seed_weights(COMMON)
    n = COMMON["width"]
    out = {}
    for init in INITS:
        s = weights[init][0].std()
        out[init] = {dt.__name__: forward_stats(x, weights[init], bn=False, dtype=dt)
                     for dt in (np.float64, np.float32)}
        out[init]["per_layer_factor"] = math.sqrt(n * {"small": 0.01 ** 2, "large": 1.0, "he": 2 / n}[init] / 2)
        out[init]["weight_std_layer1"] = float(s)
    return out


# ------------------------------------------------------------------ KL divergence of a weight change

def kl_gaussian(mu1, var1, mu2, var2):
    """KL(N(mu1, var1) ‖ N(mu2, var2)), elementwise (the seed's formula)."""
    return 0.5 * (np.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1)


def kl_shift(seed=42):
    """The seed's program: h = randn(10000, 100), W_init = randn(50, 100)·0.1, b = 0,
    W_trained = W_init + randn(50, 100)·0.05 (np.random.seed(42), same order); z = h Wᵀ + b computed
    with tinygrad_norm; per output unit the KL divergence between Gaussians with the empirical
    means/variances (np.var: ÷N). Also the exact population values: h ~ N(0, I) makes z_j exactly
    N(0, ‖W_j‖²), so KL_j = ½(ln(v2/v1) + v1/v2 − 1) with v = ‖W_j‖², and the expectation over the
    weight draw ≈ ½(ln 1.25 + 1/1.25 − 1) (v1 ≈ 100·0.01 = 1, v2 ≈ 100·(0.01 + 0.0025) = 1.25)."""
    rng = np.random.RandomState(seed)
    h = tn.tensor(rng.randn(10000, 100))
    W_init = rng.randn(50, 100) * 0.1
    b = np.zeros(50)
    W_trained = W_init + rng.randn(50, 100) * 0.05
    stats = []
    for W in (W_init, W_trained):
        z = h @ tn.tensor(W).T + tn.tensor(b)
        stats.append((z.mean(0).detach().numpy(), z.var(0, correction=0).detach().numpy()))
    (m1, v1), (m2, v2) = stats
    pv1, pv2 = (W_init ** 2).sum(1), (W_trained ** 2).sum(1)
    return {
        "kl_sample": float(np.mean(kl_gaussian(m1, v1, m2, v2))),
        "mean_shift": float(np.mean(np.abs(m2 - m1))),
        "std_ratio": float(np.mean(np.sqrt(v2 / v1))),
        "kl_population": float(np.mean(kl_gaussian(0.0, pv1, 0.0, pv2))),
        "std_ratio_population": float(np.mean(np.sqrt(pv2 / pv1))),
        "kl_expected": 0.5 * (math.log(1.25) + 1 / 1.25 - 1),
    }


# ------------------------------------------------------------------ gradient predictiveness

ALPHAS = (0.01, 0.1, 0.3, 1.0, 3.0)


def _problem(n=128, d=20, k=5, seed=0):
    """Synthetic classification: x ~ N(0, I) (n, d) float64, labels = argmax of a random tanh teacher."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = (np.tanh(x @ rng.standard_normal((d, 32))) @ rng.standard_normal((32, k))).argmax(1)
    return tn.tensor(x), tn.tensor(y.astype(np.int64))


def build_mlp(bn, d=20, width=32, k=5, depth=3, seed=0):
    """d → depth × [Linear → (BatchNorm1d) → ReLU] → Linear(k), float64. The same seed gives the same
    Linear weights with and without BN (BatchNorm draws no random numbers)."""
    tn.manual_seed(seed)
    layers, fan = [], d
    for _ in range(depth):
        layers += [nn.Linear(fan, width)] + ([nn.BatchNorm1d(width)] if bn else []) + [nn.ReLU()]
        fan = width
    return nn.Sequential(*layers, nn.Linear(fan, k)).double()


def _is_linear_param(model, name):
    return isinstance(dict(model.named_modules())[name.rsplit(".", 1)[0]], nn.Linear)


def predictiveness(model, batch, alphas=ALPHAS, direction="random", mode="train", direction_seed=1):
    """L(θ + α·d) vs its linear prediction L(θ) + α·⟨∇L(θ), d⟩ for a unit direction d, on one batch.

    direction: "random" — d ~ N(0, I) over the Linear layers' weights and biases (0 for BN's γ, β, so a
    BN net and a plain net built from the same seed move the same way), normalized to ‖d‖ = 1;
    "gradient" — d = −∇L/‖∇L‖ (Santurkar et al. step along the gradient).
    mode: "train" (BatchNorm on the batch's statistics, what training sees) or "eval" (running
    statistics, the seed's `model.eval()`). The model is left bitwise unchanged (lab.probe.preserved).
    Returns {"loss", "slope" ⟨∇L, d⟩, "rows": [{alpha, actual ΔL, predicted α·slope, rel_error =
    |ΔL − α·slope| / max(|ΔL|, 1e-8) (the seed's measure), grad_change ‖∇L(θ+αd) − ∇L(θ)‖}]}.
    """
    named = trainable(model)
    params = [p for _, p in named]
    rng = np.random.default_rng(direction_seed)
    with preserved(model, train=(mode == "train")):
        if mode == "eval":
            model.eval()
        loss0, g0 = loss_and_grads(model, F.cross_entropy, batch, params)
        if direction == "random":
            d = [rng.standard_normal(p.shape) if _is_linear_param(model, n) else np.zeros(p.shape) for n, p in named]
        else:
            d = [-g for g in g0]
        norm = np.linalg.norm(flat(d))
        d = [a / norm for a in d]
        slope = float(flat(g0) @ flat(d))
        originals = [p._data for p in params]
        rows = []
        for alpha in alphas:
            for p, data, dp in zip(params, originals, d):
                p._data = (data + alpha * dp).astype(p.dtype)
            loss, g = loss_and_grads(model, F.cross_entropy, batch, params)
            actual, predicted = loss - loss0, alpha * slope
            rows.append({"alpha": alpha, "actual": actual, "predicted": predicted,
                         "rel_error": abs(actual - predicted) / max(abs(actual), 1e-8),
                         "grad_change": float(np.linalg.norm(flat(g) - flat(g0)))})
    return {"loss": loss0, "slope": slope, "rows": rows}


def gradient_predictiveness(train_steps=100, lr=0.1, batch_size=32):
    """Both nets (same Linear weights) at init and after `train_steps` SGD steps (the same mini-batches),
    probed on the full 128-sample batch: random and gradient directions in training mode, plus the
    seed's eval mode at init. Returns {net: {stage: {probe: predictiveness(...)}}}."""
    batch = _problem()
    x, y = batch
    out = {}
    for net in ("plain", "bn"):
        model = build_mlp(bn=(net == "bn"))
        out[net] = {"init": {"random": predictiveness(model, batch, direction="random"),
                             "gradient": predictiveness(model, batch, direction="gradient"),
                             "random_eval": predictiveness(model, batch, direction="random", mode="eval")}}
        opt = tn.optim.SGD(model.parameters(), lr=lr)
        order = np.random.default_rng(0)
        for _ in range(train_steps):
            idx = order.choice(len(y), batch_size, replace=False)
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        out[net]["trained"] = {"random": predictiveness(model, batch, direction="random"),
                               "gradient": predictiveness(model, batch, direction="gradient")}
    return out


# ------------------------------------------------------------------ printing

def main():
    print("Seed 001: covariate-shift table (train x ∈ [0,10], mean 5, var 4; test x ∈ [8,20], mean 14, var 9)")
    t = covariate_shift_table()
    print(f"  uniform on [0,10]: var {t['uniform_train']['var']:.3f}; uniform on [8,20]: mean 14, var "
          f"{t['uniform_test']['var']:.3f}  → the table's variances are not those of its ranges;")
    print(f"  N(5, 2²) has {100 * t['normal_train_mass_in_range']:.1f} % of its mass in [0,10], N(14, 3²) "
          f"{100 * t['normal_test_mass_in_range']:.1f} % in [8,20]. Standardized with the training statistics, "
          f"test inputs have mean {t['test_standardized_with_train_stats']['mean']} and std "
          f"{t['test_standardized_with_train_stats']['std']} (seed 002's script runs this).")

    d = activation_drift()
    print("\nActivation drift (seed's program; seed: 'The statistics change dramatically')")
    print(f"  Initial mean: {d['mean'][0]:.4f}, Final mean: {d['mean'][-1]:.4f}  "
          f"({100 * (d['mean'][-1] / d['mean'][0] - 1):+.1f} %)")
    print(f"  Initial std: {d['std'][0]:.4f}, Final std: {d['std'][-1]:.4f}  "
          f"({100 * (d['std'][-1] / d['std'][0] - 1):+.1f} %); range over the 100 steps: mean "
          f"{min(d['mean']):.4f}–{max(d['mean']):.4f}, std {min(d['std']):.4f}–{max(d['std']):.4f}")
    print(f"  expected pre-activation std ratio after 99 updates: {d['expected_std_ratio']:.4f} — a few percent")

    print("\n50-layer ReLU network, layer-50 activation std (np.random.seed(42), the seed's draw order)")
    print(f"  {'init':6s} {'seed says':>10s} {'float64':>12s} {'float32':>10s} {'factor/layer':>13s}  float32 note")
    for init, r in init_demo().items():
        f64, f32 = r["float64"], r["float32"]
        zero = next((i + 1 for i, z in enumerate(f32["zero_fraction"]) if z == 1.0), None)
        bad = next((i + 1 for i, z in enumerate(f32["nonfinite_fraction"]) if z > 0), None)
        allbad = next((i + 1 for i, z in enumerate(f32["nonfinite_fraction"]) if z == 1.0), None)
        note = (f"all entries 0 from layer {zero}" if zero else
                f"first inf at layer {bad}, all NaN from layer {allbad}" if bad else "as float64")
        print(f"  {init:6s} {SEED_INIT[init]:>10s} {f64['std'][-1]:12.4g} {f32['std'][-1]:10.4g} "
              f"{r['per_layer_factor']:13.4f}  {note}")

    k = kl_shift()
    print("\nKL divergence of the weight change (seed prints no numbers)")
    print(f"  Average KL divergence due to weight change: {k['kl_sample']:.4f}   "
          f"(population, from ‖W_j‖²: {k['kl_population']:.4f}; expected over the draw: {k['kl_expected']:.4f})")
    print(f"  Mean shift: {k['mean_shift']:.4f}   (population: 0 — sampling noise of 10000-sample means)")
    print(f"  Std ratio: {k['std_ratio']:.4f}   (population: {k['std_ratio_population']:.4f}; ≈ √1.25 = 1.118)")

    print("\nGradient predictiveness, rewritten: rel. error |ΔL − α⟨∇L,d⟩| / |ΔL| and ‖∇L(θ+αd) − ∇L(θ)‖")
    g = gradient_predictiveness()
    for stage, probe in (("init", "random_eval"), ("init", "random"), ("init", "gradient"),
                         ("trained", "random"), ("trained", "gradient")):
        label = {"random_eval": "random d, EVAL mode (the seed's)", "random": "random d, training mode",
                 "gradient": "d = −∇L/‖∇L‖, training mode"}[probe]
        print(f"  {stage}, {label}")
        for net in ("plain", "bn"):
            p = g[net][stage][probe]
            cells = "  ".join(f"α={r['alpha']:<4g} {r['rel_error']:7.3g} {r['grad_change']:8.3g}" for r in p["rows"])
            print(f"    {net:5s} L={p['loss']:.4f}  {cells}")
    same = max(abs(a["rel_error"] - b["rel_error"]) for a, b in
               zip(g["plain"]["init"]["random_eval"]["rows"], g["bn"]["init"]["random_eval"]["rows"]))
    print(f"  Eval mode at init: BN with running stats (0, 1) is x/√(1+ε), so the relative errors equal the plain"
          f" net's (largest difference {same:.1e});")
    print("  the gradient change differs a little: it also counts the gradients of γ and β.")
    better, total = bn_better(g)
    verdict = ("consistent with" if better >= 0.75 * total else "no support, in this small MLP, for")
    print(f"  Training mode: BN has the smaller relative error in {better} of {total} (stage, direction, α) cases"
          f" — {verdict} the seed's 'with BatchNorm, gradient predictions remain accurate for larger step sizes'."
          "\n  The measure divides by |ΔL|, tiny when the slope is tiny (random directions, near a minimum)."
          " Santurkar et al. measure ‖∇L(θ−ηg) − ∇L(θ)‖ along the gradient during training:"
          " tn.lab.landscape_probe, `tinygrad-norm run santurkar_landscape`.")


def bn_better(result):
    """(number of (stage, direction, α) cases in training mode where BN's relative error is smaller, total)."""
    pairs = [(a["rel_error"], b["rel_error"]) for stage, probes in result["plain"].items() for probe in probes
             if probe != "random_eval"
             for a, b in zip(result["plain"][stage][probe]["rows"], result["bn"][stage][probe]["rows"])]
    return sum(b < a for a, b in pairs), len(pairs)

if __name__ == "__main__":
    main()
