"""A context manager that guarantees an attribution leaves the model exactly as it found it.

captum and shap register hooks, set ``requires_grad``, stash attributes on modules (shap's
``module.x``/``module.y``) and call ``model.eval()``; a method that raises half-way may leave any
of that behind. :class:`ModelGuard` snapshots everything a user could notice and restores it in
``finally``, then verifies parameters and buffers were not written to (tensor version counters).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from explain.errors import AttributionError

__all__ = ["ModelGuard", "model_fingerprint"]

# Hook dictionaries an nn.Module keeps; all are OrderedDicts keyed by handle id.
_HOOK_DICTS = (
    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
    "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_load_state_dict_pre_hooks",
)

# Where nn.Module keeps registered parameters, buffers and submodules.
_SLOTS = ("_parameters", "_buffers", "_modules")

# Clone parameters and buffers only up to this size; larger models are verified, not restored.
_CLONE_LIMIT_BYTES = 64 * 2**20


class ModelGuard:
    """Snapshot a model on entry; restore and verify it on exit, also when the body raises.

    Restored: each module's train/eval flag, every parameter's ``requires_grad`` and ``.grad``,
    hooks (any hook added inside is removed), attributes, parameters and buffers added to
    modules, and the values of buffers and parameters (parameters are cloned up to 64 MiB;
    above that, writes are detected through tensor version counters and reported).

    Examples
    --------
    >>> m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    >>> with ModelGuard(m):
    ...     _ = m.train()(torch.randn(4, 2))   # would update BatchNorm's running stats
    >>> m.training, float(m[1].running_mean.abs().sum())
    (False, 0.0)
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> ModelGuard:
        m = self.model
        self._modules = list(m.modules())
        self._training = [mod.training for mod in self._modules]
        self._attrs = [set(vars(mod)) for mod in self._modules]
        self._slots = [{k: set(getattr(mod, k)) for k in _SLOTS} for mod in self._modules]
        self._hooks = [{k: OrderedDict(getattr(mod, k)) for k in _HOOK_DICTS if hasattr(mod, k)}
                       for mod in self._modules]
        self._params = list(m.named_parameters(remove_duplicate=False))
        self._buffers = list(m.named_buffers(remove_duplicate=False))
        self._requires_grad = [p.requires_grad for _, p in self._params]
        self._grads = [None if p.grad is None else p.grad.detach().clone() for _, p in self._params]
        tensors = [t for _, t in self._params + self._buffers]
        self._versions = [t._version for t in tensors]
        # Buffers (BatchNorm statistics) are always cloned; parameters while they are small.
        size = sum(p.numel() * p.element_size() for _, p in self._params)
        keep_params = size <= _CLONE_LIMIT_BYTES
        self._clones = [t.detach().clone() if keep_params or i >= len(self._params) else None
                        for i, t in enumerate(tensors)]
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        for mod, flag, attrs, slots, hooks in zip(self._modules, self._training, self._attrs,
                                                  self._slots, self._hooks):
            mod.training = flag
            for name in set(vars(mod)) - attrs:
                delattr(mod, name)
            for key, names in slots.items():   # shap registers module.x / .y as Parameters
                table = getattr(mod, key)
                for name in set(table) - names:
                    del table[name]
            for key, saved in hooks.items():
                current = getattr(mod, key)
                current.clear()
                current.update(saved)
        for (_, p), rg, g in zip(self._params, self._requires_grad, self._grads):
            p.requires_grad_(rg)
            p.grad = g
        lost: list[str] = []
        with torch.no_grad():
            for i, ((name, t), v, clone) in enumerate(zip(
                    self._params + self._buffers, self._versions, self._clones)):
                # Kernels such as batch_norm write running statistics without bumping the
                # version counter, so buffers are compared by value.
                is_buffer = i >= len(self._params)
                if (t._version == v and not is_buffer) or (
                        is_buffer and clone is not None and torch.equal(t, clone)):
                    continue
                if clone is None:
                    lost.append(name)
                else:
                    t.copy_(clone)
        if lost and exc_type is None:
            raise AttributionError(
                f"The attribution wrote to the model's tensors {lost[:5]} and the model is "
                "too large to restore them. Reload the model; please report this as a bug.")


def model_fingerprint(model: nn.Module) -> dict[str, Any]:
    """Everything :class:`ModelGuard` protects, as plain values (used by the tests).

    Returns a dict with the train flags, ``requires_grad`` flags, hook counts, module attribute
    names and a copy of every parameter and buffer.
    """
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "hooks": [sum(len(getattr(m, k)) for k in _HOOK_DICTS if hasattr(m, k))
                  for m in model.modules()],
        "attrs": [sorted(vars(m)) for m in model.modules()],
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "global_hooks": (len(nn.modules.module._global_forward_hooks),
                         len(nn.modules.module._global_forward_pre_hooks),
                         len(nn.modules.module._global_backward_hooks)),
    }
