"""s6 as a peer in the benchmarks: a scan directory of services whose ./run is the stamp binary.

s6 comes from the distribution's packages (`apt-get install s6` on Debian). When `s6-svscan`
is not on PATH the s6 columns are skipped, and the report says so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path


def available() -> str | None:
    """The path of s6-svscan, or None when s6 is not installed."""
    return shutil.which("s6-svscan")


class S6:
    """`s6-svscan` over one service directory per program.

    Each service's ./run is a symlink to the stamp binary: the peer at its fastest, with no
    shell or execline between the supervisor and the program. s6-supervise runs it in the
    service's directory with the service's name as its argument, so it writes its stamps to
    ``<service>/<name>``.
    """

    name = "s6"

    def __init__(self, work: Path, names: list[str], stamp: str) -> None:
        self.work = work
        self.stamp = os.path.realpath(stamp)
        self.scan = work / "scan"
        self.scan.mkdir()
        for name in names:
            service = self.scan / name
            service.mkdir()
            (service / "run").symlink_to(stamp)
        self.proc: subprocess.Popen[bytes] | None = None

    def stamp_file(self, name: str) -> Path:
        """Where the program ``name`` writes its stamps."""
        return self.scan / name / name

    def start(self) -> None:
        """Start s6-svscan in a session of its own (so that whatever is left can be killed at the end)."""
        svscan = available()
        assert svscan is not None
        self.proc = subprocess.Popen(
            [svscan, str(self.scan)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    def stop(self) -> None:
        """SIGTERM s6-svscan (it brings its services down), then kill whatever of its session is left."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        finally:
            for pid in _session(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            for stamps in (self.stamp_file(service.name) for service in self.scan.iterdir()):
                if not stamps.exists():
                    continue
                for line in stamps.read_text().splitlines():
                    try:
                        pid = int(line.split()[1])
                        if os.readlink(f"/proc/{pid}/exe") == self.stamp:  # never a recycled pid
                            os.kill(pid, signal.SIGKILL)
                    except (OSError, IndexError, ValueError):
                        pass


def _session(sid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getsid(int(name)) == sid:
                    found.append(int(name))
            except OSError:
                continue
    return found
