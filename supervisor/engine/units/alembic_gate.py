"""The Alembic gate: whether a migration job needs to run, from the database's revision and the scripts' heads.

The job asks; the gate reads (``alembic_version`` over psycopg, the heads from their cache or a
helper child) and answers with a ``Verdict``. The job alone changes its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supervisor.config.envfile import EnvFileError
from supervisor.config.settings import JobConfig
from supervisor.engine.units.base import Context, run_command
from supervisor.host.process import SpawnSpec
from supervisor.machine.record import Record
from supervisor.stack import migrations


@dataclass(frozen=True, repr=False, eq=False)
class Verdict(Record):
    """What the revisions say: go on, or the job is over (skipped, or failed with ``why``)."""

    over: bool = False
    skipped: bool = False
    why: str | None = None


PROCEED = Verdict()


class AlembicGate:
    """Reads the revisions for one job; keeps what it read for the status document."""

    def __init__(
        self, cfg: JobConfig, revision_url: str, ctx: Context, log: Any, environment: Callable[[], dict[str, str]]
    ) -> None:
        assert cfg.alembic_config is not None
        self.cfg = cfg
        self.alembic_ini = cfg.alembic_config
        self.revision_url = revision_url
        self.ctx = ctx
        self._log = log
        self._environment = environment
        self.revisions: migrations.Revisions | None = None
        self._heads: asyncio.Task[tuple[set[str], tuple[str, ...]]] | None = None
        self._known: set[str] = set()

    def prepare(self) -> None:
        """Start reading the script heads now, while the dependencies are still awaited."""
        if self._heads is None:
            self._heads = self.ctx.loop.create_task(self._read_heads())

    def cancel(self) -> None:
        """Stop reading the heads."""
        if self._heads is not None:
            self._heads.cancel()

    async def _read_heads(self) -> tuple[set[str], tuple[str, ...]]:
        cached = migrations.cached_heads(self.alembic_ini, self.cfg.cwd)
        if cached is not None:  # the scripts are as they were when the helper (or `check`) read them
            return cached
        out: list[str] = []
        try:
            env = self._environment()
        except EnvFileError as exc:
            raise RuntimeError(str(exc)) from None
        spec = SpawnSpec(argv=migrations.heads_command(self.alembic_ini), env=env, cwd=self.cfg.cwd)
        status = await run_command(
            self.ctx, spec, 120.0, lambda stream, lines: out.extend(f"{stream}\t{line}" for line in lines)
        )
        stdout = "\n".join(line.split("\t", 1)[1] for line in out if line.startswith("stdout\t"))
        if status is None or not status.success:
            tail = [line.split("\t", 1)[1] for line in out][-3:]
            raise RuntimeError(f"cannot read the migration scripts of {self.alembic_ini}: {' / '.join(tail) or status}")
        return migrations.parse_heads(stdout)

    async def decide(self, when: str) -> Verdict:
        """Compare the database with the scripts: at head (skip), ahead of the code (fail), or migrate."""
        self.prepare()
        current, failure = await self._read_current()
        if current is None:
            return Verdict(over=True, why=failure)
        if not current:
            # An empty database is neither at head nor ahead: migrate without waiting for the
            # script heads, which reach the status document when the helper is done.
            self._log.info("job.revisions", current=None, when=when, next="migrating")
            self._track_heads(current)
            return PROCEED
        assert self._heads is not None
        try:
            self._known, heads = await self._heads
        except RuntimeError as exc:
            self._log.error("job.scripts_unreadable", error=str(exc))
            return Verdict(over=True, why=str(exc))
        revs = self.revisions = migrations.compare(current, self._known, heads)
        if revs.unknown:
            why = (
                f"the database is at revision {', '.join(revs.unknown)}, which these migration scripts "
                f"do not know (heads: {', '.join(revs.heads)}): the database is ahead of the code"
            )
            self._log.error(
                "job.database_ahead",
                current=revs.current,
                heads=revs.heads,
                why=why,
                hint="deploy the newer code, or downgrade the database deliberately",
            )
            return Verdict(over=True, why=why)
        if revs.at_head:
            self._log.info("job.skipped", why=f"database already at head ({when})", heads=revs.heads)
            return Verdict(over=True, skipped=True)
        self._log.info("job.revisions", current=revs.current, heads=revs.heads, when=when)
        return PROCEED

    async def _read_current(self) -> tuple[tuple[str, ...] | None, str | None]:
        for attempt in range(1, self.cfg.attempts + 1):
            try:
                return await migrations.read_current(self.revision_url), None
            except ConnectionError as exc:
                self._log.warning("job.revisions_unreadable", error=str(exc), attempt=attempt)
                if attempt == self.cfg.attempts:
                    return None, f"cannot read alembic_version: {exc}"
                await asyncio.sleep(self.cfg.backoff.policy().delay(attempt, self.ctx.rng))
        return None, "cannot read alembic_version"

    def _track_heads(self, current: tuple[str, ...]) -> None:
        """Fill in the status document's revisions once the heads helper answers."""

        def done(task: asyncio.Task[tuple[set[str], tuple[str, ...]]]) -> None:
            if task.cancelled() or task.exception() is not None:
                return
            self._known, heads = task.result()
            if self.revisions is None:
                self.revisions = migrations.compare(current, self._known, heads)

        if self._heads is not None:
            self._heads.add_done_callback(done)

    async def record_after_success(self) -> None:
        """Show the revision the job left the database at (the heads helper may still be busy)."""
        if self._heads is None:
            return
        try:
            self._known, heads = await self._heads
            current = await migrations.read_current(self.revision_url)
        except (RuntimeError, ConnectionError):
            return  # the job succeeded; the status shows what was read before it
        self.revisions = migrations.compare(current, self._known, heads)
