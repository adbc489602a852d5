"""`supervisor import` carries what it can, keeps the rest as comments, and refuses a file of another kind."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from supervisor.adopt import compose, procfile, supervisord
from supervisor.adopt.kinds import detect
from supervisor.cli import main
from supervisor.config import load

ROOT = Path(__file__).resolve().parents[2]
NOTE = "# not carried over:"


def validates(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Load the drafted text as `check` does (without the can-it-run-here part); return its tables."""
    path = tmp_path / "drafted.toml"
    path.write_text(text)
    load(path, environ=env or {})
    return tomllib.loads(text)


SUPERVISORD = """\
[supervisord]
nodaemon=true
environment=APP_ENV="prod",SHARED=1

[program:web]
command=uvicorn app:app --port %(ENV_PORT)s --name %(program_name)s
directory=/srv/app
autorestart=unexpected
exitcodes=0,3
startsecs=5
startretries=7
stopsignal=QUIT
stopwaitsecs=20
stopasgroup=true
killasgroup=true
environment=PATH="/srv/venv/bin:%(ENV_PATH)s",WORKER=%(program_name)s
stdout_logfile=/var/log/web.log
priority=10

[program:worker]
command=celery -A app worker -n worker%(process_num)02d@%%h
numprocs=3
process_name=%(program_name)s_%(process_num)02d
umask=022

[group:all-of-it]
programs=web,worker
"""


def test_supervisord_keys_and_interpolation_are_carried(tmp_path: Path) -> None:
    """Each SPEC key becomes ours; %(program_name)s and %(ENV_X)s are carried; [supervisord] environment is shared."""
    text = supervisord.read(SUPERVISORD, str(tmp_path / "supervisord.conf")).render()
    web = validates(tmp_path, text)["programs"]["web"]
    assert web["command"] == ["uvicorn", "app:app", "--port", "${PORT}", "--name", "web"]
    assert web["cwd"] == "/srv/app"
    assert web["restart"] == {"policy": "on-failure", "success_exit_codes": [3], "max_restarts": 7}
    stop = (web["stop_signal"], web["stop_timeout"], web["stop_group"])
    assert web["min_uptime"] == "5s" and stop == ("SIGQUIT", "20s", True)
    assert web["environment"] == {"APP_ENV": "prod", "SHARED": "1", "PATH": "/srv/venv/bin:${PATH}", "WORKER": "web"}
    assert "# priority = 10" in text


def test_supervisord_what_has_no_equivalent_is_a_comment(tmp_path: Path) -> None:
    """%(process_num)s, logs, umask, process_name, [supervisord] and [group:] keys: comments, none dropped."""
    text = supervisord.read(SUPERVISORD, "supervisord.conf").render()
    notes = [line for line in text.splitlines() if line.startswith(NOTE)]
    for lost in ("%(process_num)02d", "stdout_logfile = /var/log/web.log", "umask = 022", "process_name", "nodaemon"):
        assert any(lost in n for n in notes), f"{lost} is not noted"
    assert any("[group:all-of-it]" in n and "programs = web,worker" in n for n in notes)
    tables = tomllib.loads(text)["programs"]
    assert tables["worker"]["instances"] == 3
    assert tables["worker"]["command"] == ["sh", "-c", "celery -A app worker -n worker%(process_num)02d@%%h"]
    assert tables["worker"]["after"] == ["web"]  # priority 10 before the default 999


def test_included_files_are_read_as_supervisord_reads_them(tmp_path: Path) -> None:
    """[include] files = conf.d/*.conf: the included programs are drafted too, and the include is named."""
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "web.conf").write_text("[program:web]\ncommand=uvicorn app:app\n")
    main_conf = tmp_path / "supervisord.conf"
    main_conf.write_text("[supervisord]\nnodaemon=true\n\n[include]\nfiles = conf.d/*.conf\n")
    text = supervisord.read(main_conf.read_text(), str(main_conf)).render()
    assert tomllib.loads(text)["programs"]["web"]["command"] == ["uvicorn", "app:app"]
    assert f"# [include] files = {tmp_path}/conf.d/web.conf: their programs are here too" in text


def test_every_source_key_reaches_the_output() -> None:
    """Each option of each section is in the draft: as the key that carries it, or named in a comment."""
    carried = {
        "directory": "cwd =",
        "autorestart": "policy =",
        "exitcodes": "success_exit_codes =",
        "startsecs": "min_uptime =",
        "startretries": "max_restarts =",
        "stopsignal": "stop_signal =",
        "stopwaitsecs": "stop_timeout =",
        "stopasgroup": "stop_group =",
        "numprocs": "instances =",
    }
    text = supervisord.read(SUPERVISORD, "supervisord.conf").render()
    for line in SUPERVISORD.splitlines():
        if "=" in line and not line.startswith("["):
            option = line.split("=", 1)[0].strip()
            assert carried.get(option, option) in text, f"{option} is lost"


def test_procfile_lines_become_programs_and_release_a_job(tmp_path: Path) -> None:
    """release: is a job all wait for; $PORT becomes ${PORT}; shell lines keep sh; leading VAR=x go to environment."""
    text = procfile.read(
        "# comment\nrelease: python manage.py migrate\n"
        "web: gunicorn app --bind :$PORT\n"
        "worker: REMAP_SIGTERM=SIGQUIT celery -A app worker --concurrency ${C:-2}\n"
        "beat: cd src && celery -A app beat\n",
        "Procfile",
    ).render()
    doc = validates(tmp_path, text)
    assert doc["jobs"]["release"]["command"] == ["python", "manage.py", "migrate"]
    web, worker, beat = (doc["programs"][n] for n in ("web", "worker", "beat"))
    assert web == {"command": ["gunicorn", "app", "--bind", ":${PORT}"], "depends_on": ["release"]}
    assert worker["command"][-1] == "${C:-2}" and worker["environment"] == {"REMAP_SIGTERM": "SIGQUIT"}
    assert beat["command"] == ["sh", "-c", "cd src && celery -A app beat"]


COMPOSE = """\
x-app: &app
  image: myapp:latest
  env_file: [.env, {path: .env.local, required: false}]
services:
  db:
    image: postgres:16
    environment: {POSTGRES_USER: app, POSTGRES_DB: appdb}
  redis:
    image: redis:7-alpine
  migrate:
    <<: *app
    command: alembic upgrade head
    depends_on: {db: {condition: service_healthy}}
  web:
    <<: *app
    command: ["uvicorn", "app:app", "--port", "${PORT:-8000}", "--root-path", "$$ROOT"]
    environment:
      - SECRET=${SECRET:?set SECRET}
      - OPTIONAL=${OPT:+yes}
      - FROM_HOST
      - LEVEL=${LEVEL-info}
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
      redis: {condition: service_started}
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8000/health"]
      interval: 10s
      timeout: 3s
      retries: 4
      start_period: 1m
    restart: unless-stopped
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    ports: ["8000:8000"]
  worker:
    <<: *app
    command: celery -A app worker
    healthcheck:
      test: ["CMD-SHELL", "celery -A app inspect ping -d worker@$$HOSTNAME --timeout ${PING:-5}"]
    restart: on-failure:5
    deploy: {replicas: 3, resources: {limits: {memory: 512M}}}
  nginx:
    image: nginx
"""


def test_compose_services_become_units(tmp_path: Path) -> None:
    """Postgres and Redis services are probed; a completed_successfully service is a job; keys map to ours."""
    text = compose.read(COMPOSE, "docker-compose.yml").render()
    (tmp_path / ".env").write_text("")
    doc = validates(tmp_path, text, {"SECRET": "s"})
    assert doc["dependencies"]["db"] == {"type": "postgres", "url": "${DATABASE_URL:-postgresql://app@db:5432/appdb}"}
    assert doc["dependencies"]["redis"]["type"] == "redis"
    assert doc["jobs"]["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert doc["jobs"]["migrate"]["env_file"] == [".env", "-.env.local"]
    web = doc["programs"]["web"]
    assert web["command"] == ["uvicorn", "app:app", "--port", "${PORT:-8000}", "--root-path", "$ROOT"]
    assert web["depends_on"] == ["db", "migrate", "redis"]
    assert web["environment"] == {"SECRET": "${SECRET:?set SECRET}", "LEVEL": "${LEVEL-info}"}
    assert web["health"] == {
        "http": "http://localhost:8000/health",
        "interval": "10s",
        "timeout": "3s",
        "start_period": "60s",
        "failure_threshold": 4,
    }
    assert (web["restart"], web["stop_signal"], web["stop_timeout"]) == ({"policy": "always"}, "SIGINT", "90s")
    worker = doc["programs"]["worker"]
    ping = "celery -A app inspect ping -d worker@$HOSTNAME --timeout ${PING:-5}"  # $$: the shell's $
    assert worker["health"] == {"exec": ["sh", "-c", ping]}
    assert worker["restart"] == {"policy": "on-failure"}
    assert worker["instances"] == 3


def test_compose_what_has_no_equivalent_is_a_comment() -> None:
    """${VAR:+x}, ports, image, a restart count, an unknown service: each named in a comment, none dropped."""
    text = compose.read(COMPOSE, "docker-compose.yml").render()
    notes = "\n".join(line for line in text.splitlines() if line.startswith(NOTE))
    lost_keys = ("OPTIONAL=${OPT:+yes}", "ports: ['8000:8000']", "image: myapp:latest", "restart: on-failure:5", "512M")
    assert "service nginx (image nginx)" in notes
    for lost in lost_keys:
        assert lost in notes, f"{lost} is not noted"
    assert "# environment FROM_HOST: inherited" in text


def test_the_kind_is_told_from_the_name_then_the_content() -> None:
    """Procfile*, *.yml and *.conf by name; [program:x], services: and name: command lines by content."""
    assert detect("deploy/Procfile.dev", "") == "procfile"
    assert detect("compose.yaml", "") == "compose"
    assert detect("x/supervisord.conf", "") == "supervisord"
    assert detect("app", "[program:web]\ncommand=x\n") == "supervisord"
    assert detect("app", "services:\n  web: {}\n") == "compose"
    assert detect("app", "web: gunicorn app\n") == "procfile"
    assert detect("app", "hello world\n") is None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `supervisor import` in this process, from the checkout; return its code and output."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["import", *args])
    finally:
        os.chdir(cwd)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize(
    ("name", "kind", "line", "why"),
    [
        ("saleor-platform.docker-compose.yml", "supervisord", 1, "'services:' comes before any [section]"),
        ("celery-celeryd.conf", "procfile", 1, "not a Procfile"),
        ("graditude.Procfile", "compose", 1, "no `services:` mapping"),
        ("celery-celeryd.conf", "compose", 1, "not a Compose file"),
    ],
)
def test_a_file_of_another_kind_exits_2_naming_the_line(name: str, kind: str, line: int, why: str) -> None:
    """Read as the wrong kind, a file is refused with exit 2 and FILE:LINE where parsing failed."""
    path = f"tests/data/import/{name}"
    out = cli(path, "--from", kind)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    assert f"{path}:{line}: " in out.stderr and why in out.stderr


def test_a_broken_yaml_file_names_its_line(tmp_path: Path) -> None:
    """A YAML error is reported at its line; an unknown kind asks for --from; OUT is never overwritten silently."""
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  web:\n    command: [a, b\n  db: {}\n")
    out = cli(str(bad))
    assert out.returncode == 2 and f"{bad}:4: not YAML" in out.stderr, out.stderr
    odd = tmp_path / "app"
    odd.write_text("hello world\n")
    assert "--from" in cli(str(odd)).stderr
    target = tmp_path / "out.toml"
    target.write_text("keep me\n")
    out = cli("tests/data/import/graditude.Procfile", "-o", str(target))
    assert out.returncode == 2 and "exists" in out.stderr and target.read_text() == "keep me\n"
    assert cli("tests/data/import/graditude.Procfile", "-o", str(target), "--force").returncode == 0
    assert target.read_text().startswith("# Drafted by `supervisor import`")


def test_names_that_would_not_check_are_adjusted_and_said(tmp_path: Path) -> None:
    """A Procfile line repeated keeps the last, noting the first; a unit named all is renamed."""
    text = procfile.read("web: a-cmd\nweb: b-cmd\nall: c-cmd\n", "Procfile").render()
    doc = validates(tmp_path, text)
    assert doc["programs"]["web"]["command"] == ["b-cmd"] and doc["programs"]["all-unit"]["command"] == ["c-cmd"]
    assert "# not carried over: an earlier web (command a-cmd): this one wins" in text
