"""A supervisord configuration (``supervisord.conf``, ``conf.d/*.conf``) as a draft of ours.

Carried: ``command``, ``directory``, ``environment`` (the ``[supervisord]`` one too), ``user``,
``autostart``, ``autorestart``, ``exitcodes``, ``startsecs``, ``startretries``, ``stopsignal``,
``stopwaitsecs``, ``stopasgroup``/``killasgroup``, ``numprocs`` and ``priority`` (as ``after``).
``%(program_name)s``, ``%(group_name)s``, ``%(here)s`` and ``%(ENV_X)s`` are carried; any other
expansion, and every other key and section, becomes a note.
"""

from __future__ import annotations

import configparser
import glob
import os
import re
import shlex

from supervisor.adopt.draft import Draft, NotThisKind, Unit, one_line

_EXPANSION = re.compile(r"%\(([A-Za-z0-9_]+)\)[-#0 +]*\d*[sd]")
_BOOL = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
_RESTART = {"true": "always", "unexpected": "on-failure", "false": "never"}
_LOGS = "the output is captured: `supervisor logs`, and each line in the supervisor's own log"


class _Untranslatable(ValueError):
    pass


def read(text: str, source: str) -> Draft:
    """Return the draft of a supervisord file; raise ``NotThisKind`` naming the line that is not one."""
    parser = configparser.RawConfigParser(
        inline_comment_prefixes=(";", "#"), strict=False, interpolation=None, default_section="\0"
    )
    try:
        parser.read_string(text, source)
    except configparser.MissingSectionHeaderError as exc:
        why = f"not a supervisord file: {exc.line.strip()!r} comes before any [section]"
        raise NotThisKind(exc.lineno, why) from None
    except configparser.ParsingError as exc:
        line, content = exc.errors[0]
        raise NotThisKind(line, f"not a supervisord file: {content.strip()!r} is not key = value") from None
    included = _include(parser, source)
    sections = parser.sections()
    if not any(s.split(":", 1)[0] in _KNOWN for s in sections):
        raise NotThisKind(1, "not a supervisord file: no [program:x], [supervisord] or other supervisord section")
    draft = Draft(source, "supervisord")
    here = os.path.dirname(os.path.abspath(source))
    common = dict(parser["supervisord"]) if parser.has_section("supervisord") else {}
    shared_env = _environment(common.pop("environment", ""), {"here": here}, draft.notes, "[supervisord] environment")
    for section in sections:
        kind, _, name = section.partition(":")
        if kind == "program" and name:
            _program(draft, name, dict(parser[section]), shared_env, here)
        elif kind == "supervisord":
            draft.notes += [f"[supervisord] {k} = {one_line(v)}" for k, v in common.items()]
        elif kind == "include" and included:
            draft.remarks.append("[include] files = " + " ".join(included) + ": their programs are here too")
        else:
            keys = ", ".join(f"{k} = {one_line(v)}" for k, v in parser[section].items()) or "(empty)"
            draft.notes.append(f"[{section}] {_why(kind)}: {keys}")
    _priorities(draft)
    return draft


def _include(parser: configparser.RawConfigParser, source: str) -> list[str]:
    """Read ``[include] files`` (globs relative to the file) into ``parser``, as supervisord does; return them."""
    if not parser.has_option("include", "files"):
        return []
    base = os.path.dirname(os.path.abspath(source))
    found: list[str] = []
    for pattern in parser.get("include", "files").split():
        found += sorted(glob.glob(os.path.join(base, pattern)))
    try:
        parser.read(found)
    except configparser.Error:
        return []  # an included file that is not one: the [include] stays a note
    return found


_KNOWN = {
    "program",
    "supervisord",
    "group",
    "include",
    "eventlistener",
    "fcgi-program",
    "unix_http_server",
    "inet_http_server",
    "supervisorctl",
    "rpcinterface",
}


def _why(kind: str) -> str:
    return {
        "unix_http_server": "the control socket is [supervisor] socket",
        "inet_http_server": "read-only /healthz, /readyz, /metrics are [supervisor] http",
        "supervisorctl": "`supervisor status|start|stop|restart|logs` find the socket themselves",
        "rpcinterface": "the control API is built in",
        "include": "import each included file too, and merge the drafts",
        "group": "start, stop and restart take several names, or all",
        "eventlistener": "no event listeners: see `supervisor logs -f` and /metrics",
        "fcgi-program": "no FastCGI sockets: `listen` hands one TCP socket to a program as fd 3",
    }.get(kind, "unknown section")


def _expand(text: str, names: dict[str, str]) -> str:
    """Expand supervisord's ``%(x)s``: names we know become their value, ``ENV_X`` becomes ``${X}``."""

    def one(match: re.Match[str]) -> str:
        word = match.group(1)
        if word.startswith("ENV_"):
            return "${" + word[4:] + "}"
        if word in names:
            return names[word]
        raise _Untranslatable(f"%({word})s has no equivalent here")

    return _EXPANSION.sub(one, text).replace("%%", "%")


def _environment(text: str, names: dict[str, str], notes: list[str], where: str) -> dict[str, str]:
    """Parse ``KEY="value",KEY2=value2`` as supervisord does (a shlex of words, = and commas)."""
    if not text.strip():
        return {}
    try:
        lexer = shlex.shlex(_expand(text, names), posix=False)
        lexer.wordchars += "/.+-():${}%*@!?~^[]"
        lexer.whitespace += ","
        tokens = list(lexer)
    except (_Untranslatable, ValueError) as exc:
        notes.append(f"{where} = {one_line(text)} ({exc})")
        return {}
    env: dict[str, str] = {}
    for i in range(0, len(tokens), 3):
        k_eq_v = tokens[i : i + 3]
        if len(k_eq_v) != 3 or k_eq_v[1] != "=":
            notes.append(f"{where} = {one_line(text)} (not KEY=value pairs)")
            return {}
        env[k_eq_v[0]] = k_eq_v[2].strip("'\"")
    return env


def _program(draft: Draft, name: str, keys: dict[str, str], shared_env: dict[str, str], here: str) -> None:
    unit = draft.unit("program", name)
    names = {"program_name": name, "group_name": name, "here": here}
    numprocs = keys.pop("numprocs", "1").strip()
    if numprocs.isdigit() and int(numprocs) > 1:
        unit.keys["instances"] = int(numprocs)
        unit.remarks.append(f"numprocs = {numprocs}: each instance gets SUPERVISOR_INSTANCE (0..{int(numprocs) - 1})")
    elif numprocs != "1":
        unit.lose(f"numprocs = {numprocs}")
    process_name = keys.pop("process_name", None)
    if process_name and process_name.strip() != "%(program_name)s":
        unit.lose(f"process_name = {process_name} (instances are named {name}:0, {name}:1...)")
    command = keys.pop("command", None)
    if command is None:
        unit.lose("(no command: supervisord would refuse this program too)")
        unit.keys["command"] = ["false"]
    else:
        try:
            unit.keys["command"] = shlex.split(_expand(command, names))
        except (_Untranslatable, ValueError) as exc:
            unit.lose(f"command = {one_line(command)} ({exc}): written as a shell line")
            unit.keys["command"] = ["sh", "-c", command]
    for key, raw in keys.items():
        _key(unit, key, raw.strip(), names)
    env = {**shared_env, **_environment(keys.get("environment", ""), names, unit.notes, "environment")}
    if env:
        unit.keys["environment"] = env


def _key(unit: Unit, key: str, raw: str, names: dict[str, str]) -> None:
    """Carry one key of a ``[program:x]`` section, or note it."""
    if key == "environment":
        return  # read with the shared one
    if key == "directory":
        try:
            unit.keys["cwd"] = _expand(raw, names)
        except _Untranslatable as exc:
            unit.lose(f"directory = {raw} ({exc})")
    elif key == "user":
        unit.keys["user"] = raw
    elif key == "autostart" and raw.lower() in _BOOL:
        unit.keys["autostart"] = _BOOL[raw.lower()]
    elif key == "autorestart" and raw.lower() in _RESTART:
        unit.keys.setdefault("restart", {})["policy"] = _RESTART[raw.lower()]
    elif key == "exitcodes" and all(c.strip().isdigit() for c in raw.split(",")):
        codes = [int(c) for c in raw.split(",") if int(c) != 0]
        if codes:
            unit.keys.setdefault("restart", {})["success_exit_codes"] = codes
    elif key == "startsecs" and raw.isdigit():
        unit.keys["min_uptime"] = f"{raw}s"
    elif key == "startretries" and raw.isdigit():
        unit.keys.setdefault("restart", {})["max_restarts"] = int(raw)
        unit.remarks.append(f"startretries = {raw}: here restarts within restart.window, with a backoff")
    elif key == "stopsignal":
        unit.keys["stop_signal"] = raw.upper() if raw.upper().startswith("SIG") else "SIG" + raw.upper()
    elif key == "stopwaitsecs" and raw.isdigit():
        unit.keys["stop_timeout"] = f"{raw}s"
    elif key == "stopasgroup" and raw.lower() in _BOOL:
        if _BOOL[raw.lower()]:
            unit.keys["stop_group"] = True
    elif key == "killasgroup" and raw.lower() in _BOOL:
        if _BOOL[raw.lower()]:
            unit.remarks.append("killasgroup = true: always so here, SIGKILL goes to the whole group")
    elif key == "priority" and raw.lstrip("-").isdigit():
        unit.remarks.append(f"priority = {raw}")
    elif key.startswith(("stdout_", "stderr_")) or key == "redirect_stderr":
        unit.lose(f"{key} = {raw} ({_LOGS})")
    else:
        unit.lose(f"{key} = {one_line(raw)}")


def _priorities(draft: Draft) -> None:
    """supervisord starts lower priorities first: each program comes ``after`` the level below its own."""
    level: dict[str, int] = {}
    for unit in draft.units:
        found = [r for r in unit.remarks if r.startswith("priority = ")]
        level[unit.name] = int(found[0].split("= ")[1]) if found else 999
    steps = sorted(set(level.values()))
    if len(steps) < 2:
        return
    for unit in draft.units:
        mine = steps.index(level[unit.name])
        if mine:
            before = sorted(n for n, p in level.items() if p == steps[mine - 1])
            unit.keys["after"] = before
            unit.remarks.append("after: supervisord's priority order (ordering only; depends_on waits for readiness)")
