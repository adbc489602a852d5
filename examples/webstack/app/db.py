"""Postgres access: one short connection per call, which is plenty for an example."""

import psycopg

from app.settings import DATABASE_URL


def connect() -> psycopg.Connection:
    """Open an autocommit connection."""
    return psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=3)


def insert_event(source: str) -> int:
    """Write one row; return its id."""
    with connect() as conn:
        row = conn.execute("INSERT INTO events (source) VALUES (%s) RETURNING id", (source,)).fetchone()
        assert row is not None
        return int(row[0])


def count_events() -> dict[str, int]:
    """Return how many rows each source wrote."""
    with connect() as conn:
        rows = conn.execute("SELECT source, count(*) FROM events GROUP BY source").fetchall()
    return {source: int(n) for source, n in rows}
