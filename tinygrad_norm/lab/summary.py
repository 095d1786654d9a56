"""A sweep's summary of one (experiment, mode, settings): every claim over seeds, judged.

    summary = summarize([results of seed 0, results of seed 1, ...])
    write_summary(group_folder, summary)   # summary.json, summary.md, summary.png

summary.json holds "claims" and "checks": lists of objects with "claim", "section",
"seeds", "values" (one per seed, in seed order; null where not measured), "passed"
(per seed), "threshold" (the report's text), "rule" (its machine form), "interval"
([low, high]), "centre", "median", "pass_rate", "pass_interval", "method" and
"verdict" ("holds", "fails" or "inconclusive"); see stats.py for the rule.
"""
import math

import numpy as np

from .experiment import Threshold
from .report import command_line, write_json, write_text
from .stats import RULE_TEXT, judge

VERDICTS = ("holds", "fails", "inconclusive")


def _key(row):
    return row.get("section") or row["claim"]


def _judged(rows_by_seed, seeds):
    """[claim summary] for one kind of row (claims or checks): rows matched across seeds by
    their section (else their text); a seed without the row counts as not measured."""
    order, first = [], {}
    for rows in rows_by_seed:
        for row in rows:
            if _key(row) not in first:
                order.append(_key(row))
                first[_key(row)] = row
    out = []
    for key in order:
        by_seed = [{_key(r): r for r in rows}.get(key) for rows in rows_by_seed]
        values = [None if r is None else r.get("value") for r in by_seed]
        values = [v if isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]
        passed = [None if r is None else r.get("passed") for r in by_seed]
        rule = Threshold.from_json(first[key].get("rule"))
        row = {"claim": first[key]["claim"], "section": first[key].get("section", ""), "seeds": list(seeds),
               "values": values, "passed": passed, "threshold": first[key]["threshold"],
               "rule": None if rule is None else rule.to_json()}
        row.update(judge(rule, values, passed))
        out.append(row)
    return out


def summarize(results):
    """The summary dict of a list of one group's results.json dicts (any seed order)."""
    if not results:
        raise ValueError("summarize needs the results of at least one seed")
    results = sorted(results, key=lambda r: r["seed"])
    first = results[0]
    for r in results[1:]:
        if (r["experiment"], r["mode"], r.get("overrides") or {}) != \
                (first["experiment"], first["mode"], first.get("overrides") or {}):
            raise ValueError("summarize: the results are not of one experiment, mode and settings")
    seeds = [r["seed"] for r in results]
    claims = _judged([r["claims"] for r in results], seeds)
    checks = _judged([r.get("checks", []) for r in results], seeds)
    return {"experiment": first["experiment"], "title": first["title"], "mode": first["mode"],
            "overrides": first.get("overrides") or {}, "protocol": first.get("protocol", ""),
            "seeds": seeds, "rule": RULE_TEXT, "claims": claims, "checks": checks,
            "counts": {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS},
            "wall_time_s": [r.get("train_time_s") for r in results]}


def _number(v):
    if v is None:
        return "–"
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"


def _rows(judged):
    lines = ["| # | claim | threshold | per seed | median | 95 % interval | pass rate | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for i, c in enumerate(judged, 1):
        per_seed = " ".join(_number(v) + ("" if p is True else "✗") for v, p in zip(c["values"], c["passed"]))
        low, high = c["interval"]
        interval = f"[{_number(low)}, {_number(high)}]"
        if c["method"].startswith("pass rate"):
            interval += " (pass rate)"
        note = f" ({c['note']})" if c["note"] else ""
        lines.append(f"| {c['section'] or i} | {c['claim'].replace('|', '/')} | {c['threshold']} | {per_seed} | "
                     f"{_number(c['median'])} | {interval} | {sum(p is True for p in c['passed'])}/"
                     f"{len(c['passed'])} | **{c['verdict']}**{note} |")
    return lines


def summary_markdown(summary):
    seeds = summary["seeds"]
    counts = summary["counts"]
    lines = [f"# {summary['title']}: {len(seeds)} seeds", "",
             f"- command: `{command_line(summary['experiment'], summary['mode'], None, summary['overrides'], 'sweep')}"
             f" --seeds {','.join(map(str, seeds))}`",
             f"- protocol: {summary['protocol']} of docs/protocols.md; seeds {', '.join(map(str, seeds))}",
             f"- claims: {counts['holds']} hold, {counts['fails']} fail, {counts['inconclusive']} inconclusive",
             "", summary["rule"], "",
             "Per seed: the claim's statistic; ✗ marks a seed on which it FAILS.", "",
             "## The paper's claims", ""] + _rows(summary["claims"])
    if summary["checks"]:
        lines += ["", "## Sanity checks", ""] + _rows(summary["checks"])
    return "\n".join(lines) + "\n"


def summary_figure(summary, folder):
    """summary.png: per claim, every seed's value (○ pass, × fail), the threshold and the interval."""
    from .plotting import new_figure, save_figure
    rows = [c for c in summary["claims"] + summary["checks"] if any(v is not None for v in c["values"])]
    if not rows:
        return None
    cols = min(3, len(rows))
    nrows = math.ceil(len(rows) / cols)
    fig = new_figure((4.2 * cols, 2.6 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, cols)).ravel()
    for ax, c in zip(axes, rows):
        rule = Threshold.from_json(c["rule"])
        xs = np.arange(len(c["seeds"]))
        for x, v, p in zip(xs, c["values"], c["passed"]):
            if v is not None:
                ax.plot(x, v, "o" if p is True else "x", color="tab:blue" if p is True else "tab:red")
        if rule is not None:
            for b in (rule.bound if rule.op == "between" else [rule.bound]):
                ax.axhline(b, color="k", ls="--", lw=0.8)
            low, high = c["interval"]
            if low is not None and not c["method"].startswith("pass rate"):
                ax.axhspan(low, high, color="tab:green" if c["verdict"] == "holds" else
                           "tab:red" if c["verdict"] == "fails" else "tab:orange", alpha=0.15)
            finite = [v for v in c["values"] if v is not None]
            if rule.log and finite and min(finite) > 0:
                ax.set_yscale("log")
        ax.set_xticks(xs, [str(s) for s in c["seeds"]], fontsize=7)
        ax.set_xlabel("seed", fontsize=8)
        title = (c["section"] + ": " if c["section"] else "") + c["claim"]
        ax.set_title(title if len(title) <= 60 else title[:59] + "…", fontsize=7)
        ax.text(0.02, 0.95, c["verdict"], transform=ax.transAxes, va="top", fontsize=8, weight="bold")
        ax.tick_params(labelsize=7)
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    fig.suptitle(f"{summary['title'][:90]}\n{len(summary['seeds'])} seeds: dashed = threshold, "
                 "band = 95 % interval", fontsize=9)
    return save_figure(fig, folder, "summary.png", 100)


def write_summary(folder, summary):
    """summary.json, summary.md and (with matplotlib) summary.png into `folder`; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "summary.json", summary)
    write_text(folder / "summary.md", summary_markdown(summary))
    names = ["summary.json", "summary.md"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return names
    figure = summary_figure(summary, folder)
    return names + ([figure] if figure else [])
