"""What a run writes besides its checkpoints: results.json, report.md and the summary it prints.

All files are written atomically (a temporary file, fsync, rename): a reader sees the
old file or the whole new one. JSON is strict: NaN and ±inf become null.
"""
import json
import math

import numpy as np

from .. import __version__
from .._atomic import atomic_write


def jsonable(obj):
    """obj with numpy types turned into Python ones and non-finite floats into None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_text(path, text):
    """Write `text` to `path` atomically (temp file in the same directory, fsync, os.replace)."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def write_json(path, obj):
    """Write `obj` as strict JSON (NaN/inf become null), atomically."""
    write_text(path, json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n")


def read_results(path):
    """The JSON object in `path`, or None when there is none or it is not readable JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def duration(seconds):
    """1:02:03 or 2:03."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def command_line(name, mode, seed=None, overrides=None, verb="run"):
    """The `tinygrad-norm` command that makes this run (or sweep, with verb="sweep")."""
    parts = [f"tinygrad-norm {verb} {name}", {"quick": " --quick", "full": " --full"}.get(mode, "")]
    parts += [f" --set {k}={json.dumps(v, separators=(',', ':')) if isinstance(v, (list, dict)) else v}"
              for k, v in sorted((overrides or {}).items())]
    if seed is not None:
        parts.append(f" --seed {seed}")
    return "".join(parts)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_table(rows):
    lines = ["| # | claim | measured | threshold | verdict |", "|---|---|---|---|---|"]
    for i, c in enumerate(rows, 1):
        lines.append(f"| {c.section or i} | {_cell(c.claim)} | {_cell(c.measured)} | {_cell(c.threshold)} | "
                     f"**{c.verdict}** |")
    return lines


def report_markdown(experiment, cfg, arms, claims, checks, figures, figure_note, results):
    """report.md of one run: the paper's claims, the sanity checks apart, configuration, figures."""
    lines = [f"# {experiment.title}", "",
             f"{experiment.paper}. Protocol: {experiment.protocol} of docs/protocols.md "
             "(in the tinygrad_norm repository).", "",
             f"- command: `{command_line(experiment.name, cfg['mode'], cfg['seed'], results.get('overrides'))}`",
             f"- mode: {cfg['mode']}, seed {cfg['seed']}, tinygrad_norm {__version__}",
             f"- wall time: {duration(results['wall_time_s'])} this invocation; "
             f"training {duration(results['train_time_s'])} in total (over resumes)",
             f"- claims: {results['passed']} PASS, {results['failed']} FAIL"
             + (f"; sanity checks: {results['checks_passed']} PASS, {results['checks_failed']} FAIL"
                if checks else ""), ""]
    if experiment.summary:
        lines += [experiment.summary, ""]
    if cfg["mode"] == "quick":
        lines += ["Quick mode: a reduced budget that shows the direction of every effect. The thresholds are "
                  "the default protocol's; a claim that needs more steps than the quick budget can FAIL here.", ""]
    lines += ["## The paper's claims", ""] + claims_table(claims)
    if checks:
        lines += ["", "## Sanity checks", "",
                  "True by construction or tests of the engine, not claims of the paper: a FAIL here is a bug.", ""]
        lines += claims_table(checks)
    diverged = [(a, r) for a, r in arms.items() if r.get("diverged_at") is not None]
    if diverged:
        lines += ["", "Diverged: " + ", ".join(f"{a} diverged at step {r['diverged_at']} ({_why(r)})"
                                              for a, r in diverged) + "."]
    lines += ["", "## Configuration", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {_cell(json.dumps(value))} |" for key, value in jsonable(cfg).items()] + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    if figure_note:
        lines += [figure_note, ""]
    lines += ["Every curve is in results.json (arms → curves)."]
    return "\n".join(lines) + "\n"


def _why(result):
    """Why an arm diverged: its loss was not finite, or too large for its `diverge_factor`."""
    loss, initial = result.get("final_loss"), result.get("initial_loss")
    if loss is None or not math.isfinite(loss):
        return "loss not finite"
    return f"loss {loss:.3g}, initial {initial:.3g}" if initial is not None else f"loss {loss:.3g}"


def print_summary(stream, experiment, claims, checks, results, folder):
    rows = claims + checks
    width = min(max([len(c.claim) for c in rows] + [5]), 70)
    stream.write(f"\n{experiment.title} ({results['mode']}, seed {results['seed']})\n")
    for title, group in (("claims", claims), ("sanity checks", checks)):
        if not group:
            continue
        stream.write(f" {title}:\n")
        for c in group:
            claim = c.claim if len(c.claim) <= width else c.claim[:width - 1] + "…"
            stream.write(f"  {c.verdict}  {claim:{width}s}  {c.measured}  (threshold: {c.threshold})\n")
    stream.write(f"{results['passed']}/{len(claims)} claims PASS"
                 + (f", {results['checks_passed']}/{len(checks)} sanity checks PASS" if checks else "")
                 + f". Wall time {duration(results['wall_time_s'])} ({results['wall_time_s']:.1f} s). "
                 f"Results in {folder}/ (results.json, report.md" + "".join(f", {f}" for f in results["figures"])
                 + ")\n")
    stream.flush()
