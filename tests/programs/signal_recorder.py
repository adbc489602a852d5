"""Record every HUP, USR1, USR2 and INT it receives, as does a child it keeps in its group."""

import os
import signal
import sys
import time

path = sys.argv[1]


def record(signum: int, frame: object) -> None:
    with open(path, "a") as f:
        f.write(f"{os.getpid()} {signal.Signals(signum).name}\n")


role = "main"
if os.fork() == 0:
    role = "child"
for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT):
    signal.signal(sig, record)
os.write(1, f"{role} {os.getpid()} ready\n".encode())  # one write: two processes share the pipe
while True:
    time.sleep(1)
