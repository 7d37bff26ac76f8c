"""``MonitorCallback``: an :class:`explain.TrainingMonitor` inside a Lightning ``Trainer``.

::

    from explain.integrations.lightning import MonitorCallback
    cb = MonitorCallback()
    lightning.pytorch.Trainer(callbacks=[cb]).fit(module, train_loader, val_loader)
    cb.history, cb.findings()

The monitor starts at ``on_fit_start`` and takes one step per optimizer step (with
``accumulate_grad_batches`` that is every N batches: steps follow ``trainer.global_step``).
Each training epoch logs ``train_loss``, ``val_loss``, ``train_acc`` and ``val_acc`` from
``trainer.callback_metrics`` (as ``self.log("val_loss", ...)`` etc. put them there; ``loss``,
``val_accuracy`` and ``*_epoch`` names are understood too). With ``precision="16-mixed"`` the
precision plugin's ``GradScaler`` is handed to the monitor, so gradient norms are unscaled. At
``on_fit_end`` the hooks are removed, the history is saved as ``deepscope-history.json`` in
``trainer.log_dir`` (the logger's folder; ``default_root_dir`` without a logger) and the
findings are printed. An exception during fit removes the hooks too.

Needs ``pip install 'deepscope[lightning]'``; importing this module without it raises
:class:`explain.MissingExtraError`.
"""

from __future__ import annotations

from typing import Any

from explain.integrations._common import (
    HISTORY_FILE,
    MonitorSession,
    SessionView,
    epoch_metrics,
    loss_value,
)
from explain.integrations._common import require as _require

_require("lightning.pytorch", "lightning", "explain.integrations.lightning")
from lightning.pytorch import Callback  # noqa: E402  (after the check that names the extra)

__all__ = ["MonitorCallback", "HISTORY_FILE"]


def _scaler(trainer: Any) -> Any:
    plugin = getattr(trainer, "precision_plugin", None)
    return getattr(plugin, "scaler", None)


class MonitorCallback(SessionView, Callback):
    """Run an :class:`explain.TrainingMonitor` from Lightning's hooks.

    Parameters
    ----------
    every : the monitor's sampling interval (``None``: automatic, about 1% overhead).
    verbose : print the findings at the end of ``fit``.
    save : write ``deepscope-history.json`` next to the logger's files.
    **monitor_options : passed to :class:`explain.TrainingMonitor` (``include_norm``, ...).

    Attributes
    ----------
    history : the :class:`explain.History` being recorded.
    path : where the history was saved (after ``fit``), else ``None``.
    """

    def __init__(self, every: int | None = None, *, verbose: bool = True, save: bool = True,
                 **monitor_options: Any) -> None:
        super().__init__()
        self._session = MonitorSession(every, verbose, monitor_options)
        self._save = save
        self._last_step = 0

    # -- Lightning hooks ----------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._session.start(pl_module, scaler=_scaler(trainer))
        self._last_step = int(trainer.global_step)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = int(trainer.global_step)
        if step > self._last_step:   # an optimizer step happened (not an accumulation batch)
            self._last_step = step
            self._session.step(loss=loss_value(outputs))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._session.epoch(epoch_metrics(trainer.callback_metrics))

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        folder = None
        if self._save:
            folder = getattr(trainer, "log_dir", None) or trainer.default_root_dir
        self._session.finish(folder)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._session.close()
