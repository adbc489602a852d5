"""Development mode: a change to a watched file restarts its program once per burst; without --dev nothing watches."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from tests.conftest import program, wait_until


def project(tmp_path: Path) -> Path:
    """A program's directory with the files its globs name."""
    app = tmp_path / "proj" / "app" / "api"
    app.mkdir(parents=True)
    for name in ("main.py", "api/routes.py"):
        (tmp_path / "proj" / "app" / name).write_text("x = 1\n")
    (tmp_path / "proj" / "README.txt").write_text("not watched\n")
    return tmp_path / "proj"


def config(base: Path) -> str:
    return f"""
[programs.web]
command = {program("sleeper")}
cwd = "{base}"
min_uptime = "0.2s"
watch = ["app/**/*.py", "templates/*.html"]
watch_debounce = "400ms"
"""


def starts(d) -> list[int]:  # type: ignore[no-untyped-def]
    return [e["pid"] for e in d.events("program.started", program="web")]


def test_a_burst_of_changes_restarts_the_program_once(run_daemon, tmp_path: Path) -> None:
    """Five writes within the debounce: one restart (reason watch); an unwatched file changes nothing."""
    base = project(tmp_path)
    d = run_daemon(config(base), args=("--dev",))
    first = d.wait_unit("web", state="running")["pid"]
    d.wait_event("program.watching", program="web")
    unmatched = d.wait_event("program.watch_unmatched", program="web")
    assert unmatched["glob"] == "templates/*.html"
    for i in range(5):
        (base / "app" / "api" / "routes.py").write_text(f"x = {i}\n")
        (base / "app" / f"new{i}.py").write_text("y = 1\n")
        time.sleep(0.01)  # a burst: writes far closer together than watch_debounce, even on a loaded machine
    changed = d.wait_event("program.watch_changed", program="web")
    assert "app/api/routes.py" in changed["paths"] and changed["files"] == 6
    # watch_changed is logged before the restart is dispatched: web may still show its first pid.
    second = wait_until(
        lambda: (u := d.unit("web"))["state"] == "running" and u["pid"] != first and u,
        15,
        "web to run again with a new pid",
        seen=lambda: d.unit("web"),
    )
    assert second["last_exit"]["reason"] == "watch"
    (base / "README.txt").write_text("changed, but not watched\n")
    (base / "app" / "notes.txt").write_text("not a .py file\n")
    # Nothing to wait for but an absence: a later watched change shows that the unwatched ones were skipped.
    (base / "app" / "main.py").write_text("x = 2\n")
    wait_until(lambda: len(d.events("program.watch_changed")) == 2, 15, "the second batch", seen=d.tail)
    latest = d.events("program.watch_changed")[-1]
    assert latest["paths"] == ["app/main.py"], latest
    wait_until(lambda: len(starts(d)) == 3, 15, "the third start", seen=d.tail)
    assert len(set(starts(d))) == 3  # one restart per batch, no more


def test_changes_during_a_restart_coalesce_into_one_more(run_daemon, tmp_path: Path) -> None:
    """A program slow to stop: batches while it restarts fold into exactly one further restart."""
    base = project(tmp_path)
    slow = config(base).replace(program("sleeper"), program("ignores_sigterm")) + 'stop_timeout = "2s"\n'
    slow = slow.replace('watch_debounce = "400ms"', 'watch_debounce = "100ms"')
    d = run_daemon(slow, args=("--dev",))
    d.wait_unit("web", state="running")
    d.wait_event("program.watching", program="web")
    (base / "app" / "main.py").write_text("x = 10\n")
    d.wait_event("program.watch_changed", program="web")
    for i in range(3):  # the restart takes 2 s (SIGTERM is ignored): these come during it
        time.sleep(0.3)
        (base / "app" / "main.py").write_text(f"x = {20 + i}\n")
    wait_until(lambda: d.events("program.watch_coalesced"), 10, "a coalesced batch", seen=d.tail)
    wait_until(lambda: len(d.events("program.watch_changed")) == 2, 20, "the one follow-up restart", seen=d.tail)
    wait_until(lambda: len(starts(d)) == 3, 20, "three incarnations", seen=d.tail)
    d.wait_unit("web", state="running", timeout=15)
    assert len(d.events("program.watch_changed")) == 2


def test_without_dev_there_is_no_watcher_at_all(run_daemon, tmp_path: Path) -> None:
    """Without --dev: one thread in the daemon, no watch events, and a change restarts nothing."""
    base = project(tmp_path)
    d = run_daemon(config(base))
    pid = d.wait_unit("web", state="running")["pid"]
    d.wait_ready()
    assert psutil.Process(d.proc.pid).num_threads() == 1
    assert "watchfiles" not in Path(f"/proc/{d.proc.pid}/maps").read_text()
    (base / "app" / "main.py").write_text("x = 3\n")
    assert not any(e["event"].startswith("program.watch") for e in d.events())
    dev = run_daemon(config(base), env={"SUPERVISOR_DEV": "1"})
    dev.wait_event("program.watching", program="web")
    wait_until(lambda: psutil.Process(dev.proc.pid).num_threads() > 1, 10, "the dev daemon's watch thread")
    assert d.unit("web")["pid"] == pid and d.unit("web")["restarts"] == 0
