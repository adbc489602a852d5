"""The names of a program's instances, ``web:0`` ... ``web:N-1``, and what a name stands for (stdlib only).

One home for the naming: the configuration expands programs into these names, the daemon
resolves ``restart web`` and ``logs web`` through them, and the client filters ``status web``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

# Each instance is a process with its pipes, and a change of count is applied in the daemon's
# loop at once: 99,999 of them (a typo) wedged it for minutes, status unanswered. A thousand
# is far beyond one host's useful share and takes about 2 s to start on 2 cores.
MAX_INSTANCES = 1000


def instance_name(base: str, index: int) -> str:
    """Return the unit name of instance ``index`` of program ``base``: ``web:1``."""
    return f"{base}:{index}"


def split(name: str) -> tuple[str, int] | None:
    """Return ``(base, index)`` for an instance's name such as ``web:1``, else None."""
    base, sep, index = name.rpartition(":")
    return (base, int(index)) if sep and base and index.isdigit() else None


def members(name: str, names: Collection[str]) -> list[str]:
    """Return the units ``name`` stands for among ``names``: itself, or its instances in order."""
    if name in names:
        return [name]
    found = [(s[1], n) for n in names if (s := split(n)) is not None and s[0] == name]
    return [n for _, n in sorted(found)]


def select(names: Iterable[str], pool: Iterable[str]) -> tuple[list[str], list[str]]:
    """Return the units of ``pool`` that ``names`` stand for (each once, in order) and the names that match none."""
    known = list(pool)
    chosen: dict[str, None] = {}
    unknown: list[str] = []
    for name in names:
        found = members(name, known)
        chosen.update(dict.fromkeys(found))
        if not found:
            unknown.append(name)
    return list(chosen), unknown


def order_key(name: str) -> tuple[str, int]:
    """Sort key that puts ``web:2`` before ``web:10``."""
    parts = split(name)
    return parts if parts is not None else (name, -1)
