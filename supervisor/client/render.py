"""How client commands put documents into words: reload results, merged log lines. Standard library only."""

from __future__ import annotations

import time
import zlib
from typing import Any

# Bright, readable on dark and light backgrounds; red is left for problems.
_COLOURS = (36, 32, 35, 34, 33, 96, 92, 95, 94, 93)


def unit_colour(name: str) -> int:
    """Return the ANSI colour of a unit: the same for a name in every run and every client."""
    return _COLOURS[zlib.crc32(name.encode()) % len(_COLOURS)]


def log_line(row: dict[str, Any], width: int, colour: bool) -> str:
    """Render one merged log line: ``name | HH:MM:SS stream line``, the name padded to ``width``."""
    name = str(row.get("unit", "")).ljust(width)
    stamp = time.strftime("%H:%M:%S", time.localtime(row["time"]))
    prefix = f"\x1b[{unit_colour(row.get('unit', ''))}m{name} |\x1b[0m" if colour else f"{name} |"
    return f"{prefix} {stamp} {row['stream']:<6} {row['line']}"


def reload_words(doc: dict[str, Any]) -> str:
    """Say what a reload did: ``restarted web; added x; removed y; unchanged: worker, beat``."""
    parts = []
    states = doc.get("states") or {}

    def named(names: list[str]) -> str:
        # Running is what a restart and an addition aim at: only another state is worth saying.
        return ", ".join(f"{n} ({states[n]})" if states.get(n, "running") != "running" else n for n in names)

    changed = doc.get("changed") or []
    down = [n for n in changed if states.get(n) in ("stopped", "exited", "fatal")]
    under_way = [n for n in changed if states.get(n, "running") not in ("running", "standby") and n not in down]
    done = [n for n in changed if n not in down and n not in under_way]
    groups = ((done, "restarted"), (under_way, "still restarting"), (down, "changed, not running:"))
    for names, verb in (*groups, (doc.get("added") or [], "added")):
        if names:
            parts.append(f"{verb} {named(names)}")
    if doc.get("removed"):
        parts.append(f"removed {', '.join(doc['removed'])}")
    unchanged = doc.get("unchanged")
    if unchanged:
        parts.append(f"unchanged: {', '.join(unchanged)}")
    if not parts:
        parts.append("nothing changed")
    text = "; ".join(parts)
    if doc.get("note"):
        text += f"\nnote: {doc['note']}"
    return text
