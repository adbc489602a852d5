"""The front door: what the control server may ask of the daemon, and the plain values it gets back.

Standard library only. The daemon implements ``ControlTarget``; the server and ``/metrics``
see nothing else of it, so a test can serve a fake in its place.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Literal, NotRequired, Protocol, TypedDict

from supervisor.machine.status import ProgramEntry, StatusDocument
from supervisor.machine.timeline import Document as TimelineDocument

Verb = Literal["start", "stop", "restart"]


class Refused(Exception):
    """A request the daemon will not carry out; ``http_status`` says how the server answers."""

    http_status = 400

    def __init__(self, message: str, programs: list[ProgramEntry] | None = None) -> None:
        super().__init__(message)
        self.programs = programs  # the programs' entries as they ended up, when there are any


class NotFound(Refused):
    """No unit of that name (or kind)."""

    http_status = 404


class Conflict(Refused):
    """The unit's state (or the supervisor's) forbids the request, or it failed visibly."""

    http_status = 409


class LogRow(TypedDict):
    """One captured line, named by its unit."""

    unit: str
    time: float
    stream: str
    line: str


class LogTail(TypedDict):
    """The last lines of some units, merged in time order."""

    units: list[str]
    lines: list[LogRow]


class SignalSent(TypedDict):
    """What ``signal`` did."""

    program: str
    pid: int
    signal: int
    group: bool


class ReloadResult(TypedDict):
    """What a reload changed, or why it was refused (``ok`` false)."""

    ok: bool
    changed: NotRequired[list[str]]
    added: NotRequired[list[str]]
    removed: NotRequired[list[str]]
    unchanged: NotRequired[list[str]]
    failed: NotRequired[dict[str, str]]
    error: NotRequired[str]
    note: NotRequired[str]
    config_from: NotRequired[str]  # "cache" (a validation with the same inputs was kept) or "validation"
    states: NotRequired[dict[str, str]]  # each changed or added program's state once it settled (or the wait ended)


class ScaleDone(TypedDict):
    """What ``scale`` did: the count before and after, what started and stopped, and every instance now."""

    program: str
    instances: int
    was: int
    added: list[str]
    removed: list[str]
    programs: list[ProgramEntry]


class ProgramCounters(TypedDict):
    """What ``/metrics`` counts per program beyond its status entry."""

    restarts_by_reason: dict[str, int]
    health_failures: int
    output_suppressed: int  # lines its log_limit dropped, ever
    last_exit_code: int | None  # negative: the number of the signal that ended it


class ProbeSeries(TypedDict):
    """Latencies of one probe with one result, as a histogram."""

    kind: str
    name: str
    result: str
    buckets: list[tuple[float, int]]  # upper bound and cumulative count; the last bound is +inf
    sum_s: float
    created: float


class Figures(TypedDict):
    """Everything ``/metrics`` shows, read at scrape time."""

    status: StatusDocument
    programs: dict[str, ProgramCounters]
    probes: list[ProbeSeries]
    log_lines_dropped: int


class ControlTarget(Protocol):
    """The operator verbs of a supervisor, as the control server calls them."""

    @property
    def state(self) -> str:
        """The supervisor's phase: ``starting``, ``running`` or ``stopping``."""

    def status(self, rss_pass: bool = True) -> StatusDocument:
        """Return the status document (``rss_pass=False`` leaves RSS out)."""

    async def act(self, name: str, verb: Verb) -> list[ProgramEntry]:
        """Start, stop or restart a program (or ``all``) and wait, bounded, until it settles."""

    async def send_signal(self, name: str, sig: int, group: bool) -> SignalSent:
        """Send ``sig`` to a program's main process, or with ``group`` to its process group."""

    async def scale(self, name: str, count: object) -> ScaleDone:
        """Run ``count`` instances of a program with ``instances``; ``Refused`` for a bad count."""

    def tail_logs(self, names: Sequence[str], lines: int) -> LogTail:
        """Return the last ``lines`` lines of the named programs and jobs (all without names)."""

    def follow_logs(self, names: Sequence[str]) -> AsyncGenerator[LogRow, None]:
        """Yield each new line of the named programs and jobs (all without names) as it comes."""

    async def reload(self) -> ReloadResult:
        """Apply the configuration file as it is now."""

    def timeline(self) -> TimelineDocument:
        """Return the start-up as it happened, with its critical chain."""

    def figures(self) -> Figures:
        """Return what ``/metrics`` shows."""


PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


class ProbeLatencies:
    """Probe latencies by kind, name and result, counted into fixed buckets as they come."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._series: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}

    def observe(self, kind: str, name: str, seconds: float, ok: bool) -> None:
        """Count one probe's latency."""
        key = (kind, name, "ok" if ok else "fail")
        if key not in self._series:
            self._series[key] = ([0] * len(PROBE_BUCKETS), [0.0, self._now()])
        counts, totals = self._series[key]
        counts[bisect.bisect_left(PROBE_BUCKETS, seconds)] += 1
        totals[0] += seconds

    def series(self) -> list[ProbeSeries]:
        """Return every series seen so far, with cumulative bucket counts."""
        out: list[ProbeSeries] = []
        for (kind, name, result), (counts, (sum_s, created)) in self._series.items():
            cumulative, running = [], 0
            for bound, count in zip(PROBE_BUCKETS, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            out.append(
                ProbeSeries(kind=kind, name=name, result=result, buckets=cumulative, sum_s=sum_s, created=created)
            )
        return out
