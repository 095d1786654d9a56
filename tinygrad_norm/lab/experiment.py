"""What an experiment is: its protocol as three functions, its claims, and the registry.

An `Experiment` is a paper's protocol written as three functions:

    train(lab, cfg)             trains its networks ("arms"), each through `lab.train(...)`,
                                and returns {arm: result}
    claims(cfg, arms)           the paper's claims (and the run's sanity checks) as `Claim`s
    figures(cfg, arms, out)     writes PNG figures into `out`, returns their file names

and a config per mode: "quick" (a small budget that still shows the direction of
every effect), "default" (the CPU version of the protocol, docs/protocols.md),
"full" (paper scale).

A `Claim` is one row of the report. Two kinds:
- a **claim** is something the paper asserts and a null effect would fail;
- a **check** (`kind="check"`) is true by construction or tests the engine (a
  train-mode BatchNorm output has std 1; a cross-check against PyTorch). Checks
  are reported apart and not counted in "k/n claims".

A claim made with `Claim.compare(...)` carries its threshold in machine form (a
`Threshold`), so that `tn.lab.sweep` can judge it over seeds with an interval.
"""
import math
from dataclasses import asdict, dataclass, field
from importlib import import_module

MODES = ("quick", "default", "full")
KINDS = ("claim", "check")


@dataclass(frozen=True)
class Threshold:
    """`value OP bound`: OP is one of >= > <= < or "between" (bound = (low, high), both inclusive).

    log: the statistic is a ratio or a positive scale (a speed-up, a growth factor):
    intervals over seeds are taken on log(value), i.e. around the geometric mean.
    """
    op: str
    bound: object
    log: bool = False

    OPS = (">=", ">", "<=", "<", "between")

    def __post_init__(self):
        if self.op not in self.OPS:
            raise ValueError(f"Threshold op must be one of {', '.join(self.OPS)}, got {self.op!r}")
        if self.op == "between":
            low, high = self.bound
            if not low <= high:
                raise ValueError(f"Threshold between: low {low} > high {high}")
            object.__setattr__(self, "bound", (float(low), float(high)))
        else:
            object.__setattr__(self, "bound", float(self.bound))

    def passes(self, value):
        """True/False for a finite number; None when `value` is None or not finite."""
        if value is None or not math.isfinite(value):
            return None
        if self.op == "between":
            return self.bound[0] <= value <= self.bound[1]
        return {">=": value >= self.bound, ">": value > self.bound,
                "<=": value <= self.bound, "<": value < self.bound}[self.op]

    def text(self):
        if self.op == "between":
            return f"{self.bound[0]:g} … {self.bound[1]:g}"
        return f"{self.op} {self.bound:g}"

    def to_json(self):
        return {"op": self.op, "bound": list(self.bound) if self.op == "between" else self.bound, "log": self.log}

    @classmethod
    def from_json(cls, obj):
        return None if obj is None else cls(obj["op"], obj["bound"], obj.get("log", False))


@dataclass
class Claim:
    """One row of the report: a claim of the paper (or a sanity check) and what this run measured.

    passed: True (PASS), False (FAIL) or None (not measurable in this run, e.g. an arm
    diverged or a step was never reached; reported as FAIL with the reason in `measured`).
    value: the number behind `measured` (for results.json and sweeps), or None.
    section: where the claim is in docs/protocols.md (also its key across seeds).
    kind: "claim" or "check" (see the module docstring).
    rule: the Threshold `value` is judged by, or None (then sweeps count passes).
    """
    claim: str
    measured: str
    threshold: str
    passed: object
    value: object = None
    section: str = ""
    kind: str = "claim"
    rule: Threshold = field(default=None, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Claim kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    @classmethod
    def compare(cls, claim, value, op, bound, measured=None, section="", kind="claim", log=False, threshold=None):
        """A claim judged by `value OP bound` (see Threshold); PASS/FAIL follows from the rule.

        measured: the report's text (default: the value); threshold: the report's text
        for the rule (default: e.g. "≥ 1.5")."""
        rule = Threshold(op, bound, log)
        value = None if value is None else float(value)
        if measured is None:
            measured = "not measured" if value is None else f"{value:.4g}"
        return cls(claim, measured, threshold or rule.text().replace(">=", "≥").replace("<=", "≤"),
                   rule.passes(value), value, section, kind, rule)

    @property
    def verdict(self):
        return "PASS" if self.passed is True else "FAIL"

    def to_json(self):
        row = asdict(self)
        row["rule"] = None if self.rule is None else self.rule.to_json()
        row["verdict"] = self.verdict
        return row


@dataclass
class Experiment:
    """A reproducible experiment: see the module docstring.

    protocol: its section of docs/protocols.md (e.g. "§1"); module: where it is defined
    (set by `register`), so that sweep workers can import it."""
    name: str
    title: str
    paper: str
    protocol: str
    modes: dict
    train: object
    claims: object
    figures: object
    summary: str = ""
    module: str = ""

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

    def effective_overrides(self, mode, overrides):
        """`overrides` without the settings that equal the mode's own value (they change nothing),
        checked against the mode's settings; sorted by key."""
        cfg = self.config(mode, 0, overrides)
        return {k: cfg[k] for k in sorted(overrides or {}) if self.modes[mode][k] != cfg[k]}


def sub_seed(cfg, purpose):
    """The seed of one kind of randomness of a run: "init" (weights), "order" (batch order)
    or "data" (a dataset or target the experiment draws, e.g. the DLN's matrix A).

    A setting `<purpose>_seed` in the config, when not None, fixes it (so a sweep can vary
    the initialisation over seeds while holding the data fixed); otherwise "init" and
    "order" are the run's seed itself, and any other purpose is derived from (seed, purpose)
    by numpy's SeedSequence, so that it is independent of the weights drawn from the seed."""
    fixed = cfg.get(f"{purpose}_seed")
    if fixed is not None:
        return int(fixed)
    if purpose in ("init", "order"):
        return int(cfg["seed"])
    import zlib
    import numpy as np
    return int(np.random.SeedSequence([int(cfg["seed"]), zlib.crc32(purpose.encode())]).generate_state(1)[0])


# ------------------------------------------------------------------- registry

_REGISTRY = {}


def register(experiment):
    """Add an Experiment to the registry (`tinygrad-norm list` shows it). Returns it."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"register expects an Experiment, got {type(experiment).__name__}")
    if not experiment.module:
        experiment.module = _caller_module()
    _REGISTRY[experiment.name] = experiment
    return experiment


def _caller_module():
    import sys
    frame = sys._getframe(2)
    return frame.f_globals.get("__name__", "")


def all_experiments():
    """{name: Experiment} of every registered experiment: the built-in ones first, then those of
    the modules named in $TINYGRAD_NORM_EXPERIMENTS (comma-separated; each registers its own
    experiments when imported), so that `tinygrad-norm run` and `sweep` know them too."""
    import os
    import_module("tinygrad_norm.lab.experiments")  # registers the built-in ones
    for module in filter(None, (m.strip() for m in os.environ.get("TINYGRAD_NORM_EXPERIMENTS", "").split(","))):
        try:
            import_module(module)
        except ImportError as e:
            raise ImportError(f"$TINYGRAD_NORM_EXPERIMENTS names {module!r}, which cannot be imported: {e}") from e
    return dict(_REGISTRY)


def get(name, module=None):
    """The registered experiment `name`; `santurkar-ics` and `santurkar_ics` are the same.
    module: import this module first (it registers `name`; sweep workers use it)."""
    if module:
        import_module(module)
    table = all_experiments()
    key = name.replace("-", "_")
    if key not in table:
        raise KeyError(f"no experiment named {name!r}; available: {', '.join(table) or 'none'}")
    return table[key]
