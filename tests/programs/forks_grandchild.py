"""Fork a grandchild that sleeps, write its pid to argv[1], and exit."""

import os
import sys
import time

pid = os.fork()
if pid == 0:
    time.sleep(300)
    os._exit(0)
with open(sys.argv[1], "w") as f:
    f.write(str(pid))
print(f"forked grandchild {pid}", flush=True)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.2)
sys.exit(0)
