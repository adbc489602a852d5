"""The data plane's keys: header_timeout and log_limit are refused by key when they could not work."""

from __future__ import annotations

from pathlib import Path

from supervisor.config import load
from tests.unit.test_config import problems, write


def test_header_timeout_defaults_to_two_seconds_and_must_be_positive(tmp_path: Path) -> None:
    """header_timeout = "0s" would close every connection at once: refused, naming the key (exit 78)."""
    assert load(write(tmp_path, "[supervisor]\n"), environ={}).config.supervisor.header_timeout == 2.0
    found = dict(problems(tmp_path, '[supervisor]\nheader_timeout = "0s"\n'))
    assert found == {"supervisor.header_timeout": "must be positive (got '0s')"}


def test_log_limit_needs_a_positive_number_of_lines_and_window(tmp_path: Path) -> None:
    """log_limit lines of 0 or below, or a window of 0, are refused by key; a good one loads."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.a]
command = ["true"]
log_limit = { lines = 0 }
[programs.b]
command = ["true"]
log_limit = { lines = -5, per = "10s" }
[programs.c]
command = ["true"]
log_limit = { lines = 10, per = "0s" }
""",
        )
    )
    assert set(found) == {"programs.a.log_limit.lines", "programs.b.log_limit.lines", "programs.c.log_limit.per"}
    text = '[programs.a]\ncommand = ["true"]\nlog_limit = { lines = 100, per = "10s" }\n'
    limit = load(write(tmp_path, text), environ={}).config.programs["a"].log_limit
    assert limit is not None and (limit.lines, limit.per) == (100, 10.0)
