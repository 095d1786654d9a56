"""tn.lab: the laboratory. Measuring tools for your own models, and the papers' experiments.

Measuring tools (none of them changes parameters, gradients, running buffers or
the random state of the model it measures):

    with tn.lab.ActivationMonitor(model) as mon: ...        # activation/gradient statistics per layer
    tn.lab.ics(model, F.cross_entropy, (x, y), lr=0.1)      # Santurkar et al.'s internal covariate shift
    tn.lab.landscape_probe(model, F.cross_entropy, (x, y), etas=[0.05, 0.1, 0.2])  # loss landscape

Experiments (`tinygrad-norm list`, `tinygrad-norm run NAME`):

    tn.lab.all_experiments()             # {name: Experiment}
    tn.lab.run("ioffe", mode="quick")    # -> runs/ioffe/results.json, *.png, report.md

Files: monitor.py, ics.py, landscape.py (the tools), probe.py (probing without a
trace), runner.py (the framework: registry, resumable training loop, reports),
experiments/ (one file per paper).
"""
from .probe import preserved
from .monitor import ActivationMonitor
from .ics import ics
from .landscape import landscape_probe
from .runner import Claim, Experiment, Lab, all_experiments, get, register, run

__all__ = ["ActivationMonitor", "ics", "landscape_probe", "preserved", "Experiment", "Claim", "Lab",
           "all_experiments", "get", "register", "run"]
