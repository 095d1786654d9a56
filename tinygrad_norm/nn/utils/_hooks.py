"""What weight_norm and spectral_norm share: finding and removing the forward
pre-hook that recomputes `module.<name>` (PyTorch's classic reparameterizations)."""


def find_hook(module, cls, name):
    """(key, hook) of the `cls` pre-hook of `module` that computes `module.<name>`,
    or (None, None)."""
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, cls) and hook.name == name:
            return key, hook
    return None, None


def check_not_applied(module, cls, name, what):
    """Raise if `module.<name>` already has a `cls` hook (`what` names it in the error)."""
    if find_hook(module, cls, name)[1] is not None:
        raise RuntimeError(f"Cannot register two {what} hooks on the same parameter {name}")


def remove_hook(module, cls, name, what):
    """Undo the `cls` reparameterization of `module.<name>` (hook.remove turns it
    back into a Parameter) and drop the hook; returns the module."""
    key, hook = find_hook(module, cls, name)
    if hook is None:
        raise ValueError(f"{what} of '{name}' not found in {module}")
    hook.remove(module)
    del module._forward_pre_hooks[key]
    return module
