"""A dependency's life as a pure function: ``transition(model, event, now, policy, rng)``.

The runner probes when told to, waits when told to, and feeds each result back; every
decision (ready, unavailable, timed out, how long to wait) is made here, with no clock read.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field, replace

from supervisor.machine.backoff import Backoff
from supervisor.machine.errors import EXIT_UNAVAILABLE
from supervisor.machine.events import Log
from supervisor.machine.record import Record


class DepState(enum.StrEnum):
    """A dependency's states, as the status document spells them."""

    WAITING = "waiting"  # start-up waits for it
    READY = "ready"
    UNAVAILABLE = "unavailable"  # it was ready, and is not now
    TIMED_OUT = "timed_out"  # start-up stopped waiting


# Where units that name the dependency may start (with on_timeout = "continue" for timed_out).
OK_STATES = frozenset({DepState.READY})


@dataclass(frozen=True, repr=False, eq=False)
class DepPolicy(Record):
    """What the machine needs of a dependency's configuration."""

    interval_s: float = 1.0
    ready_interval_s: float | None = None  # once ready; None: interval_s
    timeout_s: float = 60.0
    on_timeout: str = "continue"  # continue | exit
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=1.0, factor=1.5, max_s=5.0, jitter=0.1))


@dataclass(frozen=True, repr=False, eq=False)
class DepModel(Record):
    """A dependency's probing state; replaced, never mutated."""

    state: DepState = DepState.WAITING
    started_at: float = 0.0  # when start-up began waiting
    down_since: float = 0.0  # when the current wait (start-up, or an outage) began
    attempt: int = 0  # failed probes since the last success
    error: str | None = None
    latency_ms: float | None = None
    checks: int = 0


@dataclass(frozen=True, repr=False, eq=False)
class Probed(Record):
    """A probe answered (or failed, or was cut off at ``deadline_at``)."""

    ok: bool
    detail: str
    elapsed_s: float


@dataclass(frozen=True, repr=False, eq=False)
class Probe(Record):
    """Probe now; a probe still running at ``deadline_at`` is a failed one."""

    deadline_at: float | None


@dataclass(frozen=True, repr=False, eq=False)
class Wait(Record):
    """Wait ``delay_s`` before the next ``Probe``.

    ``periodic``: a steady interval, which may align on a grid. ``watch``: the dependency is
    ready; should its kept connection stir (the server closed it, or sent an error), probe
    sooner, but never within ``interval_s`` of the last probe.
    """

    delay_s: float
    periodic: bool = False
    watch: bool = False


@dataclass(frozen=True, repr=False, eq=False)
class Changed(Record):
    """The state changed: units that name the dependency may start, or must wait."""


@dataclass(frozen=True, repr=False, eq=False)
class GiveUp(Record):
    """Start-up gave up on it and ``on_timeout = "exit"``: the daemon exits with ``code``."""

    code: int
    why: str


Action = Probe | Wait | Changed | GiveUp | Log


def start(now: float, p: DepPolicy, kind: str) -> tuple[DepModel, list[Action]]:
    """Begin the start-up wait: the first probe at once, cut off when the wait runs out."""
    m = DepModel(started_at=now, down_since=now)
    return m, [Log("dependency.waiting", (("type", kind), ("timeout_s", p.timeout_s))), Probe(now + p.timeout_s)]


def is_ok(m: DepModel, p: DepPolicy) -> bool:
    """Whether units that name this dependency may start."""
    return m.state in OK_STATES or (m.state is DepState.TIMED_OUT and p.on_timeout == "continue")


def transition(m: DepModel, ev: Probed, now: float, p: DepPolicy, rng: random.Random) -> tuple[DepModel, list[Action]]:
    """Return the next model and what to do after a probe's result."""
    m = replace(m, checks=m.checks + 1, latency_ms=round(ev.elapsed_s * 1000, 2))
    if ev.ok:
        actions: list[Action] = []
        if m.state is not DepState.READY:
            # waiting|unavailable|timed_out -> ready
            waited = round(now - m.down_since, 3)
            actions = [Log("dependency.ready", (("latency_ms", m.latency_ms), ("waited_s", waited))), Changed()]
        m = replace(m, state=DepState.READY, attempt=0, error=None)
        every = p.interval_s if p.ready_interval_s is None else p.ready_interval_s
        return m, [*actions, Wait(every, periodic=True, watch=True), Probe(None)]
    m = replace(m, error=ev.detail, attempt=m.attempt + 1)
    if m.state is DepState.READY:
        # ready -> unavailable: an outage begins (when the failed probe was sent)
        m = replace(m, state=DepState.UNAVAILABLE, down_since=now - ev.elapsed_s)
        hint = "programs that name it are not restarted until it is back"
        log = Log("dependency.unavailable", (("error", ev.detail), ("next", hint)))
        return m, [log, Changed(), Wait(p.interval_s, periodic=True), Probe(None)]
    if m.state is DepState.WAITING and now - m.started_at >= p.timeout_s:
        # waiting -> timed_out: start-up stops waiting
        give_up = p.on_timeout == "exit"
        then = "giving up" if give_up else "starting the rest degraded"
        fields: tuple[tuple[str, object], ...] = (("error", ev.detail), ("waited_s", p.timeout_s), ("next", then))
        m = replace(m, state=DepState.TIMED_OUT)
        if give_up:
            why = f"not ready after {p.timeout_s:g}s: {ev.detail}"
            return m, [Log("dependency.timed_out", fields), Changed(), GiveUp(EXIT_UNAVAILABLE, why)]
        return m, [Log("dependency.timed_out", fields), Changed(), Wait(p.interval_s, periodic=True), Probe(None)]
    actions = []
    if (m.state is DepState.WAITING and m.attempt in (1, 5)) or m.attempt % 30 == 0:
        actions.append(Log("dependency.not_ready", (("error", ev.detail), ("attempt", m.attempt))))
    if m.state is DepState.WAITING:
        # waiting -> waiting: back off, but never past the end of the start-up wait
        delay = p.backoff.delay(m.attempt, rng)
        left = m.started_at + p.timeout_s - now
        return m, [*actions, Wait(max(0.05, min(delay, left))), Probe(m.started_at + p.timeout_s)]
    # unavailable|timed_out -> same: keep probing at the interval
    return m, [*actions, Wait(p.interval_s, periodic=True), Probe(None)]
