"""Record every catchable signal it gets to the file argv[1], one name per line, and never exit on one.

With argv[2] == "child", it also forks a child that records into argv[1] + ".child" the same way.
With argv[3] == "cont", both also record SIGCONT (which continues a stopped process, then runs the handler).
"""

import os
import signal
import sys

path = sys.argv[1]
SIGNALS = [signal.SIGTERM, signal.SIGQUIT, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2]
if sys.argv[3:4] == ["cont"]:
    SIGNALS.append(signal.SIGCONT)


def recorder(target: str):
    def handle(sig: int, _frame: object) -> None:
        with open(target, "a") as f:
            f.write(signal.Signals(sig).name + "\n")

    return handle


def install(target: str) -> None:
    for sig in SIGNALS:
        signal.signal(sig, recorder(target))


# The parent's handlers go in before the fork: a test that waits only for the child's pid file
# may signal the parent at once, and a handler installed after the fork could come too late.
install(path)
if len(sys.argv) > 2 and sys.argv[2] == "child" and os.fork() == 0:
    install(path + ".child")  # before the pid file: the child records into its own file from then on
    with open(path + ".child.pid", "w") as f:
        f.write(str(os.getpid()))
    while True:
        signal.pause()
print(f"recording into {path}", flush=True)
while True:
    signal.pause()
