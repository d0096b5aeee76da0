"""live events: the outbox through which several server processes fan out a search's changes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("live_event_by_time", "live_event", ["at"])
    op.create_index("live_event_by_channel", "live_event", ["channel", "id"])


def downgrade() -> None:
    op.drop_index("live_event_by_channel", table_name="live_event")
    op.drop_index("live_event_by_time", table_name="live_event")
    op.drop_table("live_event")
