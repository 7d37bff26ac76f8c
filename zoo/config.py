"""Training configuration: one dataclass with the classic remedies and tools."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from explain._validation import check_choice, check_float, check_int, unknown_name
from explain.errors import InvalidTypeError

__all__ = ["TrainConfig", "OPTIMIZERS", "SCHEDULERS"]

OPTIMIZERS = ("sgd", "sgd+momentum", "adam", "adamw", "adagrad", "rmsprop")
SCHEDULERS = ("none", "cosine", "step", "onecycle")


@dataclass(frozen=True)
class TrainConfig:
    """How to train a model.

    Parameters
    ----------
    optimizer : one of ``sgd``, ``sgd+momentum``, ``adam``, ``adamw``, ``adagrad``, ``rmsprop``.
    lr : learning rate.
    momentum : momentum for ``sgd+momentum`` (and ``rmsprop``).
    epochs : number of epochs.
    batch_size : mini-batch size.
    weight_decay : L2 penalty (decoupled for ``adamw``).
    l1 : L1 penalty on weights (not biases), added to the loss.
    early_stopping : patience in epochs on the validation loss; ``None`` disables it. The best
        weights are restored at the end.
    grad_clip : clip the global gradient norm to this value; ``None`` disables clipping.
    scheduler : ``none``, ``cosine`` (over all epochs), ``step`` (x0.1 at 50% and 75%), ``onecycle``.
    label_smoothing : cross-entropy label smoothing.
    seed : seeds torch, numpy and random; data order is a function of (seed, epoch) only.
    device : ``auto`` (cuda, then mps, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    amp : mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler):
        ``"auto"`` (on for CUDA), ``True`` or ``False``.
    num_workers : DataLoader workers (only for datasets that are not in-memory tensors).
    monitor : record a :class:`explain.TrainingMonitor` history while training.
    monitor_every : the monitor's sampling interval (``None``: chosen automatically).

    Examples
    --------
    >>> TrainConfig(epochs=3).replace(lr=0.01).lr
    0.01
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    epochs: int = 10
    batch_size: int = 64
    weight_decay: float = 0.0
    l1: float = 0.0
    early_stopping: int | None = None
    grad_clip: float | None = None
    scheduler: str = "none"
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: bool | str = "auto"
    num_workers: int = 0
    monitor: bool = True
    monitor_every: int | None = None

    def __post_init__(self) -> None:
        own = "TrainConfig"
        check_choice(self.optimizer, "optimizer", OPTIMIZERS, owner=own)
        check_float(self.lr, "lr", owner=own, min=0.0, min_inclusive=False)
        check_float(self.momentum, "momentum", owner=own, min=0.0, max=1.0)
        check_int(self.epochs, "epochs", owner=own, min=1)
        check_int(self.batch_size, "batch_size", owner=own, min=1)
        check_float(self.weight_decay, "weight_decay", owner=own, min=0.0)
        check_float(self.l1, "l1", owner=own, min=0.0)
        if self.early_stopping is not None:
            check_int(self.early_stopping, "early_stopping", owner=own, min=1)
        check_float(self.grad_clip, "grad_clip", owner=own, min=0.0, min_inclusive=False,
                    allow_none=True)
        check_choice(self.scheduler, "scheduler", SCHEDULERS, owner=own)
        check_float(self.label_smoothing, "label_smoothing", owner=own, min=0.0, max=0.5)
        check_int(self.seed, "seed", owner=own, min=0)
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")):
            raise InvalidTypeError(
                f"The 'device' parameter of TrainConfig must be 'auto', 'cpu', 'cuda', 'cuda:N' or "
                f"'mps'. Got {self.device!r} instead.")
        if self.amp not in ("auto", True, False):
            check_choice(self.amp, "amp", ["auto", "True", "False"], owner=own)
        check_int(self.num_workers, "num_workers", owner=own, min=0)
        if self.monitor_every is not None:
            check_int(self.monitor_every, "monitor_every", owner=own, min=1)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed; unknown names list the closest valid ones."""
        names = {f.name for f in fields(self)}
        for k in changes:
            if k not in names:
                raise unknown_name("TrainConfig field", k, names)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        for k in d:
            if k not in names:
                raise unknown_name("TrainConfig field", k, names)
        return cls(**d)
