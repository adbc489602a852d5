"""Write LINES lines of SIZE bytes to stdout as fast as it can (80 lines a write), then "chatty done".

    chatty.py LINES SIZE [GO_FILE [ELAPSED_FILE [each]]]

With GO_FILE, wait until it exists before writing (so a benchmark can read the supervisor's
CPU just before the flood). With ELAPSED_FILE, write there the monotonic nanoseconds at which
writing began and ended. With "each", one write call a line (as print() does; still buffered).
Then sleep until signalled.
"""

import os
import signal
import sys
import time

lines, size = int(sys.argv[1]), int(sys.argv[2])
go = sys.argv[3] if len(sys.argv) > 3 else ""
elapsed = sys.argv[4] if len(sys.argv) > 4 else ""
each = len(sys.argv) > 5 and sys.argv[5] == "each"
while go and not os.path.exists(go):
    time.sleep(0.001)
out = sys.stdout.buffer
line = b"y" * (size - 1) + b"\n"
began = time.monotonic_ns()
if each:
    for _ in range(lines):
        out.write(line)
else:
    block = line * 80  # what a buffered logger's 8 KiB flush holds
    for _ in range(lines // 80):
        out.write(block)
    out.write(line * (lines % 80))
out.write(b"chatty done\n")
out.flush()
ended = time.monotonic_ns()
if elapsed:
    with open(elapsed + ".tmp", "w") as f:
        f.write(f"{began} {ended}\n")
    os.rename(elapsed + ".tmp", elapsed)
while True:
    signal.pause()
