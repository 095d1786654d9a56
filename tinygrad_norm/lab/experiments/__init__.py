"""The built-in experiments, one file per paper; importing this package registers them.

    ioffe           Ioffe & Szegedy 2015, Fig. 1 (PROTOCOLS §1)
    santurkar_ics   Santurkar et al. 2018, internal covariate shift of a deep linear net (PROTOCOLS §2)

To add one: write `experiments/<name>.py` defining `EXPERIMENT = Experiment(...)`
(see ioffe.py) and import it below.
"""
from ..runner import register
from . import ioffe, santurkar_ics

register(ioffe.EXPERIMENT)
register(santurkar_ics.EXPERIMENT)
