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


class TrainingDivergedError(DeepscopeError, RuntimeError):
    """Training produced a non-finite loss and was stopped; the last good run was kept."""


class AttributionError(DeepscopeError, RuntimeError):
    """An attribution method failed and no valid fallback existed."""


class MissingExtraError(DeepscopeError, ImportError):
    """An optional dependency is not installed; the message names the pip command."""
