"""The zoo's registries: models, datasets and presets (timm's ``@register_model`` pattern).

A new model is one file in ``zoo/models/`` that decorates a factory with ``@register_model``;
a new dataset one file in ``zoo/data/`` with ``@register_dataset``. Both folders are imported
on first use, so nothing else needs editing, and the conformance tests pick the entry up.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from explain._registry import Registry

MODELS: Registry[Callable[..., Any]] = Registry("model")
DATASETS: Registry[Callable[..., Any]] = Registry("dataset")

_loaded: set[str] = set()


def _import_all(package: str) -> None:
    """Import every module of ``package`` once, so their decorators register."""
    if package in _loaded:
        return
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
    _loaded.add(package)


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model factory ``f(*, input_shape, num_classes, class_names=None, **kw)``."""
    return MODELS.register(name)


def register_dataset(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a dataset loader ``f(*, seed=0, **kw) -> DatasetBundle``."""
    return DATASETS.register(name)


def list_models() -> list[str]:
    """Names of every registered model.

    Examples
    --------
    >>> import zoo
    >>> {"cnn", "rnn", "transformer", "mlp"} <= set(zoo.list_models())
    True
    """
    _import_all("zoo.models")
    return MODELS.names()


def create_model(name: str, **kwargs: Any):
    """Build a registered model by name; every model carries a ``card`` (:class:`explain.ModelCard`).

    Every factory takes ``input_shape`` (shape of one sample), ``num_classes`` and
    ``class_names``; text models also ``vocab_size``. Defaults suit the zoo's data sets.
    """
    _import_all("zoo.models")
    return MODELS.get(name)(**kwargs)


def list_datasets() -> list[str]:
    """Names of every registered dataset."""
    _import_all("zoo.data")
    return DATASETS.names()


def load_dataset(name: str, **kwargs: Any):
    """Load a registered dataset as a :class:`zoo.data.DatasetBundle` with fixed seeded splits."""
    _import_all("zoo.data")
    return DATASETS.get(name)(**kwargs)
