"""``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``${VAR:?message}`` (stdlib only)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*)|(:\?)([^}]*))?\}")


class FromEnv(str):
    """A string whose value came from the environment: the one kind of value parsed into a key's type."""

    __slots__ = ()


def interpolate(
    value: str,
    environ: Mapping[str, str],
    key: str,
    problems: list[tuple[str, str]],
    unset: list[tuple[str, str]] | None = None,
) -> str:
    """Expand variables in ``value``; a ``:?`` that is unset adds ``(key, message)`` to ``problems``.

    A plain ``${VAR}`` whose variable is unset becomes an empty string, as in Compose, and adds
    ``(key, VAR)`` to ``unset`` (when given): the loader warns of it. A variable set to the empty
    string is set. A string that named a variable comes back as ``FromEnv``; any other comes
    back unchanged.
    """

    def expand(match: re.Match[str]) -> str:
        name, dash, default, question, message = match.groups()
        current = environ.get(name)
        if question:
            if not current:
                problems.append((key, f"${{{name}}} is not set: {message or 'required'}"))
                return ""
            return current
        if dash == ":-":
            return current if current else default
        if dash == "-":
            return current if current is not None else default
        if current is None and unset is not None:
            unset.append((key, name))
        return current or ""

    expanded, count = _VAR.subn(expand, value)
    return FromEnv(expanded) if count else value


def unset_warnings(unset: list[tuple[str, str]], overrides: Mapping[str, object]) -> list[str]:
    """Return a warning per ``(key, VAR)`` found unset, but for keys that a ``SUPERVISOR_*`` override replaced."""

    def replaced(key: str, table: Mapping[str, object], prefix: str) -> bool:
        for name, value in table.items():
            path = f"{prefix}.{name}" if prefix else name
            if key == path or key.startswith((f"{path}.", f"{path}[")):
                # A table is merged key by key (as the loader merges it); anything else replaces.
                return replaced(key, value, path) if isinstance(value, Mapping) else True
        return False

    return [
        f"{key}: ${{{name}}} is not set: it becomes an empty string; set it, or give it a default: ${{{name}:-VALUE}}"
        for key, name in dict.fromkeys(unset)
        if not replaced(key, overrides, "")
    ]


def default_socket() -> str:
    """Return the control socket used when the configuration names none.

    ``$SUPERVISOR_SOCKET`` when set; else, for root, ``/run/supervisor/supervisor.sock``; else
    ``$XDG_RUNTIME_DIR/supervisor/supervisor.sock``, or ``/tmp/supervisor-UID/supervisor.sock``
    without it. None of these depends on the working directory, so a client run from anywhere
    finds a daemon that was started from anywhere.
    """
    if os.environ.get("SUPERVISOR_SOCKET"):
        return os.environ["SUPERVISOR_SOCKET"]
    if os.geteuid() == 0:
        return "/run/supervisor/supervisor.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return f"{runtime}/supervisor/supervisor.sock"
    return f"/tmp/supervisor-{os.geteuid()}/supervisor.sock"
