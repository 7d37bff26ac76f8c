"""A report as Markdown for pull requests: verdict, tables, no HTML needed.

User strings are escaped so they show as text: ``<``, ``>``, ``&`` become entities and table
pipes and backticks are backslash-escaped. Grades show :class:`explain.Severity`'s icon and
label (a trust verdict with its severity's icon).
"""

from __future__ import annotations

from typing import Any

from explain._core.text import escape_markdown
from explain.auditing.report import Report
from explain.auditing.sections import (
    CardSection,
    DataSufficiencySection,
    ExplanationsSection,
    PerformanceSection,
    Section,
    TrainingSection,
)
from explain.findings import Severity
from explain.quality.result import Verdict
from explain.report.tables import question_tables, sanity_cell

__all__ = ["render_markdown", "md_escape", "grade"]


#: The one Markdown escaper (shared with the dashboard), under the name this module exports.
md_escape = escape_markdown


def grade(g: Severity | Verdict) -> str:
    """``"⚠️ warn"`` for a severity, ``"❌ fails sanity"`` for a verdict (its severity's icon)."""
    sev = g.severity if isinstance(g, Verdict) else g
    return f"{sev.icon} {md_escape(g.label.lower())}"


def _n(v: Any, fmt: str = "{:.3f}") -> str:
    if v is None:
        return "n/a"
    return fmt.format(v) if isinstance(v, float) else md_escape(v)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def _missing(sec: Section) -> list[str]:
    return [f"> Not available: {md_escape(sec.reason)}", ""]


def _epochs(sec: TrainingSection, limit: int = 30) -> list[str]:
    """Per-epoch losses and accuracies (every k-th epoch past ``limit`` rows)."""
    ep = sec.history.epochs if sec.history is not None else {}
    n = len(ep.get("epoch") or [])
    over = sec.overfit_epoch
    head = [f"{n} epochs logged" + (f"; overfitting starts after epoch {over} (lowest "
                                    "validation loss)." if over else ".")
            + " Curves and gradient flow are in the HTML report.", ""]
    keys = [k for k in ("train_loss", "val_loss", "train_acc", "val_acc")
            if any(v is not None for v in ep.get(k) or [])]
    if not n or not keys:
        return head
    step = max(1, -(-n // limit))
    rows = [[_n(ep["epoch"][i], "{:.0f}"), *(_n((ep.get(k) or [None] * n)[i]) for k in keys)]
            for i in range(0, n, step)]
    return head + _table(["epoch", *(k.replace("_", " ") for k in keys)], rows)


def _training(sec: TrainingSection) -> list[str]:
    out = _epochs(sec) if sec.available else _missing(sec)
    if sec.spectral_alphas:
        out += _table(["layer", "spectral alpha"],
                      [[md_escape(k), _n(v)] for k, v in sec.spectral_alphas.items()])
    return out


def _performance(sec: PerformanceSection) -> list[str]:
    if not sec.available:
        return _missing(sec)
    names = sec.class_names
    out = [f"Accuracy **{_n(sec.accuracy)}** on {_n(sec.n)} samples; expected "
           f"calibration error **{_n(sec.ece)}**.", ""]
    out += _table(["class", "precision", "recall", "F1", "support"],
                  [[md_escape(r.name), _n(r.precision), _n(r.recall), _n(r.f1), _n(r.support)]
                   for r in sec.per_class])
    if sec.confusion and len(sec.confusion) <= 20:
        out += ["Confusion matrix (rows: true, columns: predicted):", ""]
        out += _table(["true \\ pred", *(md_escape(n) for n in names)],
                      [[md_escape(names[i]), *(str(v) for v in row)]
                       for i, row in enumerate(sec.confusion)])
    if sec.mistakes:
        out += ["Most confident mistakes:", ""]
        texts = any(m.text is not None for m in sec.mistakes)
        out += _table(["sample", "true", "predicted", "confidence", *(["text"] if texts else [])],
                      [[str(m.index), md_escape(names[m.true]), md_escape(names[m.pred]),
                        _n(m.confidence), *([md_escape(m.text or "")] if texts else [])]
                       for m in sec.mistakes])
    return out


def _explanations(sec: ExplanationsSection) -> list[str]:
    if not sec.available:
        return _missing(sec)
    rows = [[md_escape(m.method), md_escape(m.used or "—"),
             grade(m.verdict) if m.verdict is not None else "not graded", md_escape(m.note)]
            for m in sec.methods]
    out = _table(["method", "ran as", "trust verdict", "details"], rows)
    sanity = [[md_escape(r.method), sanity_cell(r.model_correlation, r.model_passed),
               sanity_cell(r.data_correlation, r.data_passed)] for r in sec.sanity_rows()]
    if sanity:
        out += ["Sanity checks (Adebayo et al. 2018; median rank correlation with the original "
                "map, low passes):", ""]
        out += _table(["method", "randomized weights", "permuted labels"], sanity)
    agree = sec.agreement
    if agree is not None and agree.matrix:
        out += ["Agreement between methods (median Spearman correlation):", ""]
        out += _table(["", *map(md_escape, agree.methods)],
                      [[md_escape(a), *(_n(v) for v in row)]
                       for a, row in zip(agree.methods, agree.matrix)])
    names = sec.class_names
    out += [f"{len(sec.samples)} samples explained, spread over the classes: "
            + ", ".join(f"#{s.index} ({md_escape(names[s.pred])})" for s in sec.samples), ""]
    return out


def _data_sufficiency(sec: DataSufficiencySection) -> list[str]:
    if not sec.available:
        return _missing(sec)
    fit = ([f"{md_escape(sec.prediction)} Fitted power law: `{sec.fit_formula}`.", ""]
           if sec.prediction else [])
    return fit + _table(["training samples", "validation score"],
                        [[_n(a, "{:.0f}"), _n(b)] for a, b in sec.curve])


def _card(sec: CardSection) -> list[str]:
    card, data = sec.card, sec.data
    rows = [["model", md_escape(card.name if card else sec.model_class)],
            ["modality", md_escape(card.modality.value if card else "inferred from the inputs")],
            ["parameters", f"{sec.parameters:,}"],
            ["data", md_escape(f"{data.get('name') or ''} {data.get('split') or ''} "
                               f"{data.get('n', '')} samples, shape {data.get('sample_shape')}")],
            ["seed", _n(sec.seed)], ["device", md_escape(sec.device)],
            ["versions", md_escape(", ".join(f"{k} {v}" for k, v in sec.versions.items() if v))]]
    return _table(["", ""], rows)


def _body(sec: Section) -> list[str]:
    for kind, fn in _RENDERERS:
        if isinstance(sec, kind):
            return fn(sec)
    tables = question_tables(sec) if sec.available else None
    if tables is not None:
        out: list[str] = []
        for t in tables:
            out += [md_escape(t.lead), ""]
            out += _table([md_escape(h) for h in t.header],
                          [[md_escape(c) for c in r] for r in t.rows])
        return out
    return [] if sec.available else _missing(sec)


_RENDERERS: tuple[tuple[type[Section], Any], ...] = (
    (TrainingSection, _training), (PerformanceSection, _performance),
    (ExplanationsSection, _explanations), (DataSufficiencySection, _data_sufficiency),
    (CardSection, _card))


def render_markdown(report: Report) -> str:
    """The report as GitHub-flavoured Markdown (tables; figures live in the HTML report)."""
    sev = report.severity
    headline = report.verdict.headline if report.verdict else ""
    out = [f"# {md_escape(report.title)}", "",
           f"**{sev.icon} {sev.label}**: {md_escape(headline)}", "", "## Findings", ""]
    out += _table(["severity", "check", "finding", "remedy"],
                  [[grade(f.severity), md_escape(f.check), md_escape(f.summary),
                    md_escape(f.remedy) or "—"] for f in report.checked])
    out += [f"- {Severity.SKIPPED.icon} Not checked: {md_escape(f.check)} — {md_escape(f.summary)}"
            for f in report.not_checked]
    out += [""] if report.not_checked else []
    for sec in report.sections:
        out += [f"## {md_escape(sec.title)}", "", *_body(sec)]
    out += [f"deepscope {md_escape(report.schema)}, created {md_escape(report.created)}", ""]
    return "\n".join(out)
