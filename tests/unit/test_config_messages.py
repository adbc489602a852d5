"""A missing configuration file is named as such: the absolute path tried, and how to name one."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import cli
from supervisor.config import load, settings
from supervisor.machine.errors import EXIT_CONFIG, ConfigError, ConfigNotFound


def missing(path: Path, environ: dict[str, str]) -> ConfigNotFound:
    with pytest.raises(ConfigNotFound) as info:
        load(path, environ=environ)
    return info.value


def test_a_missing_default_file_names_the_absolute_path_the_directory_and_how_to_name_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default name is tried in the working directory: the message says so, and not "invalid"."""
    monkeypatch.chdir(tmp_path)
    exc = missing(Path(settings.DEFAULT_PATH), {"PWD": str(tmp_path)})
    assert isinstance(exc, ConfigError)  # still EX_CONFIG for the callers that catch ConfigError
    shown = exc.render(settings.path_origin(None, {}))
    assert shown.splitlines() == [
        f"no configuration file at {tmp_path}/conf/supervisor.toml",
        f"  conf/supervisor.toml (the default) is relative to the working directory, {tmp_path}",
        "  name the file with --config FILE, or set SUPERVISOR_CONFIG=FILE",
    ]
    assert "invalid" not in shown


def test_an_absolute_missing_file_says_where_its_name_came_from(tmp_path: Path) -> None:
    """A file named by $SUPERVISOR_CONFIG is named with that origin; without one (a reload) only the fact."""
    exc = missing(tmp_path / "gone.toml", {})
    origin = settings.path_origin(None, {"SUPERVISOR_CONFIG": str(tmp_path / "gone.toml")})
    assert exc.render(origin).splitlines() == [
        f"no configuration file at {tmp_path}/gone.toml (from $SUPERVISOR_CONFIG)",
        "  name the file with --config FILE, or set SUPERVISOR_CONFIG=FILE",
    ]
    assert exc.render() == f"no configuration file at {tmp_path}/gone.toml"
    assert settings.path_origin("x.toml", {"SUPERVISOR_CONFIG": "y"}) == "named on the command line"


def test_a_missing_file_comes_back_from_a_validating_child_as_itself(tmp_path: Path) -> None:
    """`run` validates in a child and reads its refusal pickled: a missing file keeps its own message."""
    exc = missing(tmp_path / "gone.toml", {})
    back = settings.loads(settings.dumps(exc))
    assert isinstance(back, ConfigNotFound)
    assert back.render("the default") == exc.render("the default")


@pytest.mark.parametrize("argv", [["check"], ["exec", "--like", "web", "--", "true"], ["run"], ["migrate"]])
def test_commands_that_read_the_file_outside_the_checkout_say_no_file_was_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """From a directory without conf/supervisor.toml, exit 78 naming the path tried and how to name one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.delenv("SUPERVISOR_CONFIG", raising=False)
    for name in ("SUPERVISOR_CPUS", "SUPERVISOR_MEMORY_MB"):  # the commands set them: undone afterwards
        monkeypatch.setenv(name, "1")
    assert cli.main(argv) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"supervisor: no configuration file at {tmp_path}/conf/supervisor.toml\n"), err
    assert f"relative to the working directory, {tmp_path}" in err
    assert "--config FILE" in err and "SUPERVISOR_CONFIG=FILE" in err
    assert "invalid configuration" not in err
