"""The FastAPI app: /health reports Postgres and Redis; /events enqueues a task."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Response

from app import db
from app.settings import REDIS_URL
from app.worker import write_event
from supervisor.notify import ready


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Say READY=1 once the app has started: with restart.order = "start-first", the old process
    keeps serving until this moment, so no request waits for the app's import and start-up."""
    ready()
    yield


app = FastAPI(title="webstack", lifespan=lifespan)
_redis = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


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
def enqueue(source: str = "web") -> dict[str, str]:
    """Enqueue a task that the worker writes to Postgres."""
    result = write_event.delay(source)
    return {"task_id": result.id}


@app.get("/events")
def events() -> dict[str, int]:
    """Count the rows by source."""
    return db.count_events()
