"""Print a line, then sleep until signalled; exits 0 on SIGTERM."""

import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"sleeper up {time.monotonic()}", flush=True)
while True:
    signal.pause()
