"""Postgres access: one short connection per call, which is plenty for an example."""

import psycopg

from app.settings import DATABASE_URL


def connect() -> psycopg.Connection:
    """Open an autocommit connection."""
    return psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=3)


def insert_event(source: str, event_id: str) -> int:
    """Write the row of event ``event_id`` once, however often it is called; return the row's id.

    A task may run twice: it is acknowledged only after it ran, so a worker killed between the
    commit and the acknowledgement gets it delivered again, and a retry after a connection cut
    cannot know whether the commit reached the server. The unique event id makes that harmless.
    """
    with connect() as conn:
        row = conn.execute(
            "INSERT INTO events (source, event_id) VALUES (%s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING id",
            (source, event_id),
        ).fetchone()
        if row is None:  # written before: this is a redelivery
            row = conn.execute("SELECT id FROM events WHERE event_id = %s", (event_id,)).fetchone()
        assert row is not None
        return int(row[0])


def count_events() -> dict[str, int]:
    """Return how many rows each source wrote."""
    with connect() as conn:
        rows = conn.execute("SELECT source, count(*) FROM events GROUP BY source").fetchall()
    return {source: int(n) for source, n in rows}
