"""`supervisor schema` prints a JSON Schema that every shipped configuration validates against."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from supervisor.config.models import ConfigFile
from supervisor.config.schema import schema

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for d in ("conf", "examples", "deploy") for p in (ROOT / d).rglob("*.toml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    out = subprocess.run([sys.executable, "-m", "supervisor", "schema"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def errors(validator: jsonschema.Draft202012Validator, data: dict[str, Any]) -> list[str]:
    return ["/".join(map(str, e.absolute_path)) + f": {e.message}" for e in validator.iter_errors(data)]


def test_there_are_shipped_files_to_check() -> None:
    """conf/, examples/ and deploy/ hold configurations (so the next test checks something)."""
    assert ROOT / "conf/supervisor.toml" in SHIPPED and ROOT / "deploy/vm/supervisor.toml" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_configuration_validates(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    """Each shipped .toml, interpolations, ladders, durations and sizes as written, passes the schema."""
    assert errors(validator, tomllib.loads(path.read_text())) == []


def test_the_schema_refuses_what_the_models_refuse(validator: jsonschema.Draft202012Validator) -> None:
    """Unknown keys at any depth, a policy outside its choices, a malformed duration: all refused."""
    assert errors(validator, {"supervisor": {"sokcet": "x"}})
    assert errors(validator, {"programs": {"web": {"command": ["x"], "restart": {"policy": "sometimes"}}}})
    assert errors(validator, {"programs": {"web": {"command": ["x"], "stop_timeout": "soon"}}})
    assert errors(validator, {"programs": {"web": {"command": []}}})
    assert errors(validator, {"programs": {"web": {}}}), "command is required"
    ok = {
        "programs": {
            "web": {
                "command": ["x"],
                "stop_signal": ["SIGTERM", "SIGQUIT"],
                "stop_timeout": ["20s", 5],
                "max_memory": "512MB",
                "autostart": "${WEB:-true}",
                "env_file": "-.env",
            }
        }
    }
    assert errors(validator, ok) == []


def test_every_key_is_in_the_schema_with_its_description() -> None:
    """Each field of each model is a property of its table in the schema, described by its docstring."""
    document = schema()
    tables = {name: d for name, d in document["$defs"].items()}
    for name, table in tables.items():
        model = getattr(sys.modules[ConfigFile.__module__], name)
        for key, field in model.model_fields.items():
            assert table["properties"][key]["description"] == field.description, f"{name}.{key}"
    assert set(document["properties"]) == set(ConfigFile.model_fields)


def test_the_docs_show_the_schema_line_for_editors() -> None:
    """The configuration page names taplo and Even Better TOML and shows the #:schema line."""
    page = (ROOT / "docs/configuration.md").read_text()
    assert "#:schema ./supervisor.schema.json" in page and "supervisor schema >" in page
    assert "taplo" in page and "Even Better TOML" in page
