"""The explanations section: attributions of a few samples, each method's trust grade, and the
agreement between methods. The attribution maps stay tensors here (figures draw them
directly); the JSON keeps them as compact numbers per sample."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from explain.auditing.sections._base import ByValue, Section, compact, opt_float, tensor_of
from explain.card import Modality
from explain.quality.result import Quality, Verdict

__all__ = ["ExplanationsSection", "MethodResult", "ExplainedSample", "Agreement", "SanityRow"]


@dataclass(frozen=True)
class SanityRow:
    """Both sanity checks of one method (Adebayo et al. 2018), side by side: the median rank
    correlation with the map of the fully randomized model and with that of the model trained
    on permuted labels (``None`` where not run), and whether each passed."""

    method: str
    model_correlation: float | None
    model_passed: bool | None
    data_correlation: float | None
    data_passed: bool | None


@dataclass(frozen=True, eq=False)
class ExplainedSample(ByValue):
    """One explained input: its index in the data, predicted and true class, confidence, the
    input itself (``None`` when too large to keep), for text its tokens and, for sound, its
    clip as a mono 16-bit WAV file (``audio``; base64 in the JSON), which the HTML report and
    the dashboard play."""

    index: int
    pred: int
    confidence: float
    true: int | None = None
    input: torch.Tensor | None = None
    tokens: tuple[str, ...] = ()
    audio: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "pred": self.pred,
                             "confidence": self.confidence, "true": self.true}
        if self.input is not None:
            d["input"] = compact(self.input)
        if self.tokens:
            d["tokens"] = list(self.tokens)
        if self.audio is not None:
            d["audio_wav_base64"] = base64.b64encode(self.audio).decode("ascii")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExplainedSample:
        true, wav = d.get("true"), d.get("audio_wav_base64")
        return cls(int(d["index"]), int(d["pred"]), float(d["confidence"]),
                   None if true is None else int(true), tensor_of(d.get("input")),
                   tuple(str(t) for t in d.get("tokens") or ()),
                   None if wav is None else base64.b64decode(str(wav), validate=True))


@dataclass(frozen=True, eq=False)
class MethodResult(ByValue):
    """What one attribution method gave: its maps of the explained samples, or its error.

    Attributes
    ----------
    method : the method asked for.  used : the method it ran as (after any fallback).
    values : ``[samples, *sample]`` attribution maps (``None`` when the method failed).
    error : ``"Type: message"`` when the method failed.
    quality : its :class:`explain.Quality` (``None`` when it was not graded; see
        :attr:`verdict_reason`).
    """

    method: str
    used: str | None = None
    values: torch.Tensor | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    seconds: float | None = None
    quality: Quality | None = None
    verdict_reason: str = ""
    quality_seconds: float | None = None

    @property
    def verdict(self) -> Verdict | None:
        """The trust :class:`explain.Verdict` (``None`` when not graded)."""
        return None if self.quality is None else self.quality.verdict

    @property
    def summary(self) -> str:
        return "" if self.quality is None else self.quality.summary

    @property
    def note(self) -> str:
        """One line for a table: the error, why it was not graded, or the trust summary."""
        return self.error or self.verdict_reason or self.summary

    def to_dict(self) -> dict[str, Any]:
        """The method's entry (its maps go into each sample's entry, see the section)."""
        return {"method": self.method, "used": self.used, "error": self.error,
                "warnings": list(self.warnings), "seconds": self.seconds,
                "quality": None if self.quality is None else self.quality.to_dict(),
                "verdict": None if self.verdict is None else self.verdict.value,
                "summary": self.summary, "verdict_reason": self.verdict_reason,
                "quality_seconds": self.quality_seconds}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], values: torch.Tensor | None = None) -> MethodResult:
        q = d.get("quality")
        return cls(str(d["method"]), d.get("used"), values, d.get("error"),
                   tuple(d.get("warnings") or ()), opt_float(d.get("seconds")),
                   None if not q else Quality.from_dict(dict(q)),
                   str(d.get("verdict_reason") or ""), opt_float(d.get("quality_seconds")))


@dataclass(frozen=True)
class Agreement:
    """Median per-sample Spearman correlation between every pair of methods (or its error)."""

    methods: tuple[str, ...]
    matrix: tuple[tuple[float | None, ...], ...] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"methods": list(self.methods),
                "matrix": None if self.matrix is None else [list(r) for r in self.matrix],
                "error": self.error}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Agreement:
        m = d.get("matrix")
        return cls(tuple(str(x) for x in d.get("methods") or ()),
                   None if m is None else tuple(tuple(r) for r in m), d.get("error"))


@dataclass(frozen=True, eq=False, kw_only=True)
class ExplanationsSection(Section):
    """Attributions of a few inputs spread over the classes, graded per method.

    Attributes
    ----------
    modality : the inputs' :class:`explain.Modality`.
    class_names : one name per class.
    samples : the :class:`ExplainedSample` entries, in the order of every method's ``values``.
    methods : a :class:`MethodResult` per method, in the order asked.
    agreement : between methods (``None`` with fewer than two that ran).
    pad_id : the padding id of token inputs (hidden in the report's token views).
    """

    name = "explanations"
    title = "Explanations"
    modality: Modality | None = None
    class_names: tuple[str, ...] = ()
    samples: tuple[ExplainedSample, ...] = ()
    methods: tuple[MethodResult, ...] = ()
    agreement: Agreement | None = None
    pad_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        samples = [s.to_dict() for s in self.samples]
        for j, s in enumerate(samples):
            s["attributions"] = {m.method: compact(m.values[j].detach().cpu())
                                 for m in self.methods if m.values is not None}
        return {"available": self.available, "reason": self.reason,
                "modality": None if self.modality is None else self.modality.value,
                "class_names": list(self.class_names), "samples": samples,
                "methods": [m.to_dict() for m in self.methods],
                "agreement": None if self.agreement is None else self.agreement.to_dict(),
                "pad_id": self.pad_id}

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        samples = list(d.get("samples") or [])
        methods = []
        for m in d.get("methods") or []:
            maps = [s.get("attributions", {}).get(m["method"]) for s in samples]
            ok = samples and not m.get("error") and all(v is not None for v in maps)
            values = torch.tensor(maps, dtype=torch.float64) if ok else None
            methods.append(MethodResult.from_dict(m, values))
        modality, agree = d.get("modality"), d.get("agreement")
        return {"modality": None if modality is None else Modality(modality),
                "class_names": tuple(str(c) for c in d.get("class_names") or ()),
                "samples": tuple(ExplainedSample.from_dict(s) for s in samples),
                "methods": tuple(methods),
                "agreement": None if agree is None else Agreement.from_dict(agree),
                "pad_id": int(d.get("pad_id") or 0)}

    def sanity_rows(self) -> tuple[SanityRow, ...]:
        """One :class:`SanityRow` per graded method, when any ran the data-randomization test
        (empty otherwise: the trust summaries already give the model-randomization result)."""
        graded = [m for m in self.methods if m.quality is not None]
        if not any("data_sanity" in m.quality.medians for m in graded if m.quality):
            return ()
        return tuple(SanityRow(m.method, m.quality.medians.get("sanity"),
                               m.quality.passed.get("sanity"),
                               m.quality.medians.get("data_sanity"),
                               m.quality.passed.get("data_sanity"))
                     for m in graded if m.quality is not None)

    def label(self, sample: ExplainedSample) -> str:
        """``"sample #7: true cat, predicted dog (0.83)"`` (raw text: escape before showing)."""
        names = self.class_names
        pred = names[sample.pred] if sample.pred < len(names) else str(sample.pred)
        if sample.true is None:
            return f"sample #{sample.index}, predicted {pred}"
        true = names[sample.true] if sample.true < len(names) else str(sample.true)
        return f"sample #{sample.index}: true {true}, predicted {pred} ({sample.confidence:.2f})"
