"""Index events by source, and log that this migration ran (to show it runs exactly once).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("events_source", "events", ["source"])
    op.create_table(
        "migration_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.Text, nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.execute("INSERT INTO migration_log (revision) VALUES ('0002')")


def downgrade() -> None:
    op.drop_table("migration_log")
    op.drop_index("events_source", "events")
