"""The MNIST training loop shared by train_mlp.py and train_cnn.py.

What a training script needs besides its model: command-line flags, the data,
the loop (forward, loss, backward, optimizer and scheduler steps), a progress
bar, evaluation, and checkpoints that make an interrupted run resumable
*exactly* — the resumed run computes bit for bit what the uninterrupted run
would have computed. For that a checkpoint holds everything the future of the
run depends on:

    model        parameters and buffers (BatchNorm running statistics)
    optimizer    momentum buffers / Adam moments and step counts
    scheduler    its epoch counter and current learning rates
    rng          the library's random generator (dropout masks)
    position     the next batch: epoch and batch index (the DataLoader has a
                 seed, so an epoch's order depends only on (seed, epoch))

Checkpoints are written with `tn.save`, which is atomic: a crash while saving
leaves the previous checkpoint intact. Ctrl-C stops after the current step,
saves a checkpoint (with --checkpoint) and exits; `--resume` continues.
"""
import argparse
import math
import os
import signal
import sys
import time

import numpy as np

import tinygrad_norm as tn
from tinygrad_norm._progress import progress_bar
from tinygrad_norm.nn import functional as F

# Flags that must match between a checkpoint and a resumed run (the rest,
# like --checkpoint-every or --data-root, may change).
RUN_KEYS = ("model", "hidden", "activation", "channels", "bn", "dropout", "optimizer", "lr", "momentum", "weight_decay",
            "batch_size", "epochs", "seed", "scheduler", "limit_batches")


def make_parser(description, defaults):
    """The flags common to both scripts; `defaults` overrides per script (epochs, lr, ...)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=defaults.get("epochs", 5))
    p.add_argument("--batch-size", type=int, default=defaults.get("batch_size", 64))
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.05 for sgd, 1e-3 for adam/adamw)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default=defaults.get("optimizer", "sgd"))
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--scheduler", choices=["cosine", "none"], default="cosine",
                   help="cosine: anneal the lr to 0 over the whole run, step by step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bn", action="store_true", help="add BatchNorm after each hidden layer")
    p.add_argument("--checkpoint", metavar="PATH", help="write checkpoints here (atomically)")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS",
                   help="also checkpoint every STEPS steps (default: at the end of each epoch only)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    p.add_argument("--limit-batches", type=int, default=None, metavar="N",
                   help="use only N training batches per epoch and N evaluation batches (smoke tests)")
    p.add_argument("--stop-after", type=int, default=None, metavar="STEPS",
                   help="stop (and checkpoint) after this many steps in total, as if interrupted")
    p.add_argument("--data-root", default=None, help="directory of the MNIST files (default: $TINYGRAD_NORM_DATA "
                                                     "or the user cache directory; downloaded if missing)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


# ------------------------------------------------------------------ the run

def batches_from(loader, epoch, batch, limit):
    """(epoch, index, batch) from position (epoch, batch) on, forever, at most `limit` per epoch."""
    per_epoch = len(loader) if limit is None else min(limit, len(loader))
    while True:
        loader.set_epoch(epoch)
        for i, b in enumerate(loader):
            if i >= per_epoch:
                break
            if i >= batch:
                yield epoch, i, b
        epoch, batch = epoch + 1, 0


def evaluate(model, x, y, limit=None, batch_size=1000):
    """Accuracy of `model` on (x, y) in eval mode (at most `limit` batches)."""
    model.eval()
    correct = seen = 0
    with tn.no_grad():
        for i, start in enumerate(range(0, len(x), batch_size)):
            if limit is not None and i >= limit:
                break
            logits = model(tn.from_numpy(x[start:start + batch_size]))
            correct += int((logits.detach().numpy().argmax(axis=1) == y[start:start + batch_size]).sum())
            seen += len(logits.detach().numpy())
    model.train()
    return correct / max(seen, 1)


def make_optimizer(args, params):
    if args.optimizer == "sgd":
        return tn.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                            nesterov=args.momentum > 0)
    cls = tn.optim.Adam if args.optimizer == "adam" else tn.optim.AdamW
    return cls(params, lr=args.lr, weight_decay=args.weight_decay)


class _StopRequest:
    """Turns the first Ctrl-C into a request to stop after the current step."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True
        sys.stderr.write("\nstopping after this step (Ctrl-C again to abort at once)\n")

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def run(args, build_model, flatten, name):
    """Train `build_model(args)` on MNIST as `args` say; returns a dict with the test
    accuracy, epochs and steps done, and wall time. See the module docstring."""
    started = time.perf_counter()
    if args.lr is None:
        args.lr = 0.05 if args.optimizer == "sgd" else 1e-3
    if args.resume and not args.checkpoint:
        raise SystemExit("--resume needs --checkpoint PATH")
    config = {k: getattr(args, k) for k in RUN_KEYS if hasattr(args, k)}
    config["model"] = name
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()}

    x_train, y_train = tn.data.mnist_arrays("train", flatten=flatten, normalize="standard", root=args.data_root)
    x_test, y_test = tn.data.mnist_arrays("test", flatten=flatten, normalize="standard", root=args.data_root)
    loader = tn.data.DataLoader(x_train, y_train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    per_epoch = len(loader) if args.limit_batches is None else min(args.limit_batches, len(loader))
    total_steps = per_epoch * args.epochs

    tn.manual_seed(args.seed)
    model = build_model(args)
    opt = make_optimizer(args, model.parameters())
    sched = (tn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
             if args.scheduler == "cosine" else tn.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0))
    step, position, history, losses = 0, (0, 0), [], []

    if args.resume:
        if not os.path.exists(args.checkpoint):
            raise SystemExit(f"--resume: no checkpoint at {args.checkpoint!r}")
        ckpt = tn.load(args.checkpoint)
        saved = ckpt["config"]
        different = {k: (saved.get(k), config[k]) for k in config if saved.get(k) != config[k]}
        if different:
            raise SystemExit(f"--resume: {args.checkpoint!r} was written by a different run; "
                             + ", ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in different.items()))
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        tn.set_rng_state(ckpt["rng"])
        step, position = ckpt["step"], (ckpt["position"]["epoch"], ckpt["position"]["batch"])
        history, losses = list(ckpt["history"]), list(ckpt["epoch_losses"])
        print(f"resumed from {args.checkpoint} at epoch {position[0] + 1}, batch {position[1]} (step {step})",
              flush=True)

    def save():
        if args.checkpoint:
            tn.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "rng": tn.get_rng_state(), "position": {"epoch": position[0], "batch": position[1]},
                     "step": step, "config": config, "history": history, "epoch_losses": losses},
                    args.checkpoint)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n_params:,} parameters, {args.optimizer} lr {args.lr}, batch {args.batch_size}, "
          f"{args.epochs} epochs of {per_epoch} steps", flush=True)
    model.train()
    stopped = False
    with _StopRequest() as stop:
        stream = batches_from(loader, *position, args.limit_batches)
        while step < total_steps and not stopped:
            epoch = position[0]
            bar = progress_bar(per_epoch, f"epoch {epoch + 1}/{args.epochs}", initial=position[1], unit="step",
                               enabled=not args.no_progress)
            epoch_start = time.perf_counter()
            if position[1] == 0:
                losses = []  # this epoch's losses (a resumed epoch keeps those from before)
            while position[0] == epoch and step < total_steps:
                _, i, (xb, yb) = next(stream)
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                position = (epoch, i + 1) if i + 1 < per_epoch else (epoch + 1, 0)
                losses.append(float(loss.item()))
                if not math.isfinite(losses[-1]):
                    raise SystemExit(f"the loss became {losses[-1]} at step {step}: lower --lr")
                bar.update(1)
                bar.set_postfix_str(f"loss {np.mean(losses[-50:]):.4f}", refresh=False)
                if args.checkpoint_every and step % args.checkpoint_every == 0:
                    save()
                if stop.requested or (args.stop_after is not None and step >= args.stop_after):
                    stopped = True
                    break
            bar.close()
            if position[0] > epoch:  # a finished epoch: evaluate and checkpoint
                acc = evaluate(model, x_test, y_test, limit=args.limit_batches)
                history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "test_accuracy": acc})
                print(f"epoch {epoch + 1}/{args.epochs}: train loss {np.mean(losses):.4f}, "
                      f"test accuracy {100 * acc:.2f}%, {time.perf_counter() - epoch_start:.1f} s", flush=True)
            save()
            stopped = stopped or stop.requested  # Ctrl-C during the evaluation
    if stopped and step < total_steps:
        where = f"; resume with --resume --checkpoint {args.checkpoint}" if args.checkpoint else ""
        print(f"stopped at step {step}/{total_steps}{where}", flush=True)
    just_evaluated = history and position == (history[-1]["epoch"], 0)
    acc = history[-1]["test_accuracy"] if just_evaluated else evaluate(model, x_test, y_test, limit=args.limit_batches)
    seconds = time.perf_counter() - started
    print(f"test accuracy: {100 * acc:.2f}% ({step} steps, {seconds:.1f} s)", flush=True)
    return {"test_accuracy": acc, "steps": step, "epochs_done": position[0], "seconds": seconds,
            "history": history, "stopped": stopped}
