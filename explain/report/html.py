"""A report as ONE self-contained HTML file that works offline.

plotly.js is embedded once (``plotly.offline.get_plotlyjs()``); each figure is a
``fig.to_html(full_html=False, include_plotlyjs=False)`` fragment; a Content-Security-Policy
forbids every network request. Every string that comes from the user or the data (class names,
tokens, layer names, file names, summaries) is HTML-escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

import plotly.graph_objects as go

from explain.figures._style import SEVERITY_COLORS
from explain.report.figures import section_figures

__all__ = ["render_html"]

_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:")
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
"""


_VERDICT_SEVERITY = {"trustworthy": "pass", "doubtful": "warn", "fails-sanity": "fail"}


def _badge(severity: str) -> str:
    """A coloured label for a severity or a trust verdict."""
    colour = SEVERITY_COLORS.get(_VERDICT_SEVERITY.get(str(severity), str(severity)), "#7F7F7F")
    return f'<span class="badge" style="background:{colour}">{escape(str(severity))}</span>'


def _num(v: Any, fmt: str = "{:.3f}") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return fmt.format(v)
    return escape(str(v))


def _missing(sec: Mapping[str, Any]) -> str:
    return f'<p class="missing">Not available: {escape(str(sec.get("reason", "")))}</p>'


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
    text = json.dumps(value, indent=1, default=str)
    if len(text) > limit:
        text = text[:limit] + "\n... (truncated; the JSON report has everything)"
    return f"<pre>{escape(text)}</pre>"


def _findings(report: Any) -> str:
    rows = [[_badge(f.severity.value), escape(f.check), escape(f.summary),
             escape(f.remedy) or "—",
             f"<details><summary>evidence</summary>{_json_block(f.evidence, 2500)}</details>"]
            for f in report.findings]
    if not rows:
        return "<p>No checks ran.</p>"
    return _table(["severity", "check", "finding", "remedy", "evidence"], rows)


def _performance(sec: Mapping[str, Any]) -> str:
    if not sec.get("available"):
        return _missing(sec)
    cal = sec.get("calibration") or {}
    head = (f"<p>Accuracy <b>{_num(sec.get('accuracy'))}</b> on {_num(sec.get('n'))} samples; "
            f"mean cross-entropy {_num(sec.get('loss'))}; expected calibration error "
            f"<b>{_num(cal.get('ece'))}</b> ({_num(cal.get('n_bins'))} bins).</p>")
    rows = [[escape(str(r["class"])), _num(r.get("precision")), _num(r.get("recall")),
             _num(r.get("f1")), _num(r.get("support"))] for r in sec.get("per_class", [])]
    names = sec.get("class_names", [])
    texts = any("text" in m for m in sec.get("mistakes", []))
    mistakes = [[_num(m["index"]), escape(str(names[m["true"]])), escape(str(names[m["pred"]])),
                 _num(m["confidence"]), *([escape(m.get("text", ""))] if texts else [])]
                for m in sec.get("mistakes", [])]
    return (head + _table(["class", "precision", "recall", "F1", "support"], rows)
            + "<h3>Most confident mistakes</h3>"
            + (_table(["sample", "true", "predicted", "confidence", *(["text"] if texts else [])],
                      mistakes) if mistakes
               else "<p>No mistakes among the evaluated samples.</p>"))


def _explanations(sec: Mapping[str, Any]) -> str:
    if not sec.get("available"):
        return _missing(sec)
    rows = []
    for m in sec.get("methods", []):
        note = m.get("error") or m.get("verdict_reason") or m.get("summary") or ""
        warn = "; ".join(m.get("warnings") or [])
        rows.append([escape(m["method"]), escape(str(m.get("used", "—"))),
                     _badge(m["verdict"]) if m.get("verdict") else "not graded",
                     escape(note) + (f"<br><span class='muted'>{escape(warn)}</span>" if warn
                                     else ""), _num(m.get("seconds"), "{:.2f} s")])
    out = _table(["method", "ran as", "trust verdict", "details", "time"], rows)
    agree = sec.get("agreement")
    if agree and agree.get("matrix"):
        names = agree["methods"]
        out += "<h3>Agreement between methods (median Spearman correlation)</h3>" + _table(
            ["", *names], [[escape(a), *(_num(v) for v in row)]
                           for a, row in zip(names, agree["matrix"])])
    elif agree and agree.get("error"):
        out += f'<p class="missing">Agreement not available: {escape(agree["error"])}</p>'
    names = sec.get("class_names", [])
    samples = [[_num(s["index"]), escape(str(names[s["true"]])) if s.get("true") is not None
                else "—", escape(str(names[s["pred"]])), _num(s["confidence"]),
                escape(" ".join(t for t in s.get("tokens", []) if t not in ("<pad>",)))[:300]]
               for s in sec.get("samples", [])]
    header = ["sample", "true", "predicted", "confidence", "tokens"]
    if not any(s.get("tokens") for s in sec.get("samples", [])):
        header, samples = header[:4], [r[:4] for r in samples]
    out += "<h3>Explained samples</h3>" + _table(header, samples)
    if sec.get("modality") == "text":
        out += _tokens(sec)
    return out


def _tokens(sec: Mapping[str, Any]) -> str:
    """Each text sample's tokens coloured by attribution (token_html escapes every token)."""
    try:
        from explain.figures import attribution as att
        from explain.report._explain_figs import token_blocks
    except ImportError:
        return ""
    return "".join(f"<p class='muted'>{escape(label)}</p>{block}"
                   for label, block in token_blocks(sec, att))


def _card(sec: Mapping[str, Any]) -> str:
    card = sec.get("card") or {}
    facts = [["model", escape(str(card.get("name", sec.get("model_class"))))],
             ["class", escape(str(sec.get("model_class")))],
             ["modality", escape(str(card.get("modality", "inferred from the inputs")))],
             ["parameters", f"{sec.get('parameters', 0):,} ({sec.get('trainable_parameters', 0):,}"
                            " trainable)"],
             ["classes", escape(", ".join(map(str, card.get("class_names", []))))],
             ["device", escape(str(sec.get("device")))], ["seed", _num(sec.get("seed"))],
             ["versions", escape(", ".join(f"{k} {v}" for k, v in
                                           (sec.get("versions") or {}).items() if v))]]
    layers = [[escape(r["name"]), escape(r["type"]), f"{r['params']:,}"]
              for r in sec.get("layers", [])]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    return (f"<table><tbody>{rows}</tbody></table><h3>Data</h3>" + _json_block(sec.get("data"))
            + "<h3>Training configuration</h3>" + _json_block(sec.get("config"))
            + "<h3>Layers with parameters</h3>" + _table(["layer", "type", "parameters"], layers)
            + "<details><summary>Architecture</summary>"
            + f"<pre>{escape(str(sec.get('architecture', '')))}</pre></details>")


def render_html(report: Any) -> str:
    """The report as a self-contained, offline HTML page (plotly.js embedded once)."""
    from plotly.offline import get_plotlyjs

    figs = section_figures(report)
    s = report.sections
    sev = report.verdict.get("severity", "pass")
    training = s.get("training") or {}
    parts = [
        f'<div class="verdict" style="background:{SEVERITY_COLORS.get(sev, "#7F7F7F")}">'
        f'<b>{escape(sev.upper())}</b>: {escape(report.verdict.get("headline", ""))}</div>',
        '<nav><a href="#findings">Findings</a><a href="#training">Training health</a>'
        '<a href="#performance">Performance</a><a href="#explanations">Explanations</a>'
        '<a href="#data">Data sufficiency</a><a href="#card">Model card</a></nav>',
        '<h2 id="findings">Findings (worst first)</h2>', _findings(report),
        '<h2 id="training">Training health</h2>',
        "" if training.get("available") else _missing(training), _figs(figs["training"]),
        '<h2 id="performance">Performance</h2>', _performance(s.get("performance") or {}),
        _figs(figs["performance"]),
        '<h2 id="explanations">Explanations</h2>', _explanations(s.get("explanations") or {}),
        _figs(figs["explanations"]),
        '<h2 id="data">Data sufficiency</h2>',
        ("" if (s.get("data_sufficiency") or {}).get("available")
         else _missing(s.get("data_sufficiency") or {})), _figs(figs["data_sufficiency"]),
        '<h2 id="card">Model card</h2>', _card(s.get("card") or {}),
        '<p class="muted">Audit stages: ' + escape(", ".join(
            f"{k} {v:.2f} s" for k, v in report.timings.items())) + "</p>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>{escape(report.title)}</h1><p class='muted'>deepscope report "
        f"({escape(report.schema)}), created {escape(report.created)}</p>"
        + "".join(parts) + "</body></html>\n")
