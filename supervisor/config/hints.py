"""What a refused file gets besides the refusal: the closest known name, and the unit names it gets wrong.

``load()`` reports every problem at once. A file whose values fail validation still has its
``depends_on`` and ``after`` read here, from the raw tables, so that an unknown key and an
unknown unit come out in the same run, each with a "did you mean" when a known name is close.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from supervisor.config.models import ConfigFile
from supervisor.config.settings import Config

TABLES = ("dependencies", "jobs", "programs")


def closest(word: str, known: Iterable[str]) -> str | None:
    """Return the known name nearest to ``word`` when one is near enough to be a misspelling."""
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """Return `` (did you mean `x`?)`` for the nearest known name, else nothing."""
    near = closest(word, known)
    return f" (did you mean `{near}`?)" if near else ""


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """Return the model an annotation holds and whether it is a table of them (``dict[str, Model]``)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model, many = _model_of(arg)
            if model is not None:
                return model, many
        return None, False
    if origin is dict:
        model, _ = _model_of(typing.get_args(annotation)[1])
        return model, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """Return the keys the table at ``loc`` (a pydantic error location, the key last) may hold."""
    model: type[BaseModel] | None = ConfigFile
    parts = list(loc[:-1])
    while parts and model is not None:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return []
        model, many = _model_of(field.annotation)
        if many and parts:
            parts.pop(0)  # the unit's name
    return list(model.model_fields) if model is not None else []


def unknown_key(loc: tuple[int | str, ...]) -> str:
    """Return the message for an unknown key, with the nearest key of its table."""
    return "unknown key" + did_you_mean(str(loc[-1]), known_keys(loc))


def unknown_unit(name: str, known: Iterable[str]) -> str:
    """Return the message for a ``depends_on`` entry that names no unit."""
    return f"unknown unit {name!r}" + did_you_mean(name, known)


def postgres(config: Config) -> list[str]:
    """The postgres dependencies' names: what a ``lock`` or ``singleton`` may name."""
    return [name for name, dep in config.dependencies.items() if dep.type == "postgres"]


def references(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return the unknown units named in ``depends_on`` and ``after`` of a file that failed validation.

    Read from the raw tables, so that they come out beside the values' problems; a file that
    validates has them checked with the rest of its graph instead.
    """
    tables: dict[str, dict[str, Any]] = {}
    for t in TABLES:
        table = data.get(t)
        tables[t] = table if isinstance(table, dict) else {}
    names = [name for table in tables.values() for name in table]
    programs = list(tables["programs"])
    found: list[tuple[str, str]] = []
    for table in ("jobs", "programs"):
        for name, unit in tables[table].items():
            if not isinstance(unit, dict):
                continue
            for key, known in (("depends_on", names), ("after", programs)):
                entries = unit.get(key)
                if (table == "jobs" and key == "after") or not isinstance(entries, list):
                    continue
                for i, entry in enumerate(entries):
                    if isinstance(entry, str) and entry not in names:
                        what = unknown_unit(entry, known) if key == "depends_on" else _unknown_program(entry, known)
                        found.append((f"{table}.{name}.{key}[{i}]", what))
    return found


def _unknown_program(name: str, programs: list[str]) -> str:
    return f"{name!r}: after names programs only (unknown program)" + did_you_mean(name, programs)
