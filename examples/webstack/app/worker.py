"""The Celery app: a task that writes a row, and a beat schedule that enqueues it."""

from celery import Celery

from app import db
from app.settings import BEAT_INTERVAL_S, QUEUE, REDIS_URL
from supervisor import heartbeat

app = Celery("webstack", broker=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={"beat-row": {"task": "app.worker.write_event", "schedule": BEAT_INTERVAL_S, "args": ("beat",)}},
)
# Keep $SUPERVISOR_HEARTBEAT_FILE fresh from the worker's loop and from beat's ticks.
heartbeat.install(app, interval_s=min(5.0, BEAT_INTERVAL_S))


@app.task(name="app.worker.write_event")
def write_event(source: str) -> int:
    """Write one row to Postgres."""
    return db.insert_event(source)
