"""Judging a claim over seeds: a 95 % interval and a three-valued verdict.

The rule (decided before any seed runs, and printed in every summary.md):

- Each seed gives the claim's statistic. The arms of one seed share their
  initial weights and batches, so the statistic is already paired (a ratio or a
  difference between the arms of the same seed).
- **Numeric claims** (a `Threshold` and a finite value on every seed): a
  two-sided 95 % Student-t interval for the mean of the statistic over seeds.
  Ratios and scales (`Threshold(log=True)`) are averaged on log(value): the
  interval is that of the geometric mean.
- **holds**: the whole interval lies on the passing side of the threshold;
  **fails**: the whole interval lies on the failing side; **inconclusive**: it
  straddles the threshold, or there is only one seed (no interval).
- **Binary claims** (no threshold, or a seed where the statistic could not be
  measured: a diverged arm, a level never reached): the fraction of seeds that
  pass, with a 95 % Wilson interval; holds when its lower end is above 1/2,
  fails when its upper end is below 1/2, inconclusive otherwise.
"""
import math

import numpy as np

CONFIDENCE = 0.95
Z = 1.959963984540054          # the normal's 97.5 % quantile
# Student's t, 97.5 % quantile, by degrees of freedom
_T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 6: 2.4469, 7: 2.3646, 8: 2.3060, 9: 2.2622,
         10: 2.2281, 11: 2.2010, 12: 2.1788, 13: 2.1604, 14: 2.1448, 15: 2.1314, 16: 2.1199, 17: 2.1098,
         18: 2.1009, 19: 2.0930, 20: 2.0860, 21: 2.0796, 22: 2.0739, 23: 2.0687, 24: 2.0639, 25: 2.0595,
         26: 2.0555, 27: 2.0518, 28: 2.0484, 29: 2.0452, 30: 2.0423, 40: 2.0211, 60: 2.0003, 120: 1.9799}

RULE_TEXT = (
    "95 % intervals over seeds, decided before the seeds ran: for a numeric claim, a Student-t interval of "
    "the mean of the per-seed statistic (of log(value) for ratios, i.e. of the geometric mean); the claim "
    "**holds** when the whole interval is on the passing side of the threshold, **fails** when it is wholly "
    "on the failing side, and is **inconclusive** when it straddles the threshold or there is one seed. "
    "A claim without a numeric threshold, or with a seed where it could not be measured (a diverged arm, a "
    "level never reached), is judged by its pass rate with a 95 % Wilson interval: holds above 1/2, "
    "fails below 1/2.")


def t_quantile(df):
    """Student's t 97.5 % quantile for `df` degrees of freedom (table; between entries, the next lower df)."""
    if df < 1:
        raise ValueError(f"t_quantile needs df ≥ 1, got {df}")
    if df in _T975:
        return _T975[df]
    lower = max(k for k in _T975 if k <= df)
    return _T975[lower] if df < 1000 else Z


def t_interval(values, log=False):
    """(centre, low, high): the mean of `values` and its 95 % t interval; with log, all three are
    exp of those of log(values) (the geometric mean). One value: (value, None, None)."""
    x = np.asarray(values, dtype=np.float64)
    if log:
        x = np.log(x)
    centre = float(x.mean())
    if len(x) < 2:
        low = high = None
    else:
        half = t_quantile(len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
        low, high = centre - half, centre + half
    if log:
        centre = math.exp(centre)
        low, high = (None, None) if low is None else (math.exp(low), math.exp(high))
    return centre, low, high


def wilson_interval(passes, n):
    """The 95 % Wilson score interval (low, high) of a proportion passes/n."""
    if n <= 0:
        raise ValueError("wilson_interval needs n ≥ 1")
    p = passes / n
    denom = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def interval_verdict(rule, low, high):
    """holds / fails / inconclusive for the interval [low, high] of a statistic judged by `rule`."""
    if low is None or high is None:
        return "inconclusive"
    if rule.op == "between":
        a, b = rule.bound
        if a <= low and high <= b:
            return "holds"
        return "fails" if high < a or low > b else "inconclusive"
    b = rule.bound
    holds = {">=": low >= b, ">": low > b, "<=": high <= b, "<": high < b}[rule.op]
    fails = {">=": high < b, ">": high <= b, "<=": low > b, "<": low >= b}[rule.op]
    return "holds" if holds else "fails" if fails else "inconclusive"


def rate_verdict(low, high):
    """holds / fails / inconclusive for a Wilson interval of a pass rate, against 1/2."""
    return "holds" if low > 0.5 else "fails" if high < 0.5 else "inconclusive"


def judge(rule, values, passed):
    """Judge one claim over seeds (see the module docstring).

    rule: a Threshold or None; values: the per-seed statistic (None where not measured);
    passed: the per-seed PASS (True) / FAIL (False or None).
    Returns {"method", "centre", "interval" [low, high], "median", "pass_rate",
    "pass_interval", "verdict", "note"}."""
    n = len(values)
    if n == 0:
        raise ValueError("judge needs at least one seed")
    k = sum(p is True for p in passed)
    pass_low, pass_high = wilson_interval(k, n)
    finite = [v for v in values if v is not None and math.isfinite(v)]
    out = {"pass_rate": k / n, "pass_interval": [pass_low, pass_high],
           "median": float(np.median(finite)) if finite else None, "note": ""}
    if rule is not None and len(finite) == n:
        log = rule.log and all(v > 0 for v in finite)
        if rule.log and not log:
            out["note"] = "a value ≤ 0: interval on the values, not their logarithm"
        centre, low, high = t_interval(finite, log=log)
        out.update(method="t interval of the geometric mean" if log else "t interval of the mean",
                   centre=centre, interval=[low, high], verdict=interval_verdict(rule, low, high))
        if n == 1:
            out["note"] = "one seed: no interval"
        return out
    missing = n - len(finite)
    out.update(method="pass rate (Wilson interval)", centre=k / n, interval=[pass_low, pass_high],
               verdict=rate_verdict(pass_low, pass_high))
    if rule is not None:
        out["note"] = f"{missing} seed(s) without a value: judged by pass rate"
    return out
