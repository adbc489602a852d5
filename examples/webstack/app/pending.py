"""The ledger of accepted events whose rows are not written yet, kept in Redis beside the queue.

Celery's Redis transport takes a message off the queue (BRPOP) before the worker records it as
unacknowledged. A message in that gap is gone if the worker is killed, is SIGSTOPped and then
replaced, or its connection is cut: late acknowledgement cannot bring it back. So /events records
each event here before it enqueues it (and answers 2xx only once both are done); the task
removes it once its row is written; and a sweep from beat enqueues again whatever stayed longer
than REDELIVER_AFTER. Writes are idempotent, so a task sent twice writes once.
"""

import json
import time

import redis

from app.settings import BROKER_KEY_PREFIX, QUEUE, REDIS_URL

KEY = f"{BROKER_KEY_PREFIX}{QUEUE}.pending"
_redis = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=2)


def _member(event_id: str, source: str) -> str:
    return json.dumps([event_id, source])


def add(event_id: str, source: str) -> None:
    """Record an accepted event (raises if Redis is away: then nothing is accepted)."""
    _redis.zadd(KEY, {_member(event_id, source): time.time()})


def done(event_id: str, source: str) -> None:
    """Forget an event whose row is written; if Redis is away, the sweep sends it once more, harmlessly."""
    try:
        _redis.zrem(KEY, _member(event_id, source))
    except redis.RedisError:
        pass


def overdue(older_than_s: float, limit: int = 500) -> list[tuple[str, str]]:
    """Events accepted longer ago than ``older_than_s`` and not written; each is pushed back by as much."""
    now = time.time()
    members = _redis.zrangebyscore(KEY, "-inf", now - older_than_s, start=0, num=limit)
    if members:
        _redis.zadd(KEY, dict.fromkeys(members, now), xx=True)
    return [tuple(json.loads(m)) for m in members]  # type: ignore[misc]
