"""``wait --ready`` reads the status document: 0 once ready, 1 out of time or failed for good, 3 with no daemon."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.client.api import Unreachable
from supervisor.client.ready import poll, settled_failures


class Clock:
    """A fake clock the fake sleep advances."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(s, 0.01)


class Answers:
    """A client that answers each request with the next scripted document (or raises Unreachable)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked = 0

    def request(self, method: str, target: str) -> tuple[int, Any]:
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer is None:
            raise Unreachable("nothing answers")
        return 200, answer


def doc(ready: bool, *units: dict[str, Any], state: str = "running") -> dict[str, Any]:
    return {"supervisor": {"ready": ready, "state": state}, "units": list(units)}


WEB_STARTING = {"name": "web", "kind": "program", "state": "starting"}


def test_returns_0_once_the_daemon_reports_ready() -> None:
    """Not ready, not ready, ready: exit 0 on the third answer."""
    clock = Clock()
    client = Answers(doc(False, WEB_STARTING), doc(False, WEB_STARTING), doc(True))
    assert poll(client, 10, quiet=True, now=clock.now, sleep=clock.sleep) == 0
    assert client.asked == 3


def test_returns_1_at_the_timeout_naming_what_is_not_ready(capsys: pytest.CaptureFixture[str]) -> None:
    """A program that stays starting: exit 1 once the timeout has passed, and the message names it."""
    clock = Clock()
    assert poll(Answers(doc(False, WEB_STARTING)), 3, now=clock.now, sleep=clock.sleep) == 1
    assert 103 <= clock.t < 104
    assert "web is starting" in capsys.readouterr().err


@pytest.mark.parametrize(
    "unit",
    [
        {"name": "web", "kind": "program", "state": "fatal", "error": "exited too quickly"},
        {"name": "once", "kind": "program", "state": "exited"},
        {"name": "migrate", "kind": "job", "state": "failed"},
    ],
)
def test_returns_1_at_once_when_a_unit_failed_for_good(unit: dict[str, Any]) -> None:
    """A fatal or exited program, or a failed job, will not become ready: exit 1 without waiting for the timeout."""
    clock = Clock()
    assert poll(Answers(doc(False, unit)), None, now=clock.now, sleep=clock.sleep) == 1
    assert clock.t == 100.0
    assert settled_failures(doc(False, unit))


def test_a_dependency_that_timed_out_may_still_come_back() -> None:
    """A dependency not ready is waited for (its probes go on), not a failure for good."""
    assert settled_failures(doc(False, {"name": "redis", "kind": "dependency", "state": "timed_out"})) == []


def test_returns_3_when_no_daemon_answers_after_a_short_grace() -> None:
    """Nothing on the socket: a few seconds for a daemon just started to bind it, then exit 3."""
    clock = Clock()
    assert poll(Answers(None), None, now=clock.now, sleep=clock.sleep) == 3
    assert 105 <= clock.t < 106


def test_a_daemon_that_comes_up_during_the_grace_is_waited_for() -> None:
    """`supervisor run &` then `wait --ready`: the first refusals are not the end."""
    clock = Clock()
    assert poll(Answers(None, None, doc(False), doc(True)), 30, quiet=True, now=clock.now, sleep=clock.sleep) == 0


def test_returns_3_when_the_daemon_goes_away_while_waiting(capsys: pytest.CaptureFixture[str]) -> None:
    """It answered, then stopped answering (it gave up and exited): exit 3 at once, saying so."""
    clock = Clock()
    assert poll(Answers(doc(False), None), None, now=clock.now, sleep=clock.sleep) == 3
    assert "stopped answering" in capsys.readouterr().err
