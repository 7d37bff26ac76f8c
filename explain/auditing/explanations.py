"""The explanations section of an audit: attributions for a sample of inputs spread over the
classes, each method's trust verdict (:func:`explain.evaluate`), and agreement between methods.

A method that fails is recorded with its error (never hidden); when the attribution or quality
parts of deepscope are missing the section says so.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from explain.auditing._data import decode_tokens
from explain.card import Modality

__all__ = ["default_methods", "explain_samples", "compact"]

_MAX_STORED = 4096  # inputs with more values per sample than this are not stored in the report


def default_methods(modality: Modality, model: nn.Module | None = None) -> tuple[str, ...]:
    """Integrated gradients plus Grad-CAM for convolutional image models, else saliency."""
    has_conv = model is None or any(isinstance(m, nn.Conv2d) for m in model.modules())
    if modality == Modality.IMAGE and has_conv:
        return ("integrated_gradients", "grad_cam")
    return ("integrated_gradients", "saliency")


def compact(t: torch.Tensor) -> Any:
    """Nested lists with 4 significant digits (keeps the JSON small; figures need no more)."""
    flat = [float(f"{v:.4g}") if math.isfinite(v) else v for v in t.double().flatten().tolist()]
    out: Any = flat
    for size in reversed(list(t.shape[1:])):
        out = [out[i:i + size] for i in range(0, len(out), size)]
    return out if t.ndim else flat[0]


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


def _quality_dict(quality: Any) -> dict[str, Any]:
    d = quality.to_dict() if hasattr(quality, "to_dict") else {}
    verdict = getattr(quality, "verdict", d.get("verdict"))
    d["verdict"] = str(getattr(verdict, "value", verdict)) if verdict is not None else None
    d.setdefault("summary", str(getattr(quality, "summary", "")))
    return d


def explain_samples(model: nn.Module, x: torch.Tensor, labels: torch.Tensor | None,
                    logits: torch.Tensor, indices: Sequence[int], *, modality: Modality,
                    class_names: Sequence[str], methods: Sequence[str] | None = None,
                    trust_metrics: Sequence[str] | None = None,
                    trust_options: Mapping[str, Any] | None = None, vocab: Any = None,
                    decode: Callable[[list[int]], Any] | None = None) -> dict[str, Any]:
    """Attribute the samples ``indices`` with each method, grade each method, compare methods.

    Returns the JSON data of the report's ``explanations`` section.
    """
    try:
        from explain.attribution import attribute
    except ImportError as exc:
        return {"available": False, "reason": "Attribution is not available in this install "
                f"(explain.attribution could not be imported: {exc})."}
    methods = tuple(methods) if methods else default_methods(modality, model)
    idx = torch.as_tensor(list(indices), dtype=torch.long)
    xs = x[idx]
    probs = torch.softmax(logits[idx].double(), dim=1)
    conf, pred = probs.max(dim=1)
    samples = []
    for j, i in enumerate(idx.tolist()):
        s: dict[str, Any] = {"index": i, "pred": int(pred[j]), "confidence": float(conf[j]),
                             "true": None if labels is None else int(labels[i]), "attributions": {}}
        if modality == Modality.TEXT:
            ids = [int(t) for t in xs[j].tolist()]
            s["input"] = ids
            s["tokens"] = decode_tokens(ids, vocab, decode)
        elif xs[j].numel() <= _MAX_STORED:
            s["input"] = compact(xs[j])
        samples.append(s)
    per_method, results = [], []
    for method in methods:
        entry: dict[str, Any] = {"method": method, "error": None}
        t0 = time.perf_counter()
        try:
            attr = attribute(model, xs, target=pred, method=method)
        except Exception as exc:  # an explainer failing becomes an error entry, not a crash
            entry.update(error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
            per_method.append(entry)
            continue
        results.append(attr)
        entry.update(used=attr.method, warnings=list(attr.warnings),
                     seconds=time.perf_counter() - t0)
        for j, s in enumerate(samples):
            s["attributions"][method] = compact(attr.values[j].detach().cpu())
        entry.update(_grade(model, xs, attr, trust_metrics, modality, trust_options or {}))
        per_method.append(entry)
    return {"available": True, "modality": modality.value, "methods": per_method,
            "samples": samples, "class_names": [str(c) for c in class_names],
            "agreement": _agreement(results, [m["method"] for m in per_method if not m["error"]])}


def _grade(model: nn.Module, xs: torch.Tensor, attr: Any, trust_metrics: Sequence[str] | None,
           modality: Modality, options: Mapping[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        from explain.quality import evaluate
    except ImportError as exc:
        return {"quality": None, "verdict": None,
                "verdict_reason": f"Trust metrics are not available (explain.quality: {exc})."}
    try:
        kwargs = {**_evaluate_kwargs(evaluate, trust_metrics, xs.shape[0], modality), **options}
        quality = evaluate(model, xs, attr, **kwargs)
    except Exception as exc:  # recorded, so the report says which method could not be graded
        return {"quality": None, "verdict": None, "quality_seconds": time.perf_counter() - t0,
                "verdict_reason": f"explain.evaluate failed: {type(exc).__name__}: {exc}"}
    q = _quality_dict(quality)
    return {"quality": q, "verdict": q.get("verdict"), "summary": q.get("summary", ""),
            "quality_seconds": time.perf_counter() - t0}


def _agreement(results: list[Any], names: list[str]) -> dict[str, Any] | None:
    """Median per-sample Spearman correlation between every pair of methods."""
    if len(results) < 2:
        return None
    try:
        from explain.quality import agreement
        matrix = agreement(results)
    except Exception as exc:  # missing part or a failure: say so in the report
        return {"methods": names, "matrix": None, "error": f"{type(exc).__name__}: {exc}"}
    values = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    if isinstance(values, dict):
        values = values.get("matrix", values)
    return {"methods": names, "matrix": values, "error": None}
