"""One supervisor per control socket: an ``flock`` on ``SOCKET.lock``, taken before anything starts.

Asking whoever answers on the socket (``claim_socket``) leaves a window: two daemons started in
the same moment both find nobody there yet, and both would run, the second taking over the
socket's name. The lock closes it. The first ``run`` takes it before it starts any program and
holds it for its life; a second one finds it held and exits 69 without starting anything. An
``flock`` ends with the process that holds it, so a lock file left behind is no lock.

Best effort where it cannot be had at all (a directory we cannot write): the socket cannot be
bound there either, and ``run`` reports that.
"""

from __future__ import annotations

import fcntl
import grp
import os
import socket

_held: dict[str, int] = {}  # socket path: the fd that holds its lock, for the life of the process


def make_directory(path: str, group: str | None) -> None:
    """Create the socket's directory if missing: private, or open to ``group`` only.

    The socket is not the only line of defence, and nobody else can squat its name in a shared
    /tmp.
    """
    directory = os.path.dirname(path) or "."
    if os.path.isdir(directory):
        return
    os.makedirs(directory, mode=0o750 if group else 0o700, exist_ok=True)
    if group:
        os.chown(directory, -1, grp.getgrnam(group).gr_gid)


def take(path: str, group: str | None = None) -> bool:
    """Hold the lock of socket ``path``; False when another process holds it (once per process)."""
    if path in _held:
        return True
    try:
        make_directory(path, group)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except (OSError, KeyError):
        return True  # no lock to be had here: the bind will say why
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    except OSError:
        os.close(fd)
        return True  # a file system without locks: as before, the socket alone decides
    _held[path] = fd
    return True


def answers(path: str) -> bool:
    """Whether a process accepts connections on socket ``path`` now (nothing is removed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True
