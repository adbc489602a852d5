"""The cache of validated configurations: its key, and entries that only we can have written.

A result is cached under ``$SUPERVISOR_CACHE_DIR`` (else the XDG cache directory), keyed by
everything validation reads:

- the file's bytes and its absolute path as named (symbolic links are not resolved, so a
  release reached through ``current/`` keeps it: see ``settings.absolute``);
- the environment, whole but for variables set per process or container (``HOSTNAME``,
  ``INVOCATION_ID``, ``PWD``...: ``_VOLATILE``) that the file does not interpolate, so that
  ``check`` at image build or in ``ExecStartPre=`` leaves what ``run`` reads;
- the working directory, the user, the supervisor's version and Python's;
- the code that validates: the sizes and mtimes of every module in ``config/`` and ``machine/``,
  and pydantic's (``_libraries_stamp``, found without importing it).

The cache directory and its entries are used only when owned by us and writable by no one
else, an entry only when it is a regular file (opened without following a link or waiting on
a FIFO), and read only by an unpickler that accepts the configuration's own classes. Without
a directory we trust there is no cache: every start validates.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from supervisor import __version__
from supervisor.config import cachefiles, settings
from supervisor.config.digest import blake2b
from supervisor.config.settings import Loaded, absolute

_CODE = Path(__file__).resolve().parents[1]
# The code that decides what a file validates to: every module of these folders (the loader and
# what it imports, lazily too, live there; tests/unit/test_cache_key.py checks that), so that an
# edited checkout or editable install never reads a result the old code gave.
_CODE_DIRS = ("config", "machine")
# The libraries whose code decides it too (pydantic-settings reads the SUPERVISOR_* overrides).
_LIBRARIES = ("pydantic", "pydantic_core", "pydantic_settings")
_KEEP = 64  # cached configurations kept per cache directory; the oldest go first
_STALE_NS = 600 * 10**9  # a temporary file this old lost its writer (a write takes milliseconds)
# Set per process, container or login rather than per deployment: `check` in ExecStartPre or
# an image build and the `run` after it see different values. Validation reads none of them
# by name (PWD only names a relative file, and that name is keyed); a file may still
# interpolate one, and then it is keyed.
_VOLATILE = frozenset(
    {
        "HOSTNAME",  # a container's id, the image build's sandbox
        "INVOCATION_ID",  # systemd, per start
        "SYSTEMD_EXEC_PID",
        "JOURNAL_STREAM",
        "MANAGERPID",
        "MAINPID",
        "NOTIFY_SOCKET",  # the main process's alone, not ExecStartPre's
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "SUPERVISOR_SPAWN_MARK",  # set by a supervisor that runs this one, per daemon
    }
)


def cache_key(path: Path, environ: Mapping[str, str]) -> str | None:
    """Digest of every input of validation; None when the file cannot be read."""
    digest = blake2b(digest_size=20)
    try:
        data = path.read_bytes()
        digest.update(data)
        named = absolute(path, environ)
        digest.update(f"\0{named}\0{os.getcwd()}\0{os.geteuid()}\0{__version__}\0{sys.version}\0".encode())
        for name in code_files():
            st = os.stat(_CODE / name)
            digest.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        digest.update(f"{_libraries_stamp()}\0".encode(errors="surrogateescape"))
    except OSError:
        return None
    hidden = _escapes_may_spell_names(data)
    for key in sorted(environ):
        if key in _VOLATILE and not hidden and b"${" + key.encode() not in data:
            continue  # only ${NAME} reads it, and the file has none
        digest.update(f"{key}={environ[key]}\0".encode(errors="surrogateescape"))
    return digest.hexdigest()


def code_files() -> list[str]:
    """The modules whose sizes and mtimes the key covers, relative to the package, in a stable order."""
    return sorted(
        f"{folder}/{entry.name}"
        for folder in _CODE_DIRS
        for entry in os.scandir(_CODE / folder)
        if entry.name.endswith(".py")
    )


def _libraries_stamp() -> str:
    """Which pydantic is installed, as each package's ``__init__.py`` size and mtime; nothing is imported.

    pip rewrites a package's files whenever it installs one, so another version (or a
    reinstall) gives another stamp. ``PathFinder`` finds the files on ``sys.path`` as the
    import would and runs none of them: ~0.1 ms, where ``importlib.metadata`` costs ~20 ms to
    import and ``pydantic.VERSION`` ~75 ms.
    """
    from importlib.machinery import PathFinder

    parts = []
    for name in _LIBRARIES:
        try:
            spec = PathFinder.find_spec(name)
            st = os.stat(spec.origin) if spec is not None and spec.origin else None
        except (OSError, ImportError, ValueError):
            st = None
        parts.append(f"{name}={st.st_size}:{st.st_mtime_ns}" if st is not None else f"{name}=?")
    return ";".join(parts)


def _escapes_may_spell_names(data: bytes) -> bool:
    """Whether TOML could decode a ``${NAME}`` that the bytes do not show.

    Only ``\\u``, ``\\U`` (and TOML 1.1's ``\\x``) and a line-ending backslash can make name
    characters, ``$`` or ``{`` out of other bytes, or join them across a line; the other
    escapes make none of them.
    """
    if b"\\" not in data:
        return False
    if b"\\u" in data or b"\\U" in data or b"\\x" in data:
        return True
    return any(line.rstrip(b" \t\r").endswith(b"\\") for line in data.split(b"\n"))


def _entry_name(key: str) -> str:
    return f"config-{key}.pickle"


def cached(path: Path, environ: Mapping[str, str] = os.environ) -> Loaded | None:
    """Return the cached result of validating ``path`` with these inputs, or None."""
    key = cache_key(path, environ)
    data = cachefiles.read(_entry_name(key), environ) if key is not None else None
    if data is None:
        return None
    try:
        value = settings.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, Loaded) else None


def store(
    path: Path, loaded: Loaded, environ: Mapping[str, str] = os.environ, key_before: str | None = None
) -> Path | None:
    """Cache a validation result (atomically); return the file, or None when there is no cache.

    ``key_before``: the key when validation began; a file edited meanwhile is not cached under
    its new key with the old result.
    """
    key = cache_key(path, environ)
    if key is None or (key_before is not None and key != key_before):
        return None  # unreadable now, or edited while it was validated
    return cachefiles.write(_entry_name(key), settings.dumps(loaded), environ, after=_prune)


def _prune(dir_fd: int) -> None:
    """Keep the newest ``_KEEP`` entries; drop temporary files that a writer killed mid-write left."""
    entries, stale = [], []
    now_ns = time.time_ns()
    for entry in os.scandir(dir_fd):
        try:
            mtime_ns = entry.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        if entry.name.startswith("config-") and entry.name.endswith(".pickle"):
            entries.append((mtime_ns, entry.name))
        elif entry.name.startswith(".config-") and now_ns - mtime_ns > _STALE_NS:
            stale.append(entry.name)
    for name in stale + [name for _, name in sorted(entries)[:-_KEEP]]:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except OSError:
            pass
