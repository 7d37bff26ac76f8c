"""A report as ONE self-contained HTML file that works offline.

plotly.js is embedded once (``plotly.offline.get_plotlyjs()``); each figure is a
``fig.to_html(full_html=False, include_plotlyjs=False)`` fragment; a Content-Security-Policy
forbids every network request. Explained sounds play from ``data:`` WAV sources
(``media-src data:``). Every string that comes from the user or the data (class names,
tokens, layer names, file names, summaries) is HTML-escaped. Grades are drawn with
:class:`explain.Severity`'s own icon, label and colour (a trust verdict with its severity's).
"""

from __future__ import annotations

import base64
import json
from html import escape
from typing import Any

import plotly.graph_objects as go

from explain._core.jsoncodec import to_json_value
from explain.auditing.report import Report
from explain.auditing.sections import (
    CardSection,
    DataSufficiencySection,
    ExplanationsSection,
    PerformanceSection,
    Section,
)
from explain.card import Modality
from explain.figures.report import audio_blocks, section_figures, token_blocks
from explain.findings import Severity
from explain.quality.result import Verdict
from explain.report.tables import question_tables, sanity_cell

__all__ = ["render_html", "badge"]

#: Section name -> its anchor in the page (kept from the first reports, which links may use).
_ANCHOR = {"data_sufficiency": "data"}

_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; media-src data:")
_CSS = """
body{font-family:Inter,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1100px;padding:24px;
color:#222;line-height:1.45}
h1{margin-bottom:4px}h2{border-bottom:2px solid #eee;padding-bottom:4px;margin-top:36px}
.muted{color:#666;font-size:.9em}
.verdict{padding:14px 18px;border-radius:8px;color:#fff;font-size:1.15em;margin:16px 0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:.8em;
font-weight:600;text-transform:uppercase}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.92em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6}pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:360px;
font-size:.85em}.missing{background:#fff8e1;border-left:4px solid #E69F00;padding:8px 12px}
.figure{margin:8px 0 18px}nav a{margin-right:12px}
.clip{border-top:1px solid #eee;padding-top:8px}.clip audio{display:block;margin:4px 0}
"""




def badge(grade: Severity | Verdict) -> str:
    """A coloured label for a finding's :class:`explain.Severity` or a trust
    :class:`explain.Verdict` (coloured by its severity)."""
    sev = grade.severity if isinstance(grade, Verdict) else grade
    return (f'<span class="badge" style="background:{sev.color}">{sev.icon} '
            f"{escape(grade.label)}</span>")


def _num(v: Any, fmt: str = "{:.3f}") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return fmt.format(v)
    return escape(str(v))


def _missing(sec: Section) -> str:
    return f'<p class="missing">Not available: {escape(sec.reason)}</p>'


def _figs(figs: list[go.Figure]) -> str:
    return "".join('<div class="figure">' + f.to_html(
        full_html=False, include_plotlyjs=False, config={"displaylogo": False,
                                                         "responsive": True}) + "</div>"
                   for f in figs)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _json_block(value: Any, limit: int = 4000) -> str:
    text = json.dumps(to_json_value(value), indent=1, default=str)
    if len(text) > limit:
        text = text[:limit] + "\n... (truncated; the JSON report has everything)"
    return f"<pre>{escape(text)}</pre>"


def _findings(report: Report) -> str:
    rows = [[badge(f.severity), escape(f.check), escape(f.summary), escape(f.remedy) or "—",
             f"<details><summary>evidence</summary>{_json_block(f.evidence, 2500)}</details>"]
            for f in report.checked]
    out = _table(["severity", "check", "finding", "remedy", "evidence"], rows) if rows \
        else "<p>No checks ran.</p>"
    skipped = "".join(f"<li>{badge(f.severity)} Not checked: <b>{escape(f.check)}</b> — "
                      f"{escape(f.summary)}</li>" for f in report.not_checked)
    return out + (f'<ul class="not-checked">{skipped}</ul>' if skipped else "")


def _performance(sec: PerformanceSection) -> str:
    if not sec.available:
        return _missing(sec)
    head = (f"<p>Accuracy <b>{_num(sec.accuracy)}</b> on {_num(sec.n)} samples; "
            f"mean cross-entropy {_num(sec.loss)}; expected calibration error "
            f"<b>{_num(sec.ece)}</b> ({_num(len(sec.bins))} bins).</p>")
    rows = [[escape(r.name), _num(r.precision), _num(r.recall), _num(r.f1), _num(r.support)]
            for r in sec.per_class]
    names = sec.class_names
    texts = any(m.text is not None for m in sec.mistakes)
    mistakes = [[_num(m.index), escape(names[m.true]), escape(names[m.pred]), _num(m.confidence),
                 *([escape(m.text or "")] if texts else [])] for m in sec.mistakes]
    return (head + _table(["class", "precision", "recall", "F1", "support"], rows)
            + "<h3>Most confident mistakes</h3>"
            + (_table(["sample", "true", "predicted", "confidence", *(["text"] if texts else [])],
                      mistakes) if mistakes
               else "<p>No mistakes among the evaluated samples.</p>"))


def _methods(sec: ExplanationsSection) -> str:
    rows = []
    for m in sec.methods:
        warn = "; ".join(m.warnings)
        rows.append([escape(m.method), escape(m.used or "—"),
                     badge(m.verdict) if m.verdict is not None else "not graded",
                     escape(m.note) + (f"<br><span class='muted'>{escape(warn)}</span>" if warn
                                       else ""), _num(m.seconds, "{:.2f} s")])
    return _table(["method", "ran as", "trust verdict", "details", "time"], rows)


def _sanity(sec: ExplanationsSection) -> str:
    """Model- and data-randomization results side by side (only when the latter ran)."""
    rows = [[escape(r.method), sanity_cell(r.model_correlation, r.model_passed),
             sanity_cell(r.data_correlation, r.data_passed)] for r in sec.sanity_rows()]
    if not rows:
        return ""
    return ("<h3>Sanity checks (Adebayo et al. 2018; median rank correlation with the original "
            "map, low passes)</h3>"
            + _table(["method", "randomized weights", "permuted labels"], rows))


def _explanations(sec: ExplanationsSection) -> str:
    if not sec.available:
        return _missing(sec)
    out = _methods(sec) + _sanity(sec)
    agree = sec.agreement
    if agree is not None and agree.matrix:
        out += "<h3>Agreement between methods (median Spearman correlation)</h3>" + _table(
            ["", *agree.methods], [[escape(a), *(_num(v) for v in row)]
                                   for a, row in zip(agree.methods, agree.matrix)])
    elif agree is not None and agree.error:
        out += f'<p class="missing">Agreement not available: {escape(agree.error)}</p>'
    names = sec.class_names
    samples = [[_num(s.index), escape(names[s.true]) if s.true is not None else "—",
                escape(names[s.pred]), _num(s.confidence),
                escape(" ".join(t for t in s.tokens if t not in ("<pad>", "[PAD]")))[:300]]
               for s in sec.samples]
    header = ["sample", "true", "predicted", "confidence", "tokens"]
    if not any(s.tokens for s in sec.samples):
        header, samples = header[:4], [r[:4] for r in samples]
    out += "<h3>Explained samples</h3>" + _table(header, samples)
    if sec.modality == Modality.TEXT:
        out += "".join(f"<p class='muted'>{escape(label)}</p>{block}"
                       for label, block in token_blocks(sec))
    if sec.modality == Modality.AUDIO:
        out += _clips(sec)
    return out


def _clips(sec: ExplanationsSection) -> str:
    """Each explained sound: its label, a player of the embedded clip (a ``data:`` WAV, so
    the page stays offline) and its figure."""
    out = []
    for block in audio_blocks(sec):
        player = ('<audio controls preload="metadata" src="data:audio/wav;base64,'
                  f'{escape(base64.b64encode(block.audio).decode("ascii"))}"></audio>'
                  if block.audio is not None else
                  '<p class="muted">No clip: the audit was given no waveforms.</p>')
        out.append(f'<div class="clip"><p class="muted">{escape(block.label)}</p>{player}'
                   f"{_figs([block.figure])}</div>")
    return "<h3>Explained clips</h3>" + "".join(out) if out else ""


def _card(sec: CardSection) -> str:
    card = sec.card
    facts = [["model", escape(card.name if card else sec.model_class)],
             ["class", escape(sec.model_class)],
             ["modality", escape(card.modality.value if card else "inferred from the inputs")],
             ["parameters", f"{sec.parameters:,} ({sec.trainable_parameters:,} trainable)"],
             ["classes", escape(", ".join(map(str, card.class_names if card else ())))],
             ["device", escape(sec.device)], ["seed", _num(sec.seed)],
             ["versions", escape(", ".join(f"{k} {v}" for k, v in sec.versions.items() if v))]]
    layers = [[escape(r.name), escape(r.type), f"{r.params:,}"] for r in sec.layers]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    return (f"<table><tbody>{rows}</tbody></table><h3>Data</h3>" + _json_block(sec.data)
            + "<h3>Training configuration</h3>" + _json_block(sec.config)
            + "<h3>Layers with parameters</h3>" + _table(["layer", "type", "parameters"], layers)
            + "<details><summary>Architecture</summary>"
            + f"<pre>{escape(sec.architecture)}</pre></details>")


def _body(sec: Section) -> str:
    """A section's own HTML above its figures ('' where the figures say it all)."""
    if isinstance(sec, PerformanceSection):
        return _performance(sec)
    if isinstance(sec, ExplanationsSection):
        return _explanations(sec)
    if isinstance(sec, CardSection):
        return _card(sec)
    if isinstance(sec, DataSufficiencySection) and sec.available and sec.prediction:
        return (f"<p>{escape(sec.prediction)}</p><p class='muted'>Fitted power law: "
                f"<code>{escape(sec.fit_formula)}</code>.</p>")
    tables = question_tables(sec) if sec.available else None
    if tables is not None:
        return "".join(f"<p>{escape(t.lead)}</p>" + _table(
            list(t.header), [[escape(c) for c in r] for r in t.rows]) for t in tables)
    return "" if sec.available else _missing(sec)


def _verdict(report: Report) -> str:
    sev = report.severity
    headline = report.verdict.headline if report.verdict else ""
    return (f'<div class="verdict" style="background:{sev.color}">{sev.icon} '
            f"<b>{escape(sev.label)}</b>: {escape(headline)}</div>")


def render_html(report: Report) -> str:
    """The report as a self-contained, offline HTML page (plotly.js embedded once)."""
    from plotly.offline import get_plotlyjs

    figs = section_figures(report)
    nav = "".join(f'<a href="#{_ANCHOR.get(s.name, s.name)}">{escape(s.title)}</a>'
                  for s in report.sections)
    parts = [_verdict(report), f'<nav><a href="#findings">Findings</a>{nav}</nav>',
             '<h2 id="findings">Findings (worst first)</h2>', _findings(report)]
    for sec in report.sections:
        parts += [f'<h2 id="{_ANCHOR.get(sec.name, sec.name)}">{escape(sec.title)}</h2>',
                  _body(sec), _figs(figs.get(sec.name, []))]
    parts.append('<p class="muted">Audit stages: ' + escape(", ".join(
        f"{k} {v:.2f} s" for k, v in report.timings.items())) + "</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>{escape(report.title)}</h1><p class='muted'>deepscope report "
        f"({escape(report.schema)}), created {escape(report.created)}</p>"
        + "".join(parts) + "</body></html>\n")
