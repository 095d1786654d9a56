"""`tn.nn.utils`: reparameterizations of a module's weight (torch.nn.utils).

    fc = nn.utils.weight_norm(nn.Linear(20, 40))    # weight = g · v / ‖v‖, per output row
    fc = nn.utils.spectral_norm(nn.Linear(20, 40))  # weight = W / σ(W), σ by power iteration

    nn.utils.clip_grad_norm_(model.parameters(), 1.0)   # gradient clipping (clip_grad.py)

weight_norm and spectral_norm are PyTorch's classic (pre-`parametrize`) implementations: a forward
pre-hook recomputes `module.weight` from the new parameters before every call.
"""
from .clip_grad import clip_grad_norm_, clip_grad_value_
from .spectral_norm import SpectralNorm, remove_spectral_norm, spectral_norm
from .weight_norm import WeightNorm, norm_except_dim, remove_weight_norm, weight_norm

__all__ = ["clip_grad_norm_", "clip_grad_value_", "weight_norm", "remove_weight_norm", "WeightNorm", "norm_except_dim",
           "spectral_norm", "remove_spectral_norm", "SpectralNorm"]
