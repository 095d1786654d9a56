"""The built-in experiments, one file per paper; importing this package registers them.

    ioffe                Ioffe & Szegedy 2015, Fig. 1 (PROTOCOLS §1)
    santurkar_ics        Santurkar et al. 2018, internal covariate shift of a deep linear net (PROTOCOLS §2)
    santurkar_landscape  Santurkar et al. 2018, Figs. 4 and 10: loss-landscape probes, MNIST MLP and DLN (PROTOCOLS §2)
    noisy_bn             Santurkar et al. 2018, Fig. 2: BN with Algorithm 1's distribution noise (PROTOCOLS §2)
    init                 seed 001: small / large / He initialization of a 50-layer ReLU MLP, with and without BN
    diagnostics          Karpathy's activation, gradient and update:data diagnostics (PROTOCOLS §7.2)
    bjorck               Bjorck et al. 2018: BN enables large learning rates, residual MLP on MNIST (PROTOCOLS §4)
    depth_lr             seed 001's table: the largest stable learning rate vs depth, with and without BN
    small_batch          Wu & He 2018: BN vs GN, LN and BRN at batch 32 … 2 (docs/protocols.md §9)
    batch_renorm         Ioffe 2017: Batch Renorm at batch 4 and with non-i.i.d. batches (docs/protocols.md §10)
    train_eval           BN's running / population / test-batch statistics, and AdaBN (docs/protocols.md §11)
    layernorm            Ba et al. 2016 §6.6: LayerNorm vs BatchNorm at batch 128 and 4 (docs/protocols.md §12)
    rmsnorm              Zhang & Sennrich 2019: RMSNorm vs LayerNorm (docs/protocols.md §13)

To add one: write `experiments/<name>.py` defining `EXPERIMENT = Experiment(...)`
(see ioffe.py) and import it below.
"""
from ..experiment import register
from . import bjorck, depth_lr, diagnostics, init, ioffe, noisy_bn, santurkar_ics, santurkar_landscape
from . import batch_renorm, layernorm, rmsnorm, small_batch, train_eval

for _module in (ioffe, santurkar_ics, santurkar_landscape, noisy_bn, init, diagnostics, bjorck, depth_lr,
                small_batch, batch_renorm, train_eval, layernorm, rmsnorm):
    register(_module.EXPERIMENT)
