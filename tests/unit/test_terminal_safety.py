"""A child's text reaches an operator's terminal with its control characters escaped, as journalctl does."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from supervisor import cli
from supervisor.client import verbs, watch
from supervisor.client.safe import escape, escape_doc

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J"


def test_control_characters_are_escaped_but_tab_and_text_stay() -> None:
    """C0 (but tab), DEL and C1 become \\xNN; tab, printable ASCII and other characters stay."""
    assert escape(HOSTILE) == "\\x1b]0;PWNED\\x07\\x1b[2J"
    assert escape("a\tb é € \x7f \x85 \x9b\r") == "a\tb é € \\x7f \\x85 \\x9b\\x0d"
    assert escape_doc({"units": [{"error": HOSTILE, "pid": 3}], "ok": True}) == {
        "units": [{"error": escape(HOSTILE), "pid": 3}],
        "ok": True,
    }


class FakeClient:
    """Answers every request with one document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def request(self, method: str, target: str) -> tuple[int, Any]:
        """The document, whatever was asked."""
        return 200, self.doc


def _doc() -> dict[str, Any]:
    unit = {"name": "web", "kind": "program", "state": "running", "pid": 7, "error": HOSTILE, "notify_status": HOSTILE}
    return {"supervisor": {"state": "running", "ready": True}, "units": [unit]}


def test_status_and_watch_show_a_childs_text_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """status's table and status --watch's document carry no raw escape from a child."""
    args = argparse.Namespace(json=False, quiet=False, names=[])
    cli._status(FakeClient(_doc()), args)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;PWNED" in out
    fetched = watch._fetch(FakeClient(_doc()), [])  # type: ignore[arg-type]
    assert fetched["units"][0]["notify_status"] == escape(HOSTILE)


def test_timeline_shows_a_childs_text_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """timeline draws no raw escape from the document it was sent."""
    doc = {"uptime_s": 1.0, "last_ready_s": None, "critical_chain": [], "units": []}
    doc["units"] = [
        {"name": "web" + HOSTILE, "kind": "program", "depends_on": [], "after": [], "pending": True, "critical": False}
    ]
    verbs.timeline(FakeClient(doc), argparse.Namespace(json=False))
    assert "\x1b]0" not in capsys.readouterr().out
