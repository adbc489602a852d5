"""The ``supervisor`` command. Client commands import only the standard library."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from supervisor import __version__
from supervisor.errors import (
    EXIT_CONFIG,
    EXIT_GAVE_UP,
    EXIT_OK,
    EXIT_UNREACHABLE,
    ConfigError,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supervisor", description="A process supervisor for Python web stacks.")
    parser.add_argument("--version", action="version", version=f"supervisor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config",
            "-c",
            metavar="FILE",
            help="configuration file (default: $SUPERVISOR_CONFIG, else conf/supervisor.toml)",
        )
        return p

    def with_socket(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--socket",
            "-s",
            metavar="PATH",
            help="control socket (default: $SUPERVISOR_SOCKET, else the configuration's)",
        )
        p.add_argument("--config", "-c", metavar="FILE", help="configuration file to find the socket in")
        return p

    with_config(sub.add_parser("run", help="run the daemon in the foreground"))
    with_config(sub.add_parser("check", help="validate the configuration and print the start-up plan"))
    with_config(sub.add_parser("migrate", help="run the migration job(s) once, with the lock"))
    p = with_config(sub.add_parser("wait", help="wait until every dependency is ready"))
    p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (default: each dependency's)")
    p = with_socket(sub.add_parser("status", help="show every unit"))
    p.add_argument("--json", action="store_true", help="print the status document")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing; only the exit code")
    p.add_argument("names", nargs="*", metavar="NAME")
    for verb in ("start", "stop", "restart"):
        p = with_socket(sub.add_parser(verb, help=f"{verb} programs ('all' for every one)"))
        p.add_argument("names", nargs="+", metavar="NAME")
    p = with_socket(sub.add_parser("logs", help="print a program's last lines"))
    p.add_argument("name", metavar="NAME")
    p.add_argument("-n", "--lines", type=int, default=100, metavar="N")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    with_socket(sub.add_parser("reload", help="re-read the configuration (as SIGHUP)"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; return the exit code."""
    args = _parser().parse_args(argv)
    command = args.command
    if command in ("run", "check", "migrate", "wait"):
        return _daemon_side(args)
    from supervisor.control.client import Client, Unreachable, find_socket

    client = Client(find_socket(args.socket, args.config))
    try:
        if command == "status":
            return _status(client, args)
        if command in ("start", "stop", "restart"):
            return _act(client, command, args.names)
        if command == "logs":
            return _logs(client, args)
        if command == "reload":
            code, doc = client.request("POST", "/v1/reload")
            print(doc.get("error") if code != 200 else json.dumps(doc))
            return EXIT_OK if code == 200 else EXIT_GAVE_UP
    except Unreachable as exc:
        print(f"supervisor: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_OK
    return 2  # pragma: no cover - argparse rejects unknown commands


def _status(client: Any, args: argparse.Namespace) -> int:
    from supervisor.control.protocol import problems, render_table

    code, doc = client.request("GET", "/v1/status")
    if code != 200:
        print(f"supervisor: {doc.get('error', code)}", file=sys.stderr)
        return EXIT_GAVE_UP
    if args.names:
        known = {u["name"] for u in doc["units"]}
        unknown = [n for n in args.names if n not in known]
        if unknown:
            print(f"supervisor: no unit named {', '.join(unknown)}", file=sys.stderr)
            return EXIT_GAVE_UP
        doc["units"] = [u for u in doc["units"] if u["name"] in args.names]
    issues = problems(doc)
    if args.json:
        print(json.dumps(doc, indent=2))
    elif not args.quiet:
        print(render_table(doc))
        for issue in issues:
            print(f"  ! {issue}")
    return EXIT_OK if not issues else EXIT_GAVE_UP


def _act(client: Any, verb: str, names: list[str]) -> int:
    worst = EXIT_OK
    for name in names:
        code, doc = client.request("POST", f"/v1/programs/{name}/{verb}")
        if code != 200:
            print(f"{name}: {doc.get('error', code)}", file=sys.stderr)
            worst = EXIT_GAVE_UP
            continue
        for prog in doc["programs"]:
            pid = f" pid {prog['pid']}" if prog.get("pid") else ""
            print(f"{prog['name']}: {prog['state']}{pid}")
    return worst


def _logs(client: Any, args: argparse.Namespace) -> int:
    target = f"/v1/programs/{args.name}/logs?lines={args.lines}" + ("&follow=1" if args.follow else "")
    first = True
    for code, doc in client.stream(target) if args.follow else [client.request("GET", target)]:
        if code != 200:
            print(f"supervisor: {doc.get('error', code)}", file=sys.stderr)
            return EXIT_GAVE_UP
        rows = doc["lines"] if first else [doc]
        first = False
        for row in rows:
            stamp = time.strftime("%H:%M:%S", time.localtime(row["time"]))
            print(f"{stamp} {row['stream']:<6} {row['line']}", flush=True)
    return EXIT_OK


def _daemon_side(args: argparse.Namespace) -> int:
    import os

    from supervisor.config import find_path, load, runnable

    path = find_path(args.config)
    try:
        loaded = load(path)
        # Whatever would only fail at spawn time is refused before anything starts.
        found = runnable.problems(loaded.config, os.environ) if args.command != "wait" else []
        if args.command == "migrate":  # runs the jobs only
            found = [(key, what) for key, what in found if key.startswith("jobs.")]
        if found:
            raise ConfigError(str(path), found)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check":
        print(f"{loaded.path}: valid")
        print("start-up plan (each step needs only the ones before it):")
        for i, level in enumerate(loaded.plan, 1):
            print(f"  {i}. " + ", ".join(f"{n} ({loaded.kind_of(n)})" for n in level))
        for name, prog in loaded.config.programs.items():
            if prog.restart.order == "start-first":
                ready = "READY=1 (notify)" if prog.notify else "its heartbeat file"
                print(f"  {name}: restarts start-first: the old process serves until the new one is ready by {ready}")
        for warning in loaded.warnings:
            print(f"warning: {warning}")
        return EXIT_OK
    from supervisor import runtime

    if args.command == "run":
        return runtime.run(loaded)
    if args.command == "migrate":
        return runtime.migrate(loaded)
    return runtime.wait(loaded, args.timeout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
