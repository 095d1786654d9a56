"""The `tinygrad-norm` command (also `python -m tinygrad_norm`).

    tinygrad-norm graph mlp_bn --out mlp_bn.svg --mode both
    tinygrad-norm graph resmlp --out resmlp.png --roll
    tinygrad-norm list                       # the laboratory's experiments
    tinygrad-norm run ioffe --quick          # -> runs/ioffe/results.json, *.png, report.md

Each subcommand is one `_add_<name>(subparsers)` function that adds its parser
and sets `func`; `main` dispatches. To add a command, write such a function
and append it to `COMMANDS`.
"""
import argparse
import sys


# ------------------------------------------------------------------------- graph

def _add_graph(subparsers):
    from .models import EXAMPLES
    models = "\n".join(f"  {name:9s} {desc}" for name, (_, _, desc) in EXAMPLES.items())
    p = subparsers.add_parser(
        "graph", help="draw the computation graph of an example model",
        description="Draw the computation graph of an example model with Graphviz.",
        epilog=f"models:\n{models}", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", choices=list(EXAMPLES), help="one of: " + ", ".join(EXAMPLES))
    p.add_argument("--out", "-o", metavar="FILE", help="output file; its extension picks the format "
                   "(svg, png, pdf, gv). Default: MODEL.svg")
    p.add_argument("--format", help="output format, overriding the extension")
    p.add_argument("--batch", type=int, default=4, help="batch size of the example input (default 4)")
    p.add_argument("--mode", choices=["train", "eval", "both"], default="train",
                   help="draw the model in training mode, eval mode, or both side by side (default train)")
    p.add_argument("--view", choices=["forward", "backward", "both"], default="forward",
                   help="the forward graph, the backward graph, or both (default forward)")
    p.add_argument("--depth", type=int, default=None, help="collapse modules nested deeper than DEPTH")
    p.add_argument("--roll", action="store_true", help="roll repeated modules into one node (Block × n)")
    p.add_argument("--no-shapes", action="store_true", help="leave out shapes and dtypes")
    p.add_argument("--seed", type=int, default=0, help="seed of the model's initialisation (default 0)")
    p.set_defaults(func=_run_graph)


def _run_graph(args):
    from . import viz
    from .models import example
    if args.batch < 1:
        print(f"tinygrad-norm graph: --batch must be at least 1, got {args.batch}", file=sys.stderr)
        return 2
    model, x = example(args.model, batch=args.batch, seed=args.seed)
    options = dict(depth=args.depth, roll_repeats=args.roll, show_shapes=not args.no_shapes)
    out = args.out or f"{args.model}.{args.format or 'svg'}"
    if args.mode == "both":
        if args.view != "forward":
            print("tinygrad-norm graph: --mode both draws forward graphs; use --view with --mode train or eval",
                  file=sys.stderr)
            return 2
        graph = viz.draw_train_eval(model, x, **options)
    else:
        model.train(args.mode == "train")
        graph = viz.draw_graph(model(x), model=model, view=args.view, **options)
    try:
        path = viz.render(graph, out, format=args.format)
    except viz.GraphvizNotFoundError as e:
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


def _add_run(subparsers):
    p = subparsers.add_parser(
        "run", help="run an experiment and write its results, figures and report",
        description="Run a paper's experiment (see `tinygrad-norm list`). Writes OUT/NAME/results.json, "
                    "the figures (*.png) and report.md (claims, measured figures, thresholds, PASS/FAIL). "
                    "Ctrl-C saves a checkpoint; running the same command again resumes.")
    p.add_argument("name", metavar="NAME", help="the experiment (see `tinygrad-norm list`)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--quick", dest="mode", action="store_const", const="quick",
                        help="a small budget that still shows the direction of every effect")
    budget.add_argument("--full", dest="mode", action="store_const", const="full",
                        help="paper scale, where it differs from the default (CPU) protocol")
    p.set_defaults(mode="default")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order (default 0)")
    p.add_argument("--out", default="runs", metavar="DIR", help="output directory (default ./runs)")
    p.add_argument("--restart", action="store_true", help="ignore saved checkpoints and start afresh")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_run_run)


def _run_run(args):
    from .lab import run
    from .lab.runner import get
    try:
        args.name = get(args.name).name
    except KeyError as e:
        print(f"tinygrad-norm run: {e.args[0]} (see `tinygrad-norm list`)", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"tinygrad-norm run: --seed must be non-negative, got {args.seed}", file=sys.stderr)
        return 2
    try:
        run(args.name, mode=args.mode, seed=args.seed, out=args.out, restart=args.restart,
            progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ntinygrad-norm run: interrupted; the checkpoint is in {args.out}/{args.name}/checkpoints/. "
              f"Run the same command again to resume.", file=sys.stderr)
        return 130
    except (OSError, ValueError) as e:   # e.g. MNIST missing and no network
        print(f"tinygrad-norm run: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


# -------------------------------------------------------------------------- main

COMMANDS = [_add_graph, _add_list, _add_run]


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
