"""Record this run in a shared file: a line "PID TIME" at once and then every 20 ms, until killed.

Many copies under many daemons append to one file (``O_APPEND``: small writes do not interleave),
so a test reads each copy's run as [its first line, its last line] and checks that none overlap.
"""

import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
pid = os.getpid()
while True:
    os.write(fd, f"{pid} {time.time():.6f}\n".encode())
    time.sleep(0.02)
