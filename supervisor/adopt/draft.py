"""A configuration being drafted from another tool's file, and its TOML text.

Each importer fills a ``Draft``: units with their keys in the order a reader wants them, and
beside each unit the notes on what the source said that could not be carried over. Nothing
the source says is dropped: a key is either carried or becomes a ``# not carried over:``
comment next to where it would go.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

NOT_CARRIED = "# not carried over:"
TABLES = {"dependency": "dependencies", "job": "jobs", "program": "programs"}
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


class NotThisKind(Exception):
    """The file is not of the kind it was read as: ``line`` (1-based, or None) is where that showed."""

    def __init__(self, line: int | None, why: str) -> None:
        self.line = line
        self.why = why
        super().__init__(f"line {line}: {why}" if line else why)


@dataclass
class Unit:
    """One unit of the draft: its kind, its keys, and what of its source was not carried over."""

    kind: str  # dependency, job or program
    name: str
    keys: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # each a line after "# not carried over:"
    remarks: list[str] = field(default_factory=list)  # comments that are not losses
    commented: str = ""  # why the whole unit is written as comments, for the reader to finish

    def lose(self, what: str) -> None:
        """Record something of the source that this unit cannot say."""
        self.notes.append(what)


@dataclass
class Draft:
    """A whole configuration drafted from ``source`` (a file of ``kind``)."""

    source: str
    kind: str
    units: list[Unit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what of the file as a whole was not carried over
    remarks: list[str] = field(default_factory=list)  # comments on the file as a whole that are not losses

    def unit(self, kind: str, name: str) -> Unit:
        """Add a unit and return it; a second unit of the same name replaces the first, which is noted."""
        ours = f"{name}-unit" if name == "all" else name  # `all` stands for every unit on the command line
        made = Unit(kind, ours)
        if ours != name:
            made.remarks.append(f"named {ours}: `all` stands for every unit on the command line")
        for i, old in enumerate(self.units):
            if old.name == ours:
                made.notes.append(f"an earlier {name} (command {' '.join(old.keys.get('command', []))}): this one wins")
                del self.units[i]
                break
        self.units.append(made)
        return made

    def names(self) -> set[str]:
        """Every unit's name, but for units written as comments."""
        return {u.name for u in self.units if not u.commented}

    def render(self) -> str:
        """Return the draft as TOML text, the notes as comments where each would have gone."""
        lines = [
            f"# Drafted by `supervisor import` from {self.source} ({self.kind}). Read it, then add what the",
            "# source could not say: readiness (health checks, notify), dependencies, the migration's lock.",
        ]
        lines += [f"# {remark}" for remark in self.remarks]
        lines += [f"{NOT_CARRIED} {note}" for note in self.notes]
        order = {"dependency": 0, "job": 1, "program": 2}
        for unit in sorted(self.units, key=lambda u: order[u.kind]):
            lines.append("")
            off = "# " if unit.commented else ""
            if unit.commented:
                lines.append(f"{NOT_CARRIED} {unit.commented}")
            lines.append(f"{off}[{TABLES[unit.kind]}.{key(unit.name)}]")
            lines += [f"{off}{key(k)} = {value(v)}" for k, v in unit.keys.items()]
            lines += [f"# {remark}" for remark in unit.remarks]
            lines += [f"{NOT_CARRIED} {note}" for note in unit.notes]
        return "\n".join(lines) + "\n"


def key(name: str) -> str:
    """Return a TOML key: bare when it can be, else quoted."""
    return name if _BARE.match(name) else json.dumps(name)


def value(v: Any) -> str:
    """Return a TOML value: strings, integers, floats, booleans, lists and inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise TypeError(f"no TOML form for {v!r}")


def one_line(text: str) -> str:
    """Return ``text`` on one line, for a comment."""
    return " ".join(str(text).split())
