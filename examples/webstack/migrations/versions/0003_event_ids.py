"""Give each event a unique id, so that a task delivered twice writes its row once.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before this revision keep a NULL id; a unique index allows any number of NULLs.
    op.add_column("events", sa.Column("event_id", sa.Uuid, nullable=True))
    op.create_index("events_event_id", "events", ["event_id"], unique=True)


def downgrade() -> None:
    op.drop_index("events_event_id", "events")
    op.drop_column("events", "event_id")
