"""What control requests do: act on programs, read logs, reload. Shared by socket and CLI paths."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from supervisor.control.protocol import parse_signal
from supervisor.states import Restart, Start, State, Stop
from supervisor.units.base import LineBuffer
from supervisor.units.job import JobRunner
from supervisor.units.program import ProgramRunner

if TYPE_CHECKING:
    from supervisor.daemon import Daemon

_SETTLED = {State.RUNNING, State.STOPPED, State.EXITED, State.FATAL, State.PENDING, State.BACKOFF}


async def program(daemon: Daemon, name: str, verb: str) -> tuple[int, dict[str, Any]]:
    """Start, stop or restart one program (or ``all``); wait (bounded) until it settles."""
    if daemon.state == "stopping":
        return 409, {"error": "the supervisor is shutting down"}
    if name == "all":
        targets = daemon.programs
    else:
        unit = daemon.units.get(name)
        if not isinstance(unit, ProgramRunner):
            known = ", ".join(p.name for p in daemon.programs)
            return 404, {"error": f"no program named {name!r} (programs: {known})"}
        targets = [unit]
    event: Start | Stop | Restart = Start() if verb == "start" else Stop() if verb == "stop" else Restart()

    async def act() -> None:
        for prog in targets:
            daemon.log.info("control.request", program=prog.name, action=verb)
            prog.dispatch(event)

    await daemon.call(act)
    timeout = max((p.cfg.stop_timeout for p in targets), default=0) + 5.0
    await _settle(targets, timeout)
    return 200, {"programs": [p.status() for p in targets]}


async def _settle(targets: list[ProgramRunner], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    for prog in targets:
        while prog.model.state not in _SETTLED and loop.time() < deadline:
            waiter = loop.create_task(prog.wait_down())
            try:
                await asyncio.wait_for(asyncio.shield(waiter), max(0.0, deadline - loop.time()))
            except TimeoutError:
                waiter.cancel()
                return
            # wait_down returns when the process is gone; the next state follows in the same tick
            await asyncio.sleep(0)


def logs(daemon: Daemon, name: str, lines: int) -> tuple[int, dict[str, Any], LineBuffer | None]:
    """Return the last ``lines`` captured lines of a program or job."""
    unit = daemon.units.get(name)
    if not isinstance(unit, ProgramRunner | JobRunner):
        return 404, {"error": f"no program or job named {name!r}"}, None
    rows = [{"time": t, "stream": s, "line": line} for t, s, line in unit.buffer.tail(lines)]
    return 200, {"name": name, "lines": rows}, unit.buffer


async def follow(buffer: LineBuffer, send: Callable[[bytes], Awaitable[None]]) -> None:
    """Stream new lines as JSON lines until the client goes away."""
    queue: asyncio.Queue[tuple[float, str, str]] = asyncio.Queue(maxsize=10_000)
    buffer.followers.add(queue)
    try:
        while True:
            t, s, line = await queue.get()
            await send((json.dumps({"time": t, "stream": s, "line": line}) + "\n").encode())
    except (ConnectionError, RuntimeError):
        return
    finally:
        buffer.followers.discard(queue)


async def reload(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    """Re-read the configuration, as SIGHUP does."""
    from supervisor.reload import reload as do_reload

    result: dict[str, Any] = await daemon.call(lambda: do_reload(daemon))
    if result.get("ok") and "unchanged" not in result:
        touched = {*result.get("changed", []), *result.get("added", [])}
        result["unchanged"] = [p.name for p in daemon.programs if p.name not in touched]
    return (200 if result.get("ok") else 422), result


async def send_signal(daemon: Daemon, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Signal one program's main process (or its group): 404 unknown, 409 not running, 400 bad signal."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return 400, {"error": 'the body must be JSON: {"signal": "HUP", "group": false}'}
    if not isinstance(request, dict):
        return 400, {"error": "the body must be a JSON object"}
    sig = parse_signal(request.get("signal"))
    group = request.get("group", False)
    if sig is None or not isinstance(group, bool):
        what = "group must be true or false" if sig is not None else f"no such signal: {request.get('signal')!r}"
        return 400, {"error": what}
    unit = daemon.units.get(name)
    if not isinstance(unit, ProgramRunner):
        known = ", ".join(p.name for p in daemon.programs)
        return 404, {"error": f"no program named {name!r} (programs: {known})"}

    async def act() -> tuple[int, dict[str, Any]]:
        pid = unit.model.pid
        if pid is None or unit.model.state in (State.STOPPED, State.EXITED, State.FATAL):
            return 409, {"error": f"{name} is not running (it is {unit.model.state.value})"}
        try:
            unit.send_signal(sig, group)
        except ProcessLookupError:
            return 409, {"error": f"{name} is not running (its process is gone)"}
        return 200, {"program": name, "pid": pid, "signal": sig, "group": group}

    result: tuple[int, dict[str, Any]] = await daemon.call(act)
    return result
