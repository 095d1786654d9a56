"""Seed 002 ("Batch Normalization — Core Concepts"): train vs inference, recomputed with tinygrad_norm.

    python examples/seeds/seed002_train_vs_inference.py

The seed has no code and no printed numbers. Its worked statements are demonstrated here
(functions return plain dicts, `main()` prints them):

    running_vs_batch()    a classifier with BatchNorm1d trained on domain A: its running statistics vs the
                          population statistics; the same batch in training mode (batch statistics) and in
                          eval mode (running statistics); a sample's output depends on its batch-mates in
                          training mode only; a batch of one works in eval mode and raises in training
    small_batches()       batches of two: every normalized value is ±1; the running variance PyTorch stores
                          (unbiased, ÷(m−1)) vs the seed's formula with its own σ²_B (÷m)
    frozen_statistics()   "if your training distribution differs from your inference distribution, the running
                          statistics will be wrong": the classifier evaluated on a shifted domain B with frozen
                          running statistics, with batch statistics, and after re-estimating the statistics on
                          unlabeled B data. A and B are seed 001's table: train inputs mean 5, variance 4; test
                          inputs mean 14, variance 9 (x_B = 14 + 1.5·(x_A − 5), same labels).

What the seed got wrong (details in examples/seeds/README.md):
  * Its running-variance update σ²_run ← (1 − α)σ²_run + α·σ²_B uses the σ²_B it defined two sections
    earlier, the biased (÷m) batch variance. PyTorch (whose α = 0.1 convention it quotes) stores the
    unbiased batch variance m/(m − 1)·σ²_B, as Ioffe & Szegedy's Algorithm 2 does. With m = 2 the seed's
    rule stores on average half the variance: 2.0 instead of 4.0 for N(5, 2²) inputs.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import tinygrad_norm as tn  # noqa: E402
from tinygrad_norm import nn  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402

D, K, HIDDEN = 8, 3, 32
MEAN_A, STD_A = 5.0, 2.0      # seed 001's table: training inputs mean 5, variance 4
MEAN_B, STD_B = 14.0, 3.0     # ... test inputs mean 14, variance 9


# ------------------------------------------------------------------ the data and the classifier

def _teacher():
    return np.random.default_rng(0).standard_normal((D, K))


def domain_a(n, seed):
    """n samples of domain A: x = 5 + 2u with u ~ N(0, I_8); label = argmax(u·T), T a fixed random (8, 3) matrix."""
    u = np.random.default_rng(seed).standard_normal((n, D))
    return MEAN_A + STD_A * u, (u @ _teacher()).argmax(1)


def to_domain_b(x):
    """The same samples seen by another instrument: x_B = 14 + 1.5·(x_A − 5) (mean 14, std 3; labels unchanged)."""
    return MEAN_B + (STD_B / STD_A) * (x - MEAN_A)


def train_classifier(steps=300, batch_size=64, lr=0.1, seed=0):
    """Linear(8, 32) → BatchNorm1d(32) → ReLU → Linear(32, 3), float64, SGD (momentum 0.9) on 4000 domain-A
    samples. Returns (model in eval mode, (x_train, y_train))."""
    tn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(D, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, K)).double()
    x, y = domain_a(4000, seed=1)
    X, Y = tn.tensor(x), tn.tensor(y)
    opt = tn.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    order = np.random.default_rng(seed)
    for _ in range(steps):
        idx = order.choice(len(y), batch_size, replace=False)
        opt.zero_grad()
        F.cross_entropy(model(X[idx]), Y[idx]).backward()
        opt.step()
    model.eval()
    return model, (x, y)


def accuracy(model, x, y, train_mode=False):
    """Accuracy on (x, y) in one batch; train_mode=True uses batch statistics WITHOUT touching the running
    statistics (they are saved and restored: a training-mode forward updates them, even under no_grad)."""
    bn = model[1]
    saved = (bn.running_mean.detach().numpy().copy(), bn.running_var.detach().numpy().copy(), bn.num_batches_tracked.detach().numpy().copy())
    model.train(train_mode)
    with tn.no_grad():
        pred = model(tn.tensor(x)).detach().numpy().argmax(1)
    model.eval()
    bn.running_mean._data[...], bn.running_var._data[...], bn.num_batches_tracked._data[...] = saved
    return float((pred == y).mean())


# ------------------------------------------------------------------ running vs batch statistics

def running_vs_batch(model=None, data=None):
    """Running statistics after training vs the population statistics of the BN input z = Linear(x) over the
    4000 training samples; one 64-sample batch normalized with its own statistics (training) and with the
    running ones (eval); one sample's training-mode output in two different batches; a batch of one."""
    if model is None:
        model, data = train_classifier()
    x, _ = data
    lin, bn = model[0], model[1]
    with tn.no_grad():
        z = lin(tn.tensor(x))
    pop_mean, pop_var = z.mean(0).detach().numpy(), z.var(0, correction=1).detach().numpy()
    rm, rv = bn.running_mean.detach().numpy().copy(), bn.running_var.detach().numpy().copy()

    batch, other = tn.tensor(x[:64]), tn.tensor(np.concatenate([x[:1], x[64:127]]))   # both contain sample 0
    saved = (rm.copy(), rv.copy(), bn.num_batches_tracked.detach().numpy().copy())
    with tn.no_grad():
        bn.train()
        y_train = bn(lin(batch)).detach().numpy()
        y_train_other = bn(lin(other)).detach().numpy()
        bn.eval()
        y_eval = bn(lin(batch)).detach().numpy()
        y_eval_other = bn(lin(other)).detach().numpy()
        y_eval_single = bn(lin(batch[:1])).detach().numpy()       # eval: a batch of one is fine
        bn.train()
        try:
            bn(lin(batch[:1]))
            single_error = None
        except ValueError as e:                           # training: one value per channel has no variance
            single_error = str(e)
        bn.eval()
    bn.running_mean._data[...], bn.running_var._data[...], bn.num_batches_tracked._data[...] = saved
    return {
        "running_mean": rm, "running_var": rv, "population_mean": pop_mean, "population_var": pop_var,
        "train_vs_eval_max_diff": float(np.abs(y_train - y_eval).max()),
        "sample0_train_two_batches_diff": float(np.abs(y_train[0] - y_train_other[0]).max()),
        "sample0_eval_two_batches_diff": float(np.abs(y_eval[0] - y_eval_other[0]).max()),
        "eval_single_equals_batch": bool(np.allclose(y_eval_single[0], y_eval[0], rtol=0, atol=1e-12)),
        "train_single_error": single_error,
    }


# ------------------------------------------------------------------ batches of two

def small_batches(channels=1000, batches=20, seed=0):
    """Batches of m = 2 from N(5, 2²): BatchNorm1d(channels, momentum=None) sees channels × batches
    independent batches of two (each channel is its own batch). momentum=None makes running_var the plain
    average of the stored batch variances, i.e. what an exponential average (α = 0.1) fluctuates around.
    Returns the normalized values of one batch (always ±√(σ²_B/(σ²_B + ε)), so ±1 unless the two samples
    nearly coincide), the largest deviation from that formula, the fraction of batches within 1e-3 of ±1,
    the average stored variance
    (PyTorch, unbiased), the average the seed's rule stores (biased σ²_B, computed with the same batches),
    and the exact expectations σ² = 4 and (m − 1)/m·σ² = 2."""
    rng = np.random.default_rng(seed)
    bn = nn.BatchNorm1d(channels, momentum=None).double()
    biased, deviation, near_one = [], 0.0, 0
    for _ in range(batches):
        x = tn.tensor(MEAN_A + STD_A * rng.standard_normal((2, channels)))
        with tn.no_grad():
            y = bn(x)
        var_b = x.var(0, correction=0).detach().numpy()
        biased.append(var_b)
        # |x̂| = |x − μ_B| / √(σ²_B + ε) = √(σ²_B / (σ²_B + ε)) for both samples of a batch of two
        deviation = max(deviation, float(np.abs(np.abs(y.detach().numpy()) - np.sqrt(var_b / (var_b + bn.eps))).max()))
        near_one += int((np.abs(np.abs(y.detach().numpy()) - 1) < 1e-3).all(0).sum())
    return {
        "normalized_last_batch_channel0": [float(v) for v in y.detach().numpy()[:, 0]],
        "max_deviation_from_formula": deviation,
        "fraction_within_1e-3_of_pm1": near_one / (channels * batches),
        "pytorch_running_var": float(bn.running_var.detach().numpy().mean()),
        "pytorch_running_mean": float(bn.running_mean.detach().numpy().mean()),
        "seed_rule_running_var": float(np.mean(biased)),
        "n_batches": channels * batches,
        "expected_unbiased": STD_A ** 2, "expected_biased": STD_A ** 2 / 2,
    }


# ------------------------------------------------------------------ frozen statistics on shifted data

def frozen_statistics(model=None, data=None, adapt_samples=1000):
    """The classifier trained on A, evaluated on 2000 test samples of A and of B (= the same samples shifted):
    eval mode (frozen running statistics), training mode (batch statistics of the test batch), and eval mode
    after re-estimating the running statistics on `adapt_samples` other, unlabeled B samples (reset, then
    momentum=None forwards in training mode under no_grad; "AdaBN"). Also the statistics of the normalized
    x̂ = (z − running_mean)/√(running_var + ε) per unit on A and on B with the frozen statistics."""
    if model is None:
        model, data = train_classifier()
    x_test, y_test = domain_a(2000, seed=2)
    x_b = to_domain_b(x_test)
    out = {"A_eval": accuracy(model, x_test, y_test), "B_eval_frozen": accuracy(model, x_b, y_test),
           "A_batch_stats": accuracy(model, x_test, y_test, train_mode=True),
           "B_batch_stats": accuracy(model, x_b, y_test, train_mode=True)}

    lin, bn = model[0], model[1]
    with tn.no_grad():
        for name, xs in (("A", x_test), ("B", x_b)):
            z = lin(tn.tensor(xs))
            xhat = (z - bn.running_mean) / (bn.running_var + bn.eps).sqrt()
            out[f"xhat_{name}_mean_abs"] = float(xhat.mean(0).abs().mean().item())
            out[f"xhat_{name}_std"] = float(xhat.std(0, correction=0).mean().item())

    saved = (bn.running_mean.detach().numpy().copy(), bn.running_var.detach().numpy().copy(),
             bn.num_batches_tracked.detach().numpy().copy(), bn.momentum)
    x_adapt, _ = domain_a(adapt_samples, seed=3)             # unlabeled: only the inputs are used
    bn.reset_running_stats()
    bn.momentum = None
    model.train()
    with tn.no_grad():
        for i in range(0, adapt_samples, 100):
            model(tn.tensor(to_domain_b(x_adapt[i:i + 100])))
    model.eval()
    out["B_eval_reestimated"] = accuracy(model, x_b, y_test)
    bn.running_mean._data[...], bn.running_var._data[...], bn.num_batches_tracked._data[...], bn.momentum = saved
    return out


# ------------------------------------------------------------------ printing

def main():
    model, data = train_classifier()
    print("Seed 002: Linear(8,32) → BatchNorm1d → ReLU → Linear(32,3) trained on domain A (inputs mean 5, std 2)")
    r = running_vs_batch(model, data)
    print("  running statistics after 300 steps (momentum 0.1) vs population statistics of the BN input, first 4 units")
    print("  (the running averages weight the last ~10 batches of 64 and lag the changing weights: an estimate):")
    print(f"    running_mean {np.round(r['running_mean'][:4], 3)}   "
          f"population mean {np.round(r['population_mean'][:4], 3)}")
    print(f"    running_var  {np.round(r['running_var'][:4], 3)}   "
          f"population var  {np.round(r['population_var'][:4], 3)} (unbiased)")
    print(f"  one batch, training mode (batch stats) vs eval mode (running stats): max |difference| "
          f"{r['train_vs_eval_max_diff']:.3f}")
    print(f"  sample 0 in two different batches: training mode differs by {r['sample0_train_two_batches_diff']:.3f},"
          f" eval mode by {r['sample0_eval_two_batches_diff']:.1g}")
    print(f"  a batch of one: eval mode gives the same output as inside the batch: {r['eval_single_equals_batch']};"
          f" training mode raises: {r['train_single_error']}")

    s = small_batches()
    print(f"\nBatches of two from N(5, 2²) ({s['n_batches']} batches)")
    print(f"  normalized values of one batch: {np.round(s['normalized_last_batch_channel0'], 6)}; every batch of two"
          f" gives ±√(σ²_B/(σ²_B+ε)) (largest deviation {s['max_deviation_from_formula']:.1e}),")
    print(f"  i.e. ±1 within 1e-3 in {100 * s['fraction_within_1e-3_of_pm1']:.1f} % of the batches: the output keeps"
          " only which of the two samples is larger")
    print(f"  average stored variance, PyTorch (unbiased ÷(m−1)): {s['pytorch_running_var']:.3f}  "
          f"(expected {s['expected_unbiased']:.1f}, the true variance)")
    print(f"  average stored variance, seed's rule with its σ²_B (÷m): {s['seed_rule_running_var']:.3f}  "
          f"(expected {s['expected_biased']:.1f} = (m−1)/m·σ²: half the true variance)")

    f = frozen_statistics(model, data)
    print("\nFrozen running statistics on shifted data (domain B: x_B = 14 + 1.5·(x_A − 5), labels unchanged)")
    print(f"  x̂ with the running statistics: on A mean |x̂| {f['xhat_A_mean_abs']:.3f}, std {f['xhat_A_std']:.3f};"
          f" on B mean |x̂| {f['xhat_B_mean_abs']:.3f}, std {f['xhat_B_std']:.3f} (1.5 × A's)")
    print(f"  {'accuracy on 2000 test samples':44s} {'domain A':>9s} {'domain B':>9s}")
    print(f"  {'eval mode, frozen running statistics':44s} {f['A_eval']:9.4f} {f['B_eval_frozen']:9.4f}")
    print(f"  {'training mode, statistics of the test batch':44s} {f['A_batch_stats']:9.4f} {f['B_batch_stats']:9.4f}")
    print(f"  {'eval mode, statistics re-estimated on B':44s} {'':9s} {f['B_eval_reestimated']:9.4f}"
          "   (1000 unlabeled B samples)")
    print("  Per-unit normalization undoes x_B = a·x_A + c exactly (a > 0), so batch statistics give identical"
          " predictions on A and B; frozen statistics do not.")


if __name__ == "__main__":
    main()
