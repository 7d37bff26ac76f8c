"""The deepscope exception tree.

Every error deepscope raises on purpose is a :class:`DeepscopeError`. Each also subclasses the
built-in exception a Python user would expect, so ``except ValueError`` keeps working::

    DeepscopeError
    ├── InvalidInputError (ValueError)       a value is out of range, of the wrong shape, NaN, ...
    │   ├── UnknownNameError                 an unknown model / dataset / preset / check / method
    │   ├── DataMismatchError                model and data disagree (class count, labels, devices)
    │   └── CorruptRunError                  a run folder is partial, tampered with or invalid
    │       └── UnsafeFileError              a file that could execute code (pickle, .pt, .pkl)
    ├── InvalidTypeError (TypeError)         an argument of the wrong type
    ├── DataNotFoundError (FileNotFoundError) a data set or run folder is missing
    ├── RunExistsError (FileExistsError)     training into a folder that already holds a run
    ├── RunLockedError (BlockingIOError)     another process is writing to that run folder
    ├── RunWriteError (OSError)              a run could not be written (disk full, read-only,
    │                                        permission denied, path too long); the old run is kept
    ├── TrainingDivergedError (RuntimeError) the loss became non-finite; the last good run is kept
    ├── AttributionError (RuntimeError)      captum/shap failed in a way we could not adapt to
    └── MissingExtraError (ImportError)      an optional dependency is missing; says what to install

Messages name the input, what was expected, what came, and the fix.
"""

from __future__ import annotations

__all__ = [
    "DeepscopeError",
    "InvalidInputError",
    "UnknownNameError",
    "DataMismatchError",
    "CorruptRunError",
    "UnsafeFileError",
    "InvalidTypeError",
    "DataNotFoundError",
    "RunExistsError",
    "RunLockedError",
    "RunWriteError",
    "TrainingDivergedError",
    "AttributionError",
    "MissingExtraError",
]


class DeepscopeError(Exception):
    """Base class of every error deepscope raises on purpose."""


class InvalidInputError(DeepscopeError, ValueError):
    """A value is out of range, has the wrong shape, or is not finite."""


class UnknownNameError(InvalidInputError):
    """A name that is not in a registry; the message lists the closest valid names."""


class DataMismatchError(InvalidInputError):
    """The model and the data disagree (class count, label range, device, input shape)."""


class CorruptRunError(InvalidInputError):
    """A run folder is partial, tampered with, or not a deepscope run."""


class UnsafeFileError(CorruptRunError):
    """A file that could execute code when loaded (a pickle, ``.pt``, ``.pkl``) was refused."""


class InvalidTypeError(DeepscopeError, TypeError):
    """An argument has the wrong type."""


class DataNotFoundError(DeepscopeError, FileNotFoundError):
    """A data set, file or run folder does not exist."""


class RunExistsError(DeepscopeError, FileExistsError):
    """The run folder already holds a run; the message says what it is and the choices."""

    def __str__(self) -> str:  # the message alone, not OSError's "[Errno ...]" form
        return str(self.args[0]) if self.args else ""


class RunLockedError(DeepscopeError, BlockingIOError):
    """Another process holds the run folder's writer lock; the message names it (pid, host)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunWriteError(DeepscopeError, OSError):
    """A run folder could not be written; the previous run in it is unchanged.

    Attributes
    ----------
    errno, strerror, filename : as for :class:`OSError` (``errno.ENOSPC`` for a full disk).
    needed : bytes the write needed, or ``None`` if not known.
    free : bytes free on that disk, or ``None`` if not known.
    """

    def __init__(self, message: str, *, errno: int | None = None, filename: str | None = None,
                 needed: int | None = None, free: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno  # type: ignore[assignment]  # OSError's fields, set by keyword
        self.strerror = message  # type: ignore[assignment]
        self.filename = filename
        self.needed = needed
        self.free = free

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TrainingDivergedError(DeepscopeError, RuntimeError):
    """Training produced a non-finite loss and was stopped; the last good run was kept."""


class AttributionError(DeepscopeError, RuntimeError):
    """An attribution method failed and no valid fallback existed."""


class MissingExtraError(DeepscopeError, ImportError):
    """An optional dependency is not installed; the message names the pip command."""
