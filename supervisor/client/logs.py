"""``supervisor logs``: the last lines of units, merged in time order, from a time on, and following.

``--since`` takes what ``docker compose logs --since`` and ``journalctl --since`` take: a
duration back from now (``10m``, ``1h30m``, ``-2h``), a time (``2026-12-04T10:00:00``, with or
without a zone, ``10:00``), ``today``, ``yesterday``, or Unix seconds. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from supervisor.machine.errors import EXIT_GAVE_UP, EXIT_OK, EXIT_UNREACHABLE

DEFAULT_LINES = 100
ALL_LINES = 100_000  # the most the daemon hands out per unit: as many as its ring keeps
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_CLOCK = re.compile(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?")
SINCE_FORMS = "10m, 1h30m, 2d, 2026-12-04T10:00:00 (a zone such as Z or +01:00 optional), 10:00, today, or Unix seconds"


class BadSince(ValueError):
    """A ``--since`` value that is none of the accepted forms."""


def _duration(text: str) -> float | None:
    """Return seconds of ``10m``, ``1h30m`` or ``2d``, or None when it is not a duration."""
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if text else None


def parse_since(value: str, now: float | None = None) -> float:
    """Return the Unix time ``value`` names; a time without a zone is local, as journalctl reads it."""
    text = value.strip()
    now = time.time() if now is None else now
    ago = _duration(text.removeprefix("-"))
    if ago is not None:
        return now - ago
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    words = {"now": 0, "today": 0, "yesterday": 1}
    if text in words:
        return now if text == "now" else (midnight - timedelta(days=words[text])).timestamp()
    if re.fullmatch(r"\d{9,}(\.\d+)?", text):  # Unix seconds, as docker takes them
        return float(text)
    if _CLOCK.fullmatch(text):  # a time of day: today's
        text = f"{midnight:%Y-%m-%d}T{text}"
    try:
        # 3.11's fromisoformat takes a space or T, seconds or not, fractions, and Z or +01:00
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadSince(f"--since {value!r}: not a duration or a time; use {SINCE_FORMS}") from None
    return moment.timestamp()  # a naive datetime is local time


def show(client: Any, args: argparse.Namespace) -> int:
    """Print the merged lines (those since ``--since``), then follow with ``-f``; return the exit code."""
    from supervisor.client.render import log_line
    from supervisor.client.safe import escape

    since = args.since_at
    # With --since and no -n, every line since then (as docker compose logs --since); with both, the last N of those.
    lines = args.lines if args.lines is not None else (ALL_LINES if since is not None else DEFAULT_LINES)
    query = [("lines", str(ALL_LINES if since is not None else lines)), *(("name", n) for n in args.names)]
    target = "/v1/logs?" + urlencode(query + ([("follow", "1")] if args.follow else []))
    colour = sys.stdout.isatty()
    safe = colour and not args.raw  # a terminal gets a child's control characters escaped; a pipe, lines as they came
    width = 0
    first = True
    for code, doc in client.stream(target) if args.follow else [client.request("GET", target)]:
        if code != 200:
            print(f"supervisor: {doc.get('error', code)}", file=sys.stderr)
            return EXIT_GAVE_UP
        if first:
            width = max((len(n) for n in doc["units"]), default=0)
            rows = doc["lines"] if since is None else last_per_unit(doc["lines"], since, lines)
            first = False
        else:
            rows = [doc]
            width = max(width, len(doc["unit"]))  # a unit added by a reload may have a longer name
        for row in rows:
            print(log_line({**row, "line": escape(row["line"])} if safe else row, width, colour), flush=True)
    if args.follow:
        print(f"supervisor: the supervisor at {client.path} closed the stream (it stopped?)", file=sys.stderr)
        return EXIT_UNREACHABLE
    return EXIT_OK


def last_per_unit(rows: list[dict[str, Any]], since: float, lines: int) -> list[dict[str, Any]]:
    """Keep the rows at or after ``since``, at most the last ``lines`` of each unit, in their order."""
    recent = [row for row in rows if row["time"] >= since]
    left: dict[str, int] = {}
    kept = []
    for row in reversed(recent):
        unit = row.get("unit", "")
        left[unit] = left.get(unit, lines)
        if left[unit] > 0:
            left[unit] -= 1
            kept.append(row)
    kept.reverse()
    return kept
