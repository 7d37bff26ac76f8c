"""``explain.audit``: one call that checks a model's training, performance and explanations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from torch import nn

from explain._validation import check_int
from explain.auditing import _data
from explain.auditing.explanations import compact, explain_samples
from explain.auditing.performance import performance_summary
from explain.auditing.report import Report
from explain.auditing.sections import card_section, data_sufficiency_section, training_section
from explain.card import Modality, ModelCard, card_of
from explain.errors import DataMismatchError, InvalidTypeError
from explain.findings import Finding, Severity

__all__ = ["audit", "audit_run", "STAGES"]

#: The stages of an audit, in order (the names of ``Report.timings`` and of progress calls).
STAGES = ("predict", "checks", "performance", "explanations", "card")
Progress = Callable[[str, int, int], None]


def _class_names(card: ModelCard | None, given: Sequence[str] | None, k: int) -> list[str]:
    names = list(given) if given is not None else (list(card.class_names) if card else None)
    if names is None:
        return [str(i) for i in range(k)]
    if len(names) != k:
        raise DataMismatchError(f"The model has {k} outputs but {len(names)} class names were "
                                f"given. Pass class_names with {k} entries.")
    return [str(n) for n in names]


def _diagnose(history: Any, model: nn.Module, checks: Iterable[str] | None,
              learning_curve: Any, thresholds: Mapping[str, float]) -> tuple[list[Finding], str]:
    try:
        from explain.checks import diagnose
    except ImportError as exc:
        return [], f"The checks are not available in this install ({exc})."
    return diagnose(history, model=model, checks=checks, learning_curve=learning_curve,
                    **dict(thresholds)), ""


def audit(model: nn.Module, data: Any = None, *, history: Any = None,
          class_names: Sequence[str] | None = None, samples: int = 8,
          methods: Sequence[str] | None = None, checks: Iterable[str] | None = None,
          thresholds: Mapping[str, float] | None = None, learning_curve: Any = None,
          trust_metrics: Sequence[str] | None = ("completeness", "faithfulness", "sanity"),
          trust_options: Mapping[str, Any] | None = None,
          vocab: Any = None, decode: Callable[[list[int]], Any] | None = None,
          card: ModelCard | None = None, meta: Mapping[str, Any] | None = None,
          max_samples: int = 10_000, title: str | None = None,
          progress: Progress | None = None) -> Report:
    """Audit a classifier: training health, performance, explanations and a model card.

    Parameters
    ----------
    model : any ``nn.Module`` returning logits ``[batch, classes]``; never modified (a model
        left in train mode is evaluated on an eval-mode copy).
    data : labelled evaluation data: a Dataset, a DataLoader or an ``(inputs, labels)`` tuple
        (``None`` skips performance and explanations, saying so).
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
    card : the model card (default ``model.card``; the modality is inferred if there is none).
    meta : extra facts for the model card: ``config``, ``seed``, ``data`` (dict), ...
    max_samples : evaluate at most this many samples of ``data``.
    progress : called as ``progress(stage, done, total)`` at each stage.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    >>> x, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    >>> report = audit(model, (x, y), samples=0, checks=["non-finite"])
    >>> report.sections["performance"]["n"], report.sections["training"]["available"]
    (30, False)
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"audit 'model' must be a torch.nn.Module. Got "
                               f"{type(model).__name__} instead.")
    samples = check_int(samples, "samples", owner="audit", min=0)
    max_samples = check_int(max_samples, "max_samples", owner="audit", min=1)
    card = card if card is not None else card_of(model)
    timings: dict[str, float] = {}
    sections: dict[str, Any] = {}
    total = len(STAGES)

    def stage(i: int, name: str) -> float:
        if progress is not None:
            progress(name, i, total)
        return time.perf_counter()

    t = stage(0, "predict")
    net = _data.eval_copy(model)
    x = y = logits = None
    if data is not None:
        x, y = _data.collect(data, max_samples)
        logits = _data.predict(net, x)
    k = logits.shape[1] if logits is not None else (card.num_classes if card else 0)
    names = _class_names(card, class_names, k)
    timings["predict"] = time.perf_counter() - t

    t = stage(1, "checks")
    findings, missing = _diagnose(history, net, checks, learning_curve, thresholds or {})
    sections["training"] = training_section(history, findings)
    if missing:
        sections["training"].update(available=False, reason=missing)
    sections["data_sufficiency"] = data_sufficiency_section(findings, learning_curve)
    timings["checks"] = time.perf_counter() - t

    t = stage(2, "performance")
    if y is not None:
        sections["performance"] = performance_summary(logits, y, names)
        _mistake_inputs(sections["performance"], x, _data.infer_modality(x, card), vocab, decode)
    else:
        sections["performance"] = {"available": False, "reason": (
            "No labelled data was given. Pass data=(inputs, labels), a Dataset or a DataLoader "
            "of (input, label) pairs to measure accuracy, calibration and mistakes.")}
    timings["performance"] = time.perf_counter() - t

    t = stage(3, "explanations")
    if x is None or samples == 0:
        sections["explanations"] = {"available": False, "reason": (
            "No inputs were given to explain. Pass data=... (and samples >= 1)."
            if x is None else "samples=0: no inputs were explained.")}
    else:
        modality = _data.infer_modality(x, card)
        pick = _data.pick_samples(y if y is not None else logits.argmax(1), samples)
        sections["explanations"] = explain_samples(
            net, x, y, logits, pick, modality=modality, class_names=names, methods=methods,
            trust_metrics=trust_metrics, trust_options=trust_options, vocab=vocab, decode=decode)
        findings.extend(_trust_findings(sections["explanations"]))
    timings["explanations"] = time.perf_counter() - t

    t = stage(4, "card")
    described = _data.describe_inputs(x) if x is not None else {}
    sections["card"] = card_section(model, card, described, meta)
    timings["card"] = time.perf_counter() - t
    if progress is not None:
        progress("done", total, total)
    name = card.name if card else type(model).__name__
    return Report(title=title or f"Audit of {name}", findings=tuple(findings), sections=sections,
                  timings=timings,
                  created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _mistake_inputs(perf: dict[str, Any], x: Any, modality: Modality, vocab: Any,
                    decode: Callable[[list[int]], Any] | None) -> None:
    """Add the inputs of the most confident mistakes: images, or text as tokens."""
    for m in perf.get("mistakes", []):
        sample = x[m["index"]]
        if modality == Modality.TEXT:
            ids = [int(t) for t in sample.tolist() if int(t) != 0]
            m["text"] = " ".join(_data.decode_tokens(ids, vocab, decode))[:400]
        elif modality == Modality.IMAGE and sample.numel() <= 4096:
            m["input"] = compact(sample)


def _trust_findings(section: Mapping[str, Any]) -> list[Finding]:
    """One ``explanation-trust`` finding: WARN if a method fails sanity, is doubtful or errs.

    Never FAIL: an untrustworthy explanation method says not to rely on that method's maps, not
    that the model is broken, so it should not fail a ``--fail-on fail`` CI gate.
    """
    graded = [m for m in section.get("methods", []) if m.get("verdict")]
    failed = [m for m in section.get("methods", []) if m.get("error")]
    if not graded and not failed:
        return []
    verdicts = {m["method"]: str(m["verdict"]) for m in graded}
    bad = {k: v for k, v in verdicts.items() if "fail" in v}
    doubtful = {k: v for k, v in verdicts.items() if "doubt" in v}
    listed = ", ".join(f"{k}: {v}" for k, v in verdicts.items()) or "none graded"
    evidence = {"verdicts": verdicts, "errors": {m["method"]: m["error"] for m in failed}}
    if bad:
        return [Finding("explanation-trust", Severity.WARN,
                        f"{len(bad)} attribution method(s) failed the sanity check ({listed}).",
                        evidence, "Do not trust " + ", ".join(bad) + " on this model; use a "
                        "method whose maps change when the weights are randomized.")]
    if doubtful or failed:
        what = ", ".join([*doubtful, *(m["method"] for m in failed)])
        return [Finding("explanation-trust", Severity.WARN,
                        f"Explanations of {what} are doubtful or could not be computed ({listed}).",
                        evidence, "Compare several methods and read their trust metrics before "
                        "relying on one explanation.")]
    return [Finding("explanation-trust", Severity.PASS,
                    f"Every attribution method was judged trustworthy ({listed}).", evidence)]


def audit_run(run: Any, *, samples: int = 8, progress: Progress | None = None,
              **options: Any) -> Report:
    """Audit a zoo run (``zoo.load_run(path)``) on its test split.

    Uses the run's model, card, history, config, metrics and dataset (``run.dataset.test``;
    tokens decoded with ``run.vocab``); ``options`` go to :func:`audit`. A run trained on data
    deepscope cannot reload (``run.dataset is None``) is audited without data, and the report
    says so.
    """
    bundle = getattr(run, "dataset", None)
    config = getattr(run, "config", None)
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    data_info: dict[str, Any] = {"name": getattr(run, "dataset_name", None), "split": "test"}
    if bundle is not None:
        data_info.update(
            name=getattr(bundle, "name", data_info["name"]),
            sizes={s: len(getattr(bundle, s)) for s in ("train", "val", "test")
                   if getattr(bundle, s, None) is not None},
            info=dict(getattr(bundle, "info", {}) or {}))
    meta = {"config": config, "data": data_info, "metrics": getattr(run, "metrics", None),
            "run_path": str(getattr(run, "path", "") or ""),
            "trained_with": getattr(run, "versions", None), **dict(options.pop("meta", {}) or {})}
    vocab = getattr(run, "vocab", None) or getattr(bundle, "vocab", None)
    name = getattr(run, "preset", None) or run.card.name
    return audit(run.model, None if bundle is None else bundle.test,
                 history=getattr(run, "history", None), samples=samples, vocab=vocab,
                 card=run.card, meta=meta, progress=progress,
                 title=options.pop("title", f"Audit of {name} ({data_info['name']})"), **options)
