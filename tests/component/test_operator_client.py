"""The status client's own HTTP/1.1: right against the real server, and safe against a bad one."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.client.api import Client, Unreachable
from tests.conftest import PY, program

ONE = f"[programs.alpha]\ncommand = {program('sleeper')}\n"


class FakeServer:
    """A Unix socket that answers each connection with bytes the test chose, and keeps the requests."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.answers: list[list[bytes] | None] = []  # None: hold the connection open, say nothing
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):  # a client may hang up early: that is a case too
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        """Read one request, keep it, and send the next chosen answer."""
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(65536)
            if not chunk:
                break
            request += chunk
        head, _, body = request.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        answer = self.answers.pop(0) if self.answers else [b""]
        if answer is None:
            time.sleep(3)
            return
        for part in answer:
            conn.sendall(part)
            time.sleep(0.01)  # the client must reassemble what arrives in pieces

    def close(self) -> None:
        """Stop accepting."""
        self.listener.close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeServer]:
    """A fake control socket, closed after the test."""
    server = FakeServer(tmp_path / "fake.sock")
    yield server
    server.close()


def ok(body: bytes, *headers: bytes) -> list[bytes]:
    """Return a well-formed 200 response split into pieces."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(h + b"\r\n" for h in headers)
    return [head, b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n", body[:3], body[3:]]


def test_requests_are_well_formed_and_responses_are_read_by_their_length(fake: FakeServer) -> None:
    """GET and POST go out as HTTP/1.1 with Connection: close; a body split in pieces is read whole."""
    beyond = [b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n", b'{"b": 2}', b"bytes beyond the length"]
    fake.answers += [ok(b'{"a": 1}'), beyond]
    client = Client(fake.path, timeout=5)
    assert client.request("GET", "/v1/status") == (200, {"a": 1})
    assert client.request("POST", "/v1/programs/x/signal", {"signal": "HUP"}) == (200, {"b": 2})
    get, post = fake.requests
    assert get.startswith(b"GET /v1/status HTTP/1.1\r\n") and b"\r\nHost: localhost\r\n" in get
    assert b"\r\nConnection: close\r\n" in get
    assert post.startswith(b"POST /v1/programs/x/signal HTTP/1.1\r\n")
    head, _, body = post.partition(b"\r\n\r\n")
    assert json.loads(body) == {"signal": "HUP"} and f"Content-Length: {len(body)}".encode() in head


def test_chunked_and_close_delimited_bodies_are_read_too(fake: FakeServer) -> None:
    """A chunked body, an interim 100 response, and a body that ends with the connection all decode."""
    fake.answers += [
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b'4\r\n{"c"\r\n', b"5;x=y\r\n: 3}\n\r\n0\r\n\r\n"],
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n\r\n", b'{"error": "busy"}'],
    ]
    client = Client(fake.path, timeout=5)
    assert client.request("GET", "/v1/status") == (200, {"c": 3})
    assert client.request("GET", "/v1/status") == (503, {"error": "busy"})


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ([b"HELLO\r\n\r\n"], "not an HTTP/1.1 status line"),
        ([b"HTTP/1.1 2000 OK\r\n\r\n"], "not an HTTP/1.1 status line"),
        ([b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"], "malformed header line"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n"], "malformed Content-Length"),
        ([b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"short"'], "body ended after 8 of 100 bytes"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], "malformed chunk size"),
        ([b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000], "response head over"),
        ([b"HTTP/1.1 200 OK\r\nContent-"], "closed before a whole response head"),
        ([b""], "it closed the connection without a word (did it stop?)"),
    ],
)
def test_a_malformed_response_is_unreachable_with_the_reason(fake: FakeServer, answer: list[bytes], says: str) -> None:
    """Garbage, a truncated head or body, or a bad length is "did not answer" with the reason, never a hang."""
    fake.answers.append(answer)
    with pytest.raises(Unreachable, match="did not answer") as info:
        Client(fake.path, timeout=5).request("GET", "/v1/status")
    assert says in str(info.value)


def test_a_silent_server_times_out(fake: FakeServer) -> None:
    """A peer that accepts and never answers is unreachable after the timeout, not later."""
    fake.answers.append(None)
    began = time.monotonic()
    with pytest.raises(Unreachable, match="did not answer"):
        Client(fake.path, timeout=0.5).request("GET", "/v1/status")
    assert time.monotonic() - began < 2.5


def test_the_cli_exits_3_on_garbage_and_1_on_a_non_json_error(fake: FakeServer) -> None:
    """status against a garbage answer exits 3; a non-JSON 500 is an error message and exit 1."""
    fake.answers += [[b"SSH-2.0-OpenSSH_9.2\r\n\r\n"], [b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops"]]
    env = {k: v for k, v in os.environ.items() if k != "SUPERVISOR_SOCKET"}
    run = [PY, "-m", "supervisor", "status", "--socket", fake.path]
    garbage = subprocess.run(run, capture_output=True, text=True, timeout=30, env=env)
    assert garbage.returncode == 3 and "not an HTTP/1.1 status line" in garbage.stderr
    error = subprocess.run(run, capture_output=True, text=True, timeout=30, env=env)
    assert error.returncode == 1 and "oops" in error.stderr


def test_against_the_real_server_with_and_without_a_kept_connection(run_daemon) -> None:
    """The real server answers the client, one connection per request or one kept for many."""
    d = run_daemon(ONE)
    d.wait_ready()
    code, doc = Client(d.socket).request("GET", "/v1/status")
    assert code == 200 and doc["units"][0]["name"] == "alpha"
    kept = Client(d.socket, keep=True)
    for _ in range(3):
        alpha = kept.request("GET", "/v1/status?rss=0")[1]["units"][0]
        assert "cpu_percent" in alpha and (alpha["rss_bytes"] is None or isinstance(alpha["rss_bytes"], int))
    first = kept._sock
    assert first is not None and kept.request("GET", "/v1/status?rss=0")[0] == 200 and kept._sock is first
    assert kept.request("POST", "/v1/programs/ghost/start")[0] == 404
    kept.close()


def test_status_imports_only_socket_json_and_os_besides_argparse(run_daemon) -> None:
    """`status --socket` loads neither http.client, email, tomllib nor asyncio."""
    d = run_daemon(ONE)
    d.wait_ready()
    probe = (
        "import sys\nfrom supervisor import cli\n"
        f"code = cli.main(['status', '--socket', {d.socket!r}])\n"
        "names = ('http', 'email', 'tomllib', 'asyncio', 'ssl', 'urllib', 'pydantic')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print('LOADED', code, ','.join(heavy))\n"
    )
    # -S: no site, so no editable-install finder either; the package comes from the checkout alone.
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [PY, "-S", "-c", probe], capture_output=True, text=True, timeout=30, cwd="/", env={"PYTHONPATH": root}
    )
    assert out.stdout.splitlines()[-1] == "LOADED 0 ", out


def test_the_table_spares_the_daemon_its_rss_pass_and_json_does_not(fake: FakeServer) -> None:
    """`status` asks for ?rss=0 (its table has no RSS column); `status --json` asks for the whole document."""
    doc = json.dumps({"supervisor": {"ready": True}, "units": []}).encode()
    fake.answers += [ok(doc), ok(doc)]
    env = {k: v for k, v in os.environ.items() if k != "SUPERVISOR_SOCKET"}
    for extra in ([], ["--json"]):
        out = subprocess.run([PY, "-m", "supervisor", "status", *extra, "--socket", fake.path], env=env, timeout=30)
        assert out.returncode == 0
    assert [r.split(b"\r\n")[0] for r in fake.requests] == [
        b"GET /v1/status?rss=0 HTTP/1.1",
        b"GET /v1/status HTTP/1.1",
    ]


@pytest.mark.parametrize("argv", [["logs", "-f"], ["status", "--watch", "--interval", "0.1"]], ids=["logs-f", "watch"])
def test_a_reader_that_leaves_ends_the_command_quietly(run_daemon, argv: list[str]) -> None:
    """`logs -f | head -1`, `status --watch | head -1`: exit 141 as SIGPIPE would end it, and no traceback."""
    talk = "import time\nwhile True:\n    print('x' * 200, flush=True)\n    time.sleep(0.005)\n"
    d = run_daemon(f"[programs.talker]\ncommand = {json.dumps([PY, '-c', talk])}\nmin_uptime = 0\n")
    d.wait_unit("talker", state="running")
    proc = subprocess.Popen(
        [PY, "-m", "supervisor", *argv, "--socket", d.socket],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline(), "the command printed nothing"
    proc.stdout.close()  # the reader goes away, as `head -1` does
    try:
        code = proc.wait(30)
    finally:
        proc.kill()
    stderr = proc.stderr.read().decode()
    assert (code, stderr) == (141, ""), stderr


@pytest.mark.parametrize(
    "argv",
    [["version"], ["completion", "bash"], ["status"], ["timeline"], ["check"], ["logs", "-n", "5"]],
    ids=lambda argv: "-".join(argv),
)
def test_output_to_a_reader_already_gone_ends_quietly(run_daemon, argv: list[str]) -> None:
    """Every command, its output closed before it writes (`supervisor version | true`): 141, nothing on stderr."""
    d = run_daemon(f"[programs.p]\ncommand = {program('sleeper')}\nmin_uptime = 0\n")
    d.wait_unit("p", state="running")
    where = {"check": ["--config", str(d.config)], "version": [], "completion": []}.get(argv[0], ["--socket", d.socket])
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        out = subprocess.run(
            [PY, "-m", "supervisor", *argv, *where], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(write_end)
    assert (out.returncode, out.stderr) == (141, ""), out.stderr
