"""The ``supervisor`` command. Client commands import only the standard library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from supervisor import __version__
from supervisor.adopt import commands as adopt
from supervisor.host.stdio import ensure_standard_fds
from supervisor.machine.errors import (
    EXIT_CONFIG,
    EXIT_GAVE_UP,
    EXIT_OK,
    EXIT_SIGPIPE,
    EXIT_UNREACHABLE,
    ConfigError,
    ConfigNotFound,
)


def _parser(names: bool = False) -> argparse.ArgumentParser:
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

    p = with_config(sub.add_parser("run", help="run the daemon in the foreground"))
    p.add_argument("--dev", action="store_true", help="development: restart programs when their `watch` files change")
    p = with_config(sub.add_parser("check", help="validate the configuration and print the start-up plan"))
    p.add_argument("file", nargs="?", metavar="FILE", help="the configuration file (as --config)")
    with_config(sub.add_parser("migrate", help="run the migration job(s) once, with the lock"))
    p = with_socket(sub.add_parser("wait", help="wait until every dependency (--ready: the running stack) is ready"))
    p.add_argument("--ready", action="store_true", help="ask the running daemon: exit 0 ready, 1 not in time, 3 none")
    p.add_argument(
        "--timeout", type=float, metavar="S", help="give up after S seconds (default: each dependency's; none)"
    )
    p = with_config(sub.add_parser("exec", help="run CMD in a program's environment once its dependencies answer"))
    p.add_argument("--like", metavar="NAME", help="the program whose environment CMD gets (default: the file's first)")
    p.add_argument("--no-wait", action="store_true", help="run CMD at once, without waiting for the dependencies")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...", help="the command and its arguments")
    p = with_socket(sub.add_parser("status", help="show every unit"))
    p.add_argument("--json", action="store_true", help="print the status document")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing; only the exit code")
    p.add_argument("--watch", "-w", action="store_true", help="redraw the table every interval (Ctrl-C ends)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between tables (default 1)")
    p.add_argument("names", nargs="*", metavar="NAME")
    for verb in ("start", "stop", "restart"):
        p = with_socket(sub.add_parser(verb, help=f"{verb} programs ('all' for every one)"))
        p.add_argument("names", nargs="+", metavar="NAME")
    p = with_socket(sub.add_parser("logs", help="print the last lines of programs and jobs (all without NAME)"))
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="lines per unit (default 100; all with --since)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("--raw", action="store_true", help="on a terminal too, control characters as they came")
    p.add_argument("--since", metavar="WHEN", help="lines from then on: 10m, 1h30m, 2026-12-04T10:00:00[+01:00], today")
    p = with_socket(sub.add_parser("signal", help="send a signal to a program's main process"))
    p.add_argument("name", metavar="NAME")
    p.add_argument("signal", metavar="SIGNAL", help="HUP, SIGUSR1, or a number")
    p.add_argument("--group", action="store_true", help="to the whole process group")
    p = with_socket(sub.add_parser("scale", help="run N instances of a program that has instances"))
    p.add_argument("name", metavar="NAME")
    p.add_argument("count", metavar="N", type=int, help="how many (1 to 1000)")
    p = with_socket(sub.add_parser("reload", help="re-read the configuration (as SIGHUP)"))
    p.add_argument("--json", action="store_true", help="print the result document")
    p = with_socket(sub.add_parser("timeline", help="when each unit became eligible, started and became ready"))
    p.add_argument("--json", action="store_true", help="print the timeline document")
    sub.add_parser("version", help="print the version (as --version)")
    adopt.add_parsers(sub)
    p = sub.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=["bash", "zsh"])
    if names:  # completion scripts ask it for unit names; hidden from help and from typo errors
        p = sub.add_parser("_names")
        p.add_argument("--config", "-c", metavar="FILE")
        p.add_argument("--socket", "-s", metavar="PATH")
        p.add_argument("--programs", action="store_true")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; names may also follow options (``logs worker -n 3 beat``), as docker compose takes them."""
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse ends a command's names at its first option
        if not isinstance(getattr(args, "names", None), list) or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.names = [*args.names, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; return the exit code."""
    ensure_standard_fds()
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # a reader that left shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        if not _stdout_gone():
            raise
        # The reader left (`logs -f | head`, `completion bash | head`): end quietly, with the status
        # of a command that SIGPIPE ended, and keep Python's exit-time flush off the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SIGPIPE


def _main(argv: list[str]) -> int:
    parser = _parser(names=argv[:1] == ["_names"])
    args = parse(parser, argv)
    command = args.command
    if command == "status" and args.watch and (args.json or args.quiet):
        parser.error("status --watch draws the table; --json and --quiet go without it")
    if command == "exec":  # needs no daemon: the file and the probes, then CMD replaces this process
        from supervisor import oneoff

        return oneoff.run(args.config, args.like, not args.no_wait, args.cmd)
    if command == "logs":
        from supervisor.client.logs import BadSince, parse_since

        try:
            args.since_at = None if args.since is None else parse_since(args.since)
        except BadSince as exc:
            parser.error(str(exc))
    if command in ("run", "check", "migrate") or (command == "wait" and not args.ready):
        return _daemon_side(args)
    if command in adopt.COMMANDS:
        return adopt.run(args)
    if command == "version":
        print(f"supervisor {__version__}")
        return EXIT_OK
    if command in ("completion", "_names"):
        from supervisor.client import completion

        if command == "_names":
            for name in completion.unit_names(args.config, args.programs, args.socket):
                print(name)
            return EXIT_OK
        print(completion.script(args.shell, parser))
        return EXIT_OK
    from supervisor.client.api import SOCKET_HINT, BadConfig, Client, Unreachable, find_socket

    try:
        path, origin = find_socket(args.socket, args.config)
    except BadConfig as exc:
        # An operator who just broke the file still needs status and stop: say how to get them.
        print(f"supervisor: {exc}\n  {SOCKET_HINT}", file=sys.stderr)
        return EXIT_CONFIG
    from supervisor.client import api

    settles = command in ("start", "stop", "restart", "reload", "scale")  # answered once programs settle
    keep = command == "wait" or (command == "status" and args.watch)
    client = Client(path, timeout=None if settles else api.TIMEOUT_S, origin=origin, keep=keep)
    try:
        if command == "wait":
            from supervisor.client.ready import wait_ready

            return wait_ready(client, args.timeout)
        if command == "status":
            if args.watch:
                from supervisor.client.watch import watch

                return watch(client, args.interval, args.names)
            return _status(client, args)
        if command in ("start", "stop", "restart"):
            return _act(client, command, args.names)
        if command == "logs":
            from supervisor.client import logs

            return logs.show(client, args)
        if command in ("signal", "timeline", "reload"):
            from supervisor.client import verbs

            return verbs.RUN[command](client, args)
        if command == "scale":
            from supervisor.client.scale import scale

            return scale(client, args.name, args.count)
    except Unreachable as exc:
        print(f"supervisor: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_OK
    return 2  # pragma: no cover - argparse rejects unknown commands


def _stdout_gone() -> bool:
    """Whether standard output is a pipe (or socket) whose reader has gone away."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def _status(client: Any, args: argparse.Namespace) -> int:
    from supervisor.client.safe import escape_doc
    from supervisor.machine.instances import select
    from supervisor.machine.status import problems, render_table

    # The table's CPU and MEM come from the daemon's background sample: spare it a fresh pass.
    code, doc = client.request("GET", "/v1/status" if args.json else "/v1/status?rss=0")
    if code != 200:
        print(f"supervisor: {doc.get('error', code)}", file=sys.stderr)
        return EXIT_GAVE_UP
    if args.names:  # a program with instances stands for them all
        chosen, unknown = select(args.names, [u["name"] for u in doc["units"]])
        if unknown:
            print(f"supervisor: no unit named {', '.join(unknown)}", file=sys.stderr)
            return EXIT_GAVE_UP
        doc["units"] = [u for u in doc["units"] if u["name"] in chosen]
    issues = problems(doc)
    if args.json:
        print(json.dumps(doc, indent=2))
    elif not args.quiet:
        print(render_table(escape_doc(doc)))
        for issue in issues:
            print(f"  ! {issue}")
    return EXIT_OK if not issues else EXIT_GAVE_UP


# After this long without an answer, say what is being waited for: a stop ladder can take minutes.
PATIENCE_S = 2.0


def _act(client: Any, verb: str, names: list[str]) -> int:
    import threading

    worst = EXIT_OK
    for name in dict.fromkeys(names):  # each program once, in the order given
        why = "its stop ladder (stop_timeout) first" if verb != "start" else "it to start (min_uptime, its check)"
        notice = threading.Timer(
            PATIENCE_S,
            print,
            (f"{name}: {verb} under way, waiting for {why}; Ctrl-C here leaves it to the daemon",),
            {"file": sys.stderr, "flush": True},
        )
        notice.daemon = True
        notice.start()
        try:
            code, doc = client.request("POST", f"/v1/programs/{name}/{verb}")
        finally:
            notice.cancel()
        if code != 200:
            print(f"{name}: {doc.get('error', code)}", file=sys.stderr)
            worst = EXIT_GAVE_UP
            continue
        for prog in doc["programs"]:
            pid = f" pid {prog['pid']}" if prog.get("pid") else ""
            waiting = f", waiting for {', '.join(prog['waiting_for'])}" if prog.get("waiting_for") else ""
            print(f"{prog['name']}: {prog['state']}{pid}{waiting}")
    return worst


def _daemon_side(args: argparse.Namespace) -> int:
    import os
    import signal

    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        # Inherited across exec: the kernel would reap our children itself, and we would never
        # hear of their exits (nor could we wait for a validating child).
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    from supervisor.stack import limits  # before the file: ${SUPERVISOR_CPUS} and the cache key read them

    sizes = limits.export(os.environ)
    from supervisor.config.settings import find_path

    named = args.config or getattr(args, "file", None)
    path = find_path(named)
    early: Any = None
    if args.command == "run":
        from supervisor.config import compiled
        from supervisor.host import stray

        stray.shield()  # a USR1 while the file loads must not end us before the loop can say so
        from supervisor.host import tls

        hit = compiled.cached(path)
        if hit is not None:
            # Validated before in this environment: the programs that wait on nothing start now,
            # before the engine is imported (supervisor.host.prestart), once the file can run here.
            early = _prestart(hit, path)
            if early is None:
                return EXIT_CONFIG
            validated: Any = lambda: hit  # noqa: E731
        with tls.hidden():
            import asyncio  # noqa: F401  # first, and without OpenSSL: see supervisor.host.tls
        if hit is None:
            # A forked child validates (pydantic stays out of the daemon) while this process imports.
            validated = compiled.begin(path)
        from supervisor import runtime  # the daemon imports meanwhile
    else:
        from supervisor.config.loader import load

        def validated() -> Any:
            return load(path)

    from supervisor.config import runnable

    try:
        loaded = validated()
        # Whatever would only fail at spawn time is refused before anything starts.
        found = runnable.problems(loaded.config, os.environ) if args.command != "wait" and early is None else []
        if args.command == "migrate":  # runs the jobs only
            found = [(key, what) for key, what in found if key.startswith("jobs.")]
        if found:
            raise ConfigError(str(path), found)
    except ConfigNotFound as exc:
        from supervisor.config.settings import path_origin

        print(f"supervisor: {exc.render(path_origin(named))}", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check":
        from supervisor.config.globs import all_warnings
        from supervisor.config.plan import plan_lines
        from supervisor.stack.warmheads import warm_heads

        print("\n".join(plan_lines(loaded)))
        warm_heads(loaded)  # its line belongs to the plan's; warnings come after
        print(sizes.describe())
        for warning in [*sizes.warnings, *all_warnings(loaded)]:
            print(f"warning: {warning}")
        from supervisor.config import compiled

        # A `run` in this same environment (systemd's ExecStartPre, a restart) reads this result.
        if compiled.store(path, loaded) is None:
            from supervisor.config import cachefiles

            why = cachefiles.unusable()
            if why:  # else only unreadable right now: nothing the operator must do
                print(f"warning: not cached ({why}): each `run` validates the file first, in a child")
        return EXIT_OK
    from supervisor import runtime

    if args.command == "run":
        dev = args.dev or os.environ.get("SUPERVISOR_DEV", "").lower() in ("1", "true", "yes", "on")
        return runtime.run(loaded, early, dev)
    if args.command == "migrate":
        return runtime.migrate(loaded)
    return runtime.wait(loaded, args.timeout)


def _prestart(loaded: Any, path: Any) -> Any:
    """Refuse a file that cannot run here (None), else start the programs that wait on nothing."""
    import os

    from supervisor.config import runnable

    found = runnable.problems(loaded.config, os.environ)
    if found:
        print(ConfigError(str(path), found).render(), file=sys.stderr)
        return None
    from supervisor.host import prestart

    return prestart.start(loaded)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
