"""login sessions held by the server: ended at logout, on a password change, after idling

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_session",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("app_user.id"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("password_mark", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_login_session_user_id", "login_session", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_login_session_user_id", table_name="login_session")
    op.drop_table("login_session")
