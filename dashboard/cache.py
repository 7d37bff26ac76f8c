"""Every library call the dashboard makes, cached: one wrapper per call, typed results.

Models are cached with ``st.cache_resource`` (:func:`get_run`); everything computed from a run
with ``st.cache_data``, keyed by the run id plus :func:`dashboard.runs.stamp_of` (so retraining
into the same folder refreshes everything). The values are the library's own: findings from
:func:`explain.diagnose`, the confusion matrix of :func:`explain.auditing.performance_summary`,
:class:`explain.Attribution` and :class:`explain.Quality`. Pages never call the library directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

import explain
import zoo
from dashboard import runs as R
from explain._core.outputs import logits_model
from explain._core.tensors import decode_tokens, pad_id_of, predict
from explain.auditing import performance_summary
from explain.auditing.training import spectral_alphas, training_section
from explain.figures import training as FT

__all__ = ["AUDIT_SAMPLES", "TRUST_METRICS", "RunOverview", "Predictions", "Sentence",
           "Attention", "get_run", "findings", "overview", "predictions", "overfit_epoch",
           "spectral", "training_figure", "sample", "attribution", "trust", "sentence",
           "sentence_attribution", "attention", "audit", "tokenizer"]

#: Test samples the audit explains (spread over the classes).
AUDIT_SAMPLES = 8
#: The trust metrics shown next to an attribution: the verdict's criteria without the costlier
#: perturbation metrics.
TRUST_METRICS = ("completeness", "faithfulness", "sanity")


@dataclass(frozen=True)
class RunOverview:
    """One row of the Runs table: what the run is and its diagnosis at a glance."""

    run: str
    model: str
    modality: str
    data: str
    preset: str
    test_accuracy: float | None
    epochs: int
    health: explain.Severity
    issues: str


@dataclass(frozen=True)
class Predictions:
    """The model on its test set: ``probs`` [N, classes], ``y``/``pred`` [N] int64, ``conf``
    [N], and ``confusion`` [classes, classes] (rows true, columns predicted)."""

    probs: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    conf: np.ndarray
    confusion: np.ndarray


@dataclass(frozen=True)
class Sentence:
    """A typed sentence through a text model: ``ids`` [1, L], its non-padding ``tokens`` (unknown
    words marked), class ``probs`` [classes], how many words were ``unknown`` and the padding
    id (the run's tokenizer's ``pad_token_id``; 0 for the zoo's vocabularies)."""

    ids: torch.Tensor
    tokens: tuple[str, ...]
    probs: np.ndarray
    unknown: int
    pad_id: int = 0


@dataclass(frozen=True)
class Attention:
    """Attention of one sample: ``weights`` [layers, L, L] (mean over heads, padding cut) and
    its ``L`` tokens."""

    weights: np.ndarray
    tokens: tuple[str, ...]


# ----------------------------------------------------------------------------- runs
@st.cache_resource(max_entries=8, show_spinner="Loading the run ...")
def _load(run_id: str, stamp: str) -> Any:
    run = zoo.load_run(R.resolve_run(run_id))
    run.model = logits_model(run.model).eval()   # any output form -> its logits
    return run


@st.cache_resource(max_entries=4, show_spinner="Loading the tokenizer ...")
def _tokenizer(run_id: str, stamp: str) -> Any:
    return R.tokenizer_of(get_run(run_id))


def tokenizer(run_id: str) -> Any:
    """The run's tokenizer (:func:`dashboard.runs.tokenizer_of`), loaded once, or ``None``."""
    return _tokenizer(run_id, R.stamp_of(run_id))


def get_run(run_id: str) -> Any:
    """The :class:`zoo.Run` ``run_id`` (model in eval mode), loaded once per process."""
    return _load(run_id, R.stamp_of(run_id))


@st.cache_data(max_entries=64, show_spinner=False)
def findings(run_id: str, stamp: str) -> tuple[explain.Finding, ...]:
    """``explain.diagnose(run.history, model=run.model)``, worst first (``()`` without history)."""
    run = get_run(run_id)
    if run.history is None:
        return ()
    return tuple(explain.diagnose(run.history, model=run.model))


@st.cache_data(max_entries=64, show_spinner=False)
def overview(run_id: str, stamp: str) -> RunOverview:
    """The run's :class:`RunOverview`."""
    run = get_run(run_id)
    found = findings(run_id, stamp)
    bad = [f.check for f in found if f.severity >= explain.Severity.WARN]
    if run.history is None:
        health, issues = explain.Severity.INFO, "no training history recorded"
    else:
        health = found[0].severity if found else explain.Severity.PASS
        issues = ", ".join(bad) or "none"
    acc = (run.metrics or {}).get("test_accuracy")
    return RunOverview(
        run=run_id, model=run.model_name, modality=run.card.modality.value,
        data=run.dataset_name or "(user data)", preset=run.preset or "",
        test_accuracy=float(acc) if isinstance(acc, (int, float)) else None,
        epochs=int(run.epoch), health=health, issues=issues)


# ----------------------------------------------------------------------------- predictions
@st.cache_data(max_entries=16, show_spinner="Predicting the test set ...")
def predictions(run_id: str, stamp: str) -> Predictions:
    """The run's test set through its model, with the library's confusion matrix."""
    run = get_run(run_id)
    x, y = run.dataset.test.tensors
    k = run.card.num_classes
    logits = predict(run.model, x, owner="the dashboard")  # [N, classes]
    probs = torch.softmax(logits, dim=-1).numpy() if len(x) else np.zeros((0, k), "f4")
    labels = y.long()
    confusion = (np.asarray(performance_summary(logits, labels, list(run.card.class_names))
                            .confusion, dtype=np.int64) if len(x) else np.zeros((k, k), np.int64))
    return Predictions(probs=probs, y=labels.numpy(), pred=probs.argmax(axis=1).astype(np.int64),
                       conf=probs.max(axis=1, initial=0.0), confusion=confusion)


# ----------------------------------------------------------------------------- training
@st.cache_data(max_entries=64, show_spinner=False)
def overfit_epoch(run_id: str, stamp: str) -> int | None:
    """The epoch the audit marks as the start of overfitting (only at WARN or worse)."""
    return training_section(get_run(run_id).history, findings(run_id, stamp)).overfit_epoch


@st.cache_data(max_entries=64, show_spinner=False)
def spectral(run_id: str, stamp: str) -> dict[str, float | None]:
    """Layer -> heavy-tail exponent alpha of the spectral check (``{}`` when it did not run)."""
    found = next((f for f in findings(run_id, stamp) if f.check == "spectral"), None)
    return spectral_alphas(found)


_TRAINING_FIGURES: dict[str, Callable[..., go.Figure]] = {
    "loss": lambda h, arg: FT.loss_curves(h, overfit_epoch=arg),
    "flow": lambda h, arg: FT.gradient_flow(h, metric=arg),
    "activations": lambda h, arg: FT.activation_health(h),
    "temporal": lambda h, arg: FT.temporal_decay(h),
}


@st.cache_data(max_entries=64, show_spinner=False)
def training_figure(run_id: str, stamp: str, kind: str, arg: object = None) -> go.Figure:
    """One :mod:`explain.figures.training` figure of the run's history (``kind``: loss, flow,
    activations, temporal), built once per (run, kind, argument)."""
    return _TRAINING_FIGURES[kind](get_run(run_id).history, arg)


# ----------------------------------------------------------------------------- explanations
def sample(run_id: str, index: int) -> tuple[torch.Tensor, int]:
    """Test sample ``index`` as a batch of one ``[1, *shape]`` and its label."""
    x, y = get_run(run_id).dataset.test.tensors
    if not 0 <= index < len(x):
        raise explain.InvalidInputError(
            f"The sample index must be in 0..{len(x) - 1}. Got {index} instead. "
            "Pick a sample from the test set.")
    return x[index:index + 1], int(y[index])


@st.cache_data(max_entries=256, show_spinner="Computing the attribution ...")
def attribution(run_id: str, stamp: str, index: int, method: str,
                target: int | None) -> explain.Attribution:
    """``explain.attribute`` for one test sample (``target=None``: the predicted class)."""
    x, _ = sample(run_id, index)
    return explain.attribute(get_run(run_id).model, x, target=target, method=method)


@st.cache_data(max_entries=256, show_spinner="Checking how far to trust it ...")
def trust(run_id: str, stamp: str, index: int, method: str,
          target: int | None) -> explain.Quality:
    """``explain.evaluate`` of that attribution with :data:`TRUST_METRICS`."""
    x, _ = sample(run_id, index)
    attr = attribution(run_id, stamp, index, method, target)
    return explain.evaluate(get_run(run_id).model, x, attr, metrics=TRUST_METRICS)


def _vocab(run: Any) -> Any:
    vocab = R.vocab_of(run)
    if vocab is None:
        raise explain.InvalidInputError(
            "Typing a sentence needs a text model with a vocabulary. Got a "
            f"{run.card.modality.value} model instead. Pick a text run in the sidebar.")
    return vocab


def _ids(run_id: str, text: str) -> torch.Tensor:
    """``[1, L]`` ids of ``text``: the run's tokenizer if it has one, else its vocabulary."""
    run = get_run(run_id)
    vocab = _vocab(run)
    length = getattr(vocab, "max_len", None)
    if length is None and run.dataset is not None:
        length = int(run.dataset.test.tensors[0].shape[1])
    tok = tokenizer(run_id)
    if tok is None:
        return vocab.encode(text, max_len=length)  # [1, L]
    return tok([text], padding="max_length", truncation=True, max_length=length,
               return_tensors="pt", return_attention_mask=False,
               return_token_type_ids=False)["input_ids"].long()


@st.cache_data(max_entries=128, show_spinner=False)
def sentence(run_id: str, stamp: str, text: str) -> Sentence:
    """The prediction for a typed sentence (its tokens: the tokenizer's word pieces, else the
    vocabulary's words)."""
    run = get_run(run_id)
    ids = _ids(run_id, text)
    probs = torch.softmax(predict(run.model, ids, owner="the dashboard"), dim=-1)[0]
    tok = tokenizer(run_id)
    pad = pad_id_of(tok, run.model)
    kept = [int(i) for i in ids[0] if int(i) != pad]
    if tok is not None:
        unk = getattr(tok, "unk_token_id", None)
        pieces = [str(t) for t in tok.convert_ids_to_tokens(kept)]
        return Sentence(ids=ids, tokens=tuple(pieces), probs=probs.numpy(),
                        unknown=sum(1 for i in kept if i == unk), pad_id=pad)
    words = _vocab(run).tokens(text)[: len(kept)]
    return Sentence(ids=ids, tokens=tuple(w if i != 1 else f"{w} (unknown)"
                                          for w, i in zip(words, kept)),
                    probs=probs.numpy(), unknown=sum(1 for i in kept if i == 1))


@st.cache_data(max_entries=128, show_spinner="Computing the attribution ...")
def sentence_attribution(run_id: str, stamp: str, text: str, method: str) -> explain.Attribution:
    """Token attributions of a typed sentence for its predicted class."""
    run = get_run(run_id)
    tok = tokenizer(run_id)   # its pad_token_id: padding gets 0 and is the baseline
    extra = {} if tok is None else {"tokenizer": tok}
    return explain.attribute(run.model, _ids(run_id, text), target=None, method=method, **extra)


@st.cache_data(max_entries=64, show_spinner=False)
def attention(run_id: str, stamp: str, index: int) -> Attention:
    """The attention maps of test sample ``index`` (models with ``attention_maps``, e.g. the
    zoo's Transformer)."""
    run = get_run(run_id)
    x, _ = sample(run_id, index)
    with torch.no_grad():
        maps = run.model.attention_maps(x)  # [layers, 1, heads, L, L]
    n = int((x[0] != 0).sum())
    weights = maps[:, 0].float().mean(1).numpy()[:, :n, :n]  # [layers, n, n]
    tokens = decode_tokens(x[0], R.vocab_of(run), skip_padding=True)[:n]
    return Attention(weights=weights, tokens=tuple(tokens))


# ----------------------------------------------------------------------------- audit
def audit(run_id: str, progress: Callable[[str, int, int], None] | None = None) -> explain.Report:
    """``Run.audit`` of the run on its test split (:data:`AUDIT_SAMPLES` samples).

    Not cached here: the Audit page keeps each report in the session with its stamp.
    ``progress(stage, done, total)`` is called at each stage.
    """
    tok = tokenizer(run_id)
    extra = {} if tok is None else {"tokenizer": tok}   # mistakes shown as the tokenizer's words
    return get_run(run_id).audit(samples=AUDIT_SAMPLES, progress=progress, **extra)
