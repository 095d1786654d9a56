"""The built-in experiments, one file per paper; importing this package registers them.

    ioffe                Ioffe & Szegedy 2015, Fig. 1 (docs/protocols.md §1)
    santurkar_ics        Santurkar et al. 2018, internal covariate shift of a deep linear net (§2)
    santurkar_landscape  Santurkar et al. 2018, Figs. 4 and 10: loss-landscape probes, MNIST MLP and DLN (§3)
    noisy_bn             Santurkar et al. 2018, Fig. 2: BN with Algorithm 1's distribution noise (§4)
    init                 seed 001: small / large / He initialization of a 50-layer ReLU MLP, with and without BN (§7)
    diagnostics          Karpathy's activation, gradient and update:data diagnostics (§8)
    bjorck               Bjorck et al. 2018: BN enables large learning rates, residual MLP on MNIST (§5)
    depth_lr             seed 001's table: the largest stable learning rate vs depth, with and without BN (§6)
    scale_invariance     van Laarhoven 2017, Hoffer et al. 2018: scale invariance and the effective lr (§14)
    sharpness            Cohen et al. 2021: the edge of stability, with and without BN, train vs eval mode (§16)

To add one: write `experiments/<name>.py` defining `EXPERIMENT = Experiment(...)`
(see ioffe.py) and import it below.
"""
from ..experiment import register
from . import bjorck, depth_lr, diagnostics, init, ioffe, noisy_bn, santurkar_ics, santurkar_landscape
from . import scale_invariance, sharpness

for _module in (ioffe, santurkar_ics, santurkar_landscape, noisy_bn, init, diagnostics, bjorck, depth_lr,
                scale_invariance, sharpness):
    register(_module.EXPERIMENT)
