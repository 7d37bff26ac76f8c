"""The figures of each report section, built from its typed value (the report's HTML and the
dashboard call these same functions).

Examples
--------
>>> from explain.auditing.sections import DataSufficiencySection
>>> [f.layout.title.text for f in data_sufficiency_figures(
...     DataSufficiencySection(curve=((30, 0.5), (90, 0.8))))]
['Data sufficiency (learning curve)']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from explain._core.audio import read_wav
from explain.auditing.sections import (
    CalibrationSection,
    DataSufficiencySection,
    DistributionShiftSection,
    ExplanationsSection,
    PerformanceSection,
    RobustnessSection,
    Section,
    ShallowBaselineSection,
    TrainingSection,
)
from explain.card import Modality
from explain.figures import attribution as att
from explain.figures import audio as au
from explain.figures import performance as perf
from explain.figures import questions as qs
from explain.figures import training as tr
from explain.figures._style import escape

__all__ = ["section_figures", "training_figures", "performance_figures", "explanation_figures",
           "data_sufficiency_figures", "token_blocks", "AudioBlock", "audio_blocks"]


def training_figures(sec: TrainingSection) -> list[go.Figure]:
    """Loss curves, gradient flow, activation health, BPTT decay and spectral exponents."""
    figs: list[go.Figure] = []
    h = sec.history
    if sec.available and h is not None:
        figs += [tr.loss_curves(h, sec.overfit_epoch), tr.gradient_flow(h),
                 tr.activation_health(h)]
        if h.temporal:
            figs.append(tr.temporal_decay(h))
    if sec.spectral_alphas:
        figs.append(tr.spectral_exponents(sec.spectral_alphas))
    return figs


def performance_figures(sec: PerformanceSection) -> list[go.Figure]:
    """Confusion matrix, per-class scores, reliability diagram, mistakes (and their images)."""
    if not sec.available:
        return []
    names = list(sec.class_names)
    figs = [perf.confusion_matrix([list(r) for r in sec.confusion], names),
            perf.per_class_metrics(sec.per_class),
            perf.reliability_diagram(sec.bins, sec.ece),
            perf.confident_mistakes(sec.mistakes, names)]
    shown = [m for m in sec.mistakes if m.input is not None]
    if shown:
        figs.append(perf.mistake_gallery([m.input for m in shown], shown, names))
    return figs


def explanation_figures(sec: ExplanationsSection) -> list[go.Figure]:
    """The samples x methods grid, image overlays, and each method's trust curves (each sound's
    own figure is in :func:`audio_blocks`, next to its clip)."""
    if not sec.available or not sec.samples:
        return []
    figs: list[go.Figure] = []
    maps = {m.method: m.values for m in sec.methods if m.values is not None}
    if maps and sec.modality != Modality.TEXT:
        figs.append(att.method_grid(maps, samples=list(range(len(sec.samples)))))
    if maps and sec.modality == Modality.IMAGE:
        first = next(iter(maps))
        for j, s in enumerate(sec.samples):
            if s.input is not None:
                figs.append(att.image_overlay(
                    s.input, maps[first][j], method=first,
                    title=f"{escape(first)} · {escape(sec.label(s))}").update_layout(height=300))
    for m in sec.methods:
        q = m.quality
        if q is not None and q.curves.get("deletion"):
            figs.append(att.deletion_curve(q))
        if q is not None and q.sanity_curve.get("correlation"):
            figs.append(att.sanity_curve(q))
    agree = sec.agreement
    if agree is not None and agree.matrix:
        figs.append(att.agreement_heatmap(agree.matrix, agree.methods))
    return figs


@dataclass(frozen=True, eq=False)
class AudioBlock:
    """One explained clip: its label (raw text: escape it), its figure
    (:func:`explain.figures.audio.audio_sample`) and the clip as WAV bytes (``None`` when the
    audit was given no waveforms), which the report embeds and the dashboard plays."""

    label: str
    figure: go.Figure
    audio: bytes | None


def audio_blocks(sec: ExplanationsSection) -> list[AudioBlock]:
    """An :class:`AudioBlock` per explained sound whose spectrogram was kept: the waveform, the
    first method's attribution over the spectrogram and summed over the mel bands.

    Examples
    --------
    >>> import torch
    >>> from explain.auditing.sections import ExplainedSample, MethodResult
    >>> sec = ExplanationsSection(modality=Modality.AUDIO, class_names=("no", "yes"),
    ...     samples=(ExplainedSample(3, 1, 0.9, 1, torch.zeros(1, 8, 11)),),
    ...     methods=(MethodResult("saliency", values=torch.ones(1, 1, 8, 11)),))
    >>> [(b.label, b.audio) for b in audio_blocks(sec)]
    [('sample #3: true yes, predicted yes (0.90) · saliency', None)]
    """
    if not sec.available or sec.modality != Modality.AUDIO:
        return []
    method = next((m for m in sec.methods if m.values is not None), None)
    if method is None or method.values is None:
        return []
    blocks = []
    for j, s in enumerate(sec.samples):
        if s.input is None:
            continue
        clip, rate = read_wav(s.audio) if s.audio is not None else (None, None)
        label = f"{sec.label(s)} · {method.method}"
        names = sec.class_names
        fig = au.audio_sample(s.input, method.values[j], samples=clip, sample_rate=rate,
                              method=method.method,
                              class_name=names[s.pred] if s.pred < len(names) else str(s.pred))
        blocks.append(AudioBlock(label, fig, s.audio))
    return blocks


def data_sufficiency_figures(sec: DataSufficiencySection) -> list[go.Figure]:
    """The learning curve."""
    return [tr.data_sufficiency(sec.curve)] if sec.available and sec.curve else []


def token_blocks(sec: ExplanationsSection) -> list[tuple[str, str]]:
    """(label, safe HTML) per text sample and method: tokens highlighted by attribution
    (padding, ``sec.pad_id``, dropped; :func:`explain.figures.attribution.token_html` escapes
    tokens).
    Sub-word pieces (``play ##ing``) are merged into words with their scores summed, and the
    label says so."""
    from explain.attribution.hf_inputs import merge_word_pieces

    blocks = []
    for j, s in enumerate(sec.samples):
        if s.input is None or not s.tokens:
            continue
        ids = s.input.reshape(-1).tolist()
        keep = [i for i, t in enumerate(ids) if t != sec.pad_id]
        for m in sec.methods:
            if m.values is None:
                continue
            scores = m.values[j].reshape(-1).tolist()
            if len(scores) != len(s.tokens):
                continue
            words = merge_word_pieces([s.tokens[i] for i in keep], [scores[i] for i in keep])
            note = f" · {words.note}" if words.merged else ""
            blocks.append((f"{sec.label(s)} · {m.method}{note}",
                           att.token_html(list(words.words), list(words.scores))))
    return blocks


_BUILDERS: dict[type[Section], Callable[[Any], list[go.Figure]]] = {
    TrainingSection: training_figures, PerformanceSection: performance_figures,
    ExplanationsSection: explanation_figures, DataSufficiencySection: data_sufficiency_figures,
    CalibrationSection: qs.calibration_figures, ShallowBaselineSection: qs.baseline_figures,
    RobustnessSection: qs.robustness_figures, DistributionShiftSection: qs.shift_figures,
}


def section_figures(report: Any) -> dict[str, list[go.Figure]]:
    """Section name -> its figures, for every section of ``report`` (an :class:`explain.Report`);
    a section type without figures maps to ``[]``."""
    return {s.name: _BUILDERS[type(s)](s) if type(s) in _BUILDERS else []
            for s in report.sections}
