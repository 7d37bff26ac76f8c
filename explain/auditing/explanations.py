"""The explanations stage of an audit: attributions for a sample of inputs spread over the
classes, each method's trust grade (:func:`explain.evaluate`), and agreement between methods.

A method that fails is recorded with its error (never hidden); when the attribution or quality
parts of deepscope are missing the section says so.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from explain._core.audio import wav_bytes
from explain._core.tensors import decode_tokens, pad_id_of
from explain.auditing import sharding
from explain.auditing.sections import (
    Agreement,
    ExplainedSample,
    ExplanationsSection,
    MethodResult,
)
from explain.card import Modality

__all__ = ["default_methods", "explain_samples", "clip_of", "MAX_STORED", "MAX_STORED_AUDIO",
           "MAX_CLIP_SECONDS"]

#: Inputs with more values per sample than this are not kept in the report.
MAX_STORED = 4096
#: Spectrograms are kept up to this many values (their figures need them: 64 mels x 101 frames).
MAX_STORED_AUDIO = 16_384
#: Clips longer than this are not kept in the report (a second of 16 kHz sound is ~43 kB there).
MAX_CLIP_SECONDS = 10.0


def default_methods(modality: Modality, model: nn.Module | None = None) -> tuple[str, ...]:
    """Integrated gradients plus Grad-CAM for convolutional image models and spectrogram CNNs
    (a ``Conv2d`` over ``[1, mels, frames]`` has maps over time and frequency), else saliency.

    Examples
    --------
    >>> default_methods(Modality.AUDIO, nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten()))
    ('integrated_gradients', 'grad_cam')
    >>> default_methods(Modality.AUDIO, nn.GRU(40, 8))
    ('integrated_gradients', 'saliency')
    """
    has_conv = model is None or any(isinstance(m, nn.Conv2d) for m in model.modules())
    if modality in (Modality.IMAGE, Modality.AUDIO) and has_conv:
        return ("integrated_gradients", "grad_cam")
    return ("integrated_gradients", "saliency")


def _evaluate_kwargs(evaluate: Callable[..., Any], metrics: Sequence[str] | None, n: int,
                     modality: Modality) -> dict[str, Any]:
    """The options of :func:`explain.evaluate` it accepts: metrics, every sample, modality."""
    try:
        params = inspect.signature(evaluate).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return {}
    wanted = {"metrics": None if metrics is None else tuple(metrics), "n_samples": n,
              "modality": modality.value}
    return {k: v for k, v in wanted.items() if v is not None and k in params}


def clip_of(waveforms: Any, index: int, sample_rate: int | None) -> bytes | None:
    """Sample ``index``'s clip of ``waveforms`` as WAV bytes (``None`` without waveforms, or
    when it is longer than :data:`MAX_CLIP_SECONDS`).

    Examples
    --------
    >>> clip = clip_of(torch.zeros(3, 1600, dtype=torch.int16), 1, 16000)
    >>> clip[:4], len(clip)
    (b'RIFF', 3244)
    >>> clip_of(None, 0, None) is None
    True
    """
    if waveforms is None or sample_rate is None:
        return None
    clip = waveforms[index]
    if len(clip) > MAX_CLIP_SECONDS * sample_rate:
        return None
    return wav_bytes(clip, sample_rate)


def _samples(xs: torch.Tensor, idx: list[int], labels: torch.Tensor | None,
             probs: torch.Tensor, modality: Modality, vocab: Any,
             decode: Callable[[list[int]], Any] | None, waveforms: Any = None,
             sample_rate: int | None = None) -> tuple[ExplainedSample, ...]:
    conf, pred = probs.max(dim=1)
    limit = MAX_STORED_AUDIO if modality == Modality.AUDIO else MAX_STORED
    out = []
    for j, i in enumerate(idx):
        x = xs[j].detach().cpu()
        text = modality == Modality.TEXT
        out.append(ExplainedSample(
            index=i, pred=int(pred[j]), confidence=float(conf[j]),
            true=None if labels is None else int(labels[i]),
            input=x if text or x.numel() <= limit else None,
            tokens=tuple(decode_tokens(x, vocab, decode)) if text else (),
            audio=clip_of(waveforms, i, sample_rate)))
    return tuple(out)


def explain_samples(model: nn.Module, x: torch.Tensor, labels: torch.Tensor | None,
                    logits: torch.Tensor, indices: Sequence[int], *, modality: Modality,
                    class_names: Sequence[str], methods: Sequence[str] | None = None,
                    trust_metrics: Sequence[str] | None = None,
                    trust_options: Mapping[str, Any] | None = None, vocab: Any = None,
                    decode: Callable[[list[int]], Any] | None = None, waveforms: Any = None,
                    sample_rate: int | None = None) -> ExplanationsSection:
    """Attribute the samples ``indices`` with each method, grade each method, compare methods.

    ``waveforms[i]`` (with ``sample_rate``) is the sound of data sample ``i``: each explained
    sample keeps its clip (:func:`clip_of`). Under ``torch.distributed`` the samples are
    attributed and the methods graded across the ranks (:mod:`explain.auditing.sharding`); the
    section is the single-process one.
    """
    try:
        from explain.attribution import attribute
    except ImportError as exc:
        return ExplanationsSection.unavailable(
            "Attribution is not available in this install (explain.attribution could not be "
            f"imported: {exc}).")
    methods = tuple(methods) if methods else default_methods(modality, model)
    idx = [int(i) for i in indices]
    xs = x[torch.as_tensor(idx, dtype=torch.long)]
    probs = torch.softmax(logits[idx].double(), dim=1)
    samples = _samples(xs, idx, labels, probs, modality, vocab, decode, waveforms, sample_rate)
    pred = torch.tensor([s.pred for s in samples], dtype=torch.long)
    results, attrs = [], []
    attributed = sharding.attribute_methods(attribute, model, xs, pred, methods)
    grades = sharding.grade_methods(
        lambda attr: _grade(model, xs, attr, trust_metrics, modality, trust_options or {}),
        attributed)
    for done, grade in zip(attributed, grades):
        if done.error:
            results.append(MethodResult(done.method, error=done.error, seconds=done.seconds))
            continue
        attr = done.attribution
        attrs.append(attr)
        results.append(MethodResult(
            done.method, used=attr.method, values=attr.values.detach().cpu(),
            warnings=tuple(attr.warnings), seconds=done.seconds, **(grade or {})))
    pads = [a.pad_id for a in attrs if a.pad_id is not None]
    return ExplanationsSection(
        modality=modality, class_names=tuple(str(c) for c in class_names), samples=samples,
        methods=tuple(results),
        agreement=_agreement(attrs, [r.method for r in results if r.error is None]),
        pad_id=pads[0] if pads else pad_id_of(None, model))


def _grade(model: nn.Module, xs: torch.Tensor, attr: Any, trust_metrics: Sequence[str] | None,
           modality: Modality, options: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`MethodResult` fields of the trust grade (or why there is none)."""
    t0 = time.perf_counter()
    try:
        from explain.quality import evaluate
    except ImportError as exc:
        return {"verdict_reason": f"Trust metrics are not available (explain.quality: {exc})."}
    try:
        kwargs = {**_evaluate_kwargs(evaluate, trust_metrics, xs.shape[0], modality), **options}
        quality = evaluate(model, xs, attr, **kwargs)
    except Exception as exc:  # recorded, so the report says which method could not be graded
        return {"quality_seconds": time.perf_counter() - t0,
                "verdict_reason": f"explain.evaluate failed: {type(exc).__name__}: {exc}"}
    return {"quality": quality, "quality_seconds": time.perf_counter() - t0}


def _agreement(results: list[Any], names: list[str]) -> Agreement | None:
    """Median per-sample Spearman correlation between every pair of methods."""
    if len(results) < 2:
        return None
    try:
        from explain.quality import agreement
        matrix = agreement(results)
    except Exception as exc:  # missing part or a failure: say so in the report
        return Agreement(tuple(names), None, f"{type(exc).__name__}: {exc}")
    values = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    if isinstance(values, dict):
        values = values.get("matrix", values)
    return Agreement(tuple(names), tuple(tuple(None if v is None else float(v) for v in row)
                                         for row in values))
