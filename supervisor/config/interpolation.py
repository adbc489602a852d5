"""``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``${VAR:?message}`` (stdlib only)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*)|(:\?)([^}]*))?\}")


class FromEnv(str):
    """A string whose value came from the environment: the one kind of value parsed into a key's type."""

    __slots__ = ()


def interpolate(value: str, environ: Mapping[str, str], key: str, problems: list[tuple[str, str]]) -> str:
    """Expand variables in ``value``; a ``:?`` that is unset adds ``(key, message)`` to ``problems``.

    A string that named a variable comes back as ``FromEnv``; any other comes back unchanged.
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
        return current or ""

    expanded, count = _VAR.subn(expand, value)
    return FromEnv(expanded) if count else value


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
