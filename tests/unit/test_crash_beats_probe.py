"""A crash that beats the probe: the exit waits for the dependency's answer; a dependency found down counts nothing."""

from __future__ import annotations

from supervisor.machine.events import DepsChanged, Exited, ExitStatus, Log, Start, Stop
from supervisor.machine.states import State
from tests.unit.test_states import POLICY, Machine, running

DOUBTFUL_CRASH = Exited(ExitStatus(code=1), doubt_s=3.0)


def events(actions: list[object]) -> list[str]:
    return [a.event for a in actions if isinstance(a, Log)]


def test_a_crash_while_its_dependency_is_probed_then_found_down_counts_no_restart() -> None:
    """The worker exits first; the probe then finds Redis down: pending, restarts 0, budget untouched."""
    m = running()
    actions = m.send(DOUBTFUL_CRASH)
    assert m.model.state is State.PENDING and "program.exit_deferred" in events(actions)
    assert m.timers(actions)[0].name == "exit_deferred" and m.timers(actions)[0].delay_s == 3.0
    m.send(DepsChanged(False))  # the probe's answer: down
    assert m.model.state is State.PENDING and not m.model.exit_deferred
    assert m.model.restarts == 0 and m.model.restart_times == ()
    m.fire("exit_deferred")  # the bound passes: already decided, nothing happens
    assert m.model.state is State.PENDING and m.model.restarts == 0
    m.send(DepsChanged(True))  # Redis is back
    assert m.model.state is State.RUNNING and m.model.restarts == 0


def test_twice_in_a_row_the_budget_stays_whole_and_a_small_max_restarts_never_goes_fatal() -> None:
    """Two Redis blips that each beat the probe never push a max_restarts = 1 program to fatal."""
    from dataclasses import replace

    m = Machine(policy=replace(POLICY, max_restarts=1))
    m.send(DepsChanged(True), Start())
    for _ in range(2):
        m.send(DOUBTFUL_CRASH, DepsChanged(False), DepsChanged(True))
    assert m.model.state is State.RUNNING and m.model.restarts == 0


def test_a_crash_while_the_probe_answers_ok_is_the_programs_own() -> None:
    """The probe answers that the dependency is fine: the exit counts, the restart comes at once."""
    m = running()
    m.send(DOUBTFUL_CRASH)
    m.send(DepsChanged(True))  # answered, still up
    assert m.model.state is State.RUNNING and m.model.restarts == 1


def test_a_probe_that_does_not_answer_in_time_leaves_the_decision_to_the_last_known_state() -> None:
    """No answer within the bound: decided as if no probe were under way (restarted, counted)."""
    m = running()
    m.send(DOUBTFUL_CRASH)
    m.fire("exit_deferred")
    assert m.model.state is State.RUNNING and m.model.restarts == 1


def test_a_stop_while_deferred_stops_and_forgets_the_exit() -> None:
    """An operator stop while waiting for the probe: stopped, and a later answer does nothing."""
    m = running()
    m.send(DOUBTFUL_CRASH, Stop())
    assert m.model.state is State.STOPPED and not m.model.exit_deferred
    m.send(DepsChanged(True))
    assert m.model.state is State.STOPPED


def test_without_doubt_a_crash_restarts_at_once_as_before() -> None:
    """No probe under way: the crash is the program's own at once (the fast path)."""
    m = running()
    m.send(Exited(ExitStatus(code=1)))
    assert m.model.state is State.RUNNING and m.model.restarts == 1
