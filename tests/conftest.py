"""Shared harness: run the real daemon on a configuration, and wait on conditions with deadlines.

The suite runs in parallel (pytest-xdist, ``make test``): each worker is a process of its own,
with its own temporary directories, Redis database and Postgres databases (see
``tests/integration/conftest.py``). ``SUPERVISOR_TEST_RUN`` names the run, the same in every
worker, so that what the workers share (the template database) is named per run and checkout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from supervisor.client.api import Client, Unreachable

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "programs"
PY = sys.executable
T = TypeVar("T")
# A unix socket's path has room for 107 bytes; a longer temporary directory gets a short one.
SOCKET_PATH_MAX = 100
_OWN_BASETEMP = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)  # before pytest's own, which reads the base temporary directory
def pytest_configure(config: pytest.Config) -> None:
    """Name the run before any worker starts (workers inherit the environment), and its directories.

    Every daemon of the run shares one configuration cache of its own (SUPERVISOR_CACHE_DIR),
    so that none writes into the user's cache nor prunes another checkout's entries.

    The temporary directories go under a short base (``/tmp/pt-XXXXXXXX``, each worker's in its
    ``popen-gwN``) rather than ``/tmp/pytest-of-USER/pytest-N``: a unix socket's path has room
    for 107 bytes, and tests lay out deployments (``.../run/supervisor/supervisor.sock``) there.
    It is removed after a run that passed, and kept after one that failed.
    """
    if not hasattr(config, "workerinput"):  # the controller, or a run without workers
        os.environ.setdefault("SUPERVISOR_TEST_RUN", uuid.uuid4().hex[:10])
        if config.option.basetemp is None:
            config.option.basetemp = tempfile.mkdtemp(prefix="pt-")
            config.stash[_OWN_BASETEMP] = config.option.basetemp
    if "SUPERVISOR_CACHE_DIR" not in os.environ:
        os.environ["SUPERVISOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="supervisor-test-cache-")
        config.add_cleanup(lambda: _remove_tree(os.environ.pop("SUPERVISOR_CACHE_DIR", "")))


# The longest tests start first, and the many short ones fill in around them: otherwise a long
# test dealt out last decides when the run ends. The Makefile hands each worker two tests at a
# time, in this order; the stateful shards are spread out so that no worker gets two at once.
SPREAD = "tests/component/test_stateful.py"
FIRST = ("tests/integration/", "tests/component/", "tests/unit/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order: integration, component, unit tests (stable within each), a stateful shard every other test."""

    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(FIRST) if item.nodeid.startswith(prefix)), len(FIRST))

    spread = [item for item in items if item.nodeid.startswith(SPREAD)]
    rest = sorted((item for item in items if not item.nodeid.startswith(SPREAD)), key=rank)
    ordered: list[pytest.Item] = []
    for i, item in enumerate(spread):
        ordered += [item, *rest[i : i + 1]]
    items[:] = ordered + rest[len(spread) :]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The controller drops what the workers shared, once they are all done."""
    if not hasattr(session.config, "workerinput"):
        from tests import databases

        databases.drop_template()
        if exitstatus == 0:
            _remove_tree(session.config.stash.get(_OWN_BASETEMP, ""))


def _remove_tree(path: str) -> None:
    import shutil

    if path:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def program(name: str, *args: object) -> str:
    """Return a TOML array that runs one of tests/programs with this Python."""
    return json.dumps([PY, str(PROGRAMS / f"{name}.py"), *map(str, args)])


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    describe: str,
    seen: Callable[[], object] | None = None,
    interval: float = 0.1,
) -> T:
    """Poll ``predicate`` until truthy; on the deadline, fail saying what was wanted and seen.

    The first polls come quickly (10 ms apart) and then less and less often, up to ``interval``:
    a condition that holds soon is seen soon, and a long wait costs the daemon few requests.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    pause = min(0.01, interval)
    while True:
        try:
            value = predicate()
        except Exception as exc:  # the condition may not be checkable yet (socket not up)
            value, last = None, exc  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > deadline:
            observed = seen() if seen is not None else last
            pytest.fail(f"waited {timeout}s for {describe}; saw: {observed}")
        time.sleep(pause)
        pause = min(pause * 1.5, interval)


class Daemon:
    """A ``supervisor run`` child of the test, with its log captured to a file."""

    def __init__(
        self,
        tmp_path: Path,
        config: str | None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        argv: list[str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        """Run ``config`` (TOML text, completed with our socket and port), or ``argv`` as given."""
        self.dir = tmp_path
        self.socket = str(tmp_path / "s.sock")
        self._socket_dir: str | None = None
        if len(self.socket) > SOCKET_PATH_MAX:  # a deep temporary directory: the socket goes elsewhere
            self._socket_dir = tempfile.mkdtemp(prefix="sup-")
            self.socket = os.path.join(self._socket_dir, "s.sock")
        self.http_port = free_port()
        env = dict(env or {})
        if config is not None:
            header = (
                f'[supervisor]\nsocket = "{self.socket}"\nhttp = "127.0.0.1:{self.http_port}"\nlog_format = "json"\n'
            )
            # Our [supervisor] keys first; a test's own [supervisor] keys follow in the same table.
            config = config.replace("[supervisor]\n", header, 1) if "[supervisor]" in config else header + config
            self.config = tmp_path / "supervisor.toml"
            self.config.write_text(config)
            argv = [*prefix, PY, "-m", "supervisor", "run", "--config", str(self.config), *args]
        else:
            assert argv is not None
            env.setdefault("SUPERVISOR_SOCKET", self.socket)
            env.setdefault("SUPERVISOR_HTTP", f"127.0.0.1:{self.http_port}")
            env.setdefault("LOG_FORMAT", "json")
            self.socket = env["SUPERVISOR_SOCKET"]
        self.log_path = tmp_path / "supervisor.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # The test's own service manager, if any, is not the daemon's: only a test hands one on.
        full_env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        full_env["PATH"] = f"{Path(PY).parent}:{full_env.get('PATH', '')}"
        full_env.update(env)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=tmp_path)
        self.client = Client(self.socket, timeout=30)

    # ---- observing ------------------------------------------------------------------

    def events(self, name: str | None = None, **fields: object) -> list[dict[str, Any]]:
        """Return the JSON log events, optionally those with this event name and fields."""
        out = []
        for raw in self.log_path.read_bytes().splitlines():
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if name is not None and event.get("event") != name:
                continue
            if all(event.get(k) == v for k, v in fields.items()):
                out.append(event)
        return out

    def tail(self, n: int = 25) -> str:
        """Return the daemon's last log lines, for failure messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def status(self, rss: bool = False) -> dict[str, Any]:
        """Return the status document; without the process-table pass for RSS unless ``rss``.

        Tests poll it often: the RSS pass walks /proc for every program's tree each time.
        """
        code, doc = self.client.request("GET", "/v1/status" if rss else "/v1/status?rss=0")
        assert code == 200, doc
        return doc  # type: ignore[no-any-return]

    def unit(self, name: str) -> dict[str, Any]:
        """Return one unit's status entry."""
        return next(u for u in self.status()["units"] if u["name"] == name)

    def wait_ready(self, timeout: float = 15) -> dict[str, Any]:
        """Wait for the daemon to report ready."""
        return wait_until(
            lambda: (d := self.status())["supervisor"]["ready"] and d,
            timeout,
            "the supervisor to be ready",
            seen=self.tail,
        )

    def wait_unit(self, name: str, timeout: float = 15, **want: object) -> dict[str, Any]:
        """Wait until unit ``name`` has every field in ``want``."""

        def check() -> dict[str, Any] | None:
            unit = self.unit(name)
            return unit if all(unit.get(k) == v for k, v in want.items()) else None

        return wait_until(
            check, timeout, f"{name} to have {want}", seen=lambda: f"{self.unit(name)}\n--- log ---\n{self.tail()}"
        )

    def wait_event(self, name: str, timeout: float = 15, **fields: object) -> dict[str, Any]:
        """Wait for a log event with this name and fields."""
        return wait_until(
            lambda: (e := self.events(name, **fields)) and e[-1], timeout, f"log event {name} {fields}", seen=self.tail
        )

    # ---- acting ---------------------------------------------------------------------

    def signal(self, sig: int) -> None:
        """Send a signal to the supervisor."""
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> int:
        """Wait for the supervisor to exit; return its code."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the supervisor did not exit within {timeout}s; log:\n{self.tail()}")

    def stop(self) -> None:
        """Make sure the supervisor and everything it started are gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if self._socket_dir is not None:
            _remove_tree(self._socket_dir)


@pytest.fixture
def run_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons on configurations; every one is stopped at the end of the test."""
    started: list[Daemon] = []
    counter = iter(range(1000))

    def start(
        config: str | None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        argv: list[str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> Daemon:
        where = tmp_path / f"d{next(counter)}"
        where.mkdir()
        daemon = Daemon(where, config, env, args, argv, prefix)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def is_guard(proc: Any) -> bool:
    """Whether a psutil process is a supervisor's guard (supervisor.host.guard), which runs as long as it does."""
    import psutil

    try:
        return bool(proc.cmdline()[:1] == ["supervisor-guard"])
    except psutil.Error:
        return False


def programs_of(pid: int) -> list[Any]:
    """The children of supervisor ``pid``, zombie or not, but its guard."""
    import psutil

    return [c for c in psutil.Process(pid).children() if not is_guard(c)]


__all__ = [
    "PROGRAMS",
    "PY",
    "Daemon",
    "Unreachable",
    "alive",
    "free_port",
    "is_guard",
    "program",
    "programs_of",
    "wait_until",
]
