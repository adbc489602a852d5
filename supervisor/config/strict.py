"""The base of every table of the file: unknown keys are errors, values are never coerced."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from supervisor.config.fields import parse_from_env


class Strict(BaseModel):
    """Base of every table: unknown keys are errors, values are never coerced across types."""

    # A field's docstring (the string literal below it) is its description: the schema and the
    # configuration reference are generated from it.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _parse_env_strings(cls, data: Any) -> Any:
        """Strings from the environment may become the key's type; nothing else is converted."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: parse_from_env(fields[k].annotation, v) if k in fields else v for k, v in data.items()}
