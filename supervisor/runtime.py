"""Entry points that own an event loop: ``run``, and the one-shot ``migrate`` and ``wait``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import replace

from supervisor.config.settings import Loaded, parse_address
from supervisor.engine.units.base import default_context
from supervisor.engine.units.dependency import DependencyRunner
from supervisor.engine.units.job import JobRunner
from supervisor.host import guard, logs, process, socketlock, stray
from supervisor.host.logwriter import LogWriter
from supervisor.host.looperrors import LoopErrors
from supervisor.host.prestart import STOP_SIGNALS, Prestarted
from supervisor.machine.errors import EXIT_OK, EXIT_UNAVAILABLE


def run(loaded: Loaded, prestarted: Prestarted | None = None, dev: bool = False) -> int:
    """Run the daemon until it stops; return its exit code. ``prestarted``: see ``supervisor.host.prestart``.

    ``dev``: development mode, where programs restart when their ``watch`` files change.
    """
    cfg = loaded.config.supervisor
    writer = logs.configure(cfg.log_format, cfg.log_level)
    code = asyncio.run(_run(loaded, writer, prestarted, dev))
    # Everything of ours is stopped, reaped and closed. Skip the interpreter's teardown of
    # pydantic & co. (tens of ms) so that `docker stop` and systemd get their answer sooner.
    process.release_guard()  # os._exit skips atexit: without this the guard could outlive us a moment
    writer.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _run(
    loaded: Loaded, writer: LogWriter | None = None, prestarted: Prestarted | None = None, dev: bool = False
) -> int:
    try:
        return await _serve(loaded, writer, prestarted, dev)
    finally:
        if prestarted is not None:
            prestarted.discard()  # the daemon did not come up to take them: they go with it
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # as Daemon.run does


async def _serve(loaded: Loaded, writer: LogWriter | None, prestarted: Prestarted | None, dev: bool) -> int:
    from supervisor.control.server import AlreadyRunning, ControlServer, claim_socket
    from supervisor.engine.daemon import Daemon

    log = logs.get()
    LoopErrors(log).install(asyncio.get_running_loop())
    process.close_inherited_fds_on_exec()
    path = loaded.config.supervisor.socket
    try:
        # Before binding any listen address: a second supervisor should hear about the first one.
        if not socketlock.take(path, loaded.config.supervisor.group):
            if socketlock.answers(path):
                raise AlreadyRunning(f"another supervisor answers on {path}")
            raise AlreadyRunning(f"another supervisor is starting on {path} (it holds {path}.lock)")
        await claim_socket(path, log)
    except AlreadyRunning as exc:
        log.error("supervisor.already_running", error=str(exc), next="not starting")
        return EXIT_UNAVAILABLE
    try:
        daemon = Daemon(loaded, log_writer=writer, prestarted=prestarted)
    except OSError as exc:
        log.error("supervisor.cannot_start", error=str(exc), hint="is a listen address already in use?")
        return EXIT_UNAVAILABLE
    sup = loaded.config.supervisor
    http = parse_address(sup.http) if sup.http else None
    server = ControlServer(daemon, sup.socket, log, sup.group, http, header_timeout=sup.header_timeout)
    try:
        await server.start()
    except AlreadyRunning as exc:
        log.error("supervisor.already_running", error=str(exc), next="not starting")
        return EXIT_UNAVAILABLE
    except OSError as exc:
        log.error("supervisor.cannot_listen", error=str(exc), socket=server.path, http=sup.http)
        return EXIT_UNAVAILABLE
    stray.StraySignals(log).listen(asyncio.get_running_loop())
    keeper = guard.shared()
    keeper.defer = asyncio.get_running_loop().call_soon  # one write to the guard per turn of the loop
    watch = None
    if dev:  # else the watch, watchfiles and its thread never exist
        from supervisor.engine.devwatch import DevWatch

        watch = DevWatch(daemon)
        log.info("supervisor.dev", programs=list(watch.wanted()), hint="watched files restart their program")
        watch.start()
    try:
        return await daemon.run()
    finally:
        if watch is not None:
            watch.close()
        try:
            await server.close()
        finally:
            keeper.defer = None  # the loop ends here: from now on, lines go at once
            keeper.flush()


def wait(loaded: Loaded, timeout_s: float | None, names: list[str] | None = None) -> int:
    """Return 0 once every dependency (those ``names``) is ready; 69 when one is not within its timeout."""
    cfg = loaded.config.supervisor
    writer = logs.configure(cfg.log_format, cfg.log_level, sys.stderr if names is not None else None)
    code = asyncio.run(_wait(loaded, timeout_s, names))
    writer.close()  # all of it out before `exec` replaces this process
    return code


async def _wait(loaded: Loaded, timeout_s: float | None, names: list[str] | None = None) -> int:
    loop = asyncio.get_running_loop()
    ctx = default_context(loop)
    deps = []
    for name, dep in loaded.config.dependencies.items():
        if names is not None and name not in names:
            continue
        if timeout_s is not None:
            dep = replace(dep, timeout=timeout_s)
        deps.append(DependencyRunner(name, dep, ctx))
    for dep_runner in deps:
        dep_runner.start()
    await asyncio.gather(*(d.wait_settled() for d in deps))
    for dep_runner in deps:
        dep_runner.stop()
    not_ready = [d.name for d in deps if d.state != "ready"]
    if not_ready:
        logs.get().error("wait.gave_up", dependencies=not_ready)
        return EXIT_UNAVAILABLE
    logs.get().info("wait.ready", dependencies=[d.name for d in deps])
    return EXIT_OK


def migrate(loaded: Loaded) -> int:
    """Run every job once (after the dependencies it names); 0 when all succeeded or skipped."""
    cfg = loaded.config.supervisor
    writer = logs.configure(cfg.log_format, cfg.log_level)
    return asyncio.run(_migrate(loaded, writer))


async def _migrate(loaded: Loaded, writer: LogWriter | None = None) -> int:
    loop = asyncio.get_running_loop()
    ctx = default_context(loop, writer=writer)
    loop.add_signal_handler(signal.SIGCHLD, ctx.reaper.reap)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    config = loaded.config
    needed = {d for job in config.jobs.values() for d in job.depends_on if d in config.dependencies}
    needed |= {job.lock for job in config.jobs.values() if job.lock}
    deps = {n: DependencyRunner(n, config.dependencies[n], ctx) for n in sorted(needed)}
    for dep in deps.values():
        dep.start()
    jobs: list[JobRunner] = []
    try:
        await asyncio.gather(*(d.wait_settled() for d in deps.values()))
        if any(d.state != "ready" and d.cfg.on_timeout == "exit" for d in deps.values()):
            return EXIT_UNAVAILABLE
        for level in loaded.plan:
            for name in level:
                if name not in config.jobs:
                    continue
                job = config.jobs[name]
                lock_dep, url_dep = config.job_database(name)
                runner = JobRunner(name, job, ctx, lock_dep, url_dep.url if url_dep else None)
                jobs.append(runner)
                runner.start()
                done = loop.create_task(runner.wait())
                interrupted = loop.create_task(stop.wait())
                await asyncio.wait([done, interrupted], return_when=asyncio.FIRST_COMPLETED)
                interrupted.cancel()
                if stop.is_set():
                    runner.stop()
                    await runner.wait()
                    return EXIT_UNAVAILABLE
    finally:
        for dep in deps.values():
            dep.stop()
    failed = {j.name: j.error for j in jobs if j.state not in ("succeeded", "skipped")}
    if failed:
        logs.get().error("migrate.failed", jobs=failed, exit_code=EXIT_UNAVAILABLE)
        return EXIT_UNAVAILABLE
    logs.get().info("migrate.done", jobs={j.name: j.state for j in jobs})
    return EXIT_OK
