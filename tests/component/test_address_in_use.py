"""An address that cannot be bound at start-up: exit 69, and the line names that address."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PY, Daemon, program

EXIT_UNAVAILABLE = 69


def _taken() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_a_taken_http_port_is_named_in_the_refusal(run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    """`http` on a port another process holds: exit 69, supervisor.cannot_listen's error says which address."""
    config = tmp_path / "supervisor.toml"
    config.write_text(f"[programs.p]\ncommand = {program('sleeper')}\n")
    with _taken() as taken:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        argv = [PY, "-m", "supervisor", "run", "--config", str(config)]
        d = run_daemon(None, argv=argv, env={"SUPERVISOR_SUPERVISOR__HTTP": address})
        assert d.wait_exit() == EXIT_UNAVAILABLE, d.tail()
    line = d.events("supervisor.cannot_listen")[-1]
    assert address in line["error"] and "in use" in line["error"], line


def test_a_taken_listen_address_is_named_in_the_refusal(run_daemon: Callable[..., Daemon]) -> None:
    """A program's `listen` on a port another process holds: exit 69, supervisor.cannot_start says which."""
    with _taken() as taken:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        d = run_daemon(f'[programs.p]\ncommand = {program("sleeper")}\nlisten = "{address}"\n')
        assert d.wait_exit() == EXIT_UNAVAILABLE, d.tail()
    line = d.events("supervisor.cannot_start")[-1]
    assert address in line["error"] and "in use" in line["error"], line
