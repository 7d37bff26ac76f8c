"""A report as Markdown for pull requests: verdict, tables, no HTML needed.

User strings are escaped so they show as text: ``<``, ``>``, ``&`` become entities and table
pipes and backticks are backslash-escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["render_markdown", "md_escape"]

_ICON = {"pass": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌", "error": "💥"}


def md_escape(text: Any) -> str:
    """Escape a string for a Markdown table cell (HTML, pipes, backticks, newlines)."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in ("\\", "|", "`", "*", "_", "[", "]"):
        s = s.replace(ch, "\\" + ch)
    return s.replace("\r", " ").replace("\n", " ")


def _n(v: Any, fmt: str = "{:.3f}") -> str:
    if v is None:
        return "n/a"
    return fmt.format(v) if isinstance(v, float) else md_escape(v)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def _missing(sec: Mapping[str, Any]) -> list[str]:
    return [f"> Not available: {md_escape(sec.get('reason', ''))}", ""]


def _epochs(training: Mapping[str, Any], limit: int = 30) -> list[str]:
    """Per-epoch losses and accuracies (every k-th epoch past ``limit`` rows)."""
    ep = (training.get("history") or {}).get("epochs") or {}
    n = len(ep.get("epoch") or [])
    over = training.get("overfit_epoch")
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


def _performance(sec: Mapping[str, Any]) -> list[str]:
    if not sec.get("available"):
        return _missing(sec)
    cal = sec.get("calibration") or {}
    names = sec.get("class_names", [])
    out = [f"Accuracy **{_n(sec.get('accuracy'))}** on {_n(sec.get('n'))} samples; expected "
           f"calibration error **{_n(cal.get('ece'))}**.", ""]
    out += _table(["class", "precision", "recall", "F1", "support"],
                  [[md_escape(r["class"]), _n(r.get("precision")), _n(r.get("recall")),
                    _n(r.get("f1")), _n(r.get("support"))] for r in sec.get("per_class", [])])
    conf = sec.get("confusion") or []
    if conf and len(conf) <= 20:
        out += ["Confusion matrix (rows: true, columns: predicted):", ""]
        out += _table(["true \\ pred", *(md_escape(n) for n in names)],
                      [[md_escape(names[i]), *(str(v) for v in row)] for i, row in enumerate(conf)])
    if sec.get("mistakes"):
        out += ["Most confident mistakes:", ""]
        texts = any("text" in m for m in sec["mistakes"])
        out += _table(["sample", "true", "predicted", "confidence", *(["text"] if texts else [])],
                      [[str(m["index"]), md_escape(names[m["true"]]), md_escape(names[m["pred"]]),
                        _n(m["confidence"]), *([md_escape(m.get("text", ""))] if texts else [])]
                       for m in sec["mistakes"]])
    return out


def _explanations(sec: Mapping[str, Any]) -> list[str]:
    if not sec.get("available"):
        return _missing(sec)
    rows = [[md_escape(m["method"]), md_escape(m.get("used", "—")),
             f"{_ICON.get(str(m.get('verdict')), '')} {md_escape(m.get('verdict') or 'not graded')}",
             md_escape(m.get("error") or m.get("verdict_reason") or m.get("summary") or "")]
            for m in sec.get("methods", [])]
    out = _table(["method", "ran as", "trust verdict", "details"], rows)
    agree = sec.get("agreement")
    if agree and agree.get("matrix"):
        out += ["Agreement between methods (median Spearman correlation):", ""]
        out += _table(["", *map(md_escape, agree["methods"])],
                      [[md_escape(a), *(_n(v) for v in row)]
                       for a, row in zip(agree["methods"], agree["matrix"])])
    names = sec.get("class_names", [])
    out += [f"{len(sec.get('samples', []))} samples explained, spread over the classes: "
            + ", ".join(f"#{s['index']} ({md_escape(names[s['pred']])})"
                        for s in sec.get("samples", [])), ""]
    return out


def _card(sec: Mapping[str, Any]) -> list[str]:
    card = sec.get("card") or {}
    data = sec.get("data") or {}
    rows = [["model", md_escape(card.get("name", sec.get("model_class")))],
            ["modality", md_escape(card.get("modality", "inferred from the inputs"))],
            ["parameters", f"{sec.get('parameters', 0):,}"],
            ["data", md_escape(f"{data.get('name') or ''} {data.get('split') or ''} "
                               f"{data.get('n', '')} samples, shape {data.get('sample_shape')}")],
            ["seed", _n(sec.get("seed"))], ["device", md_escape(sec.get("device"))],
            ["versions", md_escape(", ".join(f"{k} {v}" for k, v in
                                             (sec.get("versions") or {}).items() if v))]]
    return _table(["", ""], rows)


def render_markdown(report: Any) -> str:
    """The report as GitHub-flavoured Markdown (tables; figures live in the HTML report)."""
    s = report.sections
    sev = str(report.verdict.get("severity", "pass"))
    out = [f"# {md_escape(report.title)}", "",
           f"**{_ICON.get(sev, '')} {sev.upper()}**: {md_escape(report.verdict.get('headline', ''))}",
           "", "## Findings", ""]
    out += _table(["severity", "check", "finding", "remedy"],
                  [[f"{_ICON.get(f.severity.value, '')} {f.severity.value}", md_escape(f.check),
                    md_escape(f.summary), md_escape(f.remedy) or "—"] for f in report.findings])
    training = s.get("training") or {}
    out += ["## Training health", ""]
    if not training.get("available"):
        out += _missing(training)
    else:
        out += _epochs(training)
    alphas = (training.get("spectral") or {}).get("alphas") or {}
    if alphas:
        out += _table(["layer", "spectral alpha"], [[md_escape(k), _n(v)] for k, v in alphas.items()])
    out += ["## Performance", "", *_performance(s.get("performance") or {})]
    out += ["## Explanations", "", *_explanations(s.get("explanations") or {})]
    ds = s.get("data_sufficiency") or {}
    out += ["## Data sufficiency", ""]
    out += (_table(["training samples", "validation score"],
                   [[_n(p[0], "{:.0f}"), _n(p[1])] for p in ds.get("curve", [])])
            if ds.get("available") else _missing(ds))
    out += ["## Model card", "", *_card(s.get("card") or {})]
    out += [f"deepscope {md_escape(report.schema)}, created {md_escape(report.created)}", ""]
    return "\n".join(out)
