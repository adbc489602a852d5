"""Readiness (min_uptime, READY=1, start_timeout), exit codes, stop ladders and the start-first handover."""

from __future__ import annotations

import random
import signal

from supervisor.machine.backoff import Backoff
from supervisor.machine.events import (
    BecameFatal,
    DepsChanged,
    Exited,
    ExitStatus,
    HealthResult,
    KillTree,
    MemoryExceeded,
    Ready,
    Reason,
    Restart,
    Retire,
    SendStop,
    Shutdown,
    SpawnFailed,
    Start,
    Stop,
    signal_name,
)
from supervisor.machine.model import LastExit
from supervisor.machine.states import Model, RestartPolicy, State, transition
from tests.unit.test_states import Machine

NO_JITTER = Backoff(initial_s=1.0, factor=2.0, max_s=8.0, jitter=0.0)


def machine(**policy: object) -> Machine:
    """A machine with a policy built from keyword arguments."""
    return Machine(RestartPolicy(backoff=NO_JITTER, **policy))  # type: ignore[arg-type]


START_FIRST = RestartPolicy(backoff=NO_JITTER, notify=True, start_first=True, start_timeout_s=10, stop_timeout_s=5)


def serving() -> Machine:
    """A start-first program whose first incarnation (pid 101) said READY=1."""
    m = Machine(START_FIRST)
    m.send(DepsChanged(True), Start(), Ready(101))
    assert m.model.state is State.RUNNING and m.model.pid == 101
    return m


def test_without_notify_or_health_a_program_is_starting_until_min_uptime() -> None:
    """A program is starting until it has stayed up min_uptime, then running."""
    m = machine(min_uptime_s=1.0)
    m.send(DepsChanged(True), Start())
    assert m.model.state is State.STARTING and m.model.pid == 101
    m.fire("min_uptime")
    assert m.model.state is State.RUNNING


def test_an_exit_while_starting_is_a_failed_start_through_the_backoff() -> None:
    """An exit before min_uptime goes through the same backoff and budget as a crash."""
    m = machine(min_uptime_s=1.0, max_restarts=2)
    m.send(DepsChanged(True), Start(), Exited(ExitStatus(code=1)))
    assert m.model.state is State.STARTING and m.model.restarts == 1  # first retry at once
    m.send(Exited(ExitStatus(code=1)))
    assert m.model.state is State.BACKOFF
    m.fire("backoff")
    actions = m.send(Exited(ExitStatus(code=1)))
    assert m.model.state is State.FATAL and any(isinstance(a, BecameFatal) for a in actions)


def test_notify_program_is_running_only_after_its_ready() -> None:
    """With notify, min_uptime does not count: only READY=1 from the incarnation makes it running."""
    m = machine(notify=True, min_uptime_s=1.0)
    m.send(DepsChanged(True), Start())
    m.clock.advance(5)
    assert m.model.state is State.STARTING
    m.send(Ready(101))
    assert m.model.state is State.RUNNING


def test_not_ready_within_start_timeout_is_stopped_and_restarted() -> None:
    """A program not ready within start_timeout goes down its ladder and through the backoff."""
    m = machine(notify=True, start_timeout_s=3.0)
    m.send(DepsChanged(True), Start())
    actions = m.fire("start_timeout")
    assert m.model.state is State.STOPPING and SendStop(signal.SIGTERM, False) in actions
    m.send(Exited(ExitStatus(signal=signal.SIGTERM)))
    assert m.model.last_exit is not None and m.model.last_exit.reason is Reason.START_TIMEOUT
    assert m.model.state is State.STARTING and m.model.restarts == 1


def test_a_success_exit_code_is_not_restarted_by_on_failure() -> None:
    """An exit code listed in success_exit_codes counts as success for on-failure."""
    m = machine(policy="on-failure", success_codes=frozenset({3}))
    m.send(DepsChanged(True), Start(), Exited(ExitStatus(code=3)))
    assert m.model.state is State.EXITED
    m.send(Start(), Exited(ExitStatus(code=4)))
    assert m.model.state is State.RUNNING and m.model.restarts == 1


def test_a_no_restart_exit_code_is_fatal_at_once() -> None:
    """Exit 78 (EX_CONFIG) by default makes the program fatal at once, whatever the budget."""
    m = machine(max_restarts=100)
    m.send(DepsChanged(True), Start())
    actions = m.send(Exited(ExitStatus(code=78)))
    assert m.model.state is State.FATAL and "78" in (m.model.error or "")
    assert any(isinstance(a, BecameFatal) for a in actions)


def test_a_two_rung_ladder_escalates_then_kills() -> None:
    """stop_signal as a list: each rung's signal after the previous rung's wait, then SIGKILL."""
    ladder = ((int(signal.SIGTERM), 4.0), (int(signal.SIGQUIT), 2.0))
    m = machine(stop_ladder=ladder)
    m.send(DepsChanged(True), Start(), Stop())
    assert m.actions[-2:][0] == SendStop(signal.SIGTERM, False)
    assert m.timers(m.actions)[-1].delay_s == 4.0
    actions = m.fire("stop_timeout")
    assert SendStop(signal.SIGQUIT, False) in actions and m.timers(actions)[0].delay_s == 2.0
    actions = m.fire("stop_timeout")
    assert any(isinstance(a, KillTree) for a in actions) and m.model.killed


def test_stop_group_sends_the_stop_signal_to_the_group() -> None:
    """stop_group = true makes the stop signal go to the whole process group."""
    m = machine(stop_group=True)
    m.send(DepsChanged(True), Start())
    assert SendStop(signal.SIGTERM, True) in m.send(Stop())


def test_a_reload_restart_leaves_an_operator_stop_in_place() -> None:
    """A reload that changed a held program does not start it."""
    m = machine()
    m.send(DepsChanged(True), Start(), Stop(), Exited(ExitStatus(signal=signal.SIGTERM)))
    assert m.send(Restart(Reason.RELOAD)) == [] and m.model.state is State.STOPPED


def test_autostart_false_model_stays_stopped_when_dependencies_are_ready() -> None:
    """A held, stopped program is not started by its dependencies becoming ready."""
    model = Model(state=State.STOPPED, held=True)
    model, actions = transition(model, DepsChanged(True), 0, RestartPolicy(), random.Random(1))
    assert model.state is State.STOPPED and actions == []


def test_start_first_keeps_the_old_one_until_the_new_one_is_ready() -> None:
    """A restart starts the candidate beside the old one; the old retires only on the candidate's READY=1."""
    m = serving()
    actions = m.send(Restart())
    assert m.model.state is State.RUNNING and m.model.pid == 101 and m.model.next_pid == 102
    assert not any(isinstance(a, SendStop | Retire) for a in actions)
    m.send(Ready(101))  # the old one's message does not count for the candidate
    assert m.model.next_pid == 102
    actions = m.send(Ready(102))
    assert m.model.pid == 102 and m.model.next_pid is None and Retire(101) in actions
    assert m.model.retiring == (101,) and m.model.restarts == 1
    assert m.model.last_exit is None  # the old one still serves its last requests
    m.send(Exited(ExitStatus(signal=signal.SIGTERM), pid=101))
    assert m.model.retiring == () and m.model.state is State.RUNNING and m.model.pid == 102
    # As a stop-first restart shows it: the replaced incarnation's exit, and that an operator asked.
    assert m.model.last_exit == LastExit(ExitStatus(signal=signal.SIGTERM), Reason.OPERATOR)


def test_a_candidate_not_ready_in_time_is_retired_and_the_old_keeps_serving() -> None:
    """A candidate without READY=1 within start_timeout goes; the old one stays; the failure is recorded."""
    m = serving()
    m.send(Restart())
    actions = m.fire("handover_timeout")
    assert Retire(102) in actions and m.model.pid == 101 and m.model.state is State.RUNNING
    assert "not ready within 10s" in (m.model.error or "") and m.model.handover_reason is None


def test_a_candidate_that_exits_fails_the_handover() -> None:
    """A candidate that dies before it is ready fails the restart, and the old one keeps serving."""
    m = serving()
    m.send(Restart(), Exited(ExitStatus(code=1), pid=102))
    assert m.model.pid == 101 and m.model.next_pid is None and "exited" in (m.model.error or "")
    m.send(SpawnFailed("no such file", candidate=True))
    assert m.model.pid == 101 and m.model.state is State.RUNNING


def test_the_old_one_dying_mid_handover_hands_over_to_the_candidate() -> None:
    """When the serving incarnation crashes during a handover, the candidate becomes the program, still starting."""
    m = serving()
    m.send(Restart(), Exited(ExitStatus(signal=signal.SIGKILL), pid=101))
    assert m.model.state is State.STARTING and m.model.pid == 102 and m.model.next_pid is None
    m.send(Ready(102))
    assert m.model.state is State.RUNNING


def test_shutdown_mid_handover_stops_both() -> None:
    """A shutdown during a handover retires the candidate and stops the old one."""
    m = serving()
    m.send(Restart())
    actions = m.send(Shutdown())
    assert Retire(102) in actions and m.model.state is State.STOPPING
    m.send(Exited(ExitStatus(signal=signal.SIGTERM), pid=102), Exited(ExitStatus(signal=signal.SIGTERM), pid=101))
    assert m.model.state is State.STOPPED and m.model.retiring == () and m.model.pid is None


def test_a_second_restart_mid_handover_replaces_the_candidate() -> None:
    """A restart during a handover retires the first candidate and starts a fresh one."""
    m = serving()
    m.send(Restart())
    actions = m.send(Restart())
    assert Retire(102) in actions and m.model.next_pid == 103 and m.model.pid == 101
    m.send(Ready(102))  # the retired candidate's late READY=1 changes nothing
    assert m.model.pid == 101
    m.send(Ready(103))
    assert m.model.pid == 103 and set(m.model.retiring) == {101, 102}


def test_health_and_memory_restarts_hand_over_too() -> None:
    """With start-first, an unhealthy or oversized program is replaced by a handover as well."""
    m = Machine(RestartPolicy(notify=True, start_first=True, has_health=True, health_failure_threshold=1))
    m.send(DepsChanged(True), Start(), Ready(101), HealthResult(True), HealthResult(False))
    assert m.model.next_pid == 102 and m.model.handover_reason is Reason.HEALTH
    m.send(Ready(102), MemoryExceeded(10**9))
    assert m.model.next_pid == 103 and m.model.handover_reason is Reason.MEMORY


def test_real_time_signals_have_names() -> None:
    """A death by a real-time signal is named, never an error."""
    assert signal_name(int(signal.SIGRTMIN) + 1) == "SIGRTMIN+1"
    assert signal_name(int(signal.SIGKILL)) == "SIGKILL"
    assert signal_name(200) == "SIG200"
