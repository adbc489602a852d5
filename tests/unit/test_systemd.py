"""sd_notify datagrams reach a real socket, named on disk or in the abstract namespace."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from supervisor.host.systemd import Notifier, watchdog_interval_s


def test_abstract_namespace_socket() -> None:
    """'@name' is the abstract namespace: the datagram arrives there, as KEY=value lines."""
    name = f"supervisor-test-{uuid.uuid4().hex}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + name)
    listener.settimeout(5)
    try:
        notifier = Notifier("@" + name)
        assert notifier.send(ready=1, status="running")
        assert listener.recv(4096) == b"READY=1\nSTATUS=running"
        notifier.close()
    finally:
        listener.close()


def test_path_socket_and_silence_without_one(tmp_path: Path) -> None:
    """A path socket receives the message; with no NOTIFY_SOCKET nothing is sent, and nothing fails."""
    path = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(5)
    try:
        assert Notifier(path).send(stopping=1)
        assert listener.recv(4096) == b"STOPPING=1"
    finally:
        listener.close()
    assert Notifier(None).send(ready=1) is False
    assert Notifier(str(tmp_path / "gone")).send(ready=1) is False  # the manager went away


def test_watchdog_interval_is_half_and_only_for_us() -> None:
    """WATCHDOG_USEC gives half its period; a WATCHDOG_PID of another process disables it."""
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None
