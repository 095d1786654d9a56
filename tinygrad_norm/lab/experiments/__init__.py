"""The built-in experiments, one file per paper; importing this package registers them.

    ioffe           Ioffe & Szegedy 2015, Fig. 1 (PROTOCOLS §1)
    santurkar_ics   Santurkar et al. 2018, internal covariate shift of a deep linear net (PROTOCOLS §2)
    init            seed 001: small / large / He initialization of a 50-layer ReLU MLP, with and without BN
    diagnostics     Karpathy's activation, gradient and update:data diagnostics (PROTOCOLS §7.2)

To add one: write `experiments/<name>.py` defining `EXPERIMENT = Experiment(...)`
(see ioffe.py) and import it below.
"""
from ..runner import register
from . import diagnostics, init, ioffe, santurkar_ics

for _module in (ioffe, santurkar_ics, init, diagnostics):
    register(_module.EXPERIMENT)
