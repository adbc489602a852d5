"""Keep argv[2] grandchildren sleeping; replace any that dies; on SIGTERM, end them and exit 0.

argv[1] is a tag that marks every process of the family as this program's.
"""

import os
import signal
import sys
import time

WANT = int(sys.argv[2]) if len(sys.argv) > 2 else 2
children: set[int] = set()


def fork_one() -> None:
    """Fork a grandchild that sleeps with default signal dispositions."""
    pid = os.fork()
    if pid == 0:
        for sig in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        while True:
            time.sleep(3600)
    children.add(pid)


def reap(*_: object) -> None:
    """Reap every grandchild that ended."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)


def stop(*_: object) -> None:
    """End the grandchildren, wait for them, and exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    for pid in list(children):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    sys.exit(0)


signal.signal(signal.SIGCHLD, reap)
signal.signal(signal.SIGTERM, stop)
print(f"family {sys.argv[1]} up", flush=True)
while True:
    reap()
    while len(children) < WANT:
        fork_one()
    signal.pause()
