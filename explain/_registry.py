"""A tiny name -> factory registry (timm's ``@register_model`` pattern), one per concept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from explain._validation import unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually factories or classes), in registration order.

    Examples
    --------
    >>> models = Registry("model")
    >>> @models.register("tiny")
    ... def tiny():
    ...     return 1
    >>> models.names(), models.get("tiny")()
    (['tiny'], 1)
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj
        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        if not isinstance(name, str) or name not in self._items:
            raise unknown_name(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
