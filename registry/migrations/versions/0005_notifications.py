"""notifications: where the program's notices go, and the log of those sent (once a day)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_target",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "scope",
            sa.Enum(
                "program",
                "search",
                "family_mail",
                name="notify_scope",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "notice_sent",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("notice_key", sa.String(length=100), nullable=False),
        sa.Column("recipient_key", sa.String(length=100), nullable=False),
        sa.Column("recipient", sa.String(length=400), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "sending", "sent", "failed", name="notice_status", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "notice_once_a_day",
        "notice_sent",
        ["day", "notice_key", "recipient_key"],
        unique=True,
        sqlite_where=sa.text("status <> 'failed'"),
        postgresql_where=sa.text("status <> 'failed'"),
    )
    op.create_index("notice_sent_by_time", "notice_sent", ["at"])


def downgrade() -> None:
    op.drop_index("notice_sent_by_time", table_name="notice_sent")
    op.drop_index("notice_once_a_day", table_name="notice_sent")
    op.drop_table("notice_sent")
    op.drop_table("notify_target")
