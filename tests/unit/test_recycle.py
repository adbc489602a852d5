"""Recycling (``max_age``) as scripted histories on the pure machine with a fake clock."""

from __future__ import annotations

import random
from dataclasses import replace

from supervisor.machine.events import (
    DepsChanged,
    Exited,
    ExitStatus,
    HealthResult,
    Log,
    Reason,
    Restart,
    SetTimer,
    Spawn,
    Start,
    Timer,
)
from supervisor.machine.model import Model, State
from supervisor.machine.recycle import arm
from tests.unit.test_states import POLICY, Machine

HOUR = 3600.0
RECYCLED = replace(POLICY, max_age_s=HOUR, max_age_jitter=0.0, min_uptime_s=0.0)
STOPPED_BY_SIGTERM = Exited(ExitStatus(signal=15))


def events(actions: list[object], name: str) -> list[Log]:
    return [a for a in actions if isinstance(a, Log) and a.event == name]


def test_a_running_program_is_restarted_at_max_age_outside_the_budget() -> None:
    """At max_age the program goes down with reason max_age and starts again at once; the budget is untouched."""
    m = Machine(RECYCLED)
    first = m.send(Start(), DepsChanged(True))
    assert m.model.state is State.RUNNING and m.model.pid == 101
    timer = [a for a in first if isinstance(a, SetTimer) and a.name == "max_age"]
    assert len(timer) == 1 and timer[0].delay_s == HOUR
    for cycle in range(1, 6):  # more recycles than max_restarts (3): never fatal
        pid = m.model.pid
        down = m.fire("max_age")
        assert m.model.state is State.STOPPING and m.model.stop_reason is Reason.MAX_AGE
        assert events(down, "program.max_age")[0].fields[0] == ("pid", pid)
        again = m.send(STOPPED_BY_SIGTERM)
        assert m.model.state is State.RUNNING and m.model.pid != pid, cycle
        assert m.model.last_exit is not None and m.model.last_exit.reason is Reason.MAX_AGE
        assert m.model.restart_times == () and m.model.attempt == 0
        assert any(isinstance(a, SetTimer) and a.name == "max_age" for a in again)
    assert m.model.restarts == 5


def test_the_age_counts_from_the_spawn_not_from_readiness() -> None:
    """Ready after 10 s by min_uptime: the timer is set for the rest of max_age, not a whole one."""
    m = Machine(replace(RECYCLED, min_uptime_s=10.0))
    m.send(DepsChanged(True))
    assert m.model.state is State.STARTING
    ready = m.fire("min_uptime")
    assert m.model.state is State.RUNNING
    assert [a.delay_s for a in ready if isinstance(a, SetTimer) and a.name == "max_age"] == [HOUR - 10.0]


def test_the_jitter_adds_up_to_its_fraction_and_differs_between_programs() -> None:
    """With jitter 0.1, each age lies in [max_age, 1.1 max_age], and replicas do not all get the same one."""
    p = replace(RECYCLED, max_age_jitter=0.1)
    running = Model(state=State.RUNNING, pid=5, started_at=0.0, generation=1)
    rng = random.Random(1)
    delays = [t.delay_s for _ in range(50) for t in arm(Model(), running, 0.0, p, rng) if isinstance(t, SetTimer)]
    assert len(delays) == 50 and all(HOUR <= d <= 1.1 * HOUR for d in delays)
    assert len(set(delays)) > 40


def test_no_timer_without_max_age_or_for_the_same_incarnation() -> None:
    """max_age unset: no timer at all; a running incarnation that stays running is not re-armed."""
    running = Model(state=State.RUNNING, pid=5, started_at=0.0, generation=1)
    assert arm(Model(), running, 0.0, POLICY, random.Random(1)) == []
    assert arm(running, replace(running, health_failures=1), 9.0, RECYCLED, random.Random(1)) == []


def test_start_first_recycles_by_a_handover() -> None:
    """With start-first, the new incarnation starts beside the old one, which retires once it is ready."""
    m = Machine(replace(RECYCLED, start_first=True, has_health=True))
    m.send(DepsChanged(True), HealthResult(True))
    assert m.model.state is State.RUNNING
    old = m.model.pid
    started = m.fire("max_age")
    assert any(isinstance(a, Spawn) and a.candidate for a in started)
    assert m.model.state is State.RUNNING and m.model.pid == old and m.model.next_pid is not None
    new = m.model.next_pid
    promoted = m.send(HealthResult(True, pid=new))
    assert m.model.pid == new and m.model.retiring == (old,)
    assert any(isinstance(a, SetTimer) and a.name == "max_age" and a.generation == m.model.generation for a in promoted)
    m.send(Exited(ExitStatus(code=0), pid=old))
    assert m.model.last_exit is not None and m.model.last_exit.reason is Reason.MAX_AGE
    assert m.model.restart_times == ()


def test_a_stale_max_age_timer_is_ignored() -> None:
    """The timer of an incarnation already replaced (an operator restart) does nothing."""
    m = Machine(RECYCLED)
    m.send(DepsChanged(True))
    stale = [a for a in m.actions if isinstance(a, SetTimer) and a.name == "max_age"][-1]
    m.send(Restart(), STOPPED_BY_SIGTERM)
    pid = m.model.pid
    assert m.send(Timer("max_age", stale.generation)) == []
    assert m.model.state is State.RUNNING and m.model.pid == pid


def test_every_restart_reason_is_documented_with_the_metric() -> None:
    """/metrics exports a label per reason; the control API page names each, max_age and watch included."""
    from pathlib import Path

    from supervisor.machine.events import RESTART_REASONS

    page = (Path(__file__).resolve().parents[2] / "docs" / "control-api.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `supervisor_program_restarts_total`"))
    assert [r.value for r in RESTART_REASONS if f"`{r.value}`" not in row] == []
