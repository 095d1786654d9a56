"""`tn.backends`: the flags PyTorch scripts read or set, for porting.

    tn.backends.mps.is_available()          # False: no Apple GPU backend
    tn.backends.cudnn.deterministic = True  # accepted, no effect (there is no cuDNN)
"""
from types import SimpleNamespace


def _false():
    return False


mps = SimpleNamespace(is_available=_false, is_built=_false)
cudnn = SimpleNamespace(is_available=_false, enabled=False, deterministic=False, benchmark=False)
