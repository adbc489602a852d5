"""Write argv[1] megabytes of output to stdout as fast as possible, then sleep."""

import os
import signal
import sys

megabytes = int(sys.argv[1])
line = b"x" * 1023 + b"\n"
block = line * 64
for _ in range(megabytes * 16):
    os.write(1, block)
print("flood done", flush=True)
while True:
    signal.pause()
