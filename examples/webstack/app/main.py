"""The FastAPI app: /health reports Postgres and Redis; /events enqueues a task; /hang one that hangs."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import kombu.exceptions
import redis
from fastapi import FastAPI, HTTPException, Response

from app import db, pending
from app.settings import REDIS_URL
from app.worker import hang, write_event
from supervisor.notify import ready


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Say READY=1 once the app has started: with restart.order = "start-first", the old process
    keeps serving until this moment, so no request waits for the app's import and start-up."""
    ready()
    yield


app = FastAPI(title="webstack", lifespan=lifespan)
_redis = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
# A request should not wait long for a broker that is away: try for about a second, then answer 503.
_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
_BROKER_DOWN = (kombu.exceptions.OperationalError, redis.exceptions.RedisError, OSError)


@app.get("/livez")
def livez() -> dict[str, str]:
    """Liveness only: the process serves requests. Dependencies are reported by /health."""
    return {"status": "ok"}


@app.get("/health")
def health(response: Response) -> dict[str, str]:
    """Report whether Postgres and Redis answer."""
    report = {}
    try:
        with db.connect() as conn:
            conn.execute("SELECT 1")
        report["postgres"] = "ok"
    except Exception as exc:  # report, do not raise: this is a health endpoint
        report["postgres"] = f"error: {exc}".splitlines()[0]
    try:
        _redis.ping()
        report["redis"] = "ok"
    except Exception as exc:
        report["redis"] = f"error: {exc}"
    if any(v != "ok" for v in report.values()):
        response.status_code = 503
    return report


@app.post("/events")
def enqueue(source: str = "web", event_id: uuid.UUID | None = None) -> dict[str, str]:
    """Enqueue a task that the worker writes to Postgres, once per event id; 503 while the broker is away.

    A client that retries after a 503 or a lost answer may send the same ``event_id`` again: the row
    is still written once.
    """
    event = str(event_id or uuid.uuid4())
    try:
        pending.add(event, source)  # first: an event the queue then loses is still sent again
        # The task id is the event id, so that the worker's log names the event it handles.
        result = write_event.apply_async((source,), {"event_id": event}, task_id=event, retry_policy=_PUBLISH_RETRY)
    except _BROKER_DOWN as exc:
        why = f"the task queue is unavailable ({type(exc).__name__}); retry later"
        raise HTTPException(503, detail=why, headers={"Retry-After": "2"}) from None
    return {"task_id": result.id, "event_id": event}


@app.get("/events")
def events() -> dict[str, int]:
    """Count the rows by source."""
    return db.count_events()


@app.post("/hang")
def hang_a_worker() -> dict[str, str]:
    """Enqueue a task that hangs on purpose: stop or restart the worker to see its stack in `supervisor logs worker`."""
    try:
        result = hang.apply_async(retry_policy=_PUBLISH_RETRY)
    except _BROKER_DOWN as exc:
        raise HTTPException(503, detail=f"the task queue is unavailable ({type(exc).__name__})") from None
    return {"task_id": result.id}
