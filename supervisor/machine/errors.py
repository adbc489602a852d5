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


class SpawnError(SupervisorError):
    """A child could not be started (exec failed, bad cwd, unknown user...)."""
