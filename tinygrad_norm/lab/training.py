"""The training loop every arm of every experiment shares: `lab.train(...)`.

It gives the framework its guarantees:
- progress: a bar on stderr with the step, the current loss and the speed;
- checkpoints: every `checkpoint_every` steps, on Ctrl-C and at the end, the
  whole state (model, optimizer, random generator, position in the data, the
  curves so far) goes to RUN/checkpoints/<arm>.npz with `tn.save` (atomic).
  Re-running the same command continues from there and computes exactly what
  an uninterrupted run computes;
- divergence: a NaN/inf loss (or, with `diverge_factor`, a loss above that
  multiple of the first step's) ends the arm as "diverged at step k"; the other
  arms and the report go on.
"""
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..random import get_rng_state, set_rng_state
from ..serialization import CheckpointError, load, save
from .report import jsonable


class Interrupt:
    """Ctrl-C during a run: the first press asks the loop to stop after the current
    step (and checkpoint); a second press stops at once (the last periodic
    checkpoint stays). Outside the main thread (a sweep worker) it does nothing."""

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


def say(text):
    """A line on stderr that is always written (resuming, reusing: also with progress off)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Lab:
    """What an experiment's `train(lab, cfg)` gets: the config and the shared training loop."""

    def __init__(self, experiment, config, checkpoint_dir, progress=True, callback=None, restart=False,
                 interrupt=None):
        self.experiment, self.config = experiment, config
        self.checkpoint_dir = Path(checkpoint_dir)
        self.progress, self.callback, self.restart = progress, callback, restart
        self.interrupt = interrupt or Interrupt()
        self._config_text = json.dumps(jsonable(config), sort_keys=True)

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
        run = _ArmRun(self, arm, model, optimizer, {} if curves is None else curves)
        if not run.state["done"]:
            run.loop(batches, steps, loss_fn, evaluate, set(int(s) for s in eval_steps),
                     checkpoint_every, log_every, diverge_factor)
        return run.result(steps)

    # ------------------------------------------------------------- checkpoints
    def save(self, arm, model, optimizer, curves, state):
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        save({"format": "tinygrad_norm.lab.arm", "experiment": self.experiment.name, "arm": arm,
              "config": self._config_text, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
              "rng": get_rng_state(),
              # NOTE: JSON text keeps nested curves compact; Python's float repr round-trips exactly
              "curves": json.dumps(curves), "state": json.dumps(state)},
             self.checkpoint_path(arm))

    def resume(self, arm, model, optimizer, curves, state):
        """Load the arm's checkpoint if there is a usable one (updating model, optimizer, RNG,
        curves and state in place); returns its step, or None."""
        path = self.checkpoint_path(arm)
        if self.restart or not path.exists():
            return None
        try:
            ckpt = load(path)
        except CheckpointError as e:
            say(f"warning: ignoring unreadable checkpoint ({e}); starting {arm} afresh")
            return None
        if ckpt.get("format") != "tinygrad_norm.lab.arm" or ckpt.get("arm") != arm:
            say(f"warning: {path} is not a checkpoint of arm {arm}; starting afresh")
            return None
        if ckpt["config"] != self._config_text:
            say(f"note: {path} was made with another configuration; starting {arm} afresh")
            return None
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        curves.clear()
        curves.update(json.loads(ckpt["curves"]))
        state.update(json.loads(ckpt["state"]))
        label = f"{self.experiment.name}/{arm}"
        say(f"{label}: finished in an earlier run; reusing its checkpoint" if state["done"] else
            f"{label}: resuming from the checkpoint at step {state['step']}")
        return state["step"]


class _ArmRun:
    """One arm's training: its state (what a checkpoint holds besides model, optimizer and
    RNG), the step loop, and the periodic, interrupt and final checkpoints."""

    def __init__(self, lab, arm, model, optimizer, curves):
        self.lab, self.arm, self.model, self.optimizer, self.curves = lab, arm, model, optimizer, curves
        self.state = {"step": 0, "diverged_at": None, "train_loss": {"step": [], "loss": []},
                      "window": [], "wall_time_s": 0.0, "initial_loss": None, "final_loss": None, "done": False}
        self.resumed_from = lab.resume(arm, model, optimizer, curves, self.state)
        self.clock = time.perf_counter()

    def checkpoint(self):
        now = time.perf_counter()
        self.state["wall_time_s"] += now - self.clock   # NOTE: accumulated over resumes
        self.clock = now
        self.lab.save(self.arm, self.model, self.optimizer, self.curves, self.state)

    def loop(self, batches, steps, loss_fn, evaluate, eval_steps, checkpoint_every, log_every, diverge_factor):
        state, lab = self.state, self.lab
        next_batch = _batch_source(batches, state["step"])
        with progress_bar(steps, f"{lab.experiment.name}/{self.arm}", initial=state["step"], unit="step",
                          enabled=lab.progress) as bar, \
                np.errstate(over="ignore", invalid="ignore", divide="ignore"):
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
                    bar.set_postfix_str(f"diverged at step {step}")
                    break
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                state["step"], state["final_loss"] = step + 1, loss_value
                _log_loss(state, loss_value, log_every)
                bar.update(1)
                bar.set_postfix_str(f"loss {loss_value:.4f}", refresh=False)
                self._after_step(step + 1, loss_value)
                if state["step"] % checkpoint_every == 0 and state["step"] < steps:
                    self.checkpoint()
            else:
                if steps in eval_steps and evaluate is not None:
                    evaluate(steps, None)
        state["done"] = True
        self.checkpoint()

    def _after_step(self, step, loss_value):
        """The callback, and Ctrl-C: either stops the run here, after a checkpoint."""
        try:
            if self.lab.callback is not None:
                self.lab.callback(self.arm, step, loss_value)
            if self.lab.interrupt.requested:
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.checkpoint()
            say(f"{self.lab.experiment.name}/{self.arm}: interrupted at step {step}; "
                f"checkpoint saved in {self.lab.checkpoint_path(self.arm)}")
            raise

    def result(self, steps):
        s = self.state
        return {"steps": steps, "steps_done": s["step"], "diverged_at": s["diverged_at"],
                "curves": self.curves, "train_loss": s["train_loss"],
                "initial_loss": s.get("initial_loss"), "final_loss": s["final_loss"],
                "wall_time_s": s["wall_time_s"], "resumed_from": self.resumed_from}


def _log_loss(state, loss_value, log_every):
    window = state["window"]
    window.append(loss_value)
    if len(window) >= log_every:
        state["train_loss"]["step"].append(state["step"])
        state["train_loss"]["loss"].append(float(np.mean(window)))
        window.clear()


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
