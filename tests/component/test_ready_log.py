"""ready_log: a program is starting until a line of its own output matches, then running; start-first uses it."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import PY, Daemon, free_port, wait_until

# Prints a few lines, then uvicorn's line after a pause given as argv[1]; serves on fd 3 when given one.
SLOW_BOOT = (
    "import sys, time; print('Started server process', flush=True); time.sleep(float(sys.argv[1])); "
    "print('INFO:     Application startup complete.', flush=True); time.sleep(600)"
)


def test_starting_until_the_line_then_running(run_daemon: Callable[..., Daemon]) -> None:
    """The program stays starting through its first lines, and is running by ready_log once the line comes."""
    d = run_daemon(
        f"""
[programs.web]
command = {json.dumps([PY, "-c", SLOW_BOOT, "3"])}
ready_log = "Application startup complete"
start_timeout = "30s"
"""
    )
    d.wait_event("program.output", program="web", line="Started server process")
    assert d.unit("web")["state"] == "starting", d.tail()
    d.wait_unit("web", state="running")
    ready = d.wait_event("program.ready", program="web")
    assert ready["by"] == "ready_log" and ready["after_s"] >= 2.5, ready


def test_start_first_hands_over_on_the_new_incarnations_line(run_daemon: Callable[..., Daemon]) -> None:
    """A start-first restart keeps the old incarnation until the new one prints its ready line."""
    port = free_port()
    d = run_daemon(
        f"""
[programs.web]
command = {json.dumps([PY, "-c", SLOW_BOOT, "1"])}
listen = "127.0.0.1:{port}"
ready_log = "Application startup complete"
restart = {{ order = "start-first" }}
"""
    )
    old = d.wait_unit("web", state="running")["pid"]
    code, _ = d.client.request("POST", "/v1/programs/web/restart")
    assert code in (200, 202)
    wait_until(
        lambda: d.events("program.handover_done"),
        20,
        "the handover to finish",
        seen=d.tail,
    )
    new = d.wait_unit("web", state="running")["pid"]
    assert new != old
    assert not d.events("program.handover_failed"), d.tail()
