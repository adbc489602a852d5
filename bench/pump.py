"""The daemon's output path alone: a child's pipe, read, split, kept in the ring and logged.

    python bench/pump.py [--lines 1000000] [--rounds 5] [--chunks 16384,32768,65536]

One child (``tests/programs/chatty.py``) writes LINES lines of 100 bytes, 80 lines a write,
into a pipe that this process reads with the daemon's own pieces (``OutputPump``, the unit's
ring ``LineBuffer``, ``OutputSink`` into a ``LogWriter`` on a file), as a program's output
takes them in the daemon, without the rest of the daemon around it. Reports this process's CPU
per line (``time.process_time``), the median of ROUNDS, per log format and read size (the
pump's ``chunk``). Unlike ``bench/logflood.py``, no second daemon and no scheduler stands
between the figure and the code, so a change to the path shows even on a shared machine.
Writes bench/results/pump.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog

from supervisor.engine.units.base import LineBuffer
from supervisor.host.logwriter import LogWriter
from supervisor.host.output import CHUNK, OutputPump
from supervisor.host.outputlog import OutputSink

ROOT = Path(__file__).resolve().parents[1]
CHATTY = str(ROOT / "tests" / "programs" / "chatty.py")


def once(fmt: str, chunk: int, lines: int) -> float:
    """CPU µs a line for one child's ``lines`` through the pump, the ring and the sink."""
    with tempfile.TemporaryDirectory(prefix="pump-") as work, open(Path(work) / "log", "w") as out:
        writer = LogWriter(out)
        renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
        sink = OutputSink(writer, renderer, fmt == "json", True)
        ring = LineBuffer(1000)
        read_end, write_end = os.pipe()
        child = subprocess.Popen([sys.executable, CHATTY, str(lines), "100"], stdout=write_end)
        os.close(write_end)
        loop = asyncio.new_event_loop()
        done = loop.create_future()
        seen = 0

        def on_lines(batch: list[str]) -> None:
            nonlocal seen
            seen += len(batch)
            ring.extend("stdout", batch)
            sink.write("chatty", "stdout", batch)
            if seen >= lines and not done.done():
                done.set_result(None)

        began = time.process_time()
        pump = OutputPump(loop, read_end, on_lines, chunk=chunk)
        loop.run_until_complete(done)
        cpu = time.process_time() - began
        pump.close()
        loop.close()
        child.kill()
        child.wait()
        writer.close()
    return cpu / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunks", default=f"16384,{CHUNK},65536", help="read sizes, comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pump.json")
    args = parser.parse_args()
    chunks = [int(c) for c in args.chunks.split(",")]
    load = os.getloadavg()[0]
    runs: dict[str, list[float]] = {}
    for _ in range(args.rounds):  # alternating, so that a shared machine's load falls on each alike
        for fmt in ("json", "console"):
            for chunk in chunks:
                runs.setdefault(f"{fmt} {chunk}", []).append(once(fmt, chunk, args.lines))
    medians = {key: statistics.median(values) for key, values in runs.items()}
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lines": args.lines,
        "default_chunk": CHUNK,
        "load_1m": [load, os.getloadavg()[0]],
        "median_us_per_line": medians,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| log format | read size | CPU a line (median) |")
    print("| --- | --- | --- |")
    for key, value in medians.items():
        fmt, chunk = key.split()
        mark = " (default)" if int(chunk) == CHUNK else ""
        print(f"| {fmt} | {int(chunk) // 1024} KiB{mark} | {value:.3f} µs |")
    print(f"\nload average (1 min): {load:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
