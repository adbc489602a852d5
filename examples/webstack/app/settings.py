"""Settings from the environment, with the same defaults as conf/supervisor.toml."""

import os


def _database_url() -> str:
    """$DATABASE_URL, else the old entrypoint's DB_HOST/DB_PORT, else libpq's own variables."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    host = os.environ.get("DB_HOST") or os.environ.get("PGHOST") or "127.0.0.1"
    port = os.environ.get("DB_PORT") or os.environ.get("PGPORT") or "5432"
    user = os.environ.get("PGUSER") or "postgres"
    name = os.environ.get("PGDATABASE") or "postgres"
    return f"postgresql://{user}@{host}:{port}/{name}"


DATABASE_URL = _database_url()
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
QUEUE = os.environ.get("APP_QUEUE", "webstack")
BEAT_INTERVAL_S = float(os.environ.get("BEAT_INTERVAL", "5"))
# A task taken by a worker that then died (kill -9, OOM) goes back to the queue after this long.
# It must exceed the longest retry countdown (TASK_RETRY_MAX), or a waiting retry runs twice.
VISIBILITY_TIMEOUT_S = float(os.environ.get("BROKER_VISIBILITY_TIMEOUT", "300"))
# A prefix for every key Celery keeps in Redis, for apps (or test runs) that share one Redis database.
BROKER_KEY_PREFIX = os.environ.get("BROKER_KEY_PREFIX", "")
TASK_RETRY_MAX_S = float(os.environ.get("TASK_RETRY_MAX", "30"))
# An accepted event whose row is not written after this long is sent to the worker again (see
# app.pending); the sweep that does it runs this often, from beat.
REDELIVER_AFTER_S = float(os.environ.get("REDELIVER_AFTER", "120"))
REDELIVER_INTERVAL_S = float(os.environ.get("REDELIVER_INTERVAL", "30"))
