"""deepscope's diagnostics library: training health, attributions, trust, audits, reports.

Public names are listed in ``__all__``; everything else is private.
"""

from explain.card import Modality, ModelCard, card_of
from explain.errors import (
    AttributionError,
    CorruptRunError,
    DataMismatchError,
    DataNotFoundError,
    DeepscopeError,
    InvalidInputError,
    InvalidTypeError,
    MissingExtraError,
    TrainingDivergedError,
    UnknownNameError,
    UnsafeFileError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Modality",
    "ModelCard",
    "card_of",
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
