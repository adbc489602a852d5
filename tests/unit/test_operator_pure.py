"""The pure parts of the operator's commands: critical chain, change marks, signal names, words."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.client.render import reload_words
from supervisor.client.watch import MARKED, changes, frame
from supervisor.control.protocol import parse_signal
from supervisor.host.plain import add_sentence, address
from supervisor.machine.timeline import Timeline, critical_chain, document, render


def unit(name: str, ready: float | None, deps: tuple[str, ...] = (), eligible: float = 0.0) -> dict[str, Any]:
    """Return a timeline row."""
    return {"name": name, "depends_on": list(deps), "eligible_s": eligible, "started_s": eligible, "ready_s": ready}


def test_critical_chain_follows_the_dependency_that_was_ready_last() -> None:
    """From the last ready unit, each step goes to its latest-ready dependency, ending at a root."""
    rows = [
        unit("db", 0.3),
        unit("cache", 0.1),
        unit("migrate", 2.0, ("db",), 0.3),
        unit("web", 2.5, ("migrate", "cache"), 2.0),
        unit("worker", 2.2, ("cache",), 0.1),
    ]
    assert critical_chain(rows) == ["db", "migrate", "web"]


def test_critical_chain_steps_through_after_too() -> None:
    """A unit that waited on another's start (after) has that one on its chain when it came last."""
    rows = [
        unit("migrate", 0.7),
        {**unit("web", 1.2, ("migrate",), 0.7), "after": []},
        {**unit("worker", 1.9, ("migrate",), 0.7), "started_s": 1.2, "after": ["web"]},
    ]
    assert critical_chain(rows) == ["migrate", "web", "worker"]
    # A web ready only after worker had started (its start failed first) held nothing back.
    rows[1]["ready_s"], rows[2]["started_s"] = 1.5, 0.9
    assert critical_chain(rows) == ["migrate", "worker"]


def test_while_a_dependency_blocks_start_up_the_chain_names_it() -> None:
    """With Redis not ready and the worker waiting on it, the chain ends at the worker through redis."""
    rows = [
        {**unit("postgres", 0.2), "pending": False},
        {**unit("redis", None), "pending": True},
        {**unit("migrate", 0.9, ("postgres",), 0.2), "pending": False},
        {**unit("worker", None, ("migrate", "redis")), "started_s": None, "pending": True},
    ]
    assert critical_chain(rows) == ["redis", "worker"]


def test_an_after_link_counts_when_the_first_program_ran_before_the_follower_started() -> None:
    """A follower that waited for web's start has web on its chain, though web became healthy only later."""
    rows = [
        unit("postgres", 0.2),
        unit("migrate", 0.5, ("postgres",), 0.2),
        {**unit("web", 2.0, ("migrate",), 0.5), "running_s": 1.3, "after": []},
        {**unit("worker", 1.6, ("migrate",), 0.5), "started_s": 1.3, "after": ["web"]},
    ]
    assert critical_chain(rows) == ["postgres", "migrate", "web"]  # web, healthy at 2.0, came last
    rows[2]["ready_s"] = 1.4  # web ready before the worker: the worker came last, through web
    assert critical_chain(rows) == ["postgres", "migrate", "web", "worker"]
    rows[2]["ready_s"], rows[3]["ready_s"] = 2.0, 2.5  # healthy after the worker started: still its link
    assert critical_chain(rows) == ["postgres", "migrate", "web", "worker"]
    rows[2]["running_s"] = None  # web's start failed: it held nothing back
    assert critical_chain(rows) == ["postgres", "migrate", "worker"]


def test_critical_chain_skips_units_never_ready_and_breaks_ties_toward_the_dependant() -> None:
    """A unit that never became ready is not on the chain; on equal instants the later unit is last."""
    rows = [unit("a", 1.0), unit("b", None), unit("c", 1.0, ("a", "b"), 1.0)]
    assert critical_chain(rows) == ["a", "c"]
    assert critical_chain([unit("x", None)]) == []


def test_timeline_keeps_first_instants_and_renders_the_chain() -> None:
    """mark() keeps the first instant only; the document and its rendering mark the chain."""
    t = Timeline()
    t.mark("db", "ready_s", 0.5)
    t.mark("db", "ready_s", 9.0)
    for field in ("eligible_s", "started_s"):
        t.mark("db", field, 0.0)
        t.mark("web", field, 0.5)
    t.mark("web", "ready_s", 1.0)
    doc = document(t, [("db", "dependency", [], [], False), ("web", "program", ["db"], [], False)], 5.0)
    assert doc["critical_chain"] == ["db", "web"] and doc["last_ready_s"] == 1.0
    assert t.of("db") == {"eligible_s": 0.0, "started_s": 0.0, "ready_s": 0.5}
    text = render(doc, width=60).splitlines()
    assert text[1].startswith("* db") and text[2].startswith("* web")
    assert all(len(line) <= 60 for line in text[:3]) and text[-1] == "critical chain: db -> web (ready at 1.00s)"


@pytest.mark.parametrize(
    ("value", "number"),
    [("HUP", 1), ("sighup", 1), ("SIGUSR1", 10), ("10", 10), (15, 15), ("NOPE", None), ("", None), (True, None)],
)
def test_signals_are_named_with_or_without_sig_or_numbered(value: object, number: int | None) -> None:
    """HUP, SIGHUP and numbers name signals; anything else names none."""
    assert parse_signal(value) == number


def test_changes_mark_new_pids_more_restarts_and_other_states() -> None:
    """A new pid, a higher restart count, a new state or health are marked; fewer restarts are not."""
    before = {"web": {"name": "web", "state": "running", "pid": 1, "restarts": 2, "health": "healthy"}}
    now = [
        {"name": "web", "state": "running", "pid": 2, "restarts": 1, "health": "unknown"},
        {"name": "new", "state": "starting", "pid": None},
    ]
    assert changes(None, now) == {}
    assert changes(before, now) == {"web": {MARKED["pid"], MARKED["health"]}, "new": {MARKED["state"]}}


def test_a_frame_stars_changes_off_a_terminal_and_fits_the_width_on_one() -> None:
    """Off a terminal a changed cell gets a star; on one, reverse video and lines cut to the width."""
    doc = {
        "supervisor": {"pid": 7, "state": "running", "uptime_s": 3.0, "ready": True},
        "units": [{"name": "web", "kind": "program", "state": "running", "pid": 42, "restarts": 1}],
    }
    marks = {"web": {MARKED["pid"]}}
    plain = frame(doc, marks, 1.0, False, 1000)
    assert "42*" in plain[2] and "1 running" in plain[0] and plain[-1].startswith("(*")
    ansi = frame(doc, marks, 1.0, True, 30)
    assert "\x1b[1;7m42\x1b[0m" in ansi[2]
    assert all(len(line.replace("\x1b[1;7m", "").replace("\x1b[0m", "")) <= 30 for line in ansi)


def test_addresses_never_show_credentials() -> None:
    """A dependency's address is host:port (and database), without user or password."""
    assert address("postgres", "postgresql://app:secret@db:5432/app") == "db:5432/app"
    assert address("redis", "redis://:pw@cache:6379/0") == "cache:6379/0"
    assert address("tcp", "db:5432") == "db:5432"
    assert address("http", "http://api.local/health") == "api.local/health"


def test_console_sentences_fill_in_fields_and_leave_others_alone() -> None:
    """A start-up event gets its plain sentence; a missing field or another event is left as is."""
    event = {"event": "dependency.waiting", "dependency": "postgres", "address": "db:5432"}
    assert add_sentence(None, "info", event)["event"] == "dependency.waiting: Waiting for postgres at db:5432..."
    assert add_sentence(None, "info", {"event": "dependency.waiting"})["event"] == "dependency.waiting"
    assert add_sentence(None, "info", {"event": "program.output", "line": "x"})["event"] == "program.output"


def test_reload_words() -> None:
    """A reload result reads as restarted / added / removed / unchanged, or says nothing changed."""
    doc = {"changed": ["web"], "added": ["x"], "removed": ["y"], "unchanged": ["worker", "beat"]}
    assert reload_words(doc) == "restarted web; added x; removed y; unchanged: worker, beat"
    assert reload_words({"changed": [], "added": [], "removed": []}) == "nothing changed"
    # Said once the restart played out, and in words that do not claim more than happened.
    states = {"web": "running", "worker": "stopping", "beat": "stopped", "x": "starting"}
    doc = {"changed": ["web", "worker", "beat"], "added": ["x"], "states": states}
    assert reload_words(doc) == (
        "restarted web; still restarting worker (stopping); changed, not running: beat (stopped); added x (starting)"
    )


def test_names_may_follow_options_but_unknown_options_are_refused() -> None:
    """`logs worker -n 3 beat` reads both names; an unknown option is still an error (exit 2)."""
    from supervisor.cli import _parser, parse

    args = parse(_parser(), ["logs", "worker", "-n", "3", "beat"])
    assert args.names == ["worker", "beat"] and args.lines == 3
    with pytest.raises(SystemExit) as exc:
        parse(_parser(), ["logs", "worker", "-n", "3", "--bogus"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parse(_parser(), ["check", "a.toml", "extra"])  # check takes one file, no names


def test_a_singleton_in_standby_stays_on_the_chain_of_what_waited_for_it() -> None:
    """A dependant of a singleton another daemon runs started when it stood by: it is on the chain."""
    rows = [
        unit("db", 0.2),
        {**unit("beat", None, ("db",), 0.2), "started_s": None, "standby_s": 0.9, "pending": False},
        {**unit("after_beat", 1.4, ("beat",), 0.9), "pending": False},
    ]
    assert critical_chain(rows) == ["db", "beat", "after_beat"]
