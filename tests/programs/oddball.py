"""Sleep until told how to end: on SIGUSR1, read argv[2] ("code N" or "signal N") and end that way.

argv[1] is a tag that only marks the process as this program's, for tests that check ownership.
SIGTERM exits 0.
"""

import os
import resource
import signal
import sys


def end(*_: object) -> None:
    """Exit with the planned code, or die of the planned signal (no core file either way)."""
    with open(sys.argv[2]) as plan:
        how, _, number = plan.read().strip().partition(" ")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if how == "signal":
        sig = int(number)
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        signal.pause()  # a signal whose default is to stop or ignore: wait for the next one
    os._exit(int(number))


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.signal(signal.SIGUSR1, end)
print(f"oddball {sys.argv[1]} up", flush=True)
while True:
    signal.pause()
