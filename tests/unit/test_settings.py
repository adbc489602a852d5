"""The plain settings mirror the file's tables field for field, and only they come back from a pickle."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from supervisor.config import load, settings
from supervisor.config.models import _PLAIN
from supervisor.machine.errors import ConfigError

# Fields the loader fills in after validation; the file cannot set them.
EXTRAS = {
    "JobConfig": {"from_alembic_cmd"},
    "ProgramConfig": {"ladder", "instance_of", "instance"},  # an instance of a program with `instances`
    "Config": {"templates"},
}


@pytest.mark.parametrize("table", list(_PLAIN), ids=lambda t: t.__name__)
def test_every_table_has_a_plain_twin_with_the_same_fields(table: type) -> None:
    """A key added to a table and forgotten in settings (or the reverse) fails here, not at run time."""
    twin = _PLAIN[table]
    plain_fields = {f.name for f in dataclasses.fields(twin)}
    assert plain_fields - EXTRAS.get(twin.__name__, set()) == set(table.model_fields)  # type: ignore[attr-defined]


def full(tmp_path: Path) -> settings.Loaded:
    path = tmp_path / "supervisor.toml"
    path.write_text("""
[dependencies.db]
type = "postgres"
url = "postgresql://localhost/x"
backoff = { initial = "1s", max = "4s" }
[jobs.migrate]
command = ["alembic", "upgrade", "head"]
lock = "db"
alembic_config = "alembic.ini"
[programs.web]
command = ["app"]
depends_on = ["migrate"]
stop_signal = ["SIGTERM", "SIGQUIT"]
stop_timeout = [4, 2]
health = { http = "http://127.0.0.1:1/health", interval = "2s" }
max_memory = "512MiB"
""")
    return load(path, environ={"ALEMBIC_CMD": "alembic upgrade heads"})


def test_a_loaded_configuration_is_plain_and_round_trips(tmp_path: Path) -> None:
    """What the loader returns holds no pydantic object and survives dumps/loads unchanged."""
    loaded = full(tmp_path)
    web = loaded.config.programs["web"]
    assert type(web) is settings.ProgramConfig and type(web.health) is settings.HealthConfig
    assert web.stop_ladder() == (("SIGTERM", 4.0), ("SIGQUIT", 2.0)) and web.stop_total == 6.0
    assert web.health.kind == "http" and web.max_memory == 512 << 20
    job = loaded.config.jobs["migrate"]
    assert job.from_alembic_cmd and job.command == ["alembic", "upgrade", "heads"]
    assert loaded.config.dependencies["db"].backoff == settings.BackoffConfig(1.0, 2.0, 4.0, 0.1)
    assert settings.loads(settings.dumps(loaded)) == loaded


def test_a_refusal_round_trips_with_its_problems() -> None:
    """A child's ConfigError comes back with the file and every problem."""
    back = settings.loads(settings.dumps(ConfigError("/x.toml", [("programs.a.command", "required key is missing")])))
    assert isinstance(back, ConfigError) and back.problems == [("programs.a.command", "required key is missing")]
    assert "/x.toml: programs.a.command: required key is missing" in back.render()


class Hostile:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("owned",))


@pytest.mark.parametrize(
    "data",
    [pickle.dumps(Hostile()), pickle.dumps({"a": 1}), pickle.dumps([1, 2]), b"", b"\x80\x05garbage"],
    ids=["a callable", "a dict", "a list", "empty", "garbage"],
)
def test_anything_but_a_configuration_is_refused(data: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    """The unpickler resolves only the configuration's classes: nothing else is built or called."""
    with pytest.raises(ValueError, match="not a configuration"):
        settings.loads(data)
    assert "owned" not in capsys.readouterr().out
