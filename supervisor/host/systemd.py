"""The sd_notify protocol: one datagram per message to ``$NOTIFY_SOCKET``."""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends sd_notify messages; silent when there is no ``NOTIFY_SOCKET``."""

    def __init__(self, address: str | None) -> None:
        self._address: str | None = None
        self._sock: socket.socket | None = None
        if address:
            # '@' names a socket in the abstract namespace: a leading NUL byte on Linux.
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @classmethod
    def from_environment(cls) -> Notifier:
        """Build from ``$NOTIFY_SOCKET``."""
        return cls(os.environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return self._sock is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``ready=1`` becomes ``READY=1``); return whether it went."""
        if self._sock is None or self._address is None:
            return False
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            self._sock.sendto(payload.encode(), self._address)
        except OSError:
            # The manager may be gone (shutdown) or busy; a notification is advisory.
            return False
        return True

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(environ: dict[str, str] | os._Environ[str]) -> float | None:
    """Return half of ``$WATCHDOG_USEC`` in seconds when the watchdog is meant for us."""
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None
