"""fleet sightings: enrolled bracelets heard by the fleet's receivers, sealed, kept 72 hours

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_sighting",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("receiver_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat_deg", sa.Float(), nullable=True),
        sa.Column("lon_deg", sa.Float(), nullable=True),
        sa.Column("rssi_dbm", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receiver_id", "seq", name="fleet_sighting_once"),
    )
    op.create_index("fleet_sighting_by_client", "fleet_sighting", ["client_id", "t"])
    op.create_index("fleet_sighting_by_time", "fleet_sighting", ["t"])


def downgrade() -> None:
    op.drop_index("fleet_sighting_by_time", table_name="fleet_sighting")
    op.drop_index("fleet_sighting_by_client", table_name="fleet_sighting")
    op.drop_table("fleet_sighting")
