"""A singleton in the program machine: standby, the lock, fencing within the fence, letting go."""

from __future__ import annotations

import signal
from dataclasses import replace

from supervisor.machine.events import (
    CancelTimers,
    DepsChanged,
    Exited,
    ExitStatus,
    KillTree,
    LockAcquired,
    LockLost,
    Log,
    Reason,
    ReleaseLock,
    Restart,
    SeekLock,
    SendStop,
    SetTimer,
    Shutdown,
    Spawn,
    Start,
    Stop,
    Timer,
)
from supervisor.machine.model import Lock
from supervisor.machine.states import State
from tests.unit.test_states import POLICY, Machine

SINGLE = replace(POLICY, singleton=True, fence_s=10.0, stop_timeout_s=30.0)


def standby() -> Machine:
    """A singleton whose dependencies are up: it stands by and asks for its lock."""
    m = Machine(SINGLE)
    actions = m.send(DepsChanged(True), Start())
    assert m.model.state is State.STANDBY and m.model.lock is Lock.SEEKING
    assert [a for a in actions if isinstance(a, SeekLock)] == [SeekLock()]
    assert not [a for a in actions if isinstance(a, Spawn)]
    return m


def holding() -> Machine:
    """A singleton that took its lock and runs."""
    m = standby()
    actions = m.send(LockAcquired())
    assert [a for a in actions if isinstance(a, Spawn)] == [Spawn()]
    m.clock.advance(1.0)
    m.send(Timer("min_uptime", m.model.generation))
    assert m.model.state is State.RUNNING and m.model.lock is Lock.HELD
    return m


def test_a_singleton_stands_by_until_its_lock_is_acquired() -> None:
    """No spawn without the lock; the lock starts it at once."""
    m = standby()
    assert m.send(Start()) == [] and m.send(Restart()) == []  # trying already
    assert m.model.state is State.STANDBY
    holding()


def test_a_program_that_is_no_singleton_never_stands_by() -> None:
    """Without ``singleton`` a start spawns as before."""
    m = Machine()
    actions = m.send(DepsChanged(True), Start())
    assert any(isinstance(a, Spawn) for a in actions) and m.model.lock is Lock.NONE


def test_a_young_database_delays_the_start_by_the_wait() -> None:
    """A lock taken from a Postgres younger than the fence starts the program only after the wait."""
    m = standby()
    actions = m.send(LockAcquired(wait_s=4.0))
    assert not any(isinstance(a, Spawn) for a in actions)
    assert SetTimer("lock_wait", 4.0, m.model.generation) in actions
    assert m.model.state is State.STANDBY and m.model.lock is Lock.HELD
    assert any(isinstance(a, Spawn) for a in m.fire("lock_wait"))
    assert m.model.state is State.RUNNING  # min_uptime 0: running once spawned


def test_losing_the_lock_fences_with_sigkill_when_the_fence_runs_out() -> None:
    """Stop signal at once, SIGKILL at contact + fence (not after the 30 s ladder), then standby."""
    m = holding()
    contact = m.clock.now() - 3.0  # the last query that went through
    actions = m.send(LockLost(contact_at=contact, detail="no answer"))
    assert m.model.state is State.STOPPING and m.model.stop_reason is Reason.FENCE
    assert SendStop(signal.SIGTERM, False) in actions
    assert [t.delay_s for t in m.timers(actions)] == [7.0]  # 10 s fence, 3 s of it gone
    killed = m.fire("stop_timeout")
    assert KillTree() in killed
    assert [a.fields for a in killed if isinstance(a, Log) and a.event == "program.kill"] == [
        (("pid", 101), ("hint", "fenced: its lock may be another daemon's by now"))
    ]
    actions = m.send(Exited(ExitStatus(signal=signal.SIGKILL)))
    # the copy is gone: stand by and try again, on a fresh connection
    assert m.model.state is State.STANDBY and m.model.lock is Lock.SEEKING
    assert SeekLock() in actions and ReleaseLock() not in actions
    assert m.model.last_exit is not None and m.model.last_exit.reason is Reason.FENCE


def test_a_fence_whose_deadline_has_passed_kills_at_once() -> None:
    """A loss reported after the fence ran out sends SIGKILL with no wait."""
    m = holding()
    actions = m.send(LockLost(contact_at=m.clock.now() - 12.0))
    assert [t.delay_s for t in m.timers(actions)] == [0.0]


def test_a_short_ladder_is_not_lengthened_by_the_fence() -> None:
    """A ladder shorter than what is left of the fence keeps its own length."""
    m = Machine(replace(SINGLE, stop_timeout_s=2.0))
    m.send(DepsChanged(True), Start(), LockAcquired())
    actions = m.send(LockLost(contact_at=m.clock.now()))
    assert [t.delay_s for t in m.timers(actions)] == [2.0]


def test_losing_the_lock_while_stopping_brings_sigkill_forward() -> None:
    """An operator's stop under way gets the fence's deadline; once down the lock is released."""
    m = holding()
    m.send(Stop())
    actions = m.send(LockLost(contact_at=m.clock.now() - 1.0))
    assert [t.delay_s for t in m.timers(actions)] == [9.0]
    assert KillTree() in m.fire("stop_timeout")
    actions = m.send(Exited(ExitStatus(signal=signal.SIGKILL)))
    assert m.model.state is State.STOPPED and m.model.lock is Lock.NONE
    assert actions[-1] == ReleaseLock()


def test_losing_the_lock_in_backoff_goes_back_to_standby() -> None:
    """No copy runs in backoff: the loss means standby at once, its backoff timer cancelled."""
    m = holding()
    m.send(Exited(ExitStatus(code=1)))  # the first restart is at once
    m.clock.advance(0.5)
    m.send(Exited(ExitStatus(code=1)))
    assert m.model.state is State.BACKOFF
    actions = m.send(LockLost(contact_at=m.clock.now()))
    assert m.model.state is State.STANDBY and CancelTimers() in actions and SeekLock() in actions


def test_a_crash_keeps_the_lock() -> None:
    """A holder restarts its crashed copy itself: the lock stays, no standby in between."""
    m = holding()
    actions = m.send(Exited(ExitStatus(code=1)))
    assert m.model.state is State.RUNNING and m.model.lock is Lock.HELD
    assert ReleaseLock() not in actions and SeekLock() not in actions


def test_stop_and_fatal_release_the_lock_only_once_the_copy_is_gone() -> None:
    """The lock goes when the program is down: another daemon may take over a fatal singleton."""
    m = holding()
    assert ReleaseLock() not in m.send(Stop())
    assert m.send(Exited(ExitStatus(signal=signal.SIGTERM)))[-1] == ReleaseLock()
    m = holding()
    m.send(Exited(ExitStatus(code=78)))  # no restart fixes it: fatal
    assert m.model.state is State.FATAL and ReleaseLock() in m.actions[-1:]


def test_a_standby_stops_and_lets_go_of_its_attempts() -> None:
    """Stop and shutdown of a standby: stopped, and the attempts end."""
    for event in (Stop(), Shutdown()):
        m = standby()
        actions = m.send(event)
        assert m.model.state is State.STOPPED and ReleaseLock() in actions and m.model.lock is Lock.NONE


def test_a_lost_dependency_sends_a_standby_back_to_pending() -> None:
    """Its Postgres gone, a standby waits in pending without attempts, and stands by when it is back."""
    m = standby()
    actions = m.send(DepsChanged(False))
    assert m.model.state is State.PENDING and ReleaseLock() in actions
    assert SeekLock() in m.send(DepsChanged(True)) and m.model.state is State.STANDBY


def test_reports_about_a_lock_let_go_are_ignored_or_released() -> None:
    """A late loss is ignored; a lock granted to nobody is released at once."""
    m = Machine(SINGLE)
    assert m.send(LockLost(contact_at=0.0)) == []
    assert m.send(LockAcquired()) == [ReleaseLock()]
    m = holding()
    assert m.send(LockAcquired()) == [ReleaseLock()]
    assert m.model.state is State.RUNNING  # and it runs on


def test_a_stale_lock_wait_timer_is_ignored() -> None:
    """A lock_wait timer from before a loss does not start anything."""
    m = standby()
    m.send(LockAcquired(wait_s=5.0))
    old = m.model.generation
    m.send(LockLost(contact_at=m.clock.now()))
    assert m.model.state is State.STANDBY
    assert m.send(Timer("lock_wait", old)) == []


def test_a_closed_lock_connection_kills_at_once() -> None:
    """A connection the server closed means the lock is free already: SIGKILL with no wait."""
    m = holding()
    actions = m.send(LockLost(contact_at=m.clock.now(), detail="server closed the connection", gone=True))
    assert [t.delay_s for t in m.timers(actions)] == [0.0]
    assert KillTree() in m.fire("stop_timeout")
