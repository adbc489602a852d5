"""``[alerts.NAME]``: chosen events reach a person, through a command or a webhook.

Every runner logs through one logger; ``Alerts.watch`` wraps it, so an event an alert names is
handed over as it is logged, with its fields. Each delivery runs beside the loop (a child
process, or a non-blocking connection), bounded by ``ALERT_TIMEOUT_S``, and is rate-limited per
alert, event and unit. A failure is logged as ``alert.failed`` and goes no further: an alert
never holds up, stops or fails the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from typing import Any

from supervisor.config.settings import AlertConfig
from supervisor.engine.units.base import Context, LineBuffer, run_command
from supervisor.host.process import SpawnSpec, child_environment
from supervisor.machine.errors import SpawnError
from supervisor.stack.http1 import HTTPFailed, request_status

ALERT_TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 16  # beyond this, an alert is dropped (and said so): a storm never piles up children


class Watched:
    """A bound logger that also hands each event to the alerts, with its bound fields."""

    def __init__(self, inner: Any, bound: dict[str, Any], seen: Callable[[str, str, dict[str, Any]], None]) -> None:
        self._inner = inner
        self._bound = bound
        self._seen = seen

    def bind(self, **fields: Any) -> Watched:
        """Return a logger with more fields bound, still watched."""
        return Watched(self._inner.bind(**fields), {**self._bound, **fields}, self._seen)

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> Any:
        try:
            self._seen(level, event, {**self._bound, **fields})
        except Exception as exc:  # an alert never keeps a runner from logging, or from going on
            self._inner.warning("alert.failed", alert_event=event, error=f"{type(exc).__name__}: {exc}")
        return getattr(self._inner, level)(event, **fields)

    def debug(self, event: str, **fields: Any) -> Any:
        """Log at debug."""
        return self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> Any:
        """Log at info."""
        return self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> Any:
        """Log at warning."""
        return self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> Any:
        """Log at error."""
        return self._emit("error", event, fields)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # anything else a logger offers, unwatched


class Alerts:
    """Delivers the events that ``[alerts.*]`` name, each off the loop, bounded and rate-limited."""

    def __init__(
        self,
        ctx: Context,
        configs: Callable[[], dict[str, AlertConfig]],
        buffer_of: Callable[[str], LineBuffer | None],
    ) -> None:
        """``configs`` is read at each event, so a reload's alerts apply at once."""
        self.ctx = ctx
        self.log = ctx.log  # unwatched: alert.failed never alerts
        self.configs = configs
        self.buffer_of = buffer_of
        self.host = socket.gethostname()
        self._last_at: dict[tuple[str, str, str], float] = {}
        self._suppressed: dict[tuple[str, str, str], int] = {}
        self._in_flight: set[asyncio.Task[None]] = set()

    def watch(self, log: Any) -> Watched:
        """Return ``log`` wrapped so that the events it logs reach the alerts."""
        return Watched(log, {}, self.seen)

    def seen(self, level: str, event: str, fields: dict[str, Any]) -> None:
        """An event was logged: deliver it to each alert that names it, unless one went out too recently."""
        for name, cfg in self.configs().items():
            if event not in cfg.events:
                continue
            unit = str(fields.get("program") or fields.get("job") or fields.get("dependency") or "")
            key = (name, event, unit)
            now = self.ctx.clock.now()
            last = self._last_at.get(key)
            if last is not None and now - last < cfg.min_interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                self.log.debug("alert.rate_limited", alert=name, alert_event=event, unit=unit)
                continue
            if len(self._in_flight) >= MAX_IN_FLIGHT:
                self.log.warning("alert.failed", alert=name, alert_event=event, unit=unit, error="too many in flight")
                continue
            self._last_at[key] = now
            doc = self.document(name, cfg, event, level, unit, fields)
            doc["suppressed"] = self._suppressed.pop(key, 0)
            task = self.ctx.loop.create_task(self._deliver(name, cfg, event, doc))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    def document(
        self, name: str, cfg: AlertConfig, event: str, level: str, unit: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Return what the command or webhook gets: the event, its fields, and the unit's last lines."""
        buffer = self.buffer_of(unit) if unit else None
        lines = [line for _, _, line in buffer.tail(cfg.lines)] if buffer is not None else []
        why = fields.get("why") or fields.get("error") or fields.get("hint") or ""
        text = f"{self.host}: {event}" + (f" {unit}" if unit else "") + (f": {why}" if why else "")
        return {
            "text": text,  # a Slack-style webhook shows this line
            "alert": name,
            "event": event,
            "level": level,
            "unit": unit or None,
            "host": self.host,
            "supervisor_pid": os.getpid(),
            "time": time.time(),
            "fields": fields,
            "lines": lines,
        }

    async def _deliver(self, name: str, cfg: AlertConfig, event: str, doc: dict[str, Any]) -> None:
        body = json.dumps(doc, default=str).encode()
        try:
            if cfg.command is not None:
                error = await self._run(cfg.command, body)
            else:
                assert cfg.webhook is not None
                error = await self._post(cfg.webhook, body)
        except Exception as exc:  # whatever happens, the daemon goes on
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            target = "command" if cfg.command is not None else "webhook"
            self.log.warning("alert.failed", alert=name, alert_event=event, unit=doc["unit"], via=target, error=error)
        else:
            self.log.info("alert.sent", alert=name, alert_event=event, unit=doc["unit"])

    async def _run(self, argv: list[str], body: bytes) -> str | None:
        """Run the command with the document on stdin; return what went wrong, or None."""
        fd, path = tempfile.mkstemp(prefix="supervisor-alert-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            said: list[str] = []

            def keep(stream: str, lines: list[str]) -> None:
                said.extend(lines)
                del said[:-5]

            env = child_environment(self.ctx.base_env, {})
            try:
                status = await run_command(self.ctx, SpawnSpec(list(argv), env, stdin=path), ALERT_TIMEOUT_S, keep)
            except (SpawnError, OSError) as exc:
                return f"cannot run {argv[0]}: {exc}"
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if status is None:
            return f"did not finish within {ALERT_TIMEOUT_S:g}s: killed"
        if not status.success:
            how = f"exit code {status.code}" if status.signal is None else f"signal {status.signal}"
            return f"{how}" + (f": {' / '.join(said)}" if said else "")
        return None

    async def _post(self, url: str, body: bytes) -> str | None:
        """POST the document; return what went wrong, or None."""
        try:
            code = await asyncio.wait_for(request_status(url, "POST", "stack-supervisor-alert", body), ALERT_TIMEOUT_S)
        except TimeoutError:
            return f"no answer within {ALERT_TIMEOUT_S:g}s"
        except (OSError, HTTPFailed) as exc:
            return str(exc) or type(exc).__name__
        return None if 200 <= code < 300 else f"HTTP {code}"

    async def settle(self) -> None:
        """Wait (bounded) for the alerts in flight: the daemon's last events still go out before it exits."""
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=ALERT_TIMEOUT_S + 1.0)
