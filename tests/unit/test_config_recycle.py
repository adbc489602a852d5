"""``max_age`` and ``max_age_jitter``: read into the policy, refused with the key named when they make no sense."""

from __future__ import annotations

from pathlib import Path

from supervisor.config import load
from supervisor.engine.units.policy import restart_policy
from tests.unit.test_config import problems, write


def test_max_age_reaches_the_policy_with_its_jitter(tmp_path: Path) -> None:
    """max_age = "6h" is 21600 s in the policy; the jitter defaults to 0.1; unset, no recycling."""
    loaded = load(
        write(
            tmp_path,
            """
[programs.worker]
command = ["true"]
max_age = "6h"
[programs.web]
command = ["true"]
max_age = 60
max_age_jitter = 0
""",
        ),
        environ={},
    )
    worker = restart_policy(loaded.config.programs["worker"])
    assert (worker.max_age_s, worker.max_age_jitter) == (21600.0, 0.1)
    assert restart_policy(loaded.config.programs["web"]).max_age_jitter == 0.0


def test_max_age_shorter_than_min_uptime_or_a_bad_jitter_is_named(tmp_path: Path) -> None:
    """max_age under min_uptime, a zero max_age, or a jitter outside 0..1: each key is named."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.a]
command = ["true"]
min_uptime = "10s"
max_age = "5s"
[programs.b]
command = ["true"]
max_age = "0s"
[programs.c]
command = ["true"]
max_age = "1h"
max_age_jitter = 2
""",
        )
    )
    assert "max_age (5s) is shorter than min_uptime (10s)" in found["programs.a.max_age"]
    assert "programs.b.max_age" in found
    assert "programs.c.max_age_jitter" in found
