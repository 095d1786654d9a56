"""`tn.cuda`: there is no GPU here (`tn.cuda.is_available()` is False), so the usual
`device = tn.device("cuda" if tn.cuda.is_available() else "cpu")` picks the CPU."""


def is_available():
    """False: tinygrad_norm runs on the CPU only."""
    return False


def device_count():
    """0: no CUDA devices."""
    return 0


def manual_seed(seed):
    """Accepted for porting (no GPU generator to seed); use `tn.manual_seed`."""


def manual_seed_all(seed):
    """Accepted for porting (no GPU generator to seed); use `tn.manual_seed`."""
