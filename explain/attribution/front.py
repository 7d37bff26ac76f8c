"""The convenience front: :func:`attribute` and :func:`list_methods`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from explain.attribution import methods as _methods  # noqa: F401  (registers every method)
from explain.attribution.base import EXPLAINERS, Explainer
from explain.attribution.result import Attribution
from explain.card import ModelCard
from explain.errors import InvalidTypeError

__all__ = ["attribute", "list_methods", "get_explainer", "method_options"]


def list_methods() -> list[str]:
    """Names of every attribution method, in registration order.

    Examples
    --------
    >>> "integrated_gradients" in list_methods() and "grad_cam" in list_methods()
    True
    """
    return EXPLAINERS.names()


def get_explainer(method: str) -> type[Explainer]:
    """The :class:`Explainer` class registered as ``method`` (closest names on a typo)."""
    return EXPLAINERS.get(method)


def method_options(method: str) -> list[str]:
    """The method-specific options ``method`` accepts (besides the common ones).

    Examples
    --------
    >>> method_options("integrated_gradients")
    ['n_steps', 'method', 'tolerance', 'max_steps']
    """
    return get_explainer(method).options()


def attribute(model: nn.Module, inputs: torch.Tensor, target: Any = None,
              method: str = "integrated_gradients", *, card: ModelCard | None = None,
              **options: Any) -> Attribution:
    """Attribute each sample's ``target`` logit to its input features.

    Parameters
    ----------
    model : any ``nn.Module`` returning logits ``[batch, classes]``; it is never modified
        (train/eval flag, parameters, buffers, hooks and ``requires_grad`` are restored).
    inputs : ``[batch, *sample_shape]`` floats, or int64 token ids ``[batch, tokens]`` (those
        are attributed at the embedding layer and summed over its dimension).
    target : ``None`` (the predicted class), an int, or one int per sample.
    method : one of :func:`list_methods`.
    card : model card; defaults to ``model.card``.
    **options : ``baselines``, ``additional_forward_args``, ``batch_size``, ``memory_budget``,
        and the method's own options (:func:`method_options`), e.g. ``n_steps``.

    Returns
    -------
    Attribution
        ``values`` shaped like ``inputs`` (``[batch, tokens]`` for token ids), the method used
        after any fallback, the targets, warnings and timings.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2).eval()
    >>> a = attribute(model, torch.tensor([[1.0, 2.0, 3.0]]), target=0, n_steps=16)
    >>> torch.allclose(a.values, torch.tensor([[1.0, 2.0, 3.0]]) * model.weight[0].detach())
    True
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(
            "The 'model' parameter of attribute must be a torch.nn.Module. Got "
            f"{type(model).__name__} instead.")
    return get_explainer(method)(model, card).explain(inputs, target, **options)
