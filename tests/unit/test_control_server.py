"""The control server over a real Unix socket, serving a fake ControlTarget: no daemon, no children."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from supervisor.client.api import Client
from supervisor.control.server import ControlServer
from supervisor.engine.target import (
    Conflict,
    ControlTarget,
    Figures,
    LogRow,
    LogTail,
    NotFound,
    ProbeLatencies,
    Refused,
    ReloadResult,
    ScaleDone,
    SignalSent,
    Verb,
)
from supervisor.machine.status import ProgramEntry, StatusDocument
from supervisor.machine.timeline import Document as TimelineDocument
from tests.conftest import free_port, wait_until

WEB: ProgramEntry = {
    "name": "web",
    "kind": "program",
    "state": "running",
    "pid": 42,
    "uptime_s": 3.0,
    "restarts": 0,
    "health": None,
    "last_exit": None,
    "rss_bytes": None,
    "error": None,
    "held": False,
    "autostart": True,
    "handover": None,
    "retiring": [],
    "notify_status": None,
    "waiting_for": [],
}
DOC: StatusDocument = {
    "supervisor": {
        "pid": 1,
        "version": "0.1.0",
        "state": "running",
        "uptime_s": 3.0,
        "ready": True,
        "started": True,
        "config": "x.toml",
        "time": 0.0,
    },
    "units": [
        {"name": "db", "kind": "dependency", "type": "tcp", "state": "waiting", "latency_ms": None, "error": None},
        WEB,
    ],
}
ROW: LogRow = {"unit": "web", "time": 1.0, "stream": "stdout", "line": "hello"}


class FakeTarget:
    """Answers as a daemon would, and records every call that reaches it."""

    state = "running"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.followers = 0
        self.lines: asyncio.Queue[LogRow] | None = None
        self.probes = ProbeLatencies(now=lambda: 100.0)

    def status(self, rss_pass: bool = True) -> StatusDocument:
        self.calls.append(("status", rss_pass))
        return DOC

    async def act(self, name: str, verb: Verb) -> list[ProgramEntry]:
        self.calls.append(("act", name, verb))
        if name != "web":
            raise NotFound(f"no program named {name!r} (programs: web)")
        if verb == "restart":
            raise Conflict("web: restart failed: not ready within 1s", [WEB])
        return [WEB]

    async def send_signal(self, name: str, sig: int, group: bool) -> SignalSent:
        self.calls.append(("signal", name, sig, group))
        return {"program": name, "pid": 42, "signal": sig, "group": group}

    def tail_logs(self, names: Sequence[str], lines: int) -> LogTail:
        self.calls.append(("tail", list(names), lines))
        if any(n != "web" for n in names):
            raise NotFound("no program or job named ghost (units with output: web)")
        return {"units": ["web"], "lines": [ROW][:lines]}

    async def follow_logs(self, names: Sequence[str]) -> AsyncGenerator[LogRow, None]:
        self.calls.append(("follow", list(names)))
        self.lines = asyncio.Queue()
        self.followers += 1
        try:
            while True:
                yield await self.lines.get()
        finally:
            self.followers -= 1

    async def scale(self, name: str, count: object) -> ScaleDone:
        self.calls.append(("scale", name, count))
        if name != "web":
            raise NotFound(f"no program named {name!r} (programs: web)")
        if not isinstance(count, int) or count < 1:
            raise Refused(f"instances must be a whole number of at least 1 (got {count!r})")
        return {"program": name, "instances": count, "was": 2, "added": [], "removed": [], "programs": [WEB]}

    async def reload(self) -> ReloadResult:
        self.calls.append(("reload",))
        return {"ok": False, "error": "x.toml: programs.web.command: required key is missing"}

    def timeline(self) -> TimelineDocument:
        self.calls.append(("timeline",))
        return {"uptime_s": 3.0, "last_ready_s": None, "critical_chain": [], "units": []}

    def figures(self) -> Figures:
        self.calls.append(("figures",))
        return {"status": DOC, "programs": {}, "probes": self.probes.series(), "log_lines_dropped": 7}


class Log:
    """Takes the server's structured log calls and drops them."""

    def info(self, event: str, **fields: object) -> None:
        """Drop one event."""


class Served:
    """A ControlServer in a loop of its own thread, on a socket under a temporary directory."""

    def __init__(self, target: FakeTarget, directory: Path) -> None:
        self.target = target
        self.path = str(directory / "control.sock")
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        fake: ControlTarget = target
        self.server = ControlServer(fake, self.path, Log(), http=("127.0.0.1", self.port))
        self.run(self.server.start())

    def run(self, coro: Any) -> Any:
        """Run a coroutine in the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def later(self, fn: Any, *args: Any) -> None:
        """Call ``fn`` in the server's loop."""
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        """Stop serving and stop the loop."""
        self.run(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(FakeTarget(), tmp_path)
    yield s
    s.close()


def test_status_is_the_targets_document(served: Served) -> None:
    """GET /v1/status returns the target's document, and ?rss=0 asks it to skip RSS."""
    client = Client(served.path)
    assert client.request("GET", "/v1/status") == (200, DOC)
    client.request("GET", "/v1/status?rss=0")
    assert served.target.calls == [("status", True), ("status", False)]


def test_refusals_become_404_and_409(served: Served) -> None:
    """NotFound answers 404 and Conflict 409 with the programs it names; success lists the programs."""
    client = Client(served.path)
    missing = {"error": "no program named 'ghost' (programs: web)"}
    assert client.request("POST", "/v1/programs/ghost/stop") == (404, missing)
    code, doc = client.request("POST", "/v1/programs/web/restart")
    assert code == 409 and doc == {"error": "web: restart failed: not ready within 1s", "programs": [WEB]}
    assert client.request("POST", "/v1/programs/web/start") == (200, {"programs": [WEB]})
    missing = (404, {"error": "no program or job named ghost (units with output: web)"})
    assert client.request("GET", "/v1/programs/ghost/logs") == missing
    code, doc = client.request("POST", "/v1/reload")
    assert code == 422 and doc["ok"] is False


def test_bad_requests_leave_the_target_untouched(served: Served) -> None:
    """Garbage, a wrong method, a bad signal body and a bad line count are refused before the target hears of them."""
    client = Client(served.path)
    assert client.request("GET", "/v1/programs/web/stop")[0] == 405
    assert client.request("POST", "/v1/status")[0] == 405
    assert client.request("POST", "/v1/programs/web/signal", {"signal": "NOPE"})[0] == 400
    assert client.request("POST", "/v1/programs/web/signal", {"signal": "HUP", "group": "yes"})[0] == 400
    assert client.request("POST", "/v1/programs/web/signal", [1])[0] == 400
    assert client.request("GET", "/v1/logs?lines=many")[0] == 400
    assert client.request("GET", "/v2/status")[0] == 404
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(10)
        raw.connect(served.path)
        raw.sendall(b"\x00\xffnot http at all\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    assert served.target.calls == []
    code, sent = client.request("POST", "/v1/programs/web/signal", {"signal": "hup"})
    assert code == 200 and sent["pid"] == 42 and served.target.calls == [("signal", "web", 1, False)]


def test_following_logs_streams_rows_and_lets_go_when_the_client_leaves(served: Served) -> None:
    """A follower gets the tail, then each new row; once the client has gone, the target's stream is closed."""
    stream = Client(served.path).stream("/v1/logs?name=web&follow=1")
    assert next(stream) == (200, {"units": ["web"], "lines": [ROW]})
    wait_until(lambda: served.target.lines is not None, 10, "the server to start following")
    served.later(served.target.lines.put_nowait, {**ROW, "line": "next"})  # type: ignore[union-attr]
    assert next(stream) == (200, {**ROW, "line": "next"})
    stream.close()

    def gone() -> bool:
        served.later(served.target.lines.put_nowait, ROW)  # type: ignore[union-attr]
        return served.target.followers == 0

    wait_until(gone, 10, "the follow stream to be closed", seen=lambda: served.target.followers)


def test_the_tcp_side_reads_the_document_and_the_figures(served: Served) -> None:
    """/readyz gives the document's problems, /metrics the target's figures, and no control is offered."""
    base = f"http://127.0.0.1:{served.port}"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{base}/readyz", timeout=10)
    assert info.value.code == 503 and json.load(info.value) == {"ready": False, "reasons": ["db waiting"]}
    served.target.probes.observe("dependency", "db", 0.003, True)
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    assert 'supervisor_probe_duration_seconds_bucket{kind="dependency",le="0.0025",name="db",result="ok"} 0.0' in text
    assert 'supervisor_probe_duration_seconds_bucket{kind="dependency",le="0.005",name="db",result="ok"} 1.0' in text
    assert "supervisor_log_lines_dropped_total 7.0" in text and 'supervisor_program_up{program="web"} 1.0' in text
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(f"{base}/v1/programs/web/stop", method="POST"), timeout=10)
    assert info.value.code == 405
    assert not any(call[0] == "act" for call in served.target.calls)


def test_metrics_export_every_restart_reason_and_state() -> None:
    """Every restart reason and every program and job state has its series, read from the one vocabulary."""
    from supervisor.control.metrics import Metrics
    from supervisor.machine.events import Reason
    from supervisor.machine.jobstates import JobState
    from supervisor.machine.model import State

    target = FakeTarget()
    reasons = {r.value: 1 for r in Reason if r is not Reason.SHUTDOWN}
    job = {"name": "migrate", "kind": "job", "state": "running", "attempts": 1, "duration_s": None}
    doc = {**DOC, "units": [*DOC["units"], job]}
    counters = {"restarts_by_reason": reasons, "last_exit_code": None, "health_failures": 0, "output_suppressed": 3}
    target.figures = lambda: {  # type: ignore[method-assign]
        "status": doc,
        "programs": {"web": counters},
        "probes": [],
        "log_lines_dropped": 0,
    }
    text = Metrics(target).render()[0].decode()
    for reason in reasons:
        assert f'supervisor_program_restarts_total{{program="web",reason="{reason}"}} 1.0' in text, reason
    for state in State:
        assert f'supervisor_program_state{{program="web",state="{state}"}}' in text, state
    for jstate in JobState:
        assert f'supervisor_job_state{{job="migrate",state="{jstate}"}}' in text, jstate
    assert 'supervisor_program_output_suppressed_total{program="web"} 3.0' in text


def test_scale_answers_400_for_a_bad_count_or_body_and_404_for_no_such_program(served: Served) -> None:
    """POST /v1/programs/X/scale takes {"instances": N}; the target's refusals become 400 and 404."""
    client = Client(served.path)
    code, doc = client.request("POST", "/v1/programs/web/scale", {"instances": 3})
    assert code == 200 and doc["instances"] == 3
    assert client.request("POST", "/v1/programs/web/scale", {"instances": -1})[0] == 400
    assert client.request("POST", "/v1/programs/ghost/scale", {"instances": 2})[0] == 404
    code, doc = client.request("POST", "/v1/programs/web/scale", {"count": 2})
    assert code == 400 and "instances" in doc["error"]
    assert client.request("GET", "/v1/programs/web/scale")[0] == 405
    assert [c for c in served.target.calls if c[0] == "scale"] == [
        ("scale", "web", 3),
        ("scale", "web", -1),
        ("scale", "ghost", 2),
    ]
