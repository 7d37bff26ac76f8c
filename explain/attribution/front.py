"""The convenience front: :func:`attribute` and :func:`list_methods`."""

from __future__ import annotations

from typing import Any

from torch import nn

from explain._core.outputs import logits_model
from explain._core.tensors import pad_id_of
from explain.attribution import hf_inputs
from explain.attribution import methods as _methods  # noqa: F401  (registers every method)
from explain.attribution.base import EXPLAINERS, Explainer
from explain.attribution.result import Attribution
from explain.card import ModelCard
from explain.errors import InvalidInputError, InvalidTypeError

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


def attribute(model: nn.Module, inputs: Any, target: Any = None,
              method: str = "integrated_gradients", *, card: ModelCard | None = None,
              tokenizer: Any = None, baseline_token: Any = None,
              **options: Any) -> Attribution:
    """Attribute each sample's ``target`` logit to its input features.

    Parameters
    ----------
    model : any ``nn.Module`` whose forward returns logits ``[batch, classes]``, a
        ``ModelOutput`` / mapping with ``logits``, or a tuple whose first item is the logits;
        it is never modified (train/eval flag, parameters, buffers, hooks and
        ``requires_grad`` are restored).
    inputs : ``[batch, *sample_shape]`` floats, or int64 token ids ``[batch, tokens]`` (those
        are attributed at the embedding layer and summed over its dimension), or a
        ``BatchEncoding`` / mapping with ``input_ids`` (see
        :mod:`explain.attribution.hf_inputs`: one score per token, 0 at padding).
    target : ``None`` (the predicted class), an int, or one int per sample.
    method : one of :func:`list_methods`.
    card : model card; defaults to ``model.card``.
    tokenizer : a tokenizer (``pad_token_id``, ``all_special_ids``, ``convert_tokens_to_ids``):
        for mapping inputs it gives the token baselines; for token ids and mappings its
        ``pad_token_id`` is the padding id (0 attribution; ``pad_id=`` overrides).
    baseline_token : for mapping inputs: the token id (or token string, with ``tokenizer``)
        that replaces real tokens in the baseline; default the ``[PAD]`` token.
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
    model = logits_model(model)
    if hf_inputs.is_token_mapping(inputs):
        return hf_inputs.attribute_tokens(model, inputs, target, method, card=card,
                                          tokenizer=tokenizer, baseline_token=baseline_token,
                                          **options)
    if baseline_token is not None:
        raise InvalidInputError(
            "The 'baseline_token' parameter of attribute applies to mapping inputs (a "
            "BatchEncoding or a dict with 'input_ids'). Got a "
            f"{type(inputs).__name__} instead; pass baselines= for tensor inputs.")
    if tokenizer is not None:
        options.setdefault("pad_id", pad_id_of(tokenizer, model))
    return get_explainer(method)(model, card).explain(inputs, target, **options)
