"""consent in the enrollment record: home-station alerts and fleet sightings, who gave it, when

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("client") as batch:
        # Records enrolled before consent was asked for have none.
        batch.add_column(
            sa.Column("consent_home_alerts", sa.Boolean(), nullable=False,
                      server_default=sa.false())
        )  # fmt: skip
        batch.add_column(
            sa.Column("consent_fleet_sightings", sa.Boolean(), nullable=False,
                      server_default=sa.false())
        )  # fmt: skip
        batch.add_column(sa.Column("consent_given_by", sa.String(length=200), nullable=True))
        batch.add_column(
            sa.Column("consent_recorded_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("client") as batch:
        batch.drop_column("consent_recorded_at")
        batch.drop_column("consent_given_by")
        batch.drop_column("consent_fleet_sightings")
        batch.drop_column("consent_home_alerts")
