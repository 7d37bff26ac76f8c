"""The data of the training, data-sufficiency and model-card sections of an audit."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from torch import nn

from explain.card import ModelCard
from explain.findings import Finding, Severity

__all__ = ["training_section", "data_sufficiency_section", "card_section", "spectral_alphas"]

_HISTORY_FIELDS = ("epochs", "steps", "step_loss", "layers", "layer_info", "temporal",
                   "nonfinite", "meta")
NO_HISTORY = ("No training history was given, so training health (curves, gradient flow, "
              "activation health, gradient through time) could not be checked. Record one with "
              "`with explain.TrainingMonitor(model) as mon:` around the training loop (call "
              "mon.step() after each optimizer step and mon.log_epoch(...) per epoch) and pass "
              "history=mon.history to explain.audit.")


def _finding(findings: Sequence[Finding], check: str) -> Finding | None:
    return next((f for f in findings if f.check == check), None)


def history_data(history: Any) -> dict[str, Any]:
    """The contract's history fields as plain data (from a History or its dict)."""
    get = history.get if isinstance(history, Mapping) else lambda k: getattr(history, k, None)
    out: dict[str, Any] = {}
    for key in _HISTORY_FIELDS:
        value = get(key)
        out[key] = value if value is not None else ({} if key not in ("steps", "step_loss",
                                                                      "temporal") else [])
    return out


def spectral_alphas(finding: Finding | None) -> dict[str, float | None]:
    """Layer -> heavy-tail exponent alpha, read from the spectral finding's evidence."""
    if finding is None:
        return {}
    ev = finding.evidence
    layers, alpha = ev.get("layers"), ev.get("alpha")
    if isinstance(layers, list) and isinstance(alpha, list) and len(layers) == len(alpha):
        return {str(k): v for k, v in zip(layers, alpha)}
    for key in ("alphas", "alpha", "layers", "per_layer"):
        table = ev.get(key)
        if isinstance(table, Mapping):
            return {str(k): (v.get("alpha") if isinstance(v, Mapping) else v)
                    for k, v in table.items()
                    if not isinstance(v, Mapping) or "alpha" in v}
        if isinstance(table, list) and table and isinstance(table[0], Mapping):
            return {str(r.get("layer", r.get("name", i))): r.get("alpha")
                    for i, r in enumerate(table)}
    return {}


def training_section(history: Any, findings: Sequence[Finding]) -> dict[str, Any]:
    """Curves, per-layer series and the BPTT curve, plus where overfitting starts."""
    spectral = _finding(findings, "spectral")
    alphas = spectral_alphas(spectral)
    out: dict[str, Any] = {"spectral": {"alphas": alphas, "summary":
                                        spectral.summary if spectral else "not run"}}
    if history is None:
        out.update(available=False, reason=NO_HISTORY)
        return out
    over = _finding(findings, "overfitting")
    overfit_epoch = None
    if over is not None and over.severity >= Severity.WARN:
        overfit_epoch = over.evidence.get("best_epoch")
    out.update(available=True, history=history_data(history), overfit_epoch=overfit_epoch)
    return out


def data_sufficiency_section(findings: Sequence[Finding],
                             learning_curve: Sequence[Sequence[float]] | None) -> dict[str, Any]:
    """The learning curve (n_train, val score) where it was computed."""
    finding = _finding(findings, "data-sufficiency")
    curve = learning_curve
    if curve is None and finding is not None:
        ev = finding.evidence
        if isinstance(ev.get("n_train"), list) and isinstance(ev.get("score"), list):
            curve = list(zip(ev["n_train"], ev["score"]))
    if not curve:
        return {"available": False, "reason": (
            "No learning curve was computed. Compute one with explain.checks.learning_curve("
            "fit_and_score, fractions=(0.25, 0.5, 1.0), n_total=...) and pass "
            "learning_curve=... to explain.audit.")}
    pts = [list(p)[:2] for p in (curve.items() if isinstance(curve, Mapping) else curve)]
    return {"available": True, "curve": pts,
            "summary": finding.summary if finding is not None else ""}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _layers(model: nn.Module) -> list[dict[str, Any]]:
    rows = []
    for name, module in model.named_modules():
        n = sum(p.numel() for p in module.parameters(recurse=False))
        if n:
            rows.append({"name": name or "(root)", "type": type(module).__name__, "params": n})
    return rows


def card_section(model: nn.Module, card: ModelCard | None, data: dict[str, Any],
                 meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Architecture, parameter count, data, config, versions, seed and device."""
    import torch

    meta = dict(meta or {})
    params = list(model.parameters())
    device = str(params[0].device) if params else "cpu"
    config = meta.pop("config", None)
    seed = meta.pop("seed", None)
    if seed is None and isinstance(config, Mapping):
        seed = config.get("seed")
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                **{d: _version(d) for d in ("deepscope", "captum", "shap", "plotly", "numpy")}}
    arch = repr(model)
    return {
        "available": True,
        "model_class": type(model).__name__,
        "card": card.to_dict() if card is not None else None,
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "layers": _layers(model),
        "architecture": arch if len(arch) <= 6000 else arch[:6000] + "\n...",
        "data": {**data, **dict(meta.pop("data", None) or {})},
        "config": dict(config) if isinstance(config, Mapping) else config,
        "seed": seed, "device": device, "versions": versions,
        "platform": f"{platform.system()} {platform.machine()}, {sys.implementation.name}",
        "extra": meta,
    }
