"""Cached explanations and audits for the dashboard (``st.cache_data``, keyed by run + stamp)."""

from __future__ import annotations

from typing import Any

import streamlit as st
import torch

import explain
from dashboard import _state as S

__all__ = ["AUDIT_SAMPLES", "TRUST_METRICS", "sample", "attribution", "trust", "sentence",
           "sentence_attribution", "audit", "quality_dict"]


#: Test samples the audit explains (spread over the classes).
AUDIT_SAMPLES = 8

#: The audit's trust metrics: the verdict's criteria without the costlier perturbation metrics.
TRUST_METRICS = ("completeness", "faithfulness", "sanity")


def sample(run_id: str, index: int) -> tuple[torch.Tensor, int]:
    """Test sample ``index`` as a batch of one ``[1, *shape]`` and its label."""
    x, y = S.get_run(run_id).dataset.test.tensors
    if not 0 <= index < len(x):
        raise explain.InvalidInputError(
            f"The sample index must be in 0..{len(x) - 1}. Got {index} instead. "
            "Pick a sample from the test set.")
    return x[index:index + 1], int(y[index])


@st.cache_data(max_entries=256, show_spinner="Computing the attribution ...")
def attribution(run_id: str, stamp: str, index: int, method: str,
                target: int | None) -> explain.Attribution:
    """``explain.attribute`` for one test sample (``target=None``: the predicted class)."""
    run = S.get_run(run_id)
    x, _ = sample(run_id, index)
    return explain.attribute(run.model, x, target=target, method=method)


def quality_dict(quality: Any) -> dict[str, Any]:
    """A :class:`explain.Quality` as plain JSON values (whatever fields it has)."""
    if hasattr(quality, "to_dict"):
        return quality.to_dict()
    if hasattr(quality, "__dataclass_fields__"):
        from dataclasses import asdict
        return asdict(quality)
    return dict(vars(quality))


@st.cache_data(max_entries=256, show_spinner="Checking how far to trust it ...")
def trust(run_id: str, stamp: str, index: int, method: str,
          target: int | None) -> dict[str, Any]:
    """``explain.evaluate`` of that attribution, as a dict."""
    run = S.get_run(run_id)
    x, _ = sample(run_id, index)
    attr = attribution(run_id, stamp, index, method, target)
    return quality_dict(explain.evaluate(run.model, x, attr, metrics=TRUST_METRICS))


def _vocab(run: Any) -> Any:
    vocab = getattr(run, "vocab", None)
    if vocab is None and run.dataset is not None:
        vocab = run.dataset.vocab
    if vocab is None:
        raise explain.InvalidInputError(
            "Typing a sentence needs a text model with a vocabulary. Got a "
            f"{run.card.modality.value} model instead. Pick a text run in the sidebar.")
    return vocab


def _ids(run: Any, text: str) -> torch.Tensor:
    vocab = _vocab(run)
    length = getattr(vocab, "max_len", None)
    if length is None and run.dataset is not None:
        length = int(run.dataset.test.tensors[0].shape[1])
    return vocab.encode(text, max_len=length)  # [1, L]


@st.cache_data(max_entries=128, show_spinner=False)
def sentence(run_id: str, stamp: str, text: str) -> dict[str, Any]:
    """Prediction for a typed sentence: ``tokens`` (after lookup), ``probs``, ``unknown``."""
    run = S.get_run(run_id)
    ids = _ids(run, text)
    with torch.no_grad():
        probs = torch.softmax(run.model(ids).float(), dim=-1)[0]
    vocab = _vocab(run)
    kept = [int(i) for i in ids[0] if int(i) != 0]
    words = vocab.tokens(text)[: len(kept)]
    return {"ids": ids, "tokens": [w if i != 1 else f"{w} (unknown)" for w, i in zip(words, kept)],
            "probs": probs.numpy(), "unknown": sum(1 for i in kept if i == 1)}


@st.cache_data(max_entries=128, show_spinner="Computing the attribution ...")
def sentence_attribution(run_id: str, stamp: str, text: str, method: str) -> explain.Attribution:
    """Token attributions of a typed sentence for its predicted class."""
    run = S.get_run(run_id)
    return explain.attribute(run.model, _ids(run, text), target=None, method=method)


def audit(run_id: str, progress: Any = None) -> Any:
    """Audit the run on its test split: a frozen :class:`explain.Report`.

    ``explain.audit`` audits a model and data; a zoo run audits itself through it
    (``Run.audit``: model, history, test split, vocabulary). ``progress(stage, done, total)`` is
    called at each stage.
    """
    return S.get_run(run_id).audit(samples=AUDIT_SAMPLES, progress=progress)
