"""What both training integrations share: the extra check, epoch metrics, one monitoring session."""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from explain._core.io import atomic_write_text
from explain.errors import MissingExtraError
from explain.findings import Finding

__all__ = ["require", "HISTORY_FILE", "epoch_metrics", "loss_value", "MonitorSession", "SessionView"]

HISTORY_FILE = "deepscope-history.json"

#: History column -> metric names frameworks and users commonly log, in order of preference.
_ALIASES = {
    "train_loss": ("train_loss", "train/loss", "loss", "training_loss"),
    "val_loss": ("val_loss", "val/loss", "valid_loss", "validation_loss", "eval_loss"),
    "train_acc": ("train_acc", "train/acc", "train_accuracy", "train/accuracy", "acc",
                  "accuracy"),
    "val_acc": ("val_acc", "val/acc", "val_accuracy", "val/accuracy", "valid_acc",
                "eval_accuracy", "eval_acc"),
}


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`explain.MissingExtraError` naming the pip line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{what} needs the {module!r} package, which is not installed. Install it with "
            f"`pip install 'deepscope[{extra}]'`.") from exc


def _scalar(value: Any) -> float | None:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean()) if value.numel() else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def epoch_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``train_loss``, ``val_loss``, ``train_acc``, ``val_acc`` found in ``metrics`` under their
    usual names (also with Lightning's ``_epoch`` suffix), as floats.

    Examples
    --------
    >>> epoch_metrics({"loss": 0.5, "val_accuracy": 0.75, "lr": 1e-3})
    {'train_loss': 0.5, 'val_acc': 0.75}
    """
    row: dict[str, float] = {}
    for column, names in _ALIASES.items():
        for name in names:
            for key in (f"{name}_epoch", name):
                value = _scalar(metrics.get(key))
                if value is not None and column not in row:
                    row[column] = value
    return row


def loss_value(outputs: Any) -> torch.Tensor | None:
    """The loss in a training step's output: a tensor, or a mapping / ``ModelOutput`` with
    ``loss`` (detached), else ``None``."""
    if isinstance(outputs, torch.Tensor):
        return outputs.detach()
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else getattr(outputs, "loss", None)
    return loss.detach() if isinstance(loss, torch.Tensor) else None


class MonitorSession:
    """A :class:`explain.TrainingMonitor` driven by framework hooks: start, one ``step`` per
    optimizer step, one ``epoch`` per epoch, ``finish`` (close, save, diagnose, print)."""

    def __init__(self, every: int | None, verbose: bool, monitor_options: dict[str, Any]) -> None:
        from explain.monitor import History

        self.every, self.verbose, self.options = every, verbose, dict(monitor_options)
        self.history = History()
        self.monitor: Any = None
        self.model: nn.Module | None = None
        self.path: Path | None = None
        self._findings: list[Finding] | None = None
        self._closed = False
        self._t_epoch = time.perf_counter()

    def start(self, model: nn.Module, scaler: Any = None) -> None:
        from explain.monitor import TrainingMonitor

        if self.monitor is not None:
            self.monitor.close()
        kwargs = dict(self.options)
        if scaler is not None:
            kwargs["scaler"] = scaler
        self.model, self._findings, self._closed = model, None, False
        self.monitor = TrainingMonitor(model, every=self.every, history=self.history, **kwargs)
        self.monitor.start()
        self._t_epoch = time.perf_counter()

    def step(self, loss: Any = None) -> None:
        if self.monitor is not None:
            self.monitor.step(loss=loss)

    def epoch(self, metrics: Mapping[str, Any]) -> None:
        row: dict[str, Any] = dict(metrics)
        row["seconds"] = time.perf_counter() - self._t_epoch
        if self.monitor is not None:
            self.monitor.log_epoch(**row)
        else:
            self.history.log_epoch(**row)
        self._t_epoch = time.perf_counter()

    def close(self) -> None:
        """Remove the monitor's hooks (idempotent)."""
        if self.monitor is not None:
            self.monitor.close()
        self._closed = True

    def finish(self, folder: str | Path | None) -> list[Finding]:
        """Close the monitor, save the history under ``folder``, diagnose and print."""
        self.close()
        if folder is not None:
            self.path = Path(folder) / HISTORY_FILE
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, self.history.to_json(indent=1))
        found = self.findings()
        if self.verbose:
            print(self.report())
        return found

    def findings(self) -> list[Finding]:
        """The checks' findings on the history so far (worst first); cached after ``finish``."""
        from explain.checks import diagnose

        if self._findings is not None:
            return self._findings
        found = diagnose(self.history, model=self.model)
        if self._closed:
            self._findings = found
        return found

    def report(self) -> str:
        """The findings as printed at the end of training: one line each, worst first."""
        lines = [f"deepscope: {len(self.findings())} findings"
                 + (f" (history saved to {self.path})" if self.path else "")]
        for f in self.findings():
            lines.append(f"  {f.severity.mark} {f.severity.label:<7} {f.check}: {f.summary}")
        return "\n".join(lines)


class SessionView:
    """``history``, ``path`` and ``findings()`` of a callback's :class:`MonitorSession` (what
    both framework callbacks expose); the callback sets ``self._session``."""

    _session: MonitorSession

    @property
    def history(self) -> Any:
        """The :class:`explain.History` being recorded."""
        return self._session.history

    @property
    def path(self) -> Any:
        """Where the history was saved (after training), else ``None``."""
        return self._session.path

    def findings(self) -> list[Finding]:
        """The findings on the history (worst first)."""
        return self._session.findings()
