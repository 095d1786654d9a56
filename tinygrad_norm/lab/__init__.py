"""tn.lab: the laboratory. Measuring tools for your own models, and the papers' experiments.

Measuring tools (none of them changes parameters, gradients, running buffers or
the random state of the model it measures):

    with tn.lab.ActivationMonitor(model) as mon: ...        # activation/gradient statistics per layer
    tn.lab.ics(model, F.cross_entropy, (x, y), lr=0.1)      # Santurkar et al.'s internal covariate shift
    tn.lab.landscape_probe(model, F.cross_entropy, (x, y), etas=[0.05, 0.1, 0.2])  # loss landscape
    tn.lab.top_eigenvalue(model, F.cross_entropy, (x, y), mode="train")       # curvature (also HVP, trace)
    tn.lab.effective_lr(optimizer, model)                   # η/‖w‖² of the weights feeding a norm layer

Experiments (`tinygrad-norm list`, `tinygrad-norm run NAME`, `tinygrad-norm sweep NAME`):

    tn.lab.all_experiments()                          # {name: Experiment}
    tn.lab.run("ioffe", mode="quick")                 # -> runs/ioffe/quick/seed-0/results.json, report.md, *.png
    tn.lab.sweep("ioffe", seeds=range(5), mode="quick")   # five seeds on dask.distributed, judged with intervals

Files: monitor.py, ics.py, landscape.py, curvature.py (the tools), probe.py (probing without a
trace); experiment.py (Experiment, Claim, registry), training.py (the resumable
training loop), runner.py (`run`), rundir.py (folders and locks), report.py
(results.json, report.md), stats.py (intervals and verdicts over seeds),
sweep.py (`sweep`), blas.py; experiments/ (one file per paper). The protocols
are written out in docs/protocols.md.
"""
from .probe import preserved
from .monitor import ActivationMonitor
from .ics import ics
from .landscape import landscape_probe
from .curvature import effective_lr, hessian_trace, hessian_vector_product, top_eigenvalue
from .experiment import Claim, Experiment, Threshold, all_experiments, get, register, sub_seed
from .training import Lab
from .rundir import RunLockedError, group_dir, run_dir
from .runner import run
from .sweep import sweep

__all__ = ["ActivationMonitor", "ics", "landscape_probe", "preserved", "hessian_vector_product", "top_eigenvalue",
           "hessian_trace", "effective_lr", "Experiment", "Claim", "Threshold", "Lab",
           "all_experiments", "get", "register", "run", "sweep", "run_dir", "group_dir", "RunLockedError",
           "sub_seed"]
