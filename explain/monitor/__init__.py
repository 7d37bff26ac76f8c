"""Training health: record per-layer statistics while a model trains.

>>> from explain.monitor import TrainingMonitor, History
"""

from explain.monitor.history import History
from explain.monitor.monitor import TrainingMonitor

__all__ = ["TrainingMonitor", "History"]
