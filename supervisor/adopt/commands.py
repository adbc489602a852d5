"""The ``schema`` and ``import`` commands: their arguments, and what each runs.

Only argparse is imported here: ``cli`` builds every command's parser, and client commands
such as ``status`` must stay on a small standard library.
"""

from __future__ import annotations

import argparse
import sys

COMMANDS = ("schema",)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``schema`` to the command line's subcommands."""
    sub.add_parser(
        "schema",
        help="print the configuration's JSON Schema (draft 2020-12), for editors",
        description="Print the configuration's JSON Schema. Save it beside the file and name it on the file's "
        "first line, '#:schema ./supervisor.schema.json', for taplo and Even Better TOML.",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``schema``; return the exit code."""
    from supervisor.config.schema import render

    sys.stdout.write(render())
    return 0
