"""The start-up as it happened: when each unit became eligible, started, and became ready.

Standard library only: the daemon records instants here, and the client renders them.
Instants are seconds since the daemon started; each is kept the first time it happens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from supervisor.machine.status import TimelineEntry


class Row(TimelineEntry):
    """One unit of ``GET /v1/timeline``: its instants, what it waits on, and whether it is on the critical chain."""

    name: str
    kind: str
    depends_on: list[str]
    after: list[str]  # programs whose start it waited for (ordering only)
    running_s: float | None  # a program's start ended well (running), healthy or not yet
    standby_s: NotRequired[float | None]  # a singleton first stood by (another daemon may run it)
    pending: bool  # start-up still waits for it
    critical: bool


class Document(TypedDict):
    """``GET /v1/timeline``: each unit's row, and the chain that decided when the last one was ready."""

    uptime_s: float
    last_ready_s: float | None
    critical_chain: list[str]
    units: list[Row]


@dataclass
class Instants:
    """One unit's instants: its dependencies done, its work begun, ready (or finished)."""

    eligible_s: float | None = None
    started_s: float | None = None
    ready_s: float | None = None
    running_s: float | None = None  # programs: its start ended well (``after`` waits for this)
    standby_s: float | None = None  # singletons: first in standby (dependants go; no process here yet)

    def as_dict(self) -> TimelineEntry:
        """Return the ``timeline`` entry of the status document."""
        return {"eligible_s": self.eligible_s, "started_s": self.started_s, "ready_s": self.ready_s}


class Timeline:
    """First instants per unit, recorded from the changes units already report."""

    def __init__(self) -> None:
        self.units: dict[str, Instants] = {}

    def mark(self, name: str, field: str, at_s: float) -> None:
        """Record ``field`` of unit ``name`` at ``at_s``, unless it was recorded before."""
        entry = self.units.setdefault(name, Instants())
        if getattr(entry, field) is None:
            setattr(entry, field, round(at_s, 4))

    def of(self, name: str) -> TimelineEntry:
        """Return the instants of one unit (all null if nothing happened yet)."""
        return self.units.get(name, Instants()).as_dict()

    def running_s(self, name: str) -> float | None:
        """When a program's start first ended well: ``after`` lets its followers go then."""
        return self.units.get(name, Instants()).running_s

    def standby_s(self, name: str) -> float | None:
        """When a singleton first stood by: its dependants went, though it had no process here."""
        return self.units.get(name, Instants()).standby_s


def critical_chain(units: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the units that decided when the last unit became ready, first to last.

    From the unit that was ready last, step to whichever of its ``depends_on`` and ``after``
    became ready last (the one that let it start), until a unit that waited on nothing. While
    start-up still waits (a unit is ``pending``), the chain ends at the unit that waits instead,
    and steps first through what it still waits for: the chain names the blocker.
    """
    by_name = {u["name"]: u for u in units}
    order = {u["name"]: i for i, u in enumerate(units)}
    waiting = [u for u in units if u.get("pending") and u.get("ready_s") is None]
    chain: list[str] = []
    if waiting:
        current = waiting[-1]  # the one latest in start-up order: it waits on the others
        chain.append(current["name"])
        while True:
            blockers = [
                by_name[d]
                for d in current.get("depends_on", [])
                if d in by_name and _let_go(by_name[d]) is None and d not in chain
            ]
            if not blockers:
                break
            current = blockers[-1]
            chain.append(current["name"])
    else:
        ready = [u for u in units if u.get("ready_s") is not None]
        if not ready:
            return []
        # On a tie (one tick), the unit later in start-up order is the dependant: it came last.
        current = max(ready, key=lambda u: (u["ready_s"], order[u["name"]]))
        chain.append(current["name"])
    while True:
        deps = [by_name[d] for d in current.get("depends_on", []) if d in by_name]
        deps += [by_name[d] for d in current.get("after", []) if d in by_name and _held_back(by_name[d], current)]
        deps = [d for d in deps if _let_go(d) is not None and d["name"] not in chain]
        if not deps:
            break
        current = max(deps, key=lambda u: (_let_go(u), order[u["name"]]))
        chain.append(current["name"])
    return list(reversed(chain))


def _let_go(unit: Mapping[str, Any]) -> float | None:
    """When the unit let its dependants start: ready here, or (a singleton another daemon runs) in standby."""
    ready: float | None = unit.get("ready_s")
    return ready if ready is not None else unit.get("standby_s")


def _held_back(first: Mapping[str, Any], follower: Mapping[str, Any]) -> bool:
    """Whether ``first``'s start held ``follower`` back (``after``): its start ended well before the follower's."""
    started = follower.get("started_s")
    ended = first.get("running_s", first.get("ready_s"))
    return started is not None and ended is not None and ended <= started


def document(timeline: Timeline, units: list[tuple[str, str, list[str], list[str], bool]], uptime_s: float) -> Document:
    """Return ``GET /v1/timeline``: each unit's instants, what it waits on, and the critical chain.

    ``units`` are ``(name, kind, depends_on, after, pending)``, ``pending`` when start-up still waits for it.
    """
    rows: list[Row] = [
        {
            "name": name,
            "kind": kind,
            "depends_on": list(deps),
            "after": list(after),
            **timeline.of(name),
            "running_s": timeline.running_s(name),
            "standby_s": timeline.standby_s(name),
            "pending": pending,
            "critical": False,
        }
        for name, kind, deps, after, pending in units
    ]
    chain = critical_chain(rows)
    for row in rows:
        row["critical"] = row["name"] in chain
    last = max((r["ready_s"] for r in rows if r["ready_s"] is not None), default=None)
    return {"uptime_s": round(uptime_s, 3), "last_ready_s": last, "critical_chain": chain, "units": rows}


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _ready(row: Mapping[str, Any]) -> str:
    # A singleton another daemon runs is not ready here, yet nothing waits for it.
    if row.get("ready_s") is None and row.get("standby_s") is not None:
        return "standby"
    return _seconds(row.get("ready_s"))


def render(doc: dict[str, Any], width: int = 100, fancy: bool = False) -> str:
    """Render the timeline as a table with a bar per unit on a shared time axis.

    The bar is blank while the unit waits on its dependencies, ``-`` from eligible to started,
    and ``=`` from started to ready (``░`` and ``█``, in colour, on a terminal). ``*`` marks
    the critical chain. A singleton that stands by (another daemon runs it) reads ``standby``
    as READY until it gets the lock and is ready here.
    """
    rows = doc.get("units", [])
    header = ("", "NAME", "KIND", "ELIGIBLE", "STARTED", "READY")
    table = [header] + [
        (
            "*" if r.get("critical") else " ",
            r["name"],
            r["kind"],
            _seconds(r.get("eligible_s")),
            _seconds(r.get("started_s")),
            _ready(r),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    left = [" ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    bar_w = max(10, width - len(left[0]) - 3)
    end = max(
        [v for r in rows for v in (r.get("eligible_s"), r.get("started_s"), r.get("ready_s")) if v is not None],
        default=0.0,
    )
    end = max(end, 0.001)
    scale = bar_w / end
    wait, run = ("░", "█") if fancy else ("-", "=")
    lines = [left[0] + " | 0s" + f"{end:.2f}s".rjust(bar_w - 2)]
    for text, r in zip(left[1:], rows, strict=True):
        bar = [" "] * bar_w
        e, s, d = r.get("eligible_s"), r.get("started_s"), r.get("ready_s")
        if e is not None:
            stop = s if s is not None else d if d is not None else end
            for i in range(int(e * scale), max(int(e * scale) + 1, int(stop * scale))):
                bar[min(i, bar_w - 1)] = wait
        if s is not None:
            stop = d if d is not None else end
            for i in range(int(s * scale), max(int(s * scale) + 1, int(stop * scale))):
                bar[min(i, bar_w - 1)] = run
        drawn = "".join(bar).rstrip()
        if fancy and r.get("critical"):
            drawn = f"\x1b[1;33m{drawn}\x1b[0m"
        lines.append(f"{text} | {drawn}")
    chain = doc.get("critical_chain") or []
    waiting = [r["name"] for r in rows if r.get("pending") and r.get("ready_s") is None]
    if chain and waiting:
        lines.append(f"critical chain: {' -> '.join(chain)} (start-up still waits for {chain[0]})")
    elif chain:
        lines.append(f"critical chain: {' -> '.join(chain)} (ready at {_seconds(doc.get('last_ready_s'))})")
    else:
        lines.append("critical chain: none yet (nothing is ready)")
    return "\n".join(line.rstrip() for line in lines)
