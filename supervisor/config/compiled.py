"""Load a configuration without importing pydantic: from the cache, or from a child that validates it.

The daemon runs on ``supervisor.config.settings``' plain values. Validating needs pydantic (~15 MB
resident, ~75 ms to import), so a short-lived child validates (``python -m
supervisor.config.compiled FILE OUT``) and writes the result, pickled, to ``OUT``; its
refusal comes back the same way, as the ``ConfigError`` the loader raised. A result is kept
in ``supervisor.config.cache``, whose key says what it covers; a start with the same inputs
reads it and spawns no child. Anything unusual (no cache directory we trust, a child that
cannot run or gives no answer within ``CHILD_TIMEOUT``) falls back to validating in this
process: slower and larger, never wrong.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from supervisor.config import settings
from supervisor.config.cache import cache_key, cached, store
from supervisor.config.settings import Loaded
from supervisor.machine.errors import ConfigError

__all__ = ["CHILD_TIMEOUT", "begin", "cache_key", "cached", "child_argv", "load", "load_async", "main", "store"]

# How long a validating child may take. pydantic's import and a large file take well under a
# second; a child still at it after this is stuck (a hung file system, a lock held across the
# fork), and validating here is the way on. The daemon's reload gives its child as long.
CHILD_TIMEOUT = 120.0


def child_argv(path: Path, out: str) -> list[str]:
    """The command that validates ``path`` and writes the result to ``out``."""
    return [sys.executable, "-m", "supervisor.config.compiled", str(path), out]


def _scratch() -> str:
    import tempfile  # only on a miss: it costs the daemon 1.4 MB

    fd, out = tempfile.mkstemp(prefix="supervisor-config-")
    os.close(fd)
    return out


def _validated(path: Path | str, environ: Mapping[str, str]) -> bytes:
    """The validating child's answer: the configuration, or the refusal, pickled."""
    from supervisor.config.loader import load as load_here

    try:
        result: Loaded | ConfigError = load_here(path, environ)
    except ConfigError as exc:
        result = exc
    return settings.dumps(result)


def _settle(
    value: Loaded | ConfigError | None, path: Path, environ: Mapping[str, str], key_before: str | None
) -> Loaded:
    """Return (and cache) the child's configuration, raise its refusal, or validate here without one."""
    if value is None:  # the child could not run or answer: validate here, at pydantic's cost
        from supervisor.config.loader import load as load_here

        return load_here(path, environ)
    if isinstance(value, ConfigError):
        raise value
    store(path, value, environ, key_before)
    return value


def _finish(path: Path, out: str, ran: bool, environ: Mapping[str, str], key_before: str | None) -> Loaded:
    """Settle what a validating child wrote to ``out``."""
    value: Loaded | ConfigError | None = None
    try:
        with open(out, "rb") as fh:
            value = settings.loads(fh.read()) if ran else None
    except (OSError, ValueError):
        value = None
    finally:
        os.unlink(out)
    return _settle(value, path, environ, key_before)


def load(path: Path, environ: Mapping[str, str] = os.environ) -> Loaded:
    """Validate ``path`` without importing pydantic here; raise ``ConfigError`` as the loader does."""
    hit = cached(path, environ)
    if hit is not None:
        return hit
    import subprocess

    key_before = cache_key(path, environ)
    out = _scratch()
    try:
        done = subprocess.run(child_argv(path, out), env=dict(environ), capture_output=True, timeout=CHILD_TIMEOUT)
        ran = done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ran = False
    return _finish(path, out, ran, environ, key_before)


def begin(path: Path, environ: Mapping[str, str] = os.environ, timeout: float = CHILD_TIMEOUT) -> Callable[[], Loaded]:
    """Start validating ``path`` in a forked child; call the result for the answer (or the refusal).

    ``run`` calls this first and imports the daemon while the child imports pydantic and
    validates: on two cores the miss costs the longer of the two, not their sum, and no second
    interpreter starts. Only for a process without threads (a fork copies the caller's thread
    alone); a running daemon validates with ``load_async``. A child with no answer ``timeout``
    seconds after the fork is killed, and this process validates instead.
    """
    hit = cached(path, environ)
    if hit is not None:
        return lambda: hit
    key_before = cache_key(path, environ)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    deadline = time.monotonic() + timeout
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return lambda: load(path, environ)
    if pid == 0:  # pragma: no cover - the child's side; its result is all it leaves
        code = 70
        try:
            os.close(read_end)
            view = memoryview(_validated(path, environ))
            while view:
                view = view[os.write(write_end, view) :]
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)

    def finish() -> Loaded:
        try:
            data = _read_until(read_end, deadline)
        finally:
            os.close(read_end)
        if data is None:
            os.kill(pid, signal.SIGKILL)
            print(
                f"supervisor: the child validating {path} gave no answer within {timeout:g}s; "
                "validating in this process",
                file=sys.stderr,
            )
            # Waited for a second at most: a child stuck in the kernel (a hung file system) dies
            # only when its I/O ends, and the daemon's reaper collects it then, as an orphan.
            reap_by = time.monotonic() + 1.0
            while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < reap_by:
                time.sleep(0.01)
            return _settle(None, path, environ, key_before)
        _, status = os.waitpid(pid, 0)  # it closed the pipe: exiting; no reaper runs before the loop
        try:
            value = settings.loads(data) if os.waitstatus_to_exitcode(status) == 0 else None
        except ValueError:
            value = None
        return _settle(value, path, environ, key_before)

    return finish


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Read ``fd`` to its end; None if the end has not come by ``deadline`` (``time.monotonic()``)."""
    import select  # asyncio has imported it already in `run`

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return data
        data += chunk


async def load_async(
    path: Path, run_child: Callable[[list[str]], Awaitable[bool]], environ: Mapping[str, str] = os.environ
) -> tuple[Loaded, str]:
    """``load`` for a running daemon: ``run_child(argv)`` runs the validating child, True when it exited 0.

    Returns the configuration and where it came from: ``cache`` (a validation of the same bytes,
    environment and code was kept: a reload back to an earlier file, or of one that ``check``
    passed) or ``validation``.
    """
    hit = cached(path, environ)
    if hit is not None:
        return hit, "cache"
    key_before = cache_key(path, environ)
    out = _scratch()
    try:
        ran = await run_child(child_argv(path, out))
    except BaseException:
        os.unlink(out)
        raise
    return _finish(path, out, ran, environ, key_before), "validation"


def main(argv: list[str]) -> int:
    """The child: validate ``argv[0]`` and write the result (or its refusal) to ``argv[1]``."""
    path, out = argv
    data = _validated(path, os.environ)
    with open(out, "wb") as fh:
        fh.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
