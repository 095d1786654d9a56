"""Seed 000 ("The Unstable World of Deep Learning"), Tables 1 and 2, recomputed with tinygrad_norm.

    python examples/seeds/seed000_batchnorm_by_hand.py

The seed's network has one input feature: layer 1 is h = W₁·x (no bias, no
activation), layer 2 is z = W₂·h followed by ReLU. Its three batches of four
inputs and its weights, (W₁, W₂) = (0.5, 0.8), then (0.3, 0.9), then (0.2, 1.1),
are used as given. The seed names no loss, so its "weight updates" are set by
hand, not learned. Table 2 inserts BatchNorm1d(1) on layer 1's output (γ = 1,
β = 0, ε = 1e-5, training mode), then ReLU.

What is computed (functions return plain dicts, `main()` prints them):
    without_bn()          Table 1: layer outputs, batch mean and std (biased and unbiased)
    with_bn()             Table 2: batch mean, biased variance (what BN divides by), the
                          normalized values, the ReLU outputs, and ε = 1e-3 (Keras) values
    running_statistics()  running mean/var after each batch: PyTorch (m = 0.1, unbiased
                          variance stored), Keras (m = 0.99, non-fused biased / fused
                          unbiased), and the seed's own snippet with m = 0.1 plugged in
    seed_checks()         every number of the two tables: seed vs recomputed

What the seed got wrong (details in examples/seeds/README.md):
  * The "Std" of the batch statistics: 0.31 / 0.16 / 0.10 are neither the biased
    (0.2795 / 0.1477 / 0.0894) nor the unbiased (0.3227 / 0.1706 / 0.1033) standard
    deviation of the layer-1 outputs (only the last one matches, as the unbiased value).
  * The "Key observation" means of steps 1 and 3 (1.25, 0.55) are 1.125 and 0.52.
  * Table 2's normalized values divide by the wrong σ (0.31, 0.16, 0.10). BatchNorm divides
    by √(σ²_B + ε) with the biased σ²_B: steps 1 and 3 give ±0.447 / ±1.342, step 2 gives
    ±0.508 / ±1.320. The seed's values have a standard deviation of ≈ 0.90, not the
    1 it claims.
  * Its "Layer 2 Input" column contradicts its own "After ReLU" rows (0.71 vs 1.21 and
    0.0 vs 0.40 in step 1, 0.29 vs 0.47 in step 2).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import tinygrad_norm as tn  # noqa: E402
from tinygrad_norm import nn  # noqa: E402

# ------------------------------------------------------------------ the seed's data

INPUTS = [[2.0, 3.0, 1.5, 2.5], [2.2, 3.1, 1.8, 2.7], [2.4, 3.2, 2.0, 2.8]]
W1 = [0.5, 0.3, 0.2]
W2 = [0.8, 0.9, 1.1]
EPS = 1e-5            # PyTorch's default
KERAS_EPS = 1e-3      # Keras' default
TORCH_MOMENTUM = 0.1  # new = (1 − m)·old + m·batch
KERAS_MOMENTUM = 0.99  # new = m·old + (1 − m)·batch

# What the seed prints (quoted for comparison only; never used as a result).
SEED = {
    "t1_mean": [1.125, 0.735, 0.52], "t1_std": [0.31, 0.16, 0.10],
    "t1_z2": [[0.8, 1.2, 0.6, 1.0], [0.59, 0.84, 0.49, 0.73], [0.53, 0.70, 0.44, 0.62]],
    "key_obs_mean": [1.25, 0.73, 0.55],
    "t2_sigma": [0.31, 0.16, 0.10],
    "t2_normalized": [[-0.40, 1.21, -1.21, 0.40], [-0.47, 1.22, -1.22, 0.47], [-0.40, 1.20, -1.20, 0.40]],
    "t2_relu_row": [[0.0, 1.21, 0.0, 0.40], [0.0, 1.22, 0.0, 0.47], [0.0, 1.20, 0.0, 0.40]],
    "t2_layer2_column": [[0.0, 0.71, 0.0, 0.0], [0.0, 1.22, 0.0, 0.29], [0.0, 1.20, 0.0, 0.40]],
}


def _batch(step):
    """The inputs of step `step` (0-based) as a (4, 1) float64 Tensor (N = 4 samples, C = 1 feature)."""
    return tn.tensor(np.array(INPUTS[step], np.float64).reshape(4, 1))


def _linear(weight):
    """nn.Linear(1, 1, bias=False) in float64 with its weight set to `weight`."""
    layer = nn.Linear(1, 1, bias=False).double()
    nn.init.constant_(layer.weight, weight)
    return layer


def _col(t):
    """A (4, 1) Tensor as a list of 4 floats."""
    return [float(v) for v in t.detach().numpy().ravel()]


# ------------------------------------------------------------------ Table 1

def without_bn():
    """Table 1, one dict per step: h (layer 1 output), z (layer 2 pre-activation), relu,
    and the batch mean and std of h and of relu(z) (std biased: ÷N, unbiased: ÷(N − 1))."""
    rows = []
    for step in range(3):
        x = _batch(step)
        h = _linear(W1[step])(x)
        z = _linear(W2[step])(h)
        out = nn.ReLU()(z)
        rows.append({
            "x": _col(x), "w1": W1[step], "w2": W2[step], "h": _col(h), "z": _col(z), "relu": _col(out),
            "h_mean": float(h.mean().item()),
            "h_std_biased": float(h.std(correction=0).item()),
            "h_std_unbiased": float(h.std(correction=1).item()),
            "out_mean": float(out.mean().item()),
            "out_std_biased": float(out.std(correction=0).item()),
        })
    return rows


# ------------------------------------------------------------------ Table 2

def with_bn(eps=EPS):
    """Table 2, one dict per step: h = W₁·x, the batch mean, the biased variance σ²_B (the one
    BatchNorm divides by), the unbiased one (the one PyTorch stores), the normalized values
    x̂ = (h − μ)/√(σ²_B + ε) from nn.BatchNorm1d in training mode, their mean and (biased) std,
    and relu(x̂) — the input of layer 2. `eps`: 1e-5 (PyTorch) or 1e-3 (Keras)."""
    bn = nn.BatchNorm1d(1, eps=eps).double()   # γ = 1, β = 0, training mode
    rows = []
    for step in range(3):
        h = _linear(W1[step])(_batch(step))
        xhat = bn(h)
        rows.append({
            "h": _col(h), "mean": float(h.mean().item()),
            "var_biased": float(h.var(correction=0).item()), "var_unbiased": float(h.var(correction=1).item()),
            "sigma_used": float(np.sqrt(h.var(correction=0).item() + eps)),
            "normalized": _col(xhat), "normalized_mean": float(xhat.mean().item()),
            "normalized_std": float(xhat.std(correction=0).item()),
            "relu": _col(nn.ReLU()(xhat)),
        })
    return rows


# ------------------------------------------------------------------ running statistics

def running_statistics():
    """Running mean and variance after each of the three batches, starting from (0, 1), under:

        pytorch          nn.BatchNorm1d(momentum=0.1): new = 0.9·old + 0.1·batch, the UNBIASED
                         batch variance is stored (it normalizes with the biased one)
        keras_nonfused   new = 0.99·old + 0.01·batch with the BIASED batch variance
                         (tf.keras non-fused path)
        keras_fused      new = 0.99·old + 0.01·batch with the unbiased variance (fused path):
                         nn.BatchNorm1d(momentum=0.01) computes exactly this
        seed_snippet_m0.1  the seed's snippet new = m·old + (1 − m)·batch (Keras' formula) with
                         PyTorch's m = 0.1 pasted in and the biased σ²_B it defines: 90 % of the
                         new batch, a porting bug (d2l 1.x has it)
    Returns {convention: {"mean": [3 floats], "var": [3 floats]}}.
    """
    torch_bn = nn.BatchNorm1d(1, momentum=TORCH_MOMENTUM).double()
    fused_bn = nn.BatchNorm1d(1, eps=KERAS_EPS, momentum=1 - KERAS_MOMENTUM).double()
    out = {k: {"mean": [], "var": []} for k in ("pytorch", "keras_nonfused", "keras_fused", "seed_snippet_m0.1")}
    nonfused, snippet = [0.0, 1.0], [0.0, 1.0]
    for step in range(3):
        h = _linear(W1[step])(_batch(step))
        torch_bn(h)
        fused_bn(h)
        mean, var_b = float(h.mean().item()), float(h.var(correction=0).item())
        m = KERAS_MOMENTUM
        nonfused = [m * nonfused[0] + (1 - m) * mean, m * nonfused[1] + (1 - m) * var_b]
        m = TORCH_MOMENTUM
        snippet = [m * snippet[0] + (1 - m) * mean, m * snippet[1] + (1 - m) * var_b]
        for key, (rm, rv) in (("pytorch", (torch_bn.running_mean.item(), torch_bn.running_var.item())),
                              ("keras_fused", (fused_bn.running_mean.item(), fused_bn.running_var.item())),
                              ("keras_nonfused", nonfused), ("seed_snippet_m0.1", snippet)):
            out[key]["mean"].append(float(rm))
            out[key]["var"].append(float(rv))
    return out


# ------------------------------------------------------------------ the seed vs the recomputation

def _rounds_to(seed_value, value):
    """Does `value` round to `seed_value` at the seed's precision (2 decimals in these tables)?"""
    return abs(seed_value - value) <= 0.005 + 1e-9


def seed_checks():
    """Every number of Tables 1 and 2 (and the 'Key observation' means): a list of dicts
    {what, seed, correct, ok, why}; `ok` = the seed's value is the correct one rounded."""
    t1, t2 = without_bn(), with_bn()
    rows = []

    def add(what, seed, correct, why, ok=None):
        rows.append({"what": what, "seed": seed, "correct": correct,
                     "ok": _rounds_to(seed, correct) if ok is None else ok, "why": why})

    for s in range(3):
        for i in range(4):
            add(f"T1 step {s + 1} sample {i + 1}: layer-2 pre-activation W₂·W₁·x", SEED["t1_z2"][s][i],
                t1[s]["z"][i], "")
        add(f"T1 step {s + 1}: mean of layer-1 outputs", SEED["t1_mean"][s], t1[s]["h_mean"], "")
        b, u = t1[s]["h_std_biased"], t1[s]["h_std_unbiased"]
        add(f"T1 step {s + 1}: std of layer-1 outputs", SEED["t1_std"][s], b,
            f"biased (÷4) {b:.4f}, unbiased (÷3) {u:.4f}",
            ok=_rounds_to(SEED["t1_std"][s], b) or _rounds_to(SEED["t1_std"][s], u))
        add(f"Key observation step {s + 1}: mean of layer-2 inputs", SEED["key_obs_mean"][s], t1[s]["h_mean"],
            "the mean of the layer-1 outputs listed in the same table")
        add(f"T2 step {s + 1}: σ BatchNorm divides by", SEED["t2_sigma"][s], t2[s]["sigma_used"],
            "√(σ²_B + ε) with the biased σ²_B (÷N), as in the seed's own formula")
        for i in range(4):
            add(f"T2 step {s + 1} sample {i + 1}: normalized x̂", SEED["t2_normalized"][s][i],
                t2[s]["normalized"][i], f"(h − {t2[s]['mean']:.4g}) / {t2[s]['sigma_used']:.4f}")
        for i in (1, 3):
            add(f"T2 step {s + 1} sample {i + 1}: 'After ReLU' row", SEED["t2_relu_row"][s][i], t2[s]["relu"][i],
                "relu of the correct x̂")
            add(f"T2 step {s + 1} sample {i + 1}: 'Layer 2 Input' column", SEED["t2_layer2_column"][s][i],
                t2[s]["relu"][i], "the same quantity as the 'After ReLU' row")
    return rows


# ------------------------------------------------------------------ printing

def _fmt(values, spec="+.4f"):
    return "[" + ", ".join(format(v, spec) for v in values) + "]"


def main():
    print("Seed 000, Table 1 (no BatchNorm): h = W1·x, z = W2·h, out = relu(z); std: biased ÷N / unbiased ÷(N−1)")
    for s, r in enumerate(without_bn()):
        print(f"  step {s + 1}: W1 = {r['w1']}, W2 = {r['w2']}, x = {r['x']}")
        print(f"    layer-1 outputs h   {_fmt(r['h'])}   mean {r['h_mean']:.4f}  "
              f"std {r['h_std_biased']:.4f} / {r['h_std_unbiased']:.4f}   (seed: mean {SEED['t1_mean'][s]}, "
              f"std {SEED['t1_std'][s]})")
        print(f"    layer-2 relu(z)     {_fmt(r['relu'])}   mean {r['out_mean']:.4f}  std {r['out_std_biased']:.4f}")

    print("\nSeed 000, Table 2 (BatchNorm1d(1) on h, γ=1, β=0, training mode), then ReLU")
    keras = with_bn(KERAS_EPS)
    for s, r in enumerate(with_bn()):
        print(f"  step {s + 1}: h = {_fmt(r['h'])}")
        print(f"    μ_B = {r['mean']:.4f}   σ²_B (biased, normalizes) = {r['var_biased']:.6f}   "
              f"unbiased (stored by PyTorch) = {r['var_unbiased']:.6f}   √(σ²_B+ε) = {r['sigma_used']:.4f}"
              f"   (seed: σ = {SEED['t2_sigma'][s]})")
        print(f"    x̂ (ε=1e-5)         {_fmt(r['normalized'])}   mean {r['normalized_mean']:+.1e}  "
              f"std {r['normalized_std']:.5f}")
        print(f"    seed's x̂           {_fmt(SEED['t2_normalized'][s], '+.2f')}   std "
              f"{np.std(SEED['t2_normalized'][s]):.3f}")
        print(f"    relu(x̂) → layer 2  {_fmt(r['relu'])}")
        print(f"    x̂ with Keras ε=1e-3 {_fmt(keras[s]['normalized'])}   std {keras[s]['normalized_std']:.4f}")

    print("\nRunning statistics after each batch, from running_mean = 0, running_var = 1")
    rs = running_statistics()
    labels = {"pytorch": "PyTorch m=0.1: 0.9·old+0.1·batch, unbiased var",
              "keras_nonfused": "Keras m=0.99: 0.99·old+0.01·batch, biased var (non-fused)",
              "keras_fused": "Keras m=0.99, unbiased var (fused)",
              "seed_snippet_m0.1": "seed snippet m·old+(1−m)·batch with m=0.1 (bug)"}
    print(f"  {'convention':58s} {'mean after 1, 2, 3':>30s}   {'var after 1, 2, 3':>30s}")
    for key, label in labels.items():
        print(f"  {label:58s} {_fmt(rs[key]['mean'], '.6f'):>30s}   {_fmt(rs[key]['var'], '.6f'):>30s}")

    print("\nWhere the seed is wrong (seed value vs recomputed, rounded to the seed's 2 decimals)")
    print(f"  {'what':62s} {'seed':>7s} {'correct':>9s}  why")
    checks = seed_checks()
    wrong = [r for r in checks if not r["ok"]]
    for r in wrong:
        print(f"  {r['what']:62s} {r['seed']:7.2f} {r['correct']:9.4f}  {r['why']}")
    print(f"  {len(wrong)} of {len(checks)} checked numbers are wrong; the other {len(checks) - len(wrong)} "
          "agree with the recomputation at the seed's precision.")


if __name__ == "__main__":
    main()
