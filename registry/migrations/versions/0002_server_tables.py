"""server tables: receiver tokens, ingested reports, team members

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receiver_token",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("receiver_id", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_receiver_token_receiver_id", "receiver_token", ["receiver_id"])
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receiver_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bracelet_id", sa.String(length=4), nullable=True),
        sa.Column("channel", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receiver_id", "seq", name="report_once"),
    )
    op.create_index("report_by_bracelet", "report", ["bracelet_id", "t"])
    op.create_index("report_by_channel", "report", ["channel", "t"])
    op.create_index("report_by_time", "report", ["t"])
    with op.batch_alter_table("search_team") as batch:
        batch.add_column(
            sa.Column("member_user_ids", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("search_team") as batch:
        batch.drop_column("member_user_ids")
    op.drop_index("report_by_time", table_name="report")
    op.drop_index("report_by_channel", table_name="report")
    op.drop_index("report_by_bracelet", table_name="report")
    op.drop_table("report")
    op.drop_index("ix_receiver_token_receiver_id", table_name="receiver_token")
    op.drop_table("receiver_token")
