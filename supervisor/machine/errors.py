"""Exceptions, and the process exit codes the command line promises (see the CLI reference)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GAVE_UP = 1  # a program exhausted its restart budget
EXIT_UNREACHABLE = 3  # the daemon cannot be reached
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: a dependency or job gave up
EXIT_CONFIG = 78  # EX_CONFIG: invalid configuration
EXIT_SIGPIPE = 141  # 128 + SIGPIPE: the reader of our output went away (`logs -f | head`)


class SupervisorError(Exception):
    """Base class of the errors this package raises on purpose."""


class ConfigError(SupervisorError):
    """An invalid configuration: every problem as ``file: key.path: what``."""

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, list[tuple[str, str]]]]:
        # A validating child sends its refusal back pickled; the message is derived, not stored.
        return (ConfigError, (self.path, self.problems))

    def render(self) -> str:
        """Return one line per problem, each naming the file and the key."""
        lines = [f"{self.path}: {key or '(top level)'}: {what}" for key, what in self.problems]
        return "invalid configuration:\n  " + "\n  ".join(lines)


class ConfigNotFound(ConfigError):
    """No file at the configuration's path: nothing to validate (not an invalid one; still exit 78)."""

    def __init__(self, path: str, where: str, cwd: str) -> None:
        self.where = where  # the absolute path that was tried
        self.cwd = cwd  # the working directory a relative path was named from
        super().__init__(path, [("", f"no configuration file at {where}")])

    def __reduce__(self) -> tuple[type[ConfigNotFound], tuple[str, str, str]]:  # type: ignore[override]
        return (ConfigNotFound, (self.path, self.where, self.cwd))

    def render(self, origin: str | None = None) -> str:
        """Say which file is missing; with ``origin`` (how the command line chose it), how to name another."""
        lines = [f"no configuration file at {self.where}"]
        relative = not self.path.startswith("/")
        named = f"{self.path} ({origin})" if origin else self.path
        if relative:
            lines.append(f"  {named} is relative to the working directory, {self.cwd}")
        elif origin:
            lines[0] += f" ({origin})"
        if origin:
            lines.append("  name the file with --config FILE, or set SUPERVISOR_CONFIG=FILE")
        return "\n".join(lines)


class SpawnError(SupervisorError):
    """A child could not be started (exec failed, bad cwd, unknown user...)."""
