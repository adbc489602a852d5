"""The Celery heartbeat, at the import path apps use: ``supervisor.heartbeat.install(app)``."""

from supervisor.stack.heartbeat import ENV_VAR, install, touch

__all__ = ["ENV_VAR", "install", "touch"]
