"""The runner of one job: revisions, the advisory lock, attempts with backoff, a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from supervisor.config.envfile import unit_environment
from supervisor.config.settings import DependencyConfig, JobConfig
from supervisor.engine.units.alembic_gate import AlembicGate
from supervisor.engine.units.base import Context, LineBuffer, run_command
from supervisor.host.process import SpawnSpec, child_environment
from supervisor.machine.errors import EXIT_UNAVAILABLE
from supervisor.machine.events import signal_name
from supervisor.machine.jobstates import (
    FAILED,
    FINISHED_STATES,
    PENDING,
    RETRYING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    JobState,
)
from supervisor.machine.status import JobEntry
from supervisor.stack import migrations


class JobRunner:
    """Runs a one-shot command to success, through its retries, at most once per start-up."""

    kind = "job"

    def __init__(
        self,
        name: str,
        cfg: JobConfig,
        ctx: Context,
        lock_dep: DependencyConfig | None,
        revision_url: str | None,
        log_lines: int = 1000,
        on_running: Callable[[bool], None] = lambda running: None,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.ctx = ctx
        self.lock_dep = lock_dep
        self.revision_url = revision_url
        self.state = PENDING
        self.attempts = 0
        self.exit_code: int | None = None
        self.error: str | None = None
        self.duration_s: float | None = None
        self.buffer = LineBuffer(log_lines)
        self._on_running = on_running
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._log = ctx.log.bind(job=name)
        self.alembic: AlembicGate | None = None
        if cfg.alembic_config and revision_url is not None:
            self.alembic = AlembicGate(cfg, revision_url, ctx, self._log, self._environment)

    @property
    def revisions(self) -> migrations.Revisions | None:
        """The database's revision and the scripts' heads, once read."""
        return self.alembic.revisions if self.alembic is not None else None

    @property
    def finished(self) -> bool:
        """Whether the job is over for this start-up."""
        return self.state in FINISHED_STATES

    @property
    def ok(self) -> bool:
        """Whether units that name this job may start."""
        return self.state in (SUCCEEDED, SKIPPED) or (self.state == FAILED and self.cfg.on_failure == "continue")

    @property
    def reads_revisions(self) -> bool:
        """Whether the revisions decide this job: an ``upgrade`` with ``alembic_config`` (others run as given)."""
        return bool(self.cfg.alembic_config) and migrations.is_upgrade(list(self.cfg.command))

    @property
    def depends_on(self) -> list[str]:
        """The units it waits for."""
        return list(self.cfg.depends_on)

    def begin(self) -> None:
        """Start-up begins: read the script heads while the dependencies are awaited."""
        self.prepare()

    def gate(self, blocked: list[str]) -> None:
        """Run once nothing holds it back."""
        if self.state is PENDING and not blocked:
            self.start()

    def lets_dependants_start(self) -> bool:
        """Succeeded or skipped, or failed with ``on_failure = "continue"``."""
        return self.ok

    def startup_pending(self) -> bool:
        """READY=1 waits for every job, migrations included."""
        return not self.finished

    def halt(self) -> None:
        """Stop the job's command, if it runs."""
        self.stop()

    def prepare(self) -> None:
        """Start reading the script heads now, while the dependencies are still awaited."""
        if self.alembic is not None and self.reads_revisions:
            self.alembic.prepare()

    def _environment(self) -> dict[str, str]:
        """The child's environment: the daemon's, then the env files, then ``environment``."""
        return child_environment(self.ctx.base_env, unit_environment(self.cfg.env_file, self.cfg.environment))

    def start(self) -> None:
        """Run the job once."""
        self.prepare()
        if self._task is None:
            self._task = self.ctx.loop.create_task(self._run(), name=f"job:{self.name}")

    def stop(self) -> None:
        """Cancel it: a running command (or the heads helper) is killed and reaped."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.alembic is not None:
            self.alembic.cancel()

    async def wait(self) -> None:
        """Return once the job is over."""
        await self._done.wait()

    async def _run(self) -> None:
        started = self.ctx.clock.now()
        try:
            await self._run_inner()
        except asyncio.CancelledError:
            self._set(FAILED, "cancelled by shutdown")
            raise
        except Exception as exc:  # a bug or an unexpected database error: fail, do not crash the daemon
            self._log.exception("job.crashed")
            self._set(FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            self.duration_s = round(self.ctx.clock.now() - started, 3)
            self._on_running(False)
            self._done.set()
            self.ctx.changed()
        if self.state == FAILED and self.cfg.on_failure == "exit":
            self.ctx.give_up(EXIT_UNAVAILABLE, f"job {self.name} failed: {self.error}")

    async def _run_inner(self) -> None:
        if self.cfg.from_alembic_cmd and list(self.cfg.command) == ["true"]:
            self._log.info("job.skipped", why="ALEMBIC_CMD=true")
            self._set(SKIPPED)
            return
        if self.reads_revisions and await self._at_head("before the lock"):
            return
        lock: migrations.AdvisoryLock | None = None
        if self.lock_dep is not None:
            lock = migrations.AdvisoryLock(self.lock_dep.url, migrations.lock_key(self.name), self._log)
            try:
                waited = await lock.acquire(self.cfg.lock_timeout)
            except TimeoutError as exc:
                self._log.error("job.lock_timeout", error=str(exc))
                self._set(FAILED, str(exc))
                return
            self._log.info("job.lock_acquired", key=lock.key, waited_s=round(waited, 3))
        try:
            # Another replica may have migrated while we waited for the lock.
            if self.reads_revisions and lock is not None and await self._at_head("after the lock"):
                return
            await self._attempts()
        finally:
            if lock is not None:
                await lock.release()
                self._log.info("job.lock_released", key=lock.key)

    async def _at_head(self, when: str) -> bool:
        """Ask the gate; return True when the job is over (skipped or failed)."""
        assert self.alembic is not None
        verdict = await self.alembic.decide(when)
        if verdict.over:
            self._set(SKIPPED if verdict.skipped else FAILED, verdict.why)
        return verdict.over

    async def _attempts(self) -> None:
        backoff = self.cfg.backoff.policy()
        for attempt in range(1, self.cfg.attempts + 1):
            self.attempts = attempt
            self._set(RUNNING)
            self._on_running(True)
            self._log.info("job.started", command=self.cfg.command, attempt=attempt, of=self.cfg.attempts)
            output: list[str] = []
            try:
                # Env files are read at each start, like a program's.
                env = self._environment()
                spec = SpawnSpec(argv=list(self.cfg.command), env=env, cwd=self.cfg.cwd, user=self.cfg.user)
                status = await run_command(self.ctx, spec, self.cfg.timeout, self._collector(output))
            except Exception as exc:  # could not spawn: no retry will help
                self._set(FAILED, str(exc))
                self._log.error("job.failed", error=str(exc))
                return
            finally:
                self._on_running(False)
            if status is not None and status.success:
                self.exit_code = 0
                await self._record_after_success()
                self._log.info("job.succeeded", attempt=attempt)
                self._set(SUCCEEDED)
                return
            self.exit_code = None if status is None else status.code
            why = (
                f"timed out after {self.cfg.timeout:g}s"
                if status is None
                else f"exit code {status.code}"
                if status.signal is None
                else f"signal {signal_name(status.signal)}"
            )
            # Only transient failures of an alembic migration are retried; others always are.
            cause = migrations.transient_cause("\n".join(output)) if self.cfg.alembic_config else "failed"
            if status is None:
                cause = cause or "timeout"
            if cause is None or attempt == self.cfg.attempts:
                detail = output[-1] if output else why
                hint = "an error in the migration itself: not retried" if cause is None else "no attempts left"
                self._log.error("job.failed", why=why, last_line=detail, attempt=attempt, hint=hint)
                self._set(FAILED, f"{why}: {detail}")
                return
            delay = backoff.delay(attempt, self.ctx.rng)
            self._log.warning("job.retrying", why=why, cause=cause, attempt=attempt, retry_in_s=round(delay, 2))
            self._set(RETRYING, f"{why} ({cause})")
            await asyncio.sleep(delay)

    async def _record_after_success(self) -> None:
        if self.alembic is not None:
            await self.alembic.record_after_success()

    def _collector(self, output: list[str]) -> Callable[[str, list[str]], None]:
        """Return a line handler that logs, buffers, and keeps the tail for classifying failures."""

        def line(stream: str, lines: list[str]) -> None:
            output.extend(lines[-200:])
            del output[:-200]
            self.buffer.extend(stream, lines)
            self.ctx.output(self.name, stream, lines)

        return line

    def _set(self, state: JobState, error: str | None = None) -> None:
        self.state = state
        self.error = error
        self.ctx.changed()

    def status(self, rss: dict[int, int] | None = None) -> JobEntry:
        """Return this unit's entry of the status document."""
        doc: JobEntry = {
            "name": self.name,
            "kind": "job",
            "state": self.state,
            "attempts": self.attempts,
            "exit_code": self.exit_code,
            "duration_s": self.duration_s,
            "error": self.error,
        }
        if self.revisions is not None:
            doc["revision"] = {"current": list(self.revisions.current), "heads": list(self.revisions.heads)}
        return doc
