"""The pure comparison behind a reload."""

from __future__ import annotations

from supervisor.config.diff import diff
from supervisor.config.models import ConfigFile, ProgramTable, plain
from supervisor.config.settings import Config


def config(**programs: dict[str, object]) -> Config:
    """A configuration with these programs."""
    return plain(ConfigFile(programs={n: ProgramTable.model_validate(p) for n, p in programs.items()}))


def test_added_removed_changed_and_unchanged_programs() -> None:
    """Each program falls in exactly one group, in the new file's order."""
    old = config(a={"command": ["a"]}, b={"command": ["b"]}, c={"command": ["c"]})
    new = config(c={"command": ["c"]}, b={"command": ["b", "-v"]}, d={"command": ["d"]})
    d = diff(old, new)
    assert (d.added, d.removed, d.changed, d.unchanged) == (("d",), ("a",), ("b",), ("c",))
    assert d.next_start == () and not d.empty


def test_a_listen_address_is_bound_anew_only_when_it_is_new() -> None:
    """Added programs with listen, and changed ones whose address moved, need a new socket."""
    old = config(web={"command": ["w"], "listen": "127.0.0.1:8000"}, api={"command": ["a"], "listen": "127.0.0.1:8001"})
    new = config(
        web={"command": ["w", "-v"], "listen": "127.0.0.1:8000"},
        api={"command": ["a"], "listen": "127.0.0.1:9001"},
        extra={"command": ["e"], "listen": "127.0.0.1:9002"},
    )
    assert diff(old, new).new_listen == ("api", "extra")


def test_dependency_job_and_supervisor_changes_wait_for_the_next_start() -> None:
    """Changes outside [programs] are named as taking effect at the next start."""
    old = plain(ConfigFile.model_validate({"supervisor": {"shutdown_timeout": 30}}))
    new = plain(
        ConfigFile.model_validate({"supervisor": {"shutdown_timeout": 10}, "jobs": {"m": {"command": ["true"]}}})
    )
    assert diff(old, new).next_start == ("jobs", "supervisor")
    assert diff(old, old).empty


def test_a_change_of_after_alone_restarts_nothing() -> None:
    """after orders the next start only: changing it leaves the running program alone."""
    old = config(web={"command": ["w"]}, worker={"command": ["k"]})
    new = config(web={"command": ["w"]}, worker={"command": ["k"], "after": ["web"]})
    d = diff(old, new)
    assert d.changed == () and d.unchanged == ("web", "worker") and d.reordered == ("worker",)
    again = config(web={"command": ["w"]}, worker={"command": ["k", "-v"], "after": ["web"]})
    assert diff(old, again).changed == ("worker",)
