"""The configuration's JSON Schema (draft 2020-12), for editors: `supervisor schema`.

Generated from the same models that validate a file, so it cannot fall behind them. It
describes the file as written: durations and sizes as numbers or strings ("2s", "512MB"),
``stop_signal`` and ``stop_timeout`` as a value or a ladder, and wherever a value is not a free
string, a ``${VAR}`` string too, since interpolation happens before validation. TOML has no
null, so "unset" is never offered; a table's default is left to the reference.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from supervisor.config.fields import DURATION_SCHEMA
from supervisor.config.models import ConfigFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# A string that names a variable, such as "${PORT:-8000}": a value of any type once expanded.
INTERPOLATED = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*"}
LADDERS = {
    "stop_signal": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
    "stop_timeout": {"anyOf": [*DURATION_SCHEMA["anyOf"], {"type": "array", "items": DURATION_SCHEMA, "minItems": 1}]},
}


def schema() -> dict[str, Any]:
    """Return the JSON Schema of a configuration file."""
    raw = ConfigFile.model_json_schema()
    out: dict[str, Any] = {"$schema": DRAFT, "title": "stack-supervisor configuration"}
    out.update({k: v for k, v in raw.items() if k != "title"})
    for name, table in out.get("$defs", {}).items():
        for key, prop in table.get("properties", {}).items():
            if name == "ProgramTable" and key in LADDERS:
                prop.pop("type", None)
                prop.update(copy.deepcopy(LADDERS[key]))
            table["properties"][key] = _as_written(prop)
    out["properties"] = {key: _as_written(prop) for key, prop in out["properties"].items()}
    return out


def _as_written(prop: dict[str, Any]) -> dict[str, Any]:
    """One property as a file may write it: no null, no table default, a ``${VAR}`` where a value is typed."""
    prop = dict(prop)
    if "anyOf" in prop:
        options = [o for o in prop["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            del prop["anyOf"]
            prop.update(options[0])
        else:
            prop["anyOf"] = options
        if prop.get("default", 0) is None:
            del prop["default"]
    if "$ref" in prop:
        prop.pop("default", None)  # a table's defaults are its keys' defaults
        return prop
    return _interpolable(prop)


def _interpolable(prop: dict[str, Any]) -> dict[str, Any]:
    """Let a typed value (not a free string, not a table) be written as a ``${VAR}`` string too."""
    if "anyOf" in prop:
        prop["anyOf"] = [_interpolable(dict(o)) if o.get("type") == "array" else o for o in prop["anyOf"]]
        if any(_typed(o) for o in prop["anyOf"]):
            prop["anyOf"] = [*prop["anyOf"], INTERPOLATED]
        return prop
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        prop["items"] = _interpolable(dict(prop["items"]))
        return prop
    if prop.get("type") == "object" and isinstance(prop.get("additionalProperties"), dict):
        return prop
    if _typed(prop):
        keys = {"description", "default", "title"}
        value = {k: v for k, v in prop.items() if k not in keys}
        return {**{k: v for k, v in prop.items() if k in keys}, "anyOf": [value, INTERPOLATED]}
    return prop


def _typed(prop: dict[str, Any]) -> bool:
    """Whether a leaf takes something other than any string: a number, a boolean, a choice, a pattern."""
    kind = prop.get("type")
    if kind in ("integer", "number", "boolean"):
        return True
    return kind == "string" and ("enum" in prop or "const" in prop or "pattern" in prop)


def render() -> str:
    """Return the schema as the command prints it."""
    return json.dumps(schema(), indent=2) + "\n"
