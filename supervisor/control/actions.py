"""What control requests do: act on programs, read logs, reload. Shared by socket and CLI paths."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from supervisor.control.protocol import parse_signal
from supervisor.events import Restart, Start, Stop
from supervisor.model import State
from supervisor.units.base import LineBuffer
from supervisor.units.job import JobRunner
from supervisor.units.program import ProgramRunner

if TYPE_CHECKING:
    from supervisor.daemon import Daemon


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
    timeout = max((p.cfg.stop_total + p.cfg.start_timeout for p in targets), default=0) + 5.0
    await _settle(targets, timeout)
    statuses = [p.status() for p in targets]
    if verb == "restart":
        failed = [s for s in statuses if str(s.get("error") or "").startswith("restart failed")]
        if failed:
            why = "; ".join(f"{s['name']}: {s['error']}" for s in failed)
            return 409, {"error": why, "programs": statuses}
    return 200, {"programs": statuses}


async def _settle(targets: list[ProgramRunner], timeout_s: float) -> None:
    """Wait (bounded) until no target is stopping, starting or in a handover."""
    waits = [asyncio.ensure_future(p.wait_settled()) for p in targets]
    _, pending = await asyncio.wait(waits, timeout=timeout_s)
    for fut in pending:
        fut.cancel()


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
    async def run() -> dict[str, Any]:
        return daemon.reload()

    result: dict[str, Any] = await daemon.call(run)
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
