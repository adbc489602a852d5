"""The program state machine, driven by scripted event histories and a fake clock."""

from __future__ import annotations

import random
import signal

import pytest

from supervisor.machine.backoff import Backoff
from supervisor.machine.clock import FakeClock
from supervisor.machine.events import (
    BecameFatal,
    CancelTimers,
    DepsChanged,
    Exited,
    ExitStatus,
    HealthResult,
    KillTree,
    Log,
    MemoryExceeded,
    Reason,
    Restart,
    SendStop,
    SetTimer,
    Shutdown,
    Spawn,
    Spawned,
    SpawnFailed,
    Start,
    Stop,
    Timer,
)
from supervisor.machine.states import After, Model, RestartPolicy, State, UnexpectedEvent, transition

NO_JITTER = Backoff(initial_s=1.0, factor=2.0, max_s=8.0, jitter=0.0)
POLICY = RestartPolicy(backoff=NO_JITTER, reset_after_s=60, max_restarts=3, window_s=100, stop_timeout_s=5)
CRASH = Exited(ExitStatus(code=1))
CLEAN = Exited(ExitStatus(code=0))


class Machine:
    """Runs events through ``transition`` with a fake clock, keeping every action."""

    def __init__(self, policy: RestartPolicy = POLICY, model: Model | None = None) -> None:
        self.clock = FakeClock()
        self.policy = policy
        self.model = model or Model()
        self.rng = random.Random(7)
        self.actions: list[object] = []
        self.next_pid = 100

    def send(self, *events: object) -> list[object]:
        """Feed events; ``Spawn`` actions are answered with ``Spawned`` like the runner does."""
        out: list[object] = []
        for ev in events:
            self.model, actions = transition(self.model, ev, self.clock.now(), self.policy, self.rng)  # type: ignore[arg-type]
            out.extend(actions)
            for action in actions:
                if isinstance(action, Spawn):
                    self.next_pid += 1
                    out.extend(self.send(Spawned(self.next_pid, candidate=action.candidate)))
        self.actions.extend(out)
        return out

    def crash(self, event: object = CRASH) -> list[object]:
        """Crash the program and let any backoff run out."""
        actions = self.send(event)
        if self.model.state is State.BACKOFF:
            actions += self.fire("backoff")
        return actions

    def timers(self, actions: list[object]) -> list[SetTimer]:
        return [a for a in actions if isinstance(a, SetTimer)]

    def fire(self, name: str) -> list[object]:
        """Fire the latest timer of that name, after advancing the clock by its delay."""
        timer = [a for a in self.actions if isinstance(a, SetTimer) and a.name == name][-1]
        self.clock.advance(timer.delay_s)
        return self.send(Timer(name, timer.generation))


def running() -> Machine:
    m = Machine()
    m.send(DepsChanged(True), Start())
    assert m.model.state is State.RUNNING
    return m


def test_pending_waits_for_dependencies_then_starts() -> None:
    """A started program stays pending until its dependencies are ready, then spawns."""
    m = Machine()
    assert m.send(Start()) == []
    assert m.model.state is State.PENDING
    actions = m.send(DepsChanged(True))
    assert any(isinstance(a, Spawn) for a in actions)
    assert m.model.state is State.RUNNING and m.model.pid == 101


def test_crash_restarts_at_once_then_backs_off_exponentially_and_caps() -> None:
    """Restart 1 is at once; restart n waits min(max, initial * factor^(n-2)); the sequence caps at max."""
    policy = RestartPolicy(backoff=NO_JITTER, max_restarts=100, window_s=1000)
    m = Machine(policy)
    m.send(DepsChanged(True), Start())
    assert m.timers(m.send(CRASH)) == [] and m.model.state is State.RUNNING
    delays = []
    for _ in range(6):
        delays.append(m.timers(m.send(CRASH))[0].delay_s)
        assert m.model.state is State.BACKOFF
        m.fire("backoff")
        assert m.model.state is State.RUNNING
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert m.model.restarts == 7


def test_stable_run_resets_the_backoff() -> None:
    """A program that stayed up for reset_after starts over at the first delay."""
    m = running()
    m.crash()
    m.crash()
    assert m.model.attempt == 2
    m.clock.advance(101)  # past reset_after, and past the budget window
    assert m.timers(m.send(CRASH)) == [] and m.model.state is State.RUNNING  # at once again
    assert m.model.attempt == 1
    assert m.timers(m.send(CRASH))[0].delay_s == 1.0


def test_budget_exhausted_goes_fatal() -> None:
    """More than max_restarts restarts inside window make the program fatal."""
    m = running()
    for _ in range(3):
        m.crash()
    actions = m.send(CRASH)
    assert m.model.state is State.FATAL
    assert any(isinstance(a, BecameFatal) for a in actions)
    assert "more than 3 restarts" in (m.model.error or "")


def test_restarts_outside_the_window_do_not_count() -> None:
    """Only restarts inside the window spend the budget."""
    m = running()
    for _ in range(3):
        m.crash()
    m.clock.advance(101)
    m.send(CRASH)
    assert m.model.state is State.RUNNING


def test_policy_never_and_on_failure() -> None:
    """never leaves any exit down; on-failure restarts only a failure."""
    never = Machine(RestartPolicy(policy="never"))
    never.send(DepsChanged(True), Start(), CRASH)
    assert never.model.state is State.EXITED
    on_failure = Machine(RestartPolicy(policy="on-failure", backoff=NO_JITTER))
    on_failure.send(DepsChanged(True), Start(), CLEAN)
    assert on_failure.model.state is State.EXITED
    on_failure.send(Start(), Exited(ExitStatus(signal=signal.SIGKILL)))
    assert on_failure.model.state is State.RUNNING and on_failure.model.restarts == 1


def test_crash_while_dependency_down_waits_in_pending_without_spending_budget() -> None:
    """A crash while a dependency is unavailable waits in pending and spends no budget."""
    m = running()
    m.send(DepsChanged(False))
    assert m.model.state is State.RUNNING  # still up: we do not kill it for a dependency
    m.send(CRASH)
    assert m.model.state is State.PENDING
    assert m.model.restarts == 0 and m.model.restart_times == ()
    m.send(DepsChanged(True))
    assert m.model.state is State.RUNNING


def test_backoff_timer_with_dependency_gone_goes_pending() -> None:
    """When the backoff ends but a dependency went away meanwhile, the program waits."""
    m = running()
    m.send(CRASH, CRASH, DepsChanged(False))
    m.fire("backoff")
    assert m.model.state is State.PENDING


def test_health_failures_below_threshold_then_restart() -> None:
    """failure_threshold consecutive failures restart through the backoff with reason health."""
    policy = RestartPolicy(backoff=NO_JITTER, has_health=True, health_failure_threshold=3, stop_timeout_s=5)
    m = Machine(policy)
    m.send(DepsChanged(True), Start())
    assert m.model.health == "unknown" and m.model.state is State.STARTING
    m.send(HealthResult(True))
    assert m.model.health == "healthy" and m.model.state is State.RUNNING
    m.send(HealthResult(False), HealthResult(False))
    assert m.model.state is State.RUNNING and m.model.health_failures == 2
    m.send(HealthResult(True))
    assert m.model.health_failures == 0  # consecutive failures only
    m.send(HealthResult(False), HealthResult(False))
    actions = m.send(HealthResult(False, "HTTP 500"))
    assert m.model.state is State.STOPPING and m.model.health == "unhealthy"
    assert SendStop(signal.SIGTERM, False) in actions
    assert m.timers(actions)[0].delay_s == 5
    m.send(Exited(ExitStatus(signal=signal.SIGTERM)))
    assert m.model.state is State.STARTING  # the first restart is at once; ready at its first pass
    assert m.model.last_exit is not None and m.model.last_exit.reason is Reason.HEALTH


def test_health_failures_inside_start_period_do_not_count() -> None:
    """Failures during start_period are ignored; after it they count."""
    policy = RestartPolicy(has_health=True, health_failure_threshold=1, health_start_period_s=30)
    m = Machine(policy)
    m.send(DepsChanged(True), Start(), HealthResult(False))
    assert m.model.state is State.STARTING
    m.clock.advance(31)
    m.send(HealthResult(False))
    assert m.model.state is State.STOPPING


def test_stop_ladder_kills_after_stop_timeout() -> None:
    """A program that ignores its stop signal is killed when stop_timeout fires."""
    m = running()
    actions = m.send(Stop())
    assert [type(a) for a in actions if not isinstance(a, Log)] == [SendStop, SetTimer]
    actions = m.fire("stop_timeout")
    assert any(isinstance(a, KillTree) for a in actions) and m.model.killed
    m.send(Exited(ExitStatus(signal=signal.SIGKILL)))
    assert m.model.state is State.STOPPED and m.model.held


def test_operator_stop_holds_until_start() -> None:
    """stop keeps a program stopped, even when its dependencies come back, until start."""
    m = running()
    m.send(Stop(), Exited(ExitStatus(signal=signal.SIGTERM)))
    m.send(DepsChanged(False), DepsChanged(True))
    assert m.model.state is State.STOPPED
    m.send(Start())
    assert m.model.state is State.RUNNING and not m.model.held


def test_operator_restart_is_immediate_and_outside_the_budget() -> None:
    """restart spawns at once after the exit and does not spend the restart budget."""
    m = running()
    m.send(Restart())
    actions = m.send(Exited(ExitStatus(signal=signal.SIGTERM)))
    assert any(isinstance(a, Spawn) for a in actions)
    assert m.model.state is State.RUNNING and m.model.restart_times == ()


def test_memory_exceeded_restarts_gracefully_through_backoff() -> None:
    """Going over max_memory stops the program gracefully and restarts it with reason memory."""
    m = running()
    m.send(MemoryExceeded(10**9))
    assert m.model.state is State.STOPPING
    m.send(Exited(ExitStatus(code=0)))
    assert m.model.state is State.RUNNING and m.model.restarts == 1
    assert m.model.last_exit is not None and m.model.last_exit.reason is Reason.MEMORY


def test_shutdown_from_every_state_ends_stopped() -> None:
    """Shutdown stops a program whatever state it is in, and nothing restarts it."""
    for setup in ([], [CRASH], [Stop()]):
        m = running()
        m.send(*setup)
        m.send(Shutdown())
        if m.model.state is State.STOPPING:
            m.send(Exited(ExitStatus(signal=signal.SIGTERM)))
        assert m.model.state is State.STOPPED, setup
    m = running()
    m.send(Shutdown(), Start())  # a start during shutdown is ignored
    assert m.model.after is After.STAY_STOPPED


def test_fatal_is_left_by_an_operator_start_with_a_fresh_budget() -> None:
    """start on a fatal program clears its budget."""
    m = running()
    for _ in range(3):
        m.crash()
    m.send(CRASH)
    assert m.model.state is State.FATAL
    m.send(Start())
    assert m.model.state is State.RUNNING and m.model.restart_times == ()


def test_spawn_failure_counts_like_a_crash() -> None:
    """A program that cannot be exec'd backs off, then goes fatal with the error."""
    m = Machine()
    m.model, _ = transition(Model(deps_ok=True), Start(), 0, POLICY, m.rng)
    assert m.model.state is State.STARTING
    m.model, actions = transition(m.model, SpawnFailed("'nope' not found"), 0, POLICY, m.rng)
    assert m.model.state is State.STARTING  # the first retry is at once
    for _ in range(2):
        m.model, actions = transition(m.model, SpawnFailed("'nope' not found"), 0, POLICY, m.rng)
        assert m.model.state is State.BACKOFF
        timer = next(a for a in actions if isinstance(a, SetTimer))
        m.model, _ = transition(m.model, Timer("backoff", timer.generation), 0, POLICY, m.rng)
    m.model, _ = transition(m.model, SpawnFailed("'nope' not found"), 0, POLICY, m.rng)
    assert m.model.state is State.FATAL and "'nope' not found" in (m.model.error or "")


def test_stale_timers_are_ignored() -> None:
    """A timer from an earlier incarnation changes nothing."""
    m = running()
    m.send(Stop())
    stale = Timer("stop_timeout", m.model.generation - 1)
    assert m.send(stale) == []
    m.send(Exited(ExitStatus(code=0)))
    before = m.model
    assert m.send(Timer("stop_timeout", m.model.generation)) == [] and m.model == before


@pytest.mark.parametrize(
    ("state", "event"),
    [(State.PENDING, CRASH), (State.STOPPED, CRASH), (State.BACKOFF, CRASH), (State.RUNNING, Spawned(5))],
)
def test_impossible_events_raise(state: State, event: object) -> None:
    """An event a state can never receive is a bug in the caller, not something to guess about."""
    with pytest.raises(UnexpectedEvent):
        transition(Model(state=state), event, 0, POLICY, random.Random(1))  # type: ignore[arg-type]


def test_late_reports_are_ignored_in_states_without_a_process() -> None:
    """Health and memory reports that arrive after the process is gone are dropped."""
    for state in (State.PENDING, State.BACKOFF, State.STOPPED, State.EXITED, State.FATAL):
        model = Model(state=state)
        for ev in (HealthResult(False), MemoryExceeded(1)):
            assert transition(model, ev, 0, POLICY, random.Random(1)) == (model, [])


def test_cancel_timers_accompanies_leaving_backoff_for_stopped() -> None:
    """Stopping during backoff cancels the pending restart timer."""
    m = running()
    m.send(CRASH, CRASH)
    actions = m.send(Stop())
    assert m.model.state is State.STOPPED
    assert any(isinstance(a, CancelTimers) for a in actions)


def test_every_state_has_its_edges() -> None:
    """Each program state has a handler in ``transition``: a new state cannot be left out silently."""
    from supervisor.machine import states

    assert set(states._BY_STATE) == set(State)


def test_a_ready_log_line_makes_a_starting_program_running() -> None:
    """With ready_log, a program starts without min_uptime and is running when its line arrives."""
    from supervisor.machine.events import Ready

    m = Machine(RestartPolicy(ready_log=True, start_timeout_s=30))
    actions = m.send(DepsChanged(True), Start())
    assert m.model.state is State.STARTING
    assert [t.name for t in m.timers(actions)] == ["start_timeout"]  # no min_uptime: the line decides
    ready = m.send(Ready(m.model.pid or 0, by="ready_log"))
    assert m.model.state is State.RUNNING
    assert any(getattr(a, "event", "") == "program.ready" and ("by", "ready_log") in a.fields for a in ready)  # type: ignore[attr-defined]
