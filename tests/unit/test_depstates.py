"""A dependency's machine as scripted histories: ready, outages, the start-up wait's backoff and timeout."""

from __future__ import annotations

import random

from supervisor.machine.backoff import Backoff
from supervisor.machine.depstates import (
    Changed,
    DepPolicy,
    DepState,
    GiveUp,
    Probe,
    Probed,
    Wait,
    is_ok,
    start,
    transition,
)

POLICY = DepPolicy(interval_s=2.0, timeout_s=10.0, backoff=Backoff(initial_s=1.0, factor=2.0, max_s=4.0, jitter=0.0))
UP, DOWN = Probed(True, "PONG", 0.01), Probed(False, "refused", 0.01)


def test_waiting_backs_off_by_its_configured_backoff_and_never_past_the_timeout() -> None:
    """Failed probes while waiting wait 1, 2, 4, 4 s (the backoff), and the last wait ends at the timeout."""
    m, actions = start(0.0, POLICY, "redis")
    assert actions[-1] == Probe(10.0)
    waits, now = [], 0.0
    for _ in range(4):
        m, actions = transition(m, DOWN, now, POLICY, random.Random(1))
        wait = next(a for a in actions if isinstance(a, Wait))
        waits.append(wait.delay_s)
        now += wait.delay_s
    assert waits == [1.0, 2.0, 4.0, 3.0]  # 1 + 2 + 4 = 7: only 3 s were left of the 10 s wait
    assert m.state is DepState.WAITING and m.attempt == 4


def test_timeout_with_continue_lets_dependants_start_and_with_exit_gives_up() -> None:
    """At the timeout, continue opens the gate (degraded); exit asks the daemon to give up with 69."""
    m, _ = start(0.0, POLICY, "redis")
    m, actions = transition(m, DOWN, 10.0, POLICY, random.Random(1))
    assert m.state is DepState.TIMED_OUT and is_ok(m, POLICY) and Changed() in actions
    strict = DepPolicy(interval_s=2.0, timeout_s=10.0, on_timeout="exit")
    m, _ = start(0.0, strict, "redis")
    m, actions = transition(m, DOWN, 10.0, strict, random.Random(1))
    assert not is_ok(m, strict) and any(isinstance(a, GiveUp) and a.code == 69 for a in actions)


def test_an_outage_is_timed_from_its_own_start() -> None:
    """ready -> unavailable -> ready reports the outage's length, and probes at the interval meanwhile."""
    m, _ = start(0.0, POLICY, "redis")
    m, _ = transition(m, UP, 1.0, POLICY, random.Random(1))
    assert m.state is DepState.READY
    m, actions = transition(m, DOWN, 500.0, POLICY, random.Random(1))
    assert m.state is DepState.UNAVAILABLE and Wait(2.0, periodic=True) in actions and Probe(None) in actions
    m, actions = transition(m, UP, 511.0, POLICY, random.Random(1))
    ready = next(a for a in actions if getattr(a, "event", "") == "dependency.ready")
    assert dict(ready.fields)["waited_s"] == 11.01  # from when the failed probe was sent


def test_once_ready_it_probes_at_the_ready_interval_watching_the_connection() -> None:
    """Ready: probes wait ``ready_interval`` (else ``interval``) and watch; an outage goes back to ``interval``."""
    slow = DepPolicy(interval_s=2.0, ready_interval_s=30.0, timeout_s=10.0)
    for policy, every in ((slow, 30.0), (POLICY, 2.0)):
        m, _ = start(0.0, policy, "postgres")
        m, actions = transition(m, UP, 0.1, policy, random.Random(1))
        assert Wait(every, periodic=True, watch=True) in actions
        m, actions = transition(m, DOWN, 40.0, policy, random.Random(1))
        assert m.state is DepState.UNAVAILABLE and Wait(2.0, periodic=True) in actions
