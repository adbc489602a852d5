"""`run` validates in a child and caches the result; the running daemon never maps pydantic or OpenSSL."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from supervisor.config import cache, compiled, settings
from supervisor.machine.errors import ConfigError
from supervisor.stack import limits
from tests.conftest import program, wait_until

GOOD = """
[programs.web]
command = ["sleep", "60"]
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment `check` and `run` key the cache by: they add SUPERVISOR_CPUS and the like first."""
    environ = {**os.environ, "SUPERVISOR_CACHE_DIR": str(tmp_path / "cache")}
    limits.export(environ)
    return environ


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "supervisor.toml"
    path.write_text(text)
    return path


def check(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`supervisor check --config path` in another process, with this environment."""
    argv = [sys.executable, "-m", "supervisor", "check", "--config", str(path)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def entries(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["SUPERVISOR_CACHE_DIR"]).glob("config-*.pickle"))


def mark_cached(path: Path, env: dict[str, str]) -> None:
    """Rewrite the cached result with a marker only a read of the cache can return."""
    (entry,) = entries(env)
    loaded = settings.loads(entry.read_bytes())
    assert isinstance(loaded, settings.Loaded)
    entry.write_bytes(settings.dumps(dataclasses.replace(loaded, warnings=["from the cache"])))


def test_a_miss_validates_in_a_child_and_the_next_load_reads_the_cache(tmp_path: Path, env: dict[str, str]) -> None:
    """The first load writes one private cache entry; the same inputs then come from it."""
    path = write(tmp_path, GOOD)
    first = compiled.load(path, env)
    assert first.config.programs["web"].command == ["sleep", "60"] and first.warnings == []
    (entry,) = entries(env)
    st = entry.stat()
    assert st.st_uid == os.geteuid() and st.st_mode & 0o022 == 0
    mark_cached(path, env)
    assert compiled.load(path, env).warnings == ["from the cache"]


@pytest.mark.parametrize("change", ["environment", "file"])
def test_a_changed_input_is_a_miss(tmp_path: Path, env: dict[str, str], change: str) -> None:
    """Another environment or another file content validates again."""
    path = write(tmp_path, GOOD)
    compiled.load(path, env)
    mark_cached(path, env)
    if change == "environment":
        env = {**env, "SOMETHING_ELSE": "1"}
    else:
        path.write_text(GOOD.replace("60", "61"))
    again = compiled.load(path, env)
    assert again.warnings == [] and len(entries(env)) == 2


def test_a_cache_entry_others_can_write_is_ignored(tmp_path: Path, env: dict[str, str]) -> None:
    """A group- or world-writable entry is never read."""
    path = write(tmp_path, GOOD)
    compiled.load(path, env)
    mark_cached(path, env)
    (entry,) = entries(env)
    entry.chmod(0o666)
    assert compiled.cached(path, env) is None
    assert compiled.load(path, env).warnings == []


def test_the_childs_refusal_names_file_key_and_problem(tmp_path: Path, env: dict[str, str]) -> None:
    """An invalid file comes back as the loader's own ConfigError, and nothing is cached."""
    path = write(tmp_path, GOOD + "\n[programs.bad]\ncommand = []\nrestart = { polcy = 'always' }\n")
    with pytest.raises(ConfigError) as info:
        compiled.load(path, env)
    keys = {key for key, _ in info.value.problems}
    assert keys == {"programs.bad.command", "programs.bad.restart.polcy"}
    assert str(path) in info.value.render()
    assert entries(env) == []


def test_a_child_that_cannot_run_falls_back_to_validating_here(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No interpreter for the child (or one that crashes): the load still succeeds, in process."""
    monkeypatch.setattr(compiled, "child_argv", lambda path, out: ["/nonexistent/python", str(path), out])
    path = write(tmp_path, GOOD)
    assert compiled.load(path, env).config.programs["web"].command == ["sleep", "60"]
    monkeypatch.setattr(compiled, "child_argv", lambda path, out: ["sh", "-c", "kill -9 $$"])
    path.write_text(GOOD.replace("60", "62"))
    assert compiled.load(path, env).config.programs["web"].command == ["sleep", "62"]


def heavy_mappings(pid: int) -> set[str]:
    """Shared objects of pydantic and OpenSSL mapped into a process."""
    names = ("pydantic_core", "_ssl.", "libssl", "libcrypto", "_hashlib")
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        found |= {n for n in names if n in line}
    return found


def test_the_running_daemon_maps_neither_pydantic_nor_openssl(run_daemon) -> None:
    """Start, a reload that changes a program, and a refused reload: still no pydantic, no OpenSSL."""
    d = run_daemon(f"""
[programs.a]
command = {program("sleeper")}
min_uptime = 0
""")
    d.wait_unit("a", state="running")
    assert heavy_mappings(d.proc.pid) == set()
    d.config.write_text(d.config.read_text().replace("min_uptime = 0", "min_uptime = 0\nenvironment = { X = '1' }"))
    d.signal(signal.SIGHUP)
    d.wait_event("config.reloaded", changed=["a"])
    d.config.write_text(d.config.read_text() + "\n[programs.b]\ncommand = []\n")
    d.signal(signal.SIGHUP)
    refused = d.wait_event("config.reload_refused")
    assert any(p.startswith("programs.b.command") for p in refused["problems"])
    assert heavy_mappings(d.proc.pid) == set()
    # /metrics loads prometheus-client on its first scrape, and still answers
    body = urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/metrics", timeout=10).read().decode()
    assert 'supervisor_program_up{program="a"} 1.0' in body


HTTPS_CHECK = """
import sys
from supervisor.host import tls
with tls.hidden():
    import asyncio
assert asyncio.base_events.ssl is None and asyncio.sslproto.ssl is None
import http.server, ssl, threading
from supervisor.stack import probes
httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
url = f"https://127.0.0.1:{httpd.server_address[1]}/"
print(asyncio.run(probes.http(url, 5.0)()))
"""


def test_an_https_check_gets_ssl_when_it_needs_it(tmp_path: Path) -> None:
    """asyncio imported without ssl still speaks TLS once a check asks: here, it rejects a self-signed cert."""
    import subprocess
    import sys

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", HTTPS_CHECK, str(cert), str(key)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in out.stdout, out.stdout


def test_check_leaves_a_result_that_run_reads(tmp_path: Path, env: dict[str, str]) -> None:
    """`supervisor check` in an environment caches what `run` in the same environment would validate."""

    path = write(tmp_path, GOOD)
    out = check(path, env)
    assert out.returncode == 0, out.stderr
    assert len(entries(env)) == 1
    assert compiled.cached(path, env) == compiled.load(path, env)


BEGIN = """
import sys
from pathlib import Path
from supervisor.config import compiled
from supervisor.machine.errors import ConfigError
finish = compiled.begin(Path(sys.argv[1]))
try:
    print(sorted(finish().config.programs))
except ConfigError as exc:
    print(exc.problems)
print("pydantic" in sys.modules)
"""


@pytest.mark.parametrize("valid", [True, False])
def test_a_forked_child_validates_while_the_caller_stays_without_pydantic(
    tmp_path: Path, env: dict[str, str], valid: bool
) -> None:
    """`run`'s path: the answer (or the refusal) comes back from a fork; the caller never imports pydantic."""
    import subprocess
    import sys

    path = write(tmp_path, GOOD if valid else GOOD + "\n[programs.bad]\ncommand = []\n")
    out = subprocess.run([sys.executable, "-c", BEGIN, str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    answer, imported = out.stdout.splitlines()
    if valid:
        assert answer == "['web']" and len(entries(env)) == 1
    else:
        assert "programs.bad.command" in answer and entries(env) == []
    assert imported == "False"


def link(current: Path, target: Path) -> None:
    """Point ``current`` at ``target`` atomically, as a deploy does (``ln -sfn`` then rename)."""
    staging = current.with_name(current.name + ".next")
    staging.symlink_to(target)
    os.replace(staging, current)


def test_a_cache_hit_through_a_moved_release_link_keeps_the_link(tmp_path: Path, env: dict[str, str]) -> None:
    """Same bytes in the next release: the hit's cwd is still under current/, which now leads to the new release."""
    text = GOOD + 'cwd = "app"\n'
    for n in ("1", "2"):
        (tmp_path / "releases" / n / "app").mkdir(parents=True)
        (tmp_path / "releases" / n / "supervisor.toml").write_text(text)
    current = tmp_path / "current"
    link(current, tmp_path / "releases" / "1")
    path = current / "supervisor.toml"
    assert compiled.load(path, env).config.programs["web"].cwd == f"{current}/app"
    mark_cached(path, env)
    link(current, tmp_path / "releases" / "2")
    again = compiled.load(path, env)
    assert again.warnings == ["from the cache"] and again.path == path
    assert os.path.realpath(again.config.programs["web"].cwd) == str(tmp_path / "releases" / "2" / "app")
    # the release named directly is another path, so another key: never the link's entry
    assert compiled.cached(tmp_path / "releases" / "2" / "supervisor.toml", env) is None


def test_a_reload_after_the_release_link_moves_runs_the_new_release(run_daemon, tmp_path: Path) -> None:
    """A daemon started through current/ reads current/ again on reload: the new release's program starts there."""
    import subprocess
    import sys

    import psutil

    releases = tmp_path / "releases"
    for n, extra in (("1", ""), ("2", f'[programs.b]\ncommand = {program("sleeper")}\ncwd = "app"\n')):
        (releases / n / "app").mkdir(parents=True)
        # No http address: the default one (9001) may be taken, by another test or a demo.
        text = f'[supervisor]\nhttp = ""\n[programs.a]\ncommand = {program("sleeper")}\n{extra}'
        (releases / n / "supervisor.toml").write_text(text)
    current = tmp_path / "current"
    link(current, releases / "1")
    config = current / "supervisor.toml"
    d = run_daemon(
        None,
        env={"SUPERVISOR_CACHE_DIR": str(tmp_path / "cache")},
        argv=[sys.executable, "-m", "supervisor", "run", "--config", str(config)],
    )
    d.wait_unit("a", state="running")
    assert d.status()["supervisor"]["config"] == str(config)
    link(current, releases / "2")
    out = subprocess.run(
        [sys.executable, "-m", "supervisor", "reload", "--socket", d.socket],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "added b; unchanged: a", out.stdout
    b = d.wait_unit("b", state="running")
    assert psutil.Process(b["pid"]).cwd() == str(releases / "2" / "app")


def test_check_then_run_with_other_per_process_variables_reads_the_cache(tmp_path: Path, env: dict[str, str]) -> None:
    """`check` at image build or in ExecStartPre, `run` in the container or the unit: HOSTNAME and the like differ."""

    path = write(tmp_path, GOOD)
    build = {**env, "HOSTNAME": "buildkitsandbox", "INVOCATION_ID": "1" * 32, "SHLVL": "1", "_": "/usr/bin/env"}
    out = check(path, build)
    assert out.returncode == 0, out.stderr
    mark_cached(path, env)
    container = {
        **env,
        "HOSTNAME": "3f2a9c1d0b7e",
        "INVOCATION_ID": "2" * 32,
        "SYSTEMD_EXEC_PID": "4242",
        "JOURNAL_STREAM": "8:91234",
        "MANAGERPID": "1",
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "PWD": "/",
        "OLDPWD": "/tmp",
        "SHLVL": "2",
        "_": "/usr/local/bin/supervisor",
    }
    assert compiled.load(path, container).warnings == ["from the cache"]
    assert compiled.load(path, {**container, "DATABASE_URL": "postgresql://db/app"}).warnings == []


@pytest.mark.parametrize(
    "spelled",
    ['"${HOSTNAME}"', '"$\\u007bHOSTNAME}"', '"${HOST\\u004EAME}"', '"""${HOST\\\n    NAME}"""'],
    ids=["plain", "escaped-brace", "escaped-letter", "line-ending-backslash"],
)
def test_a_file_that_interpolates_a_per_process_variable_is_keyed_on_it(
    tmp_path: Path, env: dict[str, str], spelled: str
) -> None:
    """${HOSTNAME} in the file (however TOML spells it) makes HOSTNAME an input again: a new value validates again.

    Spelled with escapes, the bytes cannot say which name it is: every per-process variable is keyed.
    """
    path = write(tmp_path, f'[programs.web]\ncommand = ["echo", {spelled}]\n')
    first = compiled.load(path, {**env, "HOSTNAME": "a"})
    assert first.config.programs["web"].command == ["echo", "a"]
    mark_cached(path, env)
    second = compiled.load(path, {**env, "HOSTNAME": "b"})
    assert second.config.programs["web"].command == ["echo", "b"] and second.warnings == []
    other_shlvl = compiled.load(path, {**env, "HOSTNAME": "a", "SHLVL": "9"})
    assert other_shlvl.warnings == (["from the cache"] if spelled == '"${HOSTNAME}"' else [])


def test_validation_reads_no_per_process_variable_by_name() -> None:
    """What the key leaves out, the validating code never reads: only PWD appears, where it names the file."""
    for name in cache.code_files():
        if name == "config/cache.py":
            continue  # the key itself: it names them to leave them out
        text = (cache._CODE / name).read_text()
        for var in cache._VOLATILE:
            quoted = {f'"{var}"', f"'{var}'"}
            if any(q in text for q in quoted):
                assert (name, var) == ("config/settings.py", "PWD"), f"{name} reads ${var}"


LOAD = """
import sys
from pathlib import Path
from supervisor.config import compiled
print(compiled.load(Path(sys.argv[1])).warnings)
"""


def load_elsewhere(path: Path, env: dict[str, str]) -> str:
    """``compiled.load`` in another process, which a hang cannot take the test down with."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", LOAD, str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("planted", ["symlink", "fifo"])
def test_an_entry_that_is_no_file_is_neither_followed_nor_waited_on(
    tmp_path: Path, env: dict[str, str], planted: str
) -> None:
    """A link planted as the entry is not read through (nor written through); a FIFO does not hang the load."""
    path = write(tmp_path, GOOD)
    compiled.load(path, env)
    mark_cached(path, env)
    (entry,) = entries(env)
    elsewhere = tmp_path / "elsewhere.pickle"
    elsewhere.write_bytes(entry.read_bytes())  # ours, private, a valid answer: only the link is wrong
    elsewhere.chmod(0o600)
    entry.unlink()
    if planted == "symlink":
        entry.symlink_to(elsewhere)
    else:
        os.mkfifo(entry, 0o600)
    assert load_elsewhere(path, env) == "[]"  # not the planted answer: validated afresh, and in time
    assert entry.is_file() and not entry.is_symlink()  # the answer replaced what was planted
    assert settings.loads(elsewhere.read_bytes()).warnings == ["from the cache"]  # not written through


def test_a_cache_directory_others_can_write_is_no_cache(tmp_path: Path, env: dict[str, str]) -> None:
    """A group-writable directory is neither read nor written: every load validates, as without one."""
    path = write(tmp_path, GOOD)
    compiled.load(path, env)
    mark_cached(path, env)
    directory = Path(env["SUPERVISOR_CACHE_DIR"])
    directory.chmod(0o770)
    assert compiled.cached(path, env) is None
    assert compiled.load(path, env).warnings == []
    path.write_text(GOOD.replace("60", "61"))
    assert compiled.load(path, env).config.programs["web"].command == ["sleep", "61"]
    assert compiled.store(path, compiled.load(path, env), env) is None
    assert len(entries(env)) == 1
    directory.chmod(0o700)
    assert compiled.load(path, env).warnings == []
    assert len(entries(env)) == 2  # trusted again: the same load is stored


STORE_FAILS = """
import resource, signal, sys
from pathlib import Path
from supervisor.config import compiled
from supervisor.config.loader import load

path = Path(sys.argv[1])
loaded = load(path)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
print(compiled.store(path, loaded))
"""


def test_a_write_that_fails_leaves_no_temporary_file(tmp_path: Path, env: dict[str, str]) -> None:
    """A write cut short (here by a file size limit, as a full disk would) stores nothing and leaves nothing."""
    import subprocess
    import sys

    path = write(tmp_path, GOOD)
    directory = Path(env["SUPERVISOR_CACHE_DIR"])
    directory.mkdir(mode=0o700)
    out = subprocess.run(
        [sys.executable, "-c", STORE_FAILS, str(path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"
    assert sorted(os.listdir(directory)) == []


def test_a_temporary_file_a_killed_writer_left_is_pruned(tmp_path: Path, env: dict[str, str]) -> None:
    """Only once it is old: a fresh one may belong to a writer still at work."""
    directory = Path(env["SUPERVISOR_CACHE_DIR"])
    directory.mkdir(mode=0o700)
    old, fresh = directory / ".config-1-aaaa", directory / ".config-2-bbbb"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    os.utime(old, (0, 0))
    compiled.load(write(tmp_path, GOOD), env)
    assert sorted(p.name for p in directory.iterdir()) == [fresh.name, entries(env)[0].name]


def test_another_pydantic_is_a_miss(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """What pydantic validates with is an input: another installed version validates again."""
    path = write(tmp_path, GOOD)
    compiled.load(path, env)
    mark_cached(path, env)
    assert compiled.load(path, env).warnings == ["from the cache"]
    real = cache._libraries_stamp()
    monkeypatch.setattr(cache, "_libraries_stamp", lambda: real.replace("pydantic=", "pydantic=1:2;was=", 1))
    assert compiled.load(path, env).warnings == [] and len(entries(env)) == 2


STAMP = """
import sys
from supervisor.config import cache
print(cache._libraries_stamp())
print(sorted(m for m in sys.modules if m.startswith("pydantic")))
"""


def test_the_pydantic_stamp_follows_the_installed_files_without_importing_them(tmp_path: Path) -> None:
    """A package found first on the path, as the import would find it; rewriting it (an install) changes the stamp."""
    import subprocess
    import sys

    fake = tmp_path / "site" / "pydantic" / "__init__.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("raise SystemExit('imported')\n")
    env = {**os.environ, "PYTHONPATH": f"{fake.parent.parent}:{os.environ.get('PYTHONPATH', '')}"}

    def stamp() -> str:
        out = subprocess.run([sys.executable, "-c", STAMP], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        found, imported = out.stdout.splitlines()
        assert imported == "[]"
        return found

    first = stamp()
    st = fake.stat()
    assert first.startswith(f"pydantic={st.st_size}:{st.st_mtime_ns};pydantic_core=")
    assert "=?" not in first
    fake.write_text("raise SystemExit('imported, and another version')\n")
    assert stamp() != first


HANGS = """
import os, sys, time
from pathlib import Path
from supervisor.config import compiled

def stuck(path, environ):  # the forked child runs this: as if pydantic's import never returned
    time.sleep(3600)

compiled._validated = stuck
started = time.monotonic()
finish = compiled.begin(Path(sys.argv[1]), timeout=float(sys.argv[2]))
print(sorted(finish().config.programs), round(time.monotonic() - started, 1))
print("pydantic" in sys.modules)
try:
    print(os.waitpid(-1, os.WNOHANG))
except ChildProcessError:
    print("no child left")
"""


def test_a_validating_child_that_hangs_is_killed_and_this_process_validates(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`run` waits for its forked child only so long: then the child is killed and reaped, and the answer made here."""
    import subprocess
    import sys

    path = write(tmp_path, GOOD)
    out = subprocess.run(
        [sys.executable, "-c", HANGS, str(path), "0.5"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    answer, validated_here, children = out.stdout.splitlines()
    programs, took = answer.rsplit(" ", 1)
    assert programs == "['web']" and 0.5 <= float(took) < 30
    assert validated_here == "True" and children == "no child left"
    assert f"the child validating {path} gave no answer within 0.5s; validating in this process" in out.stderr
    assert entries(env) == []  # an answer made here is not cached, as when the child cannot run


def test_check_says_when_it_cannot_cache_and_why(tmp_path: Path, env: dict[str, str]) -> None:
    """A cache directory others can write is not used, silently no more: `check` says so, and still passes."""

    path = write(tmp_path, GOOD)
    assert "warning: not cached" not in check(path, env).stdout
    Path(env["SUPERVISOR_CACHE_DIR"]).chmod(0o777)
    out = check(path, env)
    assert out.returncode == 0, out.stderr
    assert "warning: not cached" in out.stdout and "writable by others" in out.stdout, out.stdout


def test_a_reload_back_to_a_validated_file_reads_the_cache_and_a_new_one_validates(run_daemon, tmp_path: Path) -> None:
    """A reload of bytes validated before (here, at start) takes the cached result; an edit validates afresh."""
    cache_dir = tmp_path / "cache"
    d = run_daemon(
        f"""
[programs.a]
command = {program("sleeper")}
min_uptime = 0
""",
        env={"SUPERVISOR_CACHE_DIR": str(cache_dir)},
    )
    d.wait_unit("a", state="running")
    first = d.config.read_text()
    (entry,) = cache_dir.glob("config-*.pickle")  # the start's own validation
    loaded = settings.loads(entry.read_bytes())
    entry.write_bytes(settings.dumps(dataclasses.replace(loaded, warnings=["from the cache"])))

    d.config.write_text(first.replace("min_uptime = 0", "min_uptime = 0\nenvironment = { X = '1' }"))
    d.signal(signal.SIGHUP)
    edited = d.wait_event("config.reloaded", changed=["a"])
    assert edited["config_from"] == "validation"
    assert not d.events("config.warning", detail="from the cache")

    d.config.write_text(first)
    d.signal(signal.SIGHUP)
    wait_until(lambda: len(d.events("config.reloaded", changed=["a"])) == 2, 15, "the second reload", seen=d.tail)
    assert d.events("config.reloaded")[-1]["config_from"] == "cache"
    assert d.events("config.warning", detail="from the cache"), d.tail()
