"""The ``watch`` globs of a program: what they match, where to watch, and which match nothing yet.

A glob is relative to the program's ``cwd`` (else the supervisor's own directory) unless it is
absolute. ``*`` and ``?`` stay within one path segment, ``**`` spans any number of them
(``app/**/*.py`` matches ``app/main.py`` and ``app/api/v1/routes.py``), ``[...]`` is a class.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Mapping

from supervisor.config.settings import Loaded, ProgramConfig

_MAGIC = re.compile(r"[*?\[]")


def _segment(text: str) -> str:
    """Translate one path segment's wildcards into a regular expression."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := text.find("]", i + 2)) > 0:  # a class: [abc], [!abc], []abc]
            body = text[i + 1 : end]
            negated = body.startswith("!")
            out.append("[" + ("^" if negated else "") + re.escape(body[1:] if negated else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Return a regular expression that matches the paths (``/``-separated) the glob names."""
    parts = pattern.strip("/").split("/")
    out = ["/" if pattern.startswith("/") else ""]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
        else:
            out.append(_segment(part) + ("" if last else "/"))
    return re.compile("".join(out) + r"\Z")


def root(base: str, pattern: str) -> str:
    """Return the directory to watch for a glob: the part of its path before the first wildcard."""
    fixed = []
    for part in pattern.split("/"):
        if _MAGIC.search(part):
            break
        fixed.append(part)
    else:
        fixed = fixed[:-1]  # no wildcard at all: a file; watch its directory
    return os.path.normpath(os.path.join(base, "/".join(fixed) or "."))


class Globs:
    """A program's ``watch`` globs against its base directory."""

    def __init__(self, base: str, patterns: Iterable[str]) -> None:
        self.base = os.path.abspath(base)
        self.patterns = list(patterns)
        self._compiled = [compile_glob(p) for p in self.patterns]

    def matches(self, path: str) -> bool:
        """Whether ``path`` (absolute) is named by one of the globs."""
        rel = os.path.relpath(path, self.base)
        return any(
            r.match(path if p.startswith("/") else rel) for p, r in zip(self.patterns, self._compiled, strict=True)
        )

    def roots(self) -> list[str]:
        """Return the directories to watch (recursively), the existing ones only, none inside another."""
        found = sorted({root(self.base, p) for p in self.patterns if os.path.isdir(root(self.base, p))})
        return [d for d in found if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in found)]

    def unmatched(self) -> list[str]:
        """Return the globs that match no file now (a warning: the files may come later)."""
        return [
            p
            for p in self.patterns
            if next(glob.iglob(os.path.join(self.base, p), recursive=True, include_hidden=True), None) is None
        ]


def watch_warnings(programs: Mapping[str, ProgramConfig]) -> list[str]:
    """Return one warning per program's ``watch`` glob that matches nothing (each program once, not per instance)."""
    out: list[str] = []
    seen: set[str] = set()
    for name, cfg in programs.items():
        group = cfg.instance_of or name
        if not cfg.watch or group in seen:
            continue
        seen.add(group)
        base = cfg.cwd or os.getcwd()
        for pattern in Globs(base, cfg.watch).unmatched():
            out.append(f"programs.{group}.watch: {pattern!r} matches no file under {base} (yet); it is watched anyway")
    return out


def all_warnings(loaded: Loaded) -> list[str]:
    """A configuration's warnings, with those that depend on the file system now (globs that match nothing).

    The latter are found at each call, not kept with the result: one read back from the cache
    would otherwise repeat a warning about a file that has since appeared.
    """
    return [*loaded.warnings, *watch_warnings(loaded.config.programs)]
