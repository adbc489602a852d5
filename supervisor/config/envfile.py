"""``env_file``: variables read from dotenv files at each start, below a unit's ``environment``."""

from __future__ import annotations

import io
from collections.abc import Iterable


class EnvFileError(Exception):
    """An env_file that must be read could not be."""


def split_optional(entry: str) -> tuple[str, bool]:
    """Return the path and whether it is optional (systemd's ``EnvironmentFile=-path``)."""
    return (entry[1:], True) if entry.startswith("-") else (entry, False)


def load_env_files(entries: Iterable[str]) -> dict[str, str]:
    """Read each file in order (later ones win); an optional file (``-path``) may be missing."""
    env: dict[str, str] = {}
    for entry in entries:
        path, optional = split_optional(entry)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            if optional:
                continue
            raise EnvFileError(f"env_file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise EnvFileError(f"env_file {path} cannot be read: {why}") from None
        from dotenv import dotenv_values  # only units with an env_file pay for the import

        env.update({k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None})
    return env


def unit_environment(env_file: Iterable[str], environment: dict[str, str]) -> dict[str, str]:
    """Return what a unit adds to the inherited environment: its env files, then ``environment`` on top."""
    return {**load_env_files(env_file), **environment}
