"""`check` reports every problem of a file in one run, with the nearest known name for a misspelt key or unit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supervisor.config import load
from supervisor.config.hints import closest, known_keys
from supervisor.machine.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def refused(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(path, environ=env or {})
    return info.value.problems


def test_unknown_key_and_unknown_unit_come_out_together(tmp_path: Path) -> None:
    """A misspelt key and a misspelt unit name are both reported in one run, each with its hint."""
    found = refused(
        tmp_path,
        """
[dependencies.redis]
type = "redis"
[programs.worker]
command = ["true"]
stop_timout = "5s"
depends_on = ["reddis"]
""",
    )
    assert found == [
        ("programs.worker.stop_timout", "unknown key (did you mean `stop_timeout`?)"),
        ("programs.worker.depends_on[0]", "unknown unit 'reddis' (did you mean `redis`?)"),
    ]


def test_values_keys_units_and_order_in_one_run(tmp_path: Path) -> None:
    """Bad values, unknown keys at each depth, unknown units in depends_on and after: all listed."""
    found = dict(
        refused(
            tmp_path,
            """
[supervisor]
sokcet = "/tmp/x.sock"
[jobs.migrate]
command = ["true"]
depends_on = ["postgress"]
[programs.web]
command = ["true"]
restart = { policy = "sometimes", max_restart = 3 }
health = { htp = "http://127.0.0.1:1/" }
[programs.worker]
command = ["true"]
after = ["wbe"]
""",
        )
    )
    assert found["supervisor.sokcet"] == "unknown key (did you mean `socket`?)"
    assert found["programs.web.restart.max_restart"] == "unknown key (did you mean `max_restarts`?)"
    assert found["programs.web.health.htp"] == "unknown key (did you mean `http`?)"
    assert "'sometimes'" in found["programs.web.restart.policy"]
    assert found["jobs.migrate.depends_on[0]"] == "unknown unit 'postgress'"  # no unit is near
    assert found["programs.worker.after[0]"].endswith("(did you mean `web`?)")


def test_a_file_that_validates_gets_hints_for_its_units(tmp_path: Path) -> None:
    """Once the values are valid, the graph's unknown units carry the same hint."""
    found = refused(
        tmp_path,
        """
[dependencies.postgres]
type = "postgres"
[programs.web]
command = ["true"]
depends_on = ["postgre"]
""",
    )
    assert found == [("programs.web.depends_on[0]", "unknown unit 'postgre' (did you mean `postgres`?)")]


def test_unset_variable_is_listed_with_the_other_problems(tmp_path: Path) -> None:
    """An unset ${VAR:?} comes out beside an unknown key, without a second error for the value it left empty."""
    found = refused(
        tmp_path,
        """
[dependencies.api]
type = "http"
url = "${API_URL:?set API_URL}"
[programs.web]
command = ["true"]
autostrat = true
""",
    )
    assert found == [
        ("dependencies.api.url", "${API_URL} is not set: set API_URL"),
        ("programs.web.autostrat", "unknown key (did you mean `autostart`?)"),
    ]


def test_known_keys_follow_the_tables() -> None:
    """The keys offered for a hint are those of the table the unknown key sits in."""
    assert "stop_timeout" in known_keys(("programs", "web", "x"))
    assert "max_restarts" in known_keys(("programs", "web", "restart", "x"))
    assert "factor" in known_keys(("programs", "web", "restart", "backoff", "x"))
    assert "programs" in known_keys(("x",))
    assert closest("zzz", ["socket"]) is None


def test_the_documented_bad_toml_shows_every_line(tmp_path: Path) -> None:
    """The operator's guide's `check` example is what check prints for the file it shows."""
    page = (ROOT / "docs/operators-guide.md").read_text()
    source = re.search(r"```toml\n# conf/bad.toml\n(.*?)```", page, re.S)
    shown = re.search(r"\$ supervisor check --config conf/bad.toml\ninvalid configuration:\n(.*?)```", page, re.S)
    assert source and shown, "the guide shows conf/bad.toml and what check prints for it"
    found = refused(tmp_path, source.group(1))
    printed = [f"  conf/bad.toml: {key}: {what}" for key, what in found]
    assert printed == shown.group(1).rstrip("\n").splitlines()


def test_lock_and_traffic_names_get_the_hint_too(tmp_path: Path) -> None:
    """A misspelt lock names the nearest postgres dependency; a misspelt traffic unit the nearest unit."""
    found = dict(
        refused(
            tmp_path,
            """
[supervisor]
traffic = ["wbe"]
[dependencies.postgres]
type = "postgres"
[jobs.migrate]
command = ["true"]
lock = "postgress"
[programs.web]
command = ["true"]
""",
        )
    )
    assert found["jobs.migrate.lock"] == "'postgress' is not a postgres dependency (did you mean `postgres`?)"
    assert found["supervisor.traffic[0]"] == "unknown unit 'wbe' (did you mean `web`?)"
