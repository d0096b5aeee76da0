"""notices retried, reports by receiver: a notice that could not be delivered is kept pending
with its message, its tries and when it is tried next; the stored reports get indexes by
receiver and time (a home station's last hearing) and by receiver and arrival (its last report)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "notice_sent", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("notice_sent", sa.Column("next_try_at", sa.DateTime(timezone=True)))
    op.add_column("notice_sent", sa.Column("body", sa.Text()))
    op.create_index("notice_sent_to_retry", "notice_sent", ["status", "next_try_at"])
    op.create_index("report_by_receiver", "report", ["receiver_id", "t"])
    op.create_index("report_by_receiver_arrival", "report", ["receiver_id", "received_at"])


def downgrade() -> None:
    op.drop_index("report_by_receiver_arrival", table_name="report")
    op.drop_index("report_by_receiver", table_name="report")
    op.drop_index("notice_sent_to_retry", table_name="notice_sent")
    with op.batch_alter_table("notice_sent") as batch:
        batch.drop_column("body")
        batch.drop_column("next_try_at")
        batch.drop_column("attempts")
