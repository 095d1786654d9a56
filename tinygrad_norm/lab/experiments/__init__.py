"""The built-in experiments, one file per paper; importing this package registers them.

    ioffe                Ioffe & Szegedy 2015, Fig. 1 (docs/protocols.md §1)
    santurkar_ics        Santurkar et al. 2018, internal covariate shift of a deep linear net (§2)
    santurkar_landscape  Santurkar et al. 2018, Figs. 4 and 10: loss-landscape probes, MNIST MLP and DLN (§3)
    noisy_bn             Santurkar et al. 2018, Fig. 2: BN with Algorithm 1's distribution noise (§4)
    bjorck               Bjorck et al. 2018: BN enables large learning rates, residual MLP on MNIST (§5)
    depth_lr             seed 001's table: the largest stable learning rate vs depth, with and without BN (§6)
    init                 seed 001: small / large / He initialization of a 50-layer ReLU MLP, with and without BN (§7)
    diagnostics          Karpathy's activation, gradient and update:data diagnostics (§8)
    small_batch          Wu & He 2018: BN vs GN, LN and BRN at batch 32 … 2 (§9)
    batch_renorm         Ioffe 2017: Batch Renorm at batch 4 and with non-i.i.d. batches (§10)
    train_eval           BN's running / population / test-batch statistics, and AdaBN (§11)
    layernorm            Ba et al. 2016 §6.6: LayerNorm vs BatchNorm at batch 128 and 4 (§12)
    rmsnorm              Zhang & Sennrich 2019: RMSNorm vs LayerNorm (§13)
    scale_invariance     van Laarhoven 2017, Hoffer et al. 2018: scale invariance and the effective lr (§14)
    sharpness            Cohen et al. 2021: the edge of stability, with and without BN, train vs eval mode (§16)

To add one: write `experiments/<name>.py` defining `EXPERIMENT = Experiment(...)`
(see ioffe.py) and add it to the list below.
"""
from importlib import import_module

from ..experiment import register

MODULES = [
    "ioffe", "santurkar_ics", "santurkar_landscape", "noisy_bn", "bjorck", "depth_lr", "init", "diagnostics",
    "small_batch",
    "batch_renorm",
    "train_eval",
    "layernorm",
    "rmsnorm",
    "scale_invariance",
    "sharpness",
]

for _name in MODULES:
    register(import_module(f"{__name__}.{_name}").EXPERIMENT)
