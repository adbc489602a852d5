"""An unset ``${VAR}`` without a default is a warning that names the variable and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config import load

UNSET_PORT = """
[programs.web]
command = ["uvicorn", "app:app", "--port", "${PORT}"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "supervisor.toml"
    path.write_text(text)
    return path


def test_an_unset_variable_without_a_default_is_a_warning_naming_it_and_its_key(tmp_path: Path) -> None:
    """${PORT} with PORT unset validates, becomes "", and warns with the key and the way out."""
    loaded = load(write(tmp_path, UNSET_PORT), environ={})
    assert loaded.config.programs["web"].command[3] == ""
    assert loaded.warnings == [
        "programs.web.command[3]: ${PORT} is not set: it becomes an empty string; "
        "set it, or give it a default: ${PORT:-VALUE}"
    ]


@pytest.mark.parametrize(
    ("value", "environ"),
    [
        ("${PORT}", {"PORT": "8000"}),
        ("${PORT}", {"PORT": ""}),  # set to the empty string is set, as in Compose
        ("${PORT:-8000}", {}),
        ("${PORT-8000}", {}),
        ("${PORT:-}", {}),  # an empty default is a choice
    ],
)
def test_a_set_variable_or_a_default_is_no_warning(tmp_path: Path, value: str, environ: dict[str, str]) -> None:
    """Only a plain ${VAR} whose variable is absent from the environment warns."""
    loaded = load(write(tmp_path, UNSET_PORT.replace("${PORT}", value)), environ=environ)
    assert not [w for w in loaded.warnings if "PORT" in w], loaded.warnings


def test_each_key_warns_and_the_instance_variable_does_not(tmp_path: Path) -> None:
    """Every key that uses an unset variable is named; ${SUPERVISOR_INSTANCE} in a program with instances is ours."""
    text = """
[supervisor]
socket = "${RUN_DIR}/s.sock"
[programs.web]
command = ["uvicorn", "--port", "${PORT}"]
environment = { URL = "http://h:${PORT}/" }
[programs.worker]
instances = 2
command = ["celery", "-n", "w${SUPERVISOR_INSTANCE}@${HOST}"]
"""
    loaded = load(write(tmp_path, text), environ={})
    assert [w.split(" is not set")[0] for w in loaded.warnings] == [
        "supervisor.socket: ${RUN_DIR}",
        "programs.web.command[2]: ${PORT}",
        "programs.web.environment.URL: ${PORT}",
        "programs.worker.command[2]: ${HOST}",
    ]


def test_a_key_replaced_by_an_override_does_not_warn(tmp_path: Path) -> None:
    """SUPERVISOR_PROGRAMS__WEB__COMMAND replaces the file's command: its unset ${PORT} is not used."""
    environ = {"SUPERVISOR_PROGRAMS__WEB__COMMAND": '["uvicorn", "app:app"]'}
    assert load(write(tmp_path, UNSET_PORT), environ=environ).warnings == []
    table = UNSET_PORT + 'environment = { A = "${NOPE}", B = "1" }\n'
    environ = {"SUPERVISOR_PROGRAMS__WEB__ENVIRONMENT": '{"B": "2"}', "PORT": "1"}
    assert [w.split(":")[0] for w in load(write(tmp_path, table), environ=environ).warnings] == [
        "programs.web.environment.A"
    ]  # a table override is merged key by key: A is still the file's
