"""``MonitorCallback``: an :class:`explain.TrainingMonitor` inside a Hugging Face ``Trainer``.

::

    from explain.integrations.transformers import MonitorCallback
    cb = MonitorCallback()
    transformers.Trainer(model=model, args=args, callbacks=[cb], ...).train()
    cb.history, cb.findings()

The monitor starts at ``on_train_begin`` and takes one step per ``on_step_end``, which the
Trainer calls once per optimizer step (after ``gradient_accumulation_steps`` micro-batches).
The step loss is read from the model's own output (``ModelOutput.loss``, by a forward hook
removed at the end). ``on_epoch_end`` logs ``train_loss`` (the mean step loss of the epoch);
``on_evaluate`` adds ``val_loss`` / ``val_acc`` from ``eval_loss`` / ``eval_accuracy`` (with
``eval_strategy="epoch"`` to the epoch just ended). At ``on_train_end`` the hooks are removed,
the history is saved as ``deepscope-history.json`` in ``args.output_dir`` and the findings are
printed. For ``fp16`` training pass ``scaler=trainer.accelerator.scaler`` so gradient norms are
unscaled (bf16 needs no scaler).

Needs ``pip install 'deepscope[transformers]'``; importing this module without it raises
:class:`explain.MissingExtraError`.
"""

from __future__ import annotations

from typing import Any

import torch

from explain.integrations._common import (
    HISTORY_FILE,
    MonitorSession,
    SessionView,
    epoch_metrics,
    loss_value,
)
from explain.integrations._common import require as _require

_require("transformers", "transformers", "explain.integrations.transformers")
from transformers import TrainerCallback  # noqa: E402  (after the check that names the extra)

__all__ = ["MonitorCallback", "HISTORY_FILE"]


def _is_epoch(strategy: Any) -> bool:
    return str(getattr(strategy, "value", strategy)) == "epoch"


class MonitorCallback(SessionView, TrainerCallback):
    """Run an :class:`explain.TrainingMonitor` from the HF ``Trainer``'s callbacks.

    Parameters
    ----------
    every : the monitor's sampling interval (``None``: automatic, about 1% overhead).
    scaler : the fp16 ``GradScaler`` (``trainer.accelerator.scaler``), if any.
    verbose : print the findings at the end of training.
    save : write ``deepscope-history.json`` into ``args.output_dir``.
    **monitor_options : passed to :class:`explain.TrainingMonitor`.
    """

    def __init__(self, every: int | None = None, *, scaler: Any = None, verbose: bool = True,
                 save: bool = True, **monitor_options: Any) -> None:
        self._session = MonitorSession(every, verbose, monitor_options)
        self._scaler, self._save = scaler, save
        self._handle: Any = None
        self._last: torch.Tensor | None = None
        self._losses: list[float] = []
        self._pending: dict[str, float] | None = None

    # -- the loss tap -------------------------------------------------------------------------
    def _tap(self, module: Any, args: Any, output: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self._last = loss_value(output) if not isinstance(output, torch.Tensor) else None

    def _untap(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    # -- Trainer callbacks --------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        self._untap()
        self._session.start(model, scaler=self._scaler)
        self._handle = model.register_forward_hook(self._tap)
        self._losses, self._pending = [], None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        loss, self._last = self._last, None
        if loss is not None:
            self._losses.append(float(loss.float().mean()))
        self._session.step(loss=loss)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush()
        row: dict[str, float] = {}
        if self._losses:
            row["train_loss"] = sum(self._losses) / len(self._losses)
        self._losses = []
        if _is_epoch(getattr(args, "eval_strategy", "no")):
            self._pending = row          # the epoch's evaluation comes right after
        else:
            self._session.epoch(row)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                    **kwargs: Any) -> None:
        if self._pending is not None:
            found = epoch_metrics(metrics or {})
            self._pending.update({k: v for k, v in found.items() if k.startswith("val_")})
            self._flush()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush()
        self._untap()
        self._session.finish(getattr(args, "output_dir", None) if self._save else None)

    def _flush(self) -> None:
        if self._pending is not None:
            row, self._pending = self._pending, None
            self._session.epoch(row)
