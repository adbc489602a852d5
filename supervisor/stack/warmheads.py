"""`check` caches each migration job's script heads, so that a `run` at head needs no alembic."""

from __future__ import annotations

import os
import subprocess

from supervisor.config.settings import Loaded
from supervisor.stack import migrations


def warm_heads(loaded: Loaded) -> None:
    """Cache each migration job's script heads, so that `run` at head needs no alembic (e.g. at image build)."""
    for name, job in loaded.config.jobs.items():
        if not job.alembic_config or not migrations.is_upgrade(list(job.command)):
            continue
        cached = migrations.cached_heads(job.alembic_config, job.cwd)
        if cached is None:
            # A child, as in the daemon: the revision files are user code, and alembic is heavy.
            try:
                done = subprocess.run(
                    migrations.heads_command(job.alembic_config),
                    cwd=job.cwd,
                    env={**os.environ, **job.environment},
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            except (OSError, subprocess.TimeoutExpired) as exc:
                why = str(exc)
            cached = migrations.cached_heads(job.alembic_config, job.cwd)
            if cached is None:
                print(f"warning: {name}: the migration scripts' heads are not cached ({why})")
                continue
        print(f"  {name}: script heads {', '.join(cached[1]) or '(none)'} cached, so `run` reads no scripts")
