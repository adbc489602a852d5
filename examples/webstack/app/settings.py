"""Settings from the environment, with the same defaults as conf/supervisor.toml."""

import os

DATABASE_URL = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
QUEUE = os.environ.get("APP_QUEUE", "webstack")
BEAT_INTERVAL_S = float(os.environ.get("BEAT_INTERVAL", "5"))
