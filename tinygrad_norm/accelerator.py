"""`tn.accelerator`, as `torch.accelerator` (PyTorch ≥ 2.6, used by pytorch/examples):
there is none here, so the usual

    device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")

picks the CPU."""


def is_available():
    """False: tinygrad_norm runs on the CPU only."""
    return False


def current_accelerator(check_available=False):
    """None: no accelerator (PyTorch returns None too when there is none)."""
    return None


def device_count():
    """0: no accelerator devices."""
    return 0
