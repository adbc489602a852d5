"""The status document as typed values: its entries, what counts as a problem, and its table.

Standard library only: the daemon builds the document from these types, and ``supervisor
status`` reads the same shape back from JSON without loading anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NotRequired, TypedDict

from supervisor.machine.durations import format_duration


class TimelineEntry(TypedDict):
    """When a unit became eligible, started, and became ready, in seconds since the daemon started."""

    eligible_s: float | None
    started_s: float | None
    ready_s: float | None


class LastExit(TypedDict):
    """How the previous incarnation ended: ``code`` or ``signal``, and why it was restarted."""

    code: NotRequired[int | None]
    signal: NotRequired[str]
    reason: str


class Handover(TypedDict):
    """A start-first restart in progress: the candidate's pid and why it was started."""

    pid: int | None
    reason: str


class Revision(TypedDict):
    """The database's Alembic revision and the scripts' heads."""

    current: list[str]
    heads: list[str]


class DependencyEntry(TypedDict):
    """One dependency in the status document."""

    name: str
    kind: Literal["dependency"]
    type: str
    state: str
    latency_ms: float | None
    error: str | None
    attempt: int  # failed probes since the last success
    timeline: NotRequired[TimelineEntry]


class JobEntry(TypedDict):
    """One job in the status document."""

    name: str
    kind: Literal["job"]
    state: str
    attempts: int
    exit_code: int | None
    duration_s: float | None
    error: str | None
    revision: NotRequired[Revision]
    timeline: NotRequired[TimelineEntry]


class ProgramEntry(TypedDict):
    """One program in the status document."""

    name: str
    kind: Literal["program"]
    state: str
    pid: int | None
    uptime_s: float | None
    restarts: int
    health: str | None
    # NotRequired: a daemon before 0.3 does not send these. Failed checks in a row (0 without a
    # process), and the check's failure_threshold (null without a check).
    health_failures: NotRequired[int]
    health_failure_threshold: NotRequired[int | None]
    last_exit: LastExit | None
    rss_bytes: int | None
    cpu_percent: float | None
    error: str | None
    held: bool
    autostart: bool
    handover: Handover | None
    retiring: list[int]
    notify_status: str | None
    waiting_for: list[str]
    timeline: NotRequired[TimelineEntry]


UnitEntry = DependencyEntry | JobEntry | ProgramEntry


class SupervisorEntry(TypedDict):
    """The supervisor itself: ``ready`` is live, ``started`` says READY=1 went out.

    ``ready`` means everything is well (``status`` exit 0); ``ready_for_traffic`` is what
    ``/readyz`` answers: the units of ``traffic`` only (every unit when it is null).
    """

    pid: int
    version: str
    state: str
    uptime_s: float
    ready: bool
    ready_for_traffic: NotRequired[bool]  # NotRequired: a daemon before 0.3 does not send these
    traffic: NotRequired[list[str] | None]
    started: bool
    config: str
    time: float


class StatusDocument(TypedDict):
    """``GET /v1/status`` and ``supervisor status --json``."""

    supervisor: SupervisorEntry
    units: list[UnitEntry]


def unit_problems(units: Iterable[UnitEntry]) -> list[str]:
    """Return one short reason per unit that is not as ``status`` exit 0 requires."""
    out = []
    for unit in units:
        name, state, error = unit["name"], unit["state"], unit.get("error")
        why = f": {error}" if error else ""
        if unit["kind"] == "program":
            if state == "stopped" and unit.get("autostart") is False and unit.get("held"):
                continue  # autostart = false and never started: not a problem
            if state not in ("running", "standby"):  # a standby singleton runs in another daemon
                out.append(f"{name} is {state}{why}")
            elif unit.get("health") == "unhealthy":
                out.append(f"{name} is unhealthy")
        elif unit["kind"] == "job":
            if state not in ("succeeded", "skipped"):
                out.append(f"job {name} {state}{why}")
        elif unit["kind"] == "dependency" and state != "ready":
            out.append(f"{name} {state}{why}")
    return out


def _named(unit: str, names: Iterable[str]) -> bool:
    """Return whether ``unit`` is one of ``names``, or an instance (``web:1``) of one."""
    return any(unit == n or unit.startswith(n + ":") for n in names)


def traffic_reasons(state: str, units: Iterable[UnitEntry], names: Iterable[str] | None) -> list[str]:
    """Return why ``/readyz`` answers 503 for the units ``names`` (None: every unit); empty when ready.

    For every unit, start-up must be over too, as ``status`` exit 0 requires. For named units
    only theirs counts, so a replica's web takes traffic while a worker or Redis is down; a
    draining or stopping supervisor takes none.
    """
    if names is None:
        issues = unit_problems(units)
        return issues if state == "running" else [f"supervisor is {state}", *issues]
    wanted = list(names)
    issues = unit_problems(u for u in units if _named(u["name"], wanted))
    return [f"supervisor is {state}", *issues] if state in ("draining", "stopping") else issues


def problems(doc: StatusDocument) -> list[str]:
    """Return one short reason per unit of the document that is not as ``status`` exit 0 requires."""
    return unit_problems(doc.get("units", []))


def _exit(last: LastExit | None) -> str:
    if not last:
        return "-"
    what = f"code {last['code']}" if "code" in last else str(last.get("signal"))
    return f"{what} ({last.get('reason', 'exit')})"


def _reason(unit: UnitEntry) -> str:
    if unit.get("error"):
        return str(unit["error"])[:80]
    waiting = unit.get("waiting_for") if unit["kind"] == "program" else None
    if waiting:  # what holds it in pending: a dependency, or a start it comes after
        return "waiting for " + ", ".join(waiting)
    if unit["kind"] == "program" and unit["state"] == "standby":
        return "singleton: another daemon holds its lock"
    revision = unit.get("revision") if unit["kind"] == "job" else None
    if revision:
        return f"db {','.join(revision['current']) or 'empty'} / head {','.join(revision['heads'])}"
    return ""


def _health(u: ProgramEntry) -> str:
    """HEALTH: ``-`` without a check or a process; ``failing N/T`` once a check fails, before ``unhealthy``."""
    health = u.get("health")
    if not health or u.get("pid") is None:
        return "-"  # a program that does not run here has no health, whatever its check said last
    failures, threshold = u.get("health_failures") or 0, u.get("health_failure_threshold")
    if failures and health != "unhealthy":
        return f"failing {failures}/{threshold}" if threshold else f"failing {failures}"
    return health


HEADER = ("NAME", "KIND", "STATE", "PID", "UPTIME", "RESTARTS", "HEALTH", "CPU", "MEM", "LAST EXIT", "NOTE")


def format_cpu(percent: float | None) -> str:
    """A tree's CPU as the table shows it: ``12.5%``, ``-`` before two samples."""
    return "-" if percent is None else f"{percent:.1f}%"


def format_bytes(size: int | None) -> str:
    """A size in binary units, three figures at most: ``812K``, ``45.3M``, ``1.20G``."""
    if not size:
        return "-"
    value, unit = float(size), "B"
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)}B"
    return f"{value:.0f}{unit}" if value >= 100 else f"{value:.1f}{unit}" if value >= 10 else f"{value:.2f}{unit}"


def _row(u: UnitEntry) -> tuple[str, ...]:
    if u["kind"] == "program":
        return (
            u["name"],
            "program",
            u["state"],
            str(u.get("pid") or "-"),
            format_duration(u.get("uptime_s")),
            str(u.get("restarts", 0)),
            _health(u),
            format_cpu(u.get("cpu_percent")),
            format_bytes(u.get("rss_bytes")),
            _exit(u.get("last_exit")),
            _reason(u),
        )
    if u["kind"] == "job":
        code = u.get("exit_code")
        last = "-" if code is None else f"code {code}"
        attempts = f"{u.get('attempts', 0)} att."
        return (u["name"], "job", u["state"], "-", "-", attempts, "-", "-", "-", last, _reason(u))
    latency = u.get("latency_ms")
    note = _reason(u) or ("" if latency is None else f"{latency:.1f} ms")
    return (u["name"], "dependency", u["state"], "-", "-", "-", "-", "-", "-", "-", note)


def table_rows(doc: StatusDocument) -> list[tuple[str, ...]]:
    """Return the header and one row of cells per unit, as ``status`` shows them."""
    return [HEADER, *(_row(u) for u in doc.get("units", []))]


def supervisor_line(doc: StatusDocument) -> str:
    """Return the line about the supervisor itself: version, pid, state, uptime, readiness."""
    sup = doc.get("supervisor") or {}
    return (
        f"supervisor {sup.get('version', '?')} pid {sup.get('pid', '?')} {sup.get('state', '?')}, "
        f"up {format_duration(sup.get('uptime_s'))}, ready={'yes' if sup.get('ready') else 'no'}"
    )


def render_table(doc: StatusDocument) -> str:
    """Render the status document as an aligned table, one line per unit."""
    rows = table_rows(doc)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    lines.append(supervisor_line(doc))
    return "\n".join(line.rstrip() for line in lines)
