"""enrollment fields and bracelet rules: description, usual clothing, places without a position
(previous addresses), a retired date, one worn bracelet per client enforced by the database

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("client") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("usual_clothing", sa.Text(), nullable=True))
    with op.batch_alter_table("place") as batch:
        batch.alter_column("lat_deg", existing_type=sa.Float(), nullable=True)
        batch.alter_column("lon_deg", existing_type=sa.Float(), nullable=True)
        batch.create_check_constraint(
            "place_position_whole", "(lat_deg IS NULL) = (lon_deg IS NULL)"
        )
        batch.create_check_constraint(
            "place_frequented_position", "kind <> 'frequented' OR lat_deg IS NOT NULL"
        )
    with op.batch_alter_table("bracelet") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint(
            "bracelet_worn_by_client", "(status = 'assigned') = (client_id IS NOT NULL)"
        )
    op.create_index(
        "one_bracelet_per_client",
        "bracelet",
        ["client_id"],
        unique=True,
        sqlite_where=sa.text("status = 'assigned'"),
        postgresql_where=sa.text("status = 'assigned'"),
    )


def downgrade() -> None:
    op.drop_index("one_bracelet_per_client", table_name="bracelet")
    with op.batch_alter_table("bracelet") as batch:
        batch.drop_constraint("bracelet_worn_by_client", type_="check")
        batch.drop_column("retired_at")
    # Places without a position cannot go back to a table that requires one.
    op.execute("DELETE FROM place WHERE lat_deg IS NULL")
    with op.batch_alter_table("place") as batch:
        batch.drop_constraint("place_frequented_position", type_="check")
        batch.drop_constraint("place_position_whole", type_="check")
        batch.alter_column("lat_deg", existing_type=sa.Float(), nullable=False)
        batch.alter_column("lon_deg", existing_type=sa.Float(), nullable=False)
    with op.batch_alter_table("client") as batch:
        batch.drop_column("usual_clothing")
        batch.drop_column("description")
