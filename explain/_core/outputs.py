"""The one model-output adapter: whatever a classifier's forward returns -> logits.

Accepted outputs: a ``[batch, classes]`` tensor; a mapping or ``transformers.ModelOutput`` with
a ``logits`` entry (or any object with a tensor ``.logits`` attribute); a tuple or list whose
first item is the logits (``return_dict=False`` models). Anything else raises
:class:`explain.InvalidTypeError` naming what came and how to fix it.

:class:`LogitsModel` applies the adapter to a model once, so every entry point needs one line
(``model = logits_model(model)``). The wrapper is transparent: its modules, parameters,
buffers, state dict and train/eval flag are the wrapped model's own, under the same names
(``model.card``, ``model.config`` and other attributes read through), so layer names in model
cards, traces and monitor histories do not change.

Examples
--------
>>> import torch
>>> class Dicty(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = torch.nn.Linear(3, 2)
...     def forward(self, x):
...         return {"logits": self.fc(x), "hidden": x}
>>> m = logits_model(Dicty())
>>> m(torch.zeros(4, 3)).shape, [n for n, _ in m.named_modules()]
(torch.Size([4, 2]), ['', 'fc'])
>>> logits_of((torch.ones(2, 5), "extra")).shape
torch.Size([2, 5])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from explain.errors import InvalidTypeError

__all__ = ["logits_of", "LogitsModel", "logits_model", "unwrap"]

_FORMS = ("a [batch, classes] tensor, a mapping or ModelOutput with 'logits', or a tuple whose "
          "first item is the logits")


def _describe(out: Any) -> str:
    name = type(out).__name__
    if isinstance(out, Mapping):
        return f"{name} with keys {list(out.keys())[:8]}"
    if isinstance(out, (tuple, list)):
        inner = ", ".join(type(o).__name__ for o in out[:4])
        return f"{name} of ({inner}{', ...' if len(out) > 4 else ''})"
    return name


def logits_of(out: Any, *, owner: str = "the model") -> torch.Tensor:
    """The logits in ``out``, the value a classifier's forward returned.

    Parameters
    ----------
    out : a tensor; a mapping / ``ModelOutput`` with ``"logits"``; an object with a tensor
        ``.logits``; or a tuple/list whose first item is the logits.
    owner : who returned ``out``, for the error message.

    Raises
    ------
    InvalidTypeError : ``out`` is none of these.

    Examples
    --------
    >>> import torch
    >>> logits_of({"logits": torch.zeros(1, 3), "loss": None}).shape
    torch.Size([1, 3])
    """
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        found = out.get("logits")
        if isinstance(found, torch.Tensor):
            return found
    else:
        attr = getattr(out, "logits", None)
        if isinstance(attr, torch.Tensor):
            return attr
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    hint = ""
    if isinstance(out, Mapping) and "loss" in out and "logits" not in out:
        hint = " (a loss without logits: call the model without labels)"
    raise InvalidTypeError(
        f"The forward of {owner} must return {_FORMS}. Got {_describe(out)} instead{hint}; "
        "return the logits from forward, or put them under the key 'logits'.")


class LogitsModel(nn.Module):
    """``model`` whose forward returns :func:`logits_of` of what ``model`` returns.

    Transparent: ``named_modules``, ``parameters``, ``buffers``, ``state_dict``,
    ``train``/``eval``, ``.to`` and attribute look-ups go to the wrapped model, under the same
    names; the wrapper adds no module, parameter or hook of its own. Build it with
    :func:`logits_model`, which never wraps twice.

    Parameters
    ----------
    model : any ``nn.Module`` classifier.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise InvalidTypeError(
                "The 'model' parameter of LogitsModel must be a torch.nn.Module. Got "
                f"{type(model).__name__} instead.")
        super().__init__()
        self.__dict__["_wrapped"] = model   # not a registered child: names stay the model's

    @property
    def wrapped(self) -> nn.Module:
        """The model being adapted."""
        return self.__dict__["_wrapped"]

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return logits_of(self.wrapped(*args, **kwargs),
                         owner=f"the model ({type(self.wrapped).__name__})")

    # -- transparency -------------------------------------------------------------------------
    @property  # type: ignore[override]
    def training(self) -> bool:
        inner = self.__dict__.get("_wrapped")
        return True if inner is None else inner.training

    @training.setter
    def training(self, mode: bool) -> None:
        inner = self.__dict__.get("_wrapped")
        if inner is not None:
            inner.training = mode

    def train(self, mode: bool = True) -> LogitsModel:
        self.wrapped.train(mode)
        return self

    def named_modules(self, memo: set[nn.Module] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, nn.Module]]:
        return self.wrapped.named_modules(memo, prefix, remove_duplicate)

    def named_children(self) -> Iterator[tuple[str, nn.Module]]:
        return self.wrapped.named_children()

    def apply(self, fn: Any) -> LogitsModel:
        self.wrapped.apply(fn)
        return self

    def _apply(self, fn: Any, recurse: bool = True) -> LogitsModel:
        self.wrapped._apply(fn, recurse)
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapped.state_dict(*args, **kwargs)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapped.load_state_dict(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("_wrapped")
        if inner is None or name.startswith("__"):
            return super().__getattr__(name)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(inner, name)

    def __repr__(self) -> str:
        return f"LogitsModel({self.wrapped!r})"


def logits_model(model: nn.Module) -> LogitsModel:
    """``model`` wrapped in a :class:`LogitsModel` (returned as is when it already is one).

    Examples
    --------
    >>> import torch
    >>> m = logits_model(torch.nn.Linear(2, 2))
    >>> logits_model(m) is m, unwrap(m).__class__.__name__
    (True, 'Linear')
    """
    return model if isinstance(model, LogitsModel) else LogitsModel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's model inside a :class:`LogitsModel` (``model`` itself otherwise)."""
    return model.wrapped if isinstance(model, LogitsModel) else model
