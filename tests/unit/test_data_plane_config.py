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
