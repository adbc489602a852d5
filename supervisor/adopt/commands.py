"""The ``schema`` and ``import`` commands: their arguments, and what each runs.

Only argparse is imported here: ``cli`` builds every command's parser, and client commands
such as ``status`` must stay on a small standard library.
"""

from __future__ import annotations

import argparse
import os
import sys

COMMANDS = ("schema", "import")
KINDS = ("supervisord", "procfile", "compose")
EXIT_USAGE = 2  # the file is not what it was said (or found) to be, or cannot be read or written


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``schema`` and ``import`` to the command line's subcommands."""
    sub.add_parser(
        "schema",
        help="print the configuration's JSON Schema (draft 2020-12), for editors",
        description="Print the configuration's JSON Schema. Save it beside the file and name it on the file's "
        "first line, '#:schema ./supervisor.schema.json', for taplo and Even Better TOML.",
    )
    p = sub.add_parser(
        "import",
        help="draft a configuration from a supervisord file, a Procfile or a Compose file",
        description="Draft a configuration from another tool's file. What it cannot carry over stays in the "
        "output as '# not carried over:' comments. Without --from, the kind is told by the file's name "
        "(Procfile*, *.yml/*.yaml, *.conf/*.ini), else by its content.",
    )
    p.add_argument("file", metavar="FILE", help="the file to read")
    p.add_argument("--from", dest="kind", choices=KINDS, help="what FILE is (default: told from its name or content)")
    p.add_argument("-o", "--output", metavar="OUT", help="write the configuration to OUT (default: print it)")
    p.add_argument("--force", action="store_true", help="replace OUT when it exists")


def run(args: argparse.Namespace) -> int:
    """Run ``schema`` or ``import``; return the exit code."""
    if args.command == "schema":
        from supervisor.config.schema import render

        sys.stdout.write(render())
        return 0
    return _import(args)


def _fail(message: str) -> int:
    print(f"supervisor import: {message}", file=sys.stderr)
    return EXIT_USAGE


def _import(args: argparse.Namespace) -> int:
    from supervisor.adopt.draft import NotThisKind
    from supervisor.adopt.kinds import READERS, detect

    try:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"{args.file}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    kind = args.kind or detect(args.file, text)
    if kind is None:
        return _fail(f"{args.file}: cannot tell what kind of file this is: name it with --from {'|'.join(KINDS)}")
    try:
        draft = READERS[kind](text, args.file)
    except NotThisKind as exc:
        where = f"{args.file}:{exc.line}" if exc.line else args.file
        return _fail(f"{where}: {exc.why} (read as {kind}{'' if args.kind else ', told from the file'})")
    out = draft.render()
    if args.output is None:
        sys.stdout.write(out)
        return 0
    if os.path.exists(args.output) and not args.force:
        return _fail(f"{args.output} exists: name another file, or add --force to replace it")
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(out)
    except OSError as exc:
        return _fail(f"{args.output}: cannot write: {exc.strerror}")
    carried = sum(1 for u in draft.units if not u.commented)
    lost = out.count("# not carried over:")
    print(f"{args.output}: {carried} units, {lost} notes of what was not carried over")
    print(f"next: read it, then `supervisor check {args.output}`")
    return 0
