"""Allocate argv[1] megabytes, touch every page, and sleep."""

import signal
import sys

hog = bytearray(int(sys.argv[1]) * 1024 * 1024)
for i in range(0, len(hog), 4096):
    hog[i] = 1
print(f"holding {sys.argv[1]} MB", flush=True)
while True:
    signal.pause()
