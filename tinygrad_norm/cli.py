"""The `tinygrad-norm` command (also `python -m tinygrad_norm`).

    tinygrad-norm graph mlp_bn --out mlp_bn.svg --mode both
    tinygrad-norm graph resmlp --out resmlp.png --roll
    tinygrad-norm list                       # the laboratory's experiments
    tinygrad-norm run ioffe --quick          # -> runs/ioffe/quick/seed-0/results.json, *.png, report.md
    tinygrad-norm sweep ioffe --quick --seeds 0-9   # ten seeds on dask.distributed -> runs/ioffe/quick/summary.md

Each subcommand is one `_add_<name>(subparsers)` function that adds its parser
and sets `func`; `main` dispatches. To add a command, write such a function
and append it to `COMMANDS`.
"""
import argparse
import sys


# ------------------------------------------------------------------------- graph

# the formats Graphviz's dot writes that are worth a file here; "gv"/"dot": the DOT source only
GRAPH_FORMATS = ("svg", "png", "pdf", "jpg", "jpeg", "gif", "ps", "eps", "json", "gv", "dot")
# the first line of every .gv this command writes: such a file may be overwritten by the next run
GV_MARKER = "written by tinygrad-norm graph"


def _add_graph(subparsers):
    from .models import EXAMPLES
    models = "\n".join(f"  {name:9s} {desc}" for name, (_, _, desc) in EXAMPLES.items())
    p = subparsers.add_parser(
        "graph", help="draw the computation graph of an example model",
        description="Draw the computation graph of an example model with Graphviz. The DOT source "
                    "is written beside the output as FILE.gv.",
        epilog=f"models:\n{models}", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", choices=list(EXAMPLES), help="one of: " + ", ".join(EXAMPLES))
    p.add_argument("--out", "-o", metavar="FILE", help="output file; its extension picks the format "
                   f"({', '.join(GRAPH_FORMATS)}). A directory: MODEL.svg inside it. Default: MODEL.svg")
    p.add_argument("--format", help="output format when FILE has no extension (or agrees with it)")
    p.add_argument("--batch", type=int, default=4, help="batch size of the example input (default 4)")
    p.add_argument("--mode", choices=["train", "eval", "both"], default="train",
                   help="draw the model in training mode, eval mode, or both side by side (default train)")
    p.add_argument("--view", choices=["forward", "backward", "both"], default="forward",
                   help="the forward graph, the backward graph, or both (default forward)")
    p.add_argument("--depth", type=int, default=None,
                   help="collapse modules nested deeper than DEPTH (0 or more)")
    p.add_argument("--roll", action="store_true", help="roll repeated modules into one node (Block × n)")
    p.add_argument("--no-shapes", action="store_true", help="leave out shapes and dtypes")
    p.add_argument("--seed", type=int, default=0, help="seed of the model's initialisation (default 0)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing FILE.gv that this command did not write")
    p.set_defaults(func=_run_graph)


def _graph_error(message):
    print(f"tinygrad-norm graph: {message}", file=sys.stderr)
    return 2


def _graph_paths(args):
    """(output path, format, .gv path) from --out and --format, or an error message."""
    import os
    out = args.out or f"{args.model}.{(args.format or 'svg').lower()}"
    if os.path.isdir(out) or out.endswith(os.sep):
        out = os.path.join(out, f"{args.model}.{(args.format or 'svg').lower()}")
    stem, ext = os.path.splitext(out)
    if not os.path.basename(stem) or os.path.basename(out).startswith(".") and not ext:
        return f"--out {args.out!r} names no file; give a file name such as {args.model}.svg"
    ext = ext.lstrip(".").lower()
    fmt = (args.format or ext or "svg").lower()
    if fmt not in GRAPH_FORMATS:
        what = "--format" if args.format else f"the extension of --out {args.out}"
        return f"{what} asks for {fmt!r}, which is not a graph format; use one of {', '.join(GRAPH_FORMATS)}"
    if args.format and ext and ext != fmt and not {ext, fmt} <= {"gv", "dot"} and {ext, fmt} != {"jpg", "jpeg"}:
        return (f"--format {args.format} does not match the extension of --out {out} (the file would hold "
                f"{fmt} data under a .{ext} name); drop --format, or give --out a .{fmt} name")
    if not ext:
        out = f"{out}.{fmt}"
    gv = stem + ".gv"
    if gv != out and os.path.exists(gv) and not args.force:
        with open(gv, "rb") as f:
            ours = GV_MARKER.encode() in f.readline()
        if not ours:
            return (f"{gv} exists and was not written by this command; the graph source would replace it. "
                    f"Move it, choose another --out, or pass --force")
    return out, fmt, gv


def _run_graph(args):
    from . import viz
    from .models import example
    if args.batch < 1:
        return _graph_error(f"--batch must be at least 1, got {args.batch}")
    if args.depth is not None and args.depth < 0:
        return _graph_error(f"--depth must be 0 or more (0 collapses every module), got {args.depth}")
    paths = _graph_paths(args)
    if isinstance(paths, str):
        return _graph_error(paths)
    out, fmt, _ = paths
    if args.mode == "both" and args.view != "forward":
        return _graph_error("--mode both draws forward graphs; use --view with --mode train or eval")
    model, x = example(args.model, batch=args.batch, seed=args.seed)
    options = dict(depth=args.depth, roll_repeats=args.roll, show_shapes=not args.no_shapes)
    try:
        if args.mode == "both":
            graph = viz.draw_train_eval(model, x, **options)
        else:
            model.train(args.mode == "train")
            graph = viz.draw_graph(model(x), model=model, view=args.view, **options)
    except (ValueError, RuntimeError) as e:
        hint = ""
        if args.batch == 1 and args.mode != "eval":
            hint = (" (batch normalization needs more than one value per channel in training mode: "
                    "use --batch 2 or more, or --mode eval)")
        return _graph_error(f"{args.model} could not run on a batch of {args.batch}{hint}: {e}")
    graph.comment = GV_MARKER
    try:
        path = viz.render(graph, out, format=fmt)
    except viz.GraphvizNotFoundError as e:
        print(f"tinygrad-norm graph: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:  # dot itself failed
        print(f"tinygrad-norm graph: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


# -------------------------------------------------------------------- list, run

def _add_list(subparsers):
    p = subparsers.add_parser("list", help="list the laboratory's experiments",
                              description="List the experiments `tinygrad-norm run` knows, one per line.")
    p.set_defaults(func=_run_list)


def _run_list(args):
    from .lab import all_experiments
    for name, experiment in all_experiments().items():
        print(f"{name:16s} {experiment.title}")
    return 0


def _add_budget(p):
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--quick", dest="mode", action="store_const", const="quick",
                        help="a small budget that still shows the direction of every effect")
    budget.add_argument("--full", dest="mode", action="store_const", const="full",
                        help="paper scale, where it differs from the default (CPU) protocol")
    p.set_defaults(mode="default")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="change a setting of the protocol (e.g. --set lr=0.1); part of the run's folder name")
    p.add_argument("--out", default="runs", metavar="DIR", help="output directory (default ./runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _settings(args, command, grid_ok):
    """--set KEY=VALUE... as ({key: value}, {key: [values]}): one value fixes a setting, several
    (lr=0.1,0.3) make a grid (sweep only)."""
    from .lab.sweep import parse_setting
    fixed, grid = {}, {}
    for text in args.settings:
        key, values = parse_setting(text)
        if len(values) == 1:
            fixed[key] = values[0]
        elif grid_ok:
            grid[key] = values
        else:
            raise ValueError(f"--set {text}: `run` takes one value per setting; `tinygrad-norm sweep` takes several")
    return fixed, grid


def _experiment_name(command, name):
    from .lab import get
    try:
        return get(name).name
    except KeyError as e:
        print(f"tinygrad-norm {command}: {e.args[0]} (see `tinygrad-norm list`)", file=sys.stderr)
        return None


def _add_run(subparsers):
    p = subparsers.add_parser(
        "run", help="run an experiment and write its results, figures and report",
        description="Run a paper's experiment (see `tinygrad-norm list`) for one seed. Writes "
                    "OUT/NAME/MODE[-settings]/seed-S/results.json, the figures (*.png) and report.md (claims, "
                    "measured figures, thresholds, PASS/FAIL). Ctrl-C saves a checkpoint; running the same "
                    "command again resumes.")
    p.add_argument("name", metavar="NAME", help="the experiment (see `tinygrad-norm list`)")
    _add_budget(p)
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, batch order and data (default 0)")
    p.add_argument("--restart", action="store_true", help="ignore saved checkpoints and start afresh")
    p.set_defaults(func=_run_run)


def _run_run(args):
    from .lab import RunLockedError, run, run_dir
    name = _experiment_name("run", args.name)
    if name is None:
        return 2
    if args.seed < 0:
        print(f"tinygrad-norm run: --seed must be non-negative, got {args.seed}", file=sys.stderr)
        return 2
    try:
        overrides, _ = _settings(args, "run", grid_ok=False)
        run(name, mode=args.mode, seed=args.seed, out=args.out, overrides=overrides, restart=args.restart,
            progress=not args.no_progress)
    except KeyboardInterrupt:
        from .lab import get
        folder = run_dir(args.out, name, args.mode, args.seed, get(name).effective_overrides(args.mode, overrides))
        print(f"\ntinygrad-norm run: interrupted; the checkpoints are in {folder}/checkpoints/. "
              f"Run the same command again to resume.", file=sys.stderr)
        return 130
    except RunLockedError as e:
        print(f"tinygrad-norm run: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:   # e.g. MNIST missing and no network, a bad --set
        print(f"tinygrad-norm run: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def _add_sweep(subparsers):
    p = subparsers.add_parser(
        "sweep", help="run experiments over many seeds on dask.distributed and judge each claim",
        description="Run experiments over seeds (and settings) as tasks on dask.distributed: a local cluster "
                    "of worker processes by default, or an existing scheduler. Each task is `tinygrad-norm run` "
                    "into OUT/NAME/MODE[-settings]/seed-K/; OUT/NAME/MODE[-settings]/ gets summary.json, "
                    "summary.md and summary.png: every claim's per-seed values, a 95 % interval and a verdict "
                    "(holds / fails / inconclusive). Interrupted, the same command resumes.")
    p.add_argument("names", metavar="NAME", nargs="+", help="experiments (see `tinygrad-norm list`)")
    p.add_argument("--seeds", default="0-9", help="seeds, e.g. 0-9 or 0,3,5 (default 0-9)")
    _add_budget(p)
    p.add_argument("--workers", type=int, default=None, help="worker processes of the local cluster "
                   "(default: the number of cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="an existing dask scheduler (tcp://host:port or tls://host:port) instead of a local "
                        "cluster; OUT must then be a folder every worker sees")
    p.add_argument("--tls-ca-file", default=None, help="TLS: the CA certificate (with tls:// schedulers)")
    p.add_argument("--tls-cert", default=None, help="TLS: this client's certificate")
    p.add_argument("--tls-key", default=None, help="TLS: this client's private key")
    p.set_defaults(func=_run_sweep)


def _run_sweep(args):
    names = [_experiment_name("sweep", n) for n in args.names]
    if None in names:
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"tinygrad-norm sweep: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.scheduler and not args.scheduler.startswith(("tcp://", "tls://")):
        print(f"tinygrad-norm sweep: --scheduler must be a tcp:// or tls:// address, got {args.scheduler!r}",
              file=sys.stderr)
        return 2
    try:
        from .lab.sweep import SweepError, parse_seeds, sweep
        seeds = parse_seeds(args.seeds)
        overrides, grid = _settings(args, "sweep", grid_ok=True)
        security = None
        if args.tls_ca_file or args.tls_cert or args.tls_key:
            from distributed.security import Security
            security = Security(tls_ca_file=args.tls_ca_file, tls_client_cert=args.tls_cert,
                                tls_client_key=args.tls_key, require_encryption=True)
        sweep(names, seeds=seeds, mode=args.mode, overrides=overrides, grid=grid, out=args.out,
              workers=args.workers, scheduler=args.scheduler, security=security, progress=not args.no_progress)
    except ImportError as e:
        print(f"tinygrad-norm sweep: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except SweepError as e:
        print(str(e), file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"tinygrad-norm sweep: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


# -------------------------------------------------------------------------- main

COMMANDS = [_add_graph, _add_list, _add_run, _add_sweep]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tinygrad-norm",
        description="tinygrad_norm: see and measure what normalization does to deep networks.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"tinygrad_norm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv=None):
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
