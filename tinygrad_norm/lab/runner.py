"""The experiment framework behind `tinygrad-norm run NAME`.

    results = tn.lab.run("ioffe", mode="quick", seed=0, out="runs")
    # -> runs/ioffe/results.json, runs/ioffe/*.png, runs/ioffe/report.md

An `Experiment` is a paper's protocol written as three functions:

    train(lab, cfg)             trains its networks ("arms"), each through `lab.train(...)`,
                                and returns {arm: result}
    claims(cfg, arms)           the paper's claims as `Claim`s: measured figure, threshold,
                                PASS/FAIL
    figures(cfg, arms, out)     writes PNG figures into `out`, returns their file names

and a config per mode: "quick" (a small budget that still shows the direction of
every effect), "default" (the CPU version of PROTOCOLS.md), "full" (paper scale).

`lab.train` is the training loop every arm shares. It gives the framework its
guarantees:
- progress: a bar on stderr with the step, the current loss and the speed;
- checkpoints: every `checkpoint_every` steps, on Ctrl-C and at the end, the
  whole state (model, optimizer, random generator, position in the data, the
  curves so far) goes to DIR/NAME/checkpoints/<mode>-seed<S>/<arm>.npz with
  `tn.save` (atomic). Re-running the same command continues from there and
  computes exactly what an uninterrupted run computes;
- divergence: a NaN/inf loss (or, with `diverge_factor`, a loss above that
  multiple of the first step's) ends the arm as "diverged at step k"; the other
  arms and the report go on.
"""
import ctypes
import json
import math
import platform
import signal
import sys
import threading
from importlib import import_module
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from .._atomic import atomic_write
from ..random import get_rng_state, set_rng_state
from ..serialization import CheckpointError, load, save

__all__ = ["Experiment", "Claim", "Lab", "register", "all_experiments", "get", "run", "MODES",
           "first_step_reaching", "write_json", "write_text"]

MODES = ("quick", "default", "full")


# ----------------------------------------------------------------- definitions

@dataclass
class Claim:
    """One row of the report: a claim of the paper and what this run measured.

    passed: True (PASS), False (FAIL) or None (not measurable in this run, e.g. an arm
    diverged or a step was never reached; reported as FAIL with the reason in `measured`).
    value: the number behind `measured` (for results.json), or None.
    """
    claim: str
    measured: str
    threshold: str
    passed: object
    value: object = None
    section: str = ""

    @property
    def verdict(self):
        return "PASS" if self.passed is True else "FAIL"


@dataclass
class Experiment:
    """A reproducible experiment: see the module docstring."""
    name: str
    title: str
    paper: str
    protocol: str
    modes: dict
    train: object
    claims: object
    figures: object
    summary: str = ""

    def config(self, mode="default", seed=0, overrides=None):
        """The configuration dict of `mode`, with `seed` and `overrides` applied."""
        if mode not in self.modes:
            raise ValueError(f"experiment {self.name!r} has no mode {mode!r}; modes: {', '.join(self.modes)}")
        cfg = dict(self.modes[mode])
        for key, value in (overrides or {}).items():
            if key not in cfg:
                raise ValueError(f"unknown setting {key!r} for experiment {self.name!r}; "
                                 f"settings: {', '.join(sorted(cfg))}")
            cfg[key] = value
        cfg["mode"], cfg["seed"] = mode, int(seed)
        return cfg


_REGISTRY = {}


def register(experiment):
    """Add an Experiment to the registry (`tinygrad-norm list` shows it). Returns it."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"register expects an Experiment, got {type(experiment).__name__}")
    _REGISTRY[experiment.name] = experiment
    return experiment


def all_experiments():
    """{name: Experiment} of every registered experiment (the built-in ones first)."""
    import_module("tinygrad_norm.lab.experiments")  # registers the built-in ones
    return dict(_REGISTRY)


def get(name):
    """The registered experiment `name`; `santurkar-ics` and `santurkar_ics` are the same."""
    table = all_experiments()
    key = name.replace("-", "_")
    if key not in table:
        raise KeyError(f"no experiment named {name!r}; available: {', '.join(table) or 'none'}")
    return table[key]


# ------------------------------------------------------------------- progress

class ProgressBar:
    """One line on stderr: `ioffe/bn [#####.....] 4200/15000 loss 0.1234 210 it/s ETA 0:51`.
    Redrawn in place at most 10 times a second on a terminal; elsewhere (a log file)
    one line per 10 % of the run."""

    def __init__(self, label, total, start=0, stream=None, enabled=True):
        self.label, self.total, self.start_step = label, total, start
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = self.last = time.perf_counter()
        self.next_line = start + max(total // 10, 1)
        self.printed = None   # the step of the last line written (log-file mode)

    def update(self, step, loss, force=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.live and (force or now - self.last >= 0.1):
            self.last = now
            self.stream.write("\r" + self._line(step, loss, now))
            self.stream.flush()
        elif not self.live and (force or step >= self.next_line):
            self.next_line = step + max(self.total // 10, 1)
            self.printed = step
            self.stream.write(self._line(step, loss, now) + "\n")
            self.stream.flush()

    def close(self, step, loss, note=""):
        if not self.enabled or (not self.live and not note and self.printed == step):
            return
        self.stream.write(("\r" if self.live else "") + self._line(step, loss, time.perf_counter()) + note + "\n")
        self.stream.flush()

    def _line(self, step, loss, now):
        width = 24
        filled = int(width * step / max(self.total, 1))
        rate = (step - self.start_step) / max(now - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        eta_text = _duration(eta) if math.isfinite(eta) else "?"
        loss_text = f"{loss:.4f}" if loss is not None and math.isfinite(loss) else str(loss)
        return (f"{self.label:18s} [{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} "
                f"loss {loss_text} {rate:6.0f} it/s ETA {eta_text}  ")


def _duration(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# -------------------------------------------------------------- the lab context

class _Interrupt:
    """Ctrl-C during a run: the first press asks the loop to stop after the current
    step (and checkpoint); a second press stops at once (the last periodic
    checkpoint stays)."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        sys.stderr.write("\ninterrupt: stopping after this step and saving a checkpoint "
                         "(press Ctrl-C again to stop at once)\n")

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


class Lab:
    """What an experiment's `train(lab, cfg)` gets: the config and the shared training loop."""

    def __init__(self, experiment, config, checkpoint_dir, progress=True, callback=None, restart=False,
                 interrupt=None):
        self.experiment, self.config = experiment, config
        self.checkpoint_dir = Path(checkpoint_dir)
        self.progress, self.callback, self.restart = progress, callback, restart
        self.interrupt = interrupt or _Interrupt()
        self._config_text = json.dumps(_jsonable(config), sort_keys=True)

    def checkpoint_path(self, arm):
        return self.checkpoint_dir / f"{arm}.npz"

    def train(self, arm, model, optimizer, batches, steps, loss_fn, evaluate=None, eval_steps=(),
              curves=None, checkpoint_every=1000, log_every=100, diverge_factor=None):
        """Train `model` for `steps` SGD steps, resumably. Returns the arm's result dict.

        Args:
            arm: the name of this network (e.g. "bn"); names its checkpoint.
            model, optimizer: built by the experiment (from its seed) before calling.
            batches: a DataLoader with `seed` set (its epochs' orders depend only on
                (seed, epoch), so the loop can resume mid-epoch), or a function
                `batch(step)` returning the batch of a step.
            steps: the number of optimizer steps.
            loss_fn: `loss_fn(*batch)` -> the scalar loss Tensor of a batch.
            evaluate: `evaluate(step, batch)`, called before the update of every step in
                `eval_steps` (with that step's batch) and after the last step (batch None)
                if `steps` is in `eval_steps`. It appends its measurements to `curves`.
            curves: the dict `evaluate` fills; saved in checkpoints and restored on resume.
            checkpoint_every: steps between periodic checkpoints.
            log_every: the training loss is averaged over windows of this many steps.
            diverge_factor: None, or a loss above diverge_factor × the (positive) loss of
                step 0 also ends the arm as diverged (Bjorck et al.: "loss > 1000× its
                initial value").

        Returns {"steps", "steps_done", "diverged_at" (None or the step whose loss was
        not finite or too large), "curves", "train_loss" ({"step": [...], "loss": [...]}:
        window means), "initial_loss" (step 0's), "final_loss" (at divergence: the offending
        loss), "wall_time_s" (accumulated over resumes), "resumed_from"}.
        Raises KeyboardInterrupt after saving a checkpoint when interrupted.
        """
        curves = {} if curves is None else curves
        eval_steps = set(int(s) for s in eval_steps)
        state = {"step": 0, "diverged_at": None, "train_loss": {"step": [], "loss": []},
                 "window": [], "wall_time_s": 0.0, "initial_loss": None, "final_loss": None, "done": False}
        resumed_from = self._resume(arm, model, optimizer, curves, state)
        if state["done"]:
            return self._result(state, curves, steps, resumed_from)
        next_batch = _batch_source(batches, state["step"])
        bar = ProgressBar(f"{self.experiment.name}/{arm}", steps, start=state["step"], enabled=self.progress)
        clock = time.perf_counter()

        def checkpoint():
            nonlocal clock
            now = time.perf_counter()
            state["wall_time_s"] += now - clock   # NOTE: accumulated over resumes
            clock = now
            self._save(arm, model, optimizer, curves, state)

        loss_value = state["final_loss"]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while state["step"] < steps:
                step = state["step"]
                batch = next_batch()
                if step in eval_steps and evaluate is not None:
                    evaluate(step, batch)
                loss = loss_fn(*batch)
                loss_value = float(loss.item())
                if step == 0:
                    state["initial_loss"] = loss_value
                if _diverged(loss_value, state["initial_loss"], diverge_factor):
                    state["diverged_at"], state["final_loss"] = step, loss_value
                    bar.close(step, loss_value, f"  diverged at step {step}")
                    break
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                state["step"] = step + 1
                state["final_loss"] = loss_value
                self._log_loss(state, loss_value, log_every)
                bar.update(step + 1, loss_value)
                try:
                    if self.callback is not None:
                        self.callback(arm, step + 1, loss_value)
                    if self.interrupt.requested:
                        raise KeyboardInterrupt
                except KeyboardInterrupt:
                    checkpoint()
                    bar.close(step + 1, loss_value, f"  interrupted; checkpoint saved in {self.checkpoint_path(arm)}")
                    raise
                if state["step"] % checkpoint_every == 0 and state["step"] < steps:
                    checkpoint()
            else:
                if steps in eval_steps and evaluate is not None:
                    evaluate(steps, None)
                bar.close(steps, loss_value)
        state["done"] = True
        checkpoint()
        return self._result(state, curves, steps, resumed_from)

    @staticmethod
    def _log_loss(state, loss_value, log_every):
        window = state["window"]
        window.append(loss_value)
        if len(window) >= log_every:
            state["train_loss"]["step"].append(state["step"])
            state["train_loss"]["loss"].append(float(np.mean(window)))
            window.clear()

    @staticmethod
    def _result(state, curves, steps, resumed_from):
        return {"steps": steps, "steps_done": state["step"], "diverged_at": state["diverged_at"],
                "curves": curves, "train_loss": state["train_loss"],
                "initial_loss": state.get("initial_loss"), "final_loss": state["final_loss"],
                "wall_time_s": state["wall_time_s"], "resumed_from": resumed_from}

    # ------------------------------------------------------------- checkpoints
    def _save(self, arm, model, optimizer, curves, state):
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        save({"format": "tinygrad_norm.lab.arm", "experiment": self.experiment.name, "arm": arm,
              "config": self._config_text, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
              "rng": get_rng_state(),
              # NOTE: JSON text keeps nested curves compact; Python's float repr round-trips exactly
              "curves": json.dumps(curves), "state": json.dumps(state)},
             self.checkpoint_path(arm))

    def _resume(self, arm, model, optimizer, curves, state):
        """Load the arm's checkpoint if there is a usable one; returns its step (or None)."""
        path = self.checkpoint_path(arm)
        if self.restart or not path.exists():
            return None
        try:
            ckpt = load(path)
        except CheckpointError as e:
            sys.stderr.write(f"warning: ignoring unreadable checkpoint ({e}); starting {arm} afresh\n")
            return None
        if ckpt.get("format") != "tinygrad_norm.lab.arm" or ckpt.get("arm") != arm:
            sys.stderr.write(f"warning: {path} is not a checkpoint of arm {arm}; starting afresh\n")
            return None
        if ckpt["config"] != self._config_text:
            sys.stderr.write(f"note: {path} was made with another configuration; starting {arm} afresh\n")
            return None
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        curves.clear()
        curves.update(json.loads(ckpt["curves"]))
        state.update(json.loads(ckpt["state"]))
        if not state["done"] and self.progress:
            sys.stderr.write(f"{self.experiment.name}/{arm}: resuming from the checkpoint at step {state['step']}\n")
        return state["step"]


def _diverged(loss, initial, factor):
    """A loss that is not finite, or (with `factor`) above factor × a positive initial loss."""
    if not math.isfinite(loss):
        return True
    return factor is not None and initial is not None and initial > 0 and loss > factor * initial


def _batch_source(batches, start):
    """A function returning the batch of step start, start+1, ... in turn."""
    if callable(batches) and not hasattr(batches, "order"):
        counter = [start]

        def next_from_function():
            b = batches(counter[0])
            counter[0] += 1
            return b if isinstance(b, tuple) else (b,)
        return next_from_function
    loader = batches
    if getattr(loader, "shuffle", False) and getattr(loader, "seed", None) is None:
        raise ValueError("lab.train needs a DataLoader with a seed (DataLoader(..., shuffle=True, seed=s)): "
                         "without one, a resumed run could not find its place in the epoch")
    per_epoch = len(loader)
    if per_epoch == 0:
        raise ValueError("lab.train: the DataLoader yields no batch (dataset smaller than batch_size?)")

    def stream():
        epoch, skip = divmod(start, per_epoch)
        while True:
            loader.set_epoch(epoch)
            for i, b in enumerate(loader):
                if i >= skip:
                    yield b
            epoch, skip = epoch + 1, 0
    it = stream()
    return lambda: next(it)


# ------------------------------------------------------------------- helpers

def _openblas_thread_controls():
    """[(get_num_threads, set_num_threads)] of the OpenBLAS libraries loaded in this
    process (found through /proc/self/maps, so Linux only; elsewhere [])."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if len(line.split()) >= 6 and "openblas" in line.split()[-1].rsplit("/", 1)[-1].lower()})
    except OSError:
        return []
    controls = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
            get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                controls.append((get, put))
                break
    return controls


@contextmanager
def blas_threads(n):
    """Run the block with numpy's OpenBLAS limited to `n` threads (None: unchanged).

    NOTE: the lab's nets multiply small matrices (a batch of 60 by 784×100). Split over
    two threads they gain nothing, and on a busy machine they lose badly: OpenBLAS's
    threads wait for each other, and one quick run measured 85 s with 2 threads against
    12 s with 1. Best effort: without OpenBLAS (or off Linux) nothing changes.
    """
    controls = _openblas_thread_controls() if n is not None else []
    before = [get() for get, _ in controls]
    for _, put in controls:
        put(int(n))
    try:
        yield
    finally:
        for (_, put), b in zip(controls, before):
            put(b)


def first_step_reaching(steps, values, level):
    """The first step at which `values` ≥ `level`, or None."""
    for s, v in zip(steps, values):
        if v is not None and v >= level:
            return s
    return None


def _jsonable(obj):
    """obj with numpy types turned into Python ones and non-finite floats into None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
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
    write_text(path, json.dumps(_jsonable(obj), indent=1, allow_nan=False) + "\n")


def _library_versions():
    versions = {"tinygrad_norm": __version__, "numpy": np.__version__, "python": platform.python_version()}
    for name in ("numba", "matplotlib"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return versions


# ------------------------------------------------------------------------ run

def run(name, mode="default", seed=0, out="runs", overrides=None, progress=True, callback=None,
        restart=False, stream=None, threads=1):
    """Run experiment `name` and write DIR/NAME/results.json, its figures and report.md.

    Args:
        mode: "quick" | "default" | "full" (see the experiment's modes).
        seed: seeds everything random (initialisation, batch order).
        out: the output directory (DIR).
        overrides: {setting: value} changing the mode's configuration (e.g. {"lr": 1e6}).
        progress: draw the progress bar on stderr.
        callback: `callback(arm, step, loss)` after every training step; raising
            KeyboardInterrupt in it stops the run the way Ctrl-C does (after a checkpoint).
        restart: ignore existing checkpoints and start afresh.
        stream: where the summary is printed (default stdout; False: nothing).
        threads: BLAS threads while training (see `blas_threads`; None leaves numpy's setting).
    Returns the results dict (what results.json holds). Re-running resumes.
    """
    experiment = get(name)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    cfg = experiment.config(mode, seed, overrides)
    out_dir = Path(out) / experiment.name
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = out_dir / "checkpoints" / f"{mode}-seed{int(seed)}"
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with _Interrupt() as interrupt, blas_threads(threads):
        lab = Lab(experiment, cfg, checkpoint_dir, progress=progress, callback=callback, restart=restart,
                  interrupt=interrupt)
        arms = experiment.train(lab, cfg)
    claims = list(experiment.claims(cfg, arms))
    figures, figure_note = _draw_figures(experiment, cfg, arms, out_dir)
    wall = time.perf_counter() - t0
    results = {
        "experiment": experiment.name, "title": experiment.title, "paper": experiment.paper,
        "protocol": experiment.protocol, "mode": mode, "seed": int(seed), "config": cfg,
        "library": _library_versions(), "started": started.isoformat(timespec="seconds"),
        "wall_time_s": wall, "train_time_s": sum(a.get("wall_time_s", 0.0) for a in arms.values()),
        "arms": arms, "claims": [asdict(c) | {"verdict": c.verdict} for c in claims],
        "passed": sum(c.passed is True for c in claims), "failed": sum(c.passed is not True for c in claims),
        "figures": figures,
    }
    write_json(out_dir / "results.json", results)
    write_text(out_dir / "report.md", _report(experiment, cfg, arms, claims, figures, figure_note, results))
    if stream is not False:
        _print_summary(stream or sys.stdout, experiment, claims, results, out_dir)
    return results


def _draw_figures(experiment, cfg, arms, out_dir):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], "matplotlib is not installed: no figures (pip install matplotlib)."
    return list(experiment.figures(cfg, arms, out_dir)), ""


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _report(experiment, cfg, arms, claims, figures, figure_note, results):
    lines = [f"# {experiment.title}", "",
             f"{experiment.paper}. Protocol: {experiment.protocol} of PROTOCOLS.md.", "",
             f"- command: `tinygrad-norm run {experiment.name}"
             + {"quick": " --quick", "full": " --full"}.get(cfg["mode"], "") + f" --seed {cfg['seed']}`",
             f"- mode: {cfg['mode']}, seed {cfg['seed']}, tinygrad_norm {__version__}",
             f"- wall time: {_duration(results['wall_time_s'])} this invocation; "
             f"training {_duration(results['train_time_s'])} in total (over resumes)",
             f"- claims: {results['passed']} PASS, {results['failed']} FAIL", ""]
    if experiment.summary:
        lines += [experiment.summary, ""]
    if cfg["mode"] == "quick":
        lines += ["Quick mode: a reduced budget that shows the direction of every effect. The thresholds are "
                  "the default protocol's; a claim that needs more steps than the quick budget can FAIL here.", ""]
    lines += ["| # | claim | measured | threshold | verdict |", "|---|---|---|---|---|"]
    for i, c in enumerate(claims, 1):
        lines.append(f"| {c.section or i} | {_cell(c.claim)} | {_cell(c.measured)} | {_cell(c.threshold)} | "
                     f"**{c.verdict}** |")
    diverged = [(a, r) for a, r in arms.items() if r.get("diverged_at") is not None]
    if diverged:
        lines += ["", "Diverged: " + ", ".join(f"{a} diverged at step {r['diverged_at']} ({_why(r)})"
                                              for a, r in diverged) + "."]
    lines += ["", "## Configuration", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {_cell(json.dumps(value))} |" for key, value in _jsonable(cfg).items()] + [""]
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


def _print_summary(stream, experiment, claims, results, out_dir):
    width = max([len(c.claim) for c in claims] + [5])
    width = min(width, 70)
    stream.write(f"\n{experiment.title} ({results['mode']}, seed {results['seed']})\n")
    for c in claims:
        claim = c.claim if len(c.claim) <= width else c.claim[:width - 1] + "…"
        stream.write(f"  {c.verdict}  {claim:{width}s}  {c.measured}  (threshold: {c.threshold})\n")
    stream.write(f"{results['passed']}/{len(claims)} claims PASS. Wall time {_duration(results['wall_time_s'])} "
                 f"({results['wall_time_s']:.1f} s). Results in {out_dir}/ (results.json, report.md"
                 + "".join(f", {f}" for f in results["figures"]) + ")\n")
    stream.flush()
