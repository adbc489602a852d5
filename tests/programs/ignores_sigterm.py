"""Ignore SIGTERM and sleep forever: only SIGKILL ends it."""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
while True:
    signal.pause()
