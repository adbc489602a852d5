"""``Record``: the shared ``__repr__``, ``__eq__`` and ``__hash__`` of the daemon's frozen dataclasses.

``@dataclass`` writes these three as source text and compiles it, for every class: with 52
frozen classes on ``run``'s import path, that compiling was the largest single part of the
daemon's start-up (a profile of starting 100 programs put a third of the time before the
first spawn in dataclasses' code generation). Declared ``@dataclass(frozen=True, repr=False,
eq=False)``, a class inherits these instead; they behave as the generated ones do: the same
repr text, equality only with the same class over the fields that ``compare``, and the hash
of those fields.
"""

from __future__ import annotations

from dataclasses import Field
from typing import Any

_REPR: dict[type, tuple[str, ...]] = {}
_COMPARE: dict[type, tuple[str, ...]] = {}


def _names(cls: type, cache: dict[type, tuple[str, ...]], flag: str) -> tuple[str, ...]:
    names = cache.get(cls)
    if names is None:
        fields: dict[str, Field[Any]] = cls.__dataclass_fields__  # type: ignore[attr-defined]
        # ClassVar and InitVar pseudo-fields are in the dict too; the generated methods skip them.
        names = tuple(n for n, f in fields.items() if getattr(f, flag) and f._field_type.name == "_FIELD")  # type: ignore[attr-defined]
        cache[cls] = names
    return names


class Record:
    """Base of a frozen dataclass declared with ``repr=False, eq=False``."""

    __slots__ = ()

    def __repr__(self) -> str:
        names = _names(type(self), _REPR, "repr")
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = _names(type(self), _COMPARE, "compare")
        return all(getattr(self, n) == getattr(other, n) for n in names)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _names(type(self), _COMPARE, "compare")))
