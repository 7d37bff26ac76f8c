"""``explain.audit``: one call that checks a model's training, performance and explanations.

The audit is a fixed sequence of stages (:data:`STAGES`); each stage is one function below that
takes the typed values of the earlier stages and returns its typed section(s).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from typing import Any, cast

import torch
from torch import nn

from explain._core import distributed as dist
from explain._core import tensors
from explain._core.outputs import logits_model, unwrap
from explain._validation import check_int
from explain.auditing import _data, sharding
from explain.auditing.explanations import explain_samples
from explain.auditing.model_card import card_section
from explain.auditing.performance import performance_summary
from explain.auditing.questions import QUESTIONS, HeldOut, QuestionInputs, held_out, run_question
from explain.auditing.report import Report
from explain.auditing.sections import ExplanationsSection, PerformanceSection, Section
from explain.auditing.training import data_sufficiency_section, training_section
from explain.card import Modality, ModelCard, card_of
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError
from explain.findings import Finding, Severity
from explain.quality.result import Verdict

__all__ = ["audit", "STAGES", "TRUST_METRICS"]

#: The trust metrics :func:`audit` grades each method with by default.
TRUST_METRICS = ("completeness", "faithfulness", "sanity")

#: The stages of an audit, in order (the names of ``Report.timings`` and of progress calls).
STAGES = ("predict", "checks", "performance", *(q.stage for q in QUESTIONS), "explanations",
          "card")
Progress = Callable[[str, int, int], None]
NO_LABELS = ("No labelled data was given. Pass data=(inputs, labels), a Dataset or a DataLoader "
             "of (input, label) pairs to measure accuracy, calibration and mistakes.")
_OWNER = "explain.audit"


@dataclass(frozen=True)
class _Inputs:
    """What the predict stage hands on: the eval-mode model, the data and its logits."""

    net: nn.Module
    x: torch.Tensor | None
    y: torch.Tensor | None
    logits: torch.Tensor | None
    class_names: tuple[str, ...]
    modality: Modality | None


def _class_names(card: ModelCard | None, given: Sequence[str] | None, k: int) -> tuple[str, ...]:
    names = list(given) if given is not None else (list(card.class_names) if card else None)
    if names is None:
        return tuple(str(i) for i in range(k))
    if len(names) != k:
        raise DataMismatchError(f"The model has {k} outputs but {len(names)} class names were "
                                f"given. Pass class_names with {k} entries.")
    return tuple(str(n) for n in names)


def _predict(model: nn.Module, data: Any, card: ModelCard | None,
             class_names: Sequence[str] | None, max_samples: int, tokenizer: Any) -> _Inputs:
    net = tensors.eval_copy(model)
    x = y = logits = None
    modality = None
    if data is not None:
        got = _data.gather(data, max_samples, tokenizer=tokenizer, model=net)
        x, y, net = got.inputs, got.labels, got.model_for(net)
        modality = tensors.infer_modality(x, card, owner=_OWNER)
        logits = sharding.predict(net, x, owner=_OWNER)
    k = logits.shape[1] if logits is not None else (card.num_classes if card else 0)
    return _Inputs(net, x, y, logits, _class_names(card, class_names, k), modality)


def _selected(checks: Iterable[str] | None) -> list[str] | None:
    """The check ids asked for (``None``: every one), as a list."""
    if checks is None:
        return None
    return [checks] if isinstance(checks, str) else list(checks)


def _checks(history: Any, model: nn.Module, checks: list[str] | None,
            learning_curve: Any, thresholds: Mapping[str, float]) -> tuple[list[Finding], str]:
    """The findings of :func:`explain.diagnose` (the question checks run in their own stages),
    or why the checks could not run."""
    try:
        from explain.checks import diagnose, list_checks
    except ImportError as exc:
        return [], f"The checks are not available in this install ({exc})."
    asked = [c for c in (list_checks() if checks is None else checks)
             if c not in {q.check for q in QUESTIONS}]
    return list(diagnose(history, model=model, checks=asked, learning_curve=learning_curve,
                         **dict(thresholds))), ""


def _questions(clock: _Clock, inp: _Inputs, checks: list[str] | None,
               thresholds: Mapping[str, float], val: HeldOut | None,
               train: HeldOut | None) -> tuple[list[Section], list[Finding]]:
    """Calibration, shallow baseline, robustness and distribution shift: a section each, and
    the finding of its check."""
    from explain.checks.thresholds import validate_thresholds

    values = validate_thresholds(thresholds)
    inputs = None
    if inp.x is not None and inp.logits is not None and inp.modality is not None:
        inputs = QuestionInputs(net=inp.net, x=inp.x, y=inp.y, logits=inp.logits,
                                modality=inp.modality, names=tuple(inp.class_names), val=val,
                                train=train)
    sections, findings = [], []
    for q in QUESTIONS:
        selected = checks is None or q.check in checks
        sec, finding = clock.run(q.stage, partial(run_question, q, selected, inputs, values))
        sections.append(sec)
        findings += [finding] if finding is not None else []
    return sections, findings


def _performance(inp: _Inputs, vocab: Any, decode: Any, tokenizer: Any = None) -> PerformanceSection:
    """Accuracy, calibration and mistakes; the mistakes keep their image or text (with a
    tokenizer: its words, word pieces merged, special tokens and padding dropped)."""
    if inp.x is None or inp.y is None or inp.logits is None:
        return PerformanceSection.unavailable(NO_LABELS)
    perf = performance_summary(inp.logits, inp.y, inp.class_names)
    mistakes = []
    for m in perf.mistakes:
        sample = inp.x[m.index]
        if inp.modality == Modality.TEXT:
            words = (_data.words_of(sample, tokenizer) if tokenizer is not None else
                     tensors.decode_tokens(sample, vocab, decode, skip_padding=True))
            m = replace(m, text=" ".join(words)[:400])
        elif inp.modality == Modality.IMAGE and sample.numel() <= 4096:
            m = replace(m, input=sample.detach().cpu())
        mistakes.append(m)
    return replace(perf, mistakes=tuple(mistakes))


def _check_waveforms(waveforms: Any, sample_rate: int | None, n: int | None) -> int | None:
    """The checked ``sample_rate`` of ``waveforms`` (one clip per data sample), or ``None``."""
    if waveforms is None:
        return None
    if sample_rate is None:
        raise InvalidInputError("audit 'waveforms' needs its 'sample_rate' (samples per second, "
                                "e.g. sample_rate=16000). Got none.")
    rate = check_int(sample_rate, "sample_rate", owner="audit", min=1)
    if not hasattr(waveforms, "__getitem__") or not hasattr(waveforms, "__len__"):
        raise InvalidTypeError(f"audit 'waveforms' must be a [samples, time] tensor or array, or "
                               f"a list of 1-D clips. Got {type(waveforms).__name__} instead.")
    if n is not None and len(waveforms) < n:
        raise DataMismatchError(
            f"audit 'waveforms' must hold one clip per data sample ({n}). Got {len(waveforms)} "
            "instead; pass the clips of the same samples, in the same order.")
    return rate


def _explanations(inp: _Inputs, samples: int, **options: Any) -> ExplanationsSection:
    if inp.x is None or inp.logits is None or inp.modality is None:
        return ExplanationsSection.unavailable(
            "No inputs were given to explain. Pass data=... (and samples >= 1).")
    if samples == 0:
        return ExplanationsSection.unavailable("samples=0: no inputs were explained.")
    pick = _data.pick_samples(inp.y if inp.y is not None else inp.logits.argmax(1), samples)
    return explain_samples(inp.net, inp.x, inp.y, inp.logits, pick, modality=inp.modality,
                           class_names=inp.class_names, **options)


def trust_finding(section: ExplanationsSection) -> Finding | None:
    """One ``explanation-trust`` finding from each method's :class:`explain.Verdict`.

    Its severity is the worst :attr:`Verdict.severity`, capped at WARN: an untrustworthy
    explanation method says not to rely on that method's maps, not that the model is broken,
    so it must not fail a ``--fail-on fail`` CI gate. A method that errs counts as doubtful.
    """
    graded = {m.method: m.verdict for m in section.methods if m.verdict is not None}
    failed = {m.method: m.error for m in section.methods if m.error}
    if not graded and not failed:
        return None
    listed = ", ".join(f"{k}: {v.value}" for k, v in graded.items()) or "none graded"
    evidence = {"verdicts": {k: v.value for k, v in graded.items()}, "errors": failed}
    insane = [k for k, v in graded.items() if v == Verdict.FAILS_SANITY]
    if insane:
        return Finding("explanation-trust", min(Verdict.FAILS_SANITY.severity, Severity.WARN),
                       f"{len(insane)} attribution method(s) failed the sanity check ({listed}).",
                       evidence, "Do not trust " + ", ".join(insane) + " on this model; use a "
                       "method whose maps change when the weights are randomized.")
    doubtful = [k for k, v in graded.items() if v.severity >= Severity.WARN]
    if doubtful or failed:
        return Finding("explanation-trust", Severity.WARN,
                       f"Explanations of {', '.join([*doubtful, *failed])} are doubtful or "
                       f"could not be computed ({listed}).", evidence,
                       "Compare several methods and read their trust metrics before relying on "
                       "one explanation.")
    return Finding("explanation-trust", max(v.severity for v in graded.values()),
                   f"Every attribution method was judged trustworthy ({listed}).", evidence)


class _Clock:
    """Times each stage and reports progress as ``progress(stage, done, total)``."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._i = 0

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.progress is not None:
            self.progress(name, self._i, len(STAGES))
        t0 = time.perf_counter()
        out = fn()
        self.timings[name] = time.perf_counter() - t0
        self._i += 1
        return out

    def done(self) -> None:
        if self.progress is not None:
            self.progress("done", len(STAGES), len(STAGES))


def audit(model: nn.Module, data: Any = None, *, history: Any = None,
          class_names: Sequence[str] | None = None, samples: int = 8,
          methods: Sequence[str] | None = None, checks: Iterable[str] | None = None,
          thresholds: Mapping[str, float] | None = None, learning_curve: Any = None,
          trust_metrics: Sequence[str] | None = TRUST_METRICS,
          trust_options: Mapping[str, Any] | None = None,
          vocab: Any = None, decode: Callable[[list[int]], Any] | None = None,
          tokenizer: Any = None, card: ModelCard | None = None, meta: Mapping[str, Any] | None = None,
          max_samples: int = 10_000, title: str | None = None,
          progress: Progress | None = None, val_data: Any = None,
          train_data: Any = None, waveforms: Any = None,
          sample_rate: int | None = None) -> Report:
    """Audit a classifier: training health, performance, explanations and a model card.

    Parameters
    ----------
    model : any ``nn.Module`` classifier whose forward returns logits ``[batch, classes]``, a
        ``ModelOutput`` / mapping with ``logits``, or a tuple whose first item is the logits;
        never modified (a model left in train mode is evaluated on an eval-mode copy).
    data : labelled evaluation data: a Dataset, a DataLoader or an ``(inputs, labels)`` tuple;
        or Hugging Face-style: a DataLoader / Dataset of mapping batches with ``input_ids``
        (``attention_mask``, ``token_type_ids``) and ``labels``, or a ``datasets.Dataset`` in
        torch format. The model is then called with keywords, the other inputs rebuilt from
        the ids and checked against the data's (:mod:`explain.auditing._hf_data`).
        ``None`` skips performance and explanations, saying so.
    history : a :class:`explain.monitor.History` (``mon.history``); without it the training
        section says what is missing and how to record it.
    class_names : one name per class (default: the model card's, else ``"0"``, ``"1"``, ...).
    samples : how many inputs to explain, spread over the classes.
    methods : attribution methods (default integrated gradients + saliency, or + Grad-CAM for
        images); see :func:`explain.list_methods`.
    checks, thresholds, learning_curve : passed to :func:`explain.diagnose`.
    trust_metrics : the metrics :func:`explain.evaluate` computes per method.
    trust_options : more options for :func:`explain.evaluate` (e.g. ``sanity_checkpoints=2``
        to trade detail for speed).
    vocab, decode : turn token ids into strings for text models.
    tokenizer : a Hugging Face tokenizer (anything with ``convert_ids_to_tokens``): its word
        pieces name the explained tokens (figures merge them into words, scores summed, and
        say so) and mistakes show its words; its pad and ``[SEP]`` ids read mapping data.
    card : the model card (default ``model.card``; the modality is inferred if there is none).
    meta : extra facts for the model card: ``config``, ``seed``, ``data`` (dict), ...
    max_samples : evaluate at most this many samples of ``data``.
    progress : called as ``progress(stage, done, total)`` at each stage (on rank 0 only).
    val_data : labelled held-out data like the training data (not the evaluated data): the
        calibration temperature is fitted on it and it is the reference of the
        distribution-shift test (without it, the temperature is cross-fitted on the evaluated
        data and the shift test is skipped, saying so).
    train_data : the training data: the shallow baselines are fitted on it (at most 20,000
        samples); without it the shallow-baseline section says how to enable it.
    waveforms, sample_rate : for audio models, the sound of each sample of ``data`` (a
        ``[samples, time]`` tensor or array, int16 PCM or floats in [-1, 1], or a list of 1-D
        clips) and its samples per second: each explained sample keeps its clip (up to 10 s)
        as a WAV file, which the HTML report embeds and the dashboard plays.

    Notes
    -----
    Under ``torch.distributed`` (every rank calls ``audit`` with the same arguments, e.g.
    launched by ``torchrun``), the scoring of ``data`` and the attribution of the explained
    samples are sharded across the ranks and gathered on rank 0
    (:mod:`explain.auditing.sharding`); every rank returns rank 0's report, which equals the
    single-process report. Write it from rank 0 only.

    Examples
    --------
    >>> import torch
    >>> from explain.auditing.sections import PerformanceSection, TrainingSection
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    >>> x, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    >>> report = audit(model, (x, y), samples=0, checks=["non-finite"])
    >>> report.section(PerformanceSection).n, report.section(TrainingSection).available
    (30, False)
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"audit 'model' must be a torch.nn.Module. Got "
                               f"{type(model).__name__} instead.")
    model = logits_model(model)   # a ModelOutput / mapping / tuple forward -> its logits
    samples = check_int(samples, "samples", owner="audit", min=0)
    max_samples = check_int(max_samples, "max_samples", owner="audit", min=1)
    card = card if card is not None else card_of(model)
    clock = _Clock(progress if dist.is_main() else None)
    inp: _Inputs = clock.run("predict", lambda: _predict(model, data, card, class_names,
                                                         max_samples, tokenizer))
    rate = _check_waveforms(waveforms, sample_rate, None if inp.x is None else len(inp.x))
    vocab = tokenizer if vocab is None and decode is None else vocab
    explain_stage = partial(_explanations, inp, samples, methods=methods,
                            trust_metrics=trust_metrics, trust_options=trust_options,
                            vocab=vocab, decode=decode, waveforms=waveforms, sample_rate=rate)
    if not dist.is_main():   # under torch.distributed: help with the sharded stages only
        explain_stage()
        return cast(Report, dist.broadcast_object(None))   # rank 0 sends its report
    asked = _selected(checks)
    findings, missing = clock.run("checks", lambda: _checks(
        history, inp.net, asked, learning_curve, thresholds or {}))
    sections: list[Section] = [training_section(history, findings, missing),
                               data_sufficiency_section(findings, learning_curve)]
    sections.append(clock.run("performance", lambda: _performance(inp, vocab, decode,
                                                                  tokenizer)))
    answered, graded = _questions(clock, inp, asked, thresholds or {},
                                  held_out(val_data, max_samples), held_out(train_data, 20_000))
    sections += answered
    findings += graded
    explained: ExplanationsSection = clock.run("explanations", explain_stage)
    sections.append(explained)
    trust = trust_finding(explained)
    described = _data.describe_inputs(inp.x) if inp.x is not None else {}
    sections.append(clock.run("card", lambda: card_section(unwrap(model), card, described, meta)))
    clock.done()
    name = card.name if card else type(unwrap(model)).__name__
    return dist.broadcast_object(Report(
        title=title or f"Audit of {name}", findings=(*findings, *([trust] if trust else [])),
        sections=tuple(sections), timings=clock.timings,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds")))
