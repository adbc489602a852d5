"""The Celery app: a task that writes a row, and a beat schedule that enqueues it.

Nothing that /events accepted may be lost when a worker is killed or Postgres or Redis go away:
- a task is acknowledged after it ran (``task_acks_late``), and put back when its pool process
  dies under it (``task_reject_on_worker_lost``); the one a killed worker held comes back after
  the broker's visibility timeout;
- a task that cannot reach Postgres is retried with exponential backoff;
- a task that Redis handed out but no worker recorded (see ``app.pending``) is sent again by a
  sweep from beat;
- so a task may run more than once, and its write is idempotent (``db.insert_event``).
"""

import signal

import psycopg
from celery import Celery, Task

from app import db, pending
from app.settings import (
    BEAT_INTERVAL_S,
    BROKER_KEY_PREFIX,
    QUEUE,
    REDELIVER_AFTER_S,
    REDELIVER_INTERVAL_S,
    REDIS_URL,
    TASK_RETRY_MAX_S,
    VISIBILITY_TIMEOUT_S,
)
from supervisor import heartbeat

app = Celery("webstack", broker=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # Redis away for a while: keep reconnecting, never give up
    worker_hijack_root_logger=False,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,  # with late acks, a worker holds one task per pool process, no more
    worker_cancel_long_running_tasks_on_connection_loss=True,  # their messages come back: do not run them twice
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT_S,
        # Look for the tasks of dead workers often enough for the timeout above to mean what it says.
        "unacked_restore_interval": max(1.0, min(10.0, VISIBILITY_TIMEOUT_S / 4)),
        "unacked_restore_throttle": 1,
        "socket_timeout": 10,  # a broker gone silent (not closed) must not hang a publish forever
        "socket_connect_timeout": 3,
        **({"global_keyprefix": BROKER_KEY_PREFIX} if BROKER_KEY_PREFIX else {}),
    },
    # A retry is a new message: while Redis is away, keep trying to send it for about a minute.
    task_publish_retry_policy={"max_retries": 30, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 2},
    beat_schedule={
        "beat-row": {"task": "app.worker.write_event", "schedule": BEAT_INTERVAL_S, "args": ("beat",)},
        "redeliver": {"task": "app.worker.redeliver_overdue", "schedule": REDELIVER_INTERVAL_S},
    },
)
# Keep $SUPERVISOR_HEARTBEAT_FILE fresh from the worker's loop and from beat's ticks.
heartbeat.install(app, interval_s=min(5.0, BEAT_INTERVAL_S))


@app.task(
    name="app.worker.write_event",
    bind=True,
    autoretry_for=(psycopg.OperationalError,),
    retry_backoff=1,
    retry_backoff_max=int(TASK_RETRY_MAX_S),
    retry_jitter=True,
    max_retries=50,
)
def write_event(self: Task, source: str, event_id: str | None = None) -> int:
    """Write the event's row to Postgres once; beat's events are named by their task id."""
    row = db.insert_event(source, event_id or self.request.id)
    if event_id is not None:
        pending.done(event_id, source)
    return row


@app.task(name="app.worker.redeliver_overdue")
def redeliver_overdue() -> int:
    """Send again every accepted event whose row is still not written after REDELIVER_AFTER."""
    events = pending.overdue(REDELIVER_AFTER_S)
    for event_id, source in events:
        write_event.apply_async((source,), {"event_id": event_id}, task_id=event_id)
    return len(events)


@app.task(name="app.worker.hang", acks_late=False, reject_on_worker_lost=False)
def hang() -> None:
    """Hang on purpose, deaf to SIGTERM (``POST /hang``): what the supervisor's stack dump is for.

    Acknowledged when it starts, unlike the other tasks, so that the worker that replaces a
    killed one does not receive it again and hang in turn.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    hang_on_purpose()


def hang_on_purpose() -> None:
    """Spin forever: the stack dump of the worker's pool process names this function."""
    while True:
        pass
