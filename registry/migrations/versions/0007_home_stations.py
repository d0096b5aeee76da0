"""home stations: a receiver at a client's home, its wander alerts and station-silent notices;
daily tests logged by a station keep the RSSI and the status byte it heard

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("daily_test") as batch:
        batch.add_column(sa.Column("rssi_dbm", sa.Float(), nullable=True))
        batch.add_column(sa.Column("status_byte", sa.Integer(), nullable=True))
    op.create_table(
        "home_station",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("receiver_id", sa.String(length=64), nullable=False),
        sa.Column("lat_deg", sa.Float(), nullable=False),
        sa.Column("lon_deg", sa.Float(), nullable=False),
        sa.Column("wander_after_min", sa.Integer(), nullable=True),
        sa.Column("measured_after_min", sa.Integer(), nullable=True),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quiet_from", sa.Time(), nullable=True),
        sa.Column("quiet_until", sa.Time(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lat_deg BETWEEN -90 AND 90", name="home_station_lat"),
        sa.CheckConstraint("lon_deg BETWEEN -180 AND 180", name="home_station_lon"),
        sa.CheckConstraint("wander_after_min BETWEEN 1 AND 240", name="home_station_minutes"),
        sa.CheckConstraint(
            "(quiet_from IS NULL) = (quiet_until IS NULL)", name="home_station_quiet"
        ),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
        sa.UniqueConstraint("receiver_id"),
    )
    op.create_table(
        "home_alert",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("receiver_id", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "wander", "station_silent", name="home_alert_kind", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heard_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("search_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"]),
        sa.ForeignKeyConstraint(["search_id"], ["search.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_home_alert_client_id", "home_alert", ["client_id"])
    op.create_index(
        "one_open_home_alert",
        "home_alert",
        ["client_id", "kind"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("one_open_home_alert", table_name="home_alert")
    op.drop_index("ix_home_alert_client_id", table_name="home_alert")
    op.drop_table("home_alert")
    op.drop_table("home_station")
    with op.batch_alter_table("daily_test") as batch:
        batch.drop_column("status_byte")
        batch.drop_column("rssi_dbm")
