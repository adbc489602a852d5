"""Commands, variables and durations as other tools write them, in our words.

Our files expand ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``${VAR:?message}``
when loaded, and run commands as an argv, without a shell. A command that needs a shell (a
pipe, ``&&``, a redirection, ``cd``) keeps it: ``["sh", "-c", "..."]``.
"""

from __future__ import annotations

import re
import shlex

# A reference we can write as ours: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?m}, and ${VAR?m}.
_REFERENCE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?+])[^}]*)?\})")
_SHELL = re.compile(r"&&|\|\||[|;<>`]|\$\(|^\s*(cd|export|exec|source|\.)\s")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")


class Untranslatable(ValueError):
    """A value uses a form of interpolation we have no equivalent for."""


def variables(text: str, notes: list[str]) -> str:
    """Return ``text`` with each variable reference in our form.

    ``${VAR?m}`` (an error only when unset) becomes ``${VAR:?m}``, which refuses an empty value
    too, and says so in ``notes``; ``${VAR:+x}`` and ``${VAR+x}`` have no equivalent and raise
    ``Untranslatable``.
    """

    def ours(match: re.Match[str]) -> str:
        bare, braced, rest = match.groups()
        name = bare or braced
        if not rest:
            return "${" + name + "}"
        if rest.startswith(("+", ":+")):
            raise Untranslatable(f"{match.group(0)} (a value only when set) has no equivalent here")
        if rest.startswith("?"):
            notes.append(f"{match.group(0)} became ${{{name}:?{rest[1:]}}}, which refuses an empty value too")
            return "${" + name + ":?" + rest[1:] + "}"
        return "${" + name + rest + "}"

    return _REFERENCE.sub(ours, text)


def needs_shell(line: str) -> bool:
    """Whether a command line uses the shell: operators, redirections, substitutions, ``cd``."""
    return bool(_SHELL.search(line))


def argv(line: str, notes: list[str]) -> tuple[list[str], dict[str, str]]:
    """Return a command line as an argv and the ``VAR=value`` assignments that lead it.

    A line that needs a shell becomes ``["sh", "-c", line]``, variables left to that shell.
    """
    if needs_shell(line):
        return ["sh", "-c", line.strip()], {}
    words = shlex.split(line)
    env: dict[str, str] = {}
    while words and _ASSIGNMENT.match(words[0]):
        name, _, val = words.pop(0).partition("=")
        env[name] = variables(val, notes)
    return [variables(w, notes) for w in words], env


def seconds(text: str | int | float) -> float | None:
    """Return seconds from Compose's duration ("1m30s", "10s", "500ms") or a number; None when it is neither."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text)
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = _DURATION_PART.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(n) * units[u] for n, u in parts)


def duration(value: float) -> str | int | float:
    """Return seconds as we would write them: whole seconds as "10s", else the number."""
    return f"{int(value)}s" if value == int(value) else value
