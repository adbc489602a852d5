"""Hang in the way argv[1] names, deaf to SIGTERM: spin (a busy loop), sleep, gil (a C call holding the GIL), closed."""

import os
import resource
import signal
import sys
import time

resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGABRT must leave no core file behind
signal.signal(signal.SIGTERM, lambda signum, frame: None)  # a handler that does nothing, as a stuck app's


def spin_forever() -> None:
    while True:
        pass


def sleep_forever() -> None:
    while True:
        time.sleep(3600)


def hold_the_gil() -> None:
    sum(range(10**15))  # one C call: no bytecode runs, so no Python signal handler either


mode = sys.argv[1]
print(f"hanging: {mode}", flush=True)
if mode == "closed":
    os.close(2)
    sleep_forever()
{"spin": spin_forever, "sleep": sleep_forever, "gil": hold_the_gil}[mode]()
