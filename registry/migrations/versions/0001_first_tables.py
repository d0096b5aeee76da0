"""first tables: clients, bracelets, searches, links, users, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-28 08:04:21.508496
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "program_staff",
                "dispatcher",
                "searcher",
                "clinician",
                "family",
                name="user_role",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "client",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("nickname", sa.String(length=100), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("height_cm", sa.Integer(), nullable=True),
        sa.Column("build", sa.String(length=100), nullable=True),
        sa.Column("hair", sa.String(length=100), nullable=True),
        sa.Column("eyes", sa.String(length=100), nullable=True),
        sa.Column("glasses", sa.Boolean(), nullable=False),
        sa.Column("scars_marks", sa.Text(), nullable=True),
        sa.Column("photo", sa.LargeBinary(), nullable=True),
        sa.Column("photo_type", sa.String(length=20), nullable=True),
        sa.Column("language", sa.String(length=100), nullable=True),
        sa.Column("verbal", sa.Boolean(), nullable=False),
        sa.Column("useful_phrases", sa.Text(), nullable=True),
        sa.Column("diagnoses", sa.Text(), nullable=True),
        sa.Column("medications", sa.Text(), nullable=True),
        sa.Column("triggers", sa.Text(), nullable=True),
        sa.Column("approach_and_calm", sa.Text(), nullable=True),
        sa.Column("mobility_aids", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("entity", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index("audit_by_entity", ["entity", "entity_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_at"), ["at"], unique=False)

    op.create_table(
        "bracelet",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("bracelet_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "stock", "assigned", "retired", name="bracelet_status", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("client_id", sa.String(length=32), nullable=True),
        sa.Column("battery_installed_on", sa.Date(), nullable=True),
        sa.Column("battery_interval_days", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("battery_interval_days > 0", name="bracelet_battery_interval"),
        sa.CheckConstraint("bracelet_id BETWEEN 1 AND 65534", name="bracelet_id_range"),
        sa.CheckConstraint("channel BETWEEN 1 AND 40", name="bracelet_channel"),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bracelet_id"),
    )
    with op.batch_alter_table("bracelet", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bracelet_client_id"), ["client_id"], unique=False)

    op.create_table(
        "caregiver",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("relation", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("available_24_7", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("caregiver", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_caregiver_client_id"), ["client_id"], unique=False)

    op.create_table(
        "enrollment",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("diagnosis_confirmed", sa.Boolean(), nullable=False),
        sa.Column("history_of_wandering", sa.Boolean(), nullable=False),
        sa.Column("caregiver_24_7", sa.Boolean(), nullable=False),
        sa.Column("funding_source", sa.String(length=200), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollment_client_id"), ["client_id"], unique=False)

    op.create_table(
        "family_link",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "client_id", name="family_link_once"),
    )
    with op.batch_alter_table("family_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_family_link_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_family_link_user_id"), ["user_id"], unique=False)

    op.create_table(
        "place",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "frequented",
                "previous_address",
                "found_before",
                name="place_kind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("lat_deg", sa.Float(), nullable=False),
        sa.Column("lon_deg", sa.Float(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint("lat_deg BETWEEN -90 AND 90", name="place_lat"),
        sa.CheckConstraint("lon_deg BETWEEN -180 AND 180", name="place_lon"),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("place", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_place_client_id"), ["client_id"], unique=False)

    op.create_table(
        "search",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_known_lat_deg", sa.Float(), nullable=False),
        sa.Column("last_known_lon_deg", sa.Float(), nullable=False),
        sa.Column("last_known_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clothing", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "found",
                "suspended",
                "closed",
                name="search_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("found_lat_deg", sa.Float(), nullable=True),
        sa.Column("found_lon_deg", sa.Float(), nullable=True),
        sa.Column("found_condition", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("last_known_lat_deg BETWEEN -90 AND 90", name="search_lat"),
        sa.CheckConstraint("last_known_lon_deg BETWEEN -180 AND 180", name="search_lon"),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("search", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_search_client_id"), ["client_id"], unique=False)
        batch_op.create_index(
            "one_active_search_per_client",
            ["client_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "battery_change",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("bracelet_pk", sa.String(length=32), nullable=False),
        sa.Column("changed_on", sa.Date(), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["bracelet_pk"],
            ["bracelet.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("battery_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_battery_change_bracelet_pk"), ["bracelet_pk"], unique=False
        )

    op.create_table(
        "co_response_link",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("search_id", sa.String(length=32), nullable=True),
        sa.Column("encounter_on", sa.Date(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "911-response", "follow-up", name="encounter_kind", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("clinician", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["search.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("co_response_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_co_response_link_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_co_response_link_search_id"), ["search_id"], unique=False
        )

    op.create_table(
        "daily_test",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("bracelet_pk", sa.String(length=32), nullable=False),
        sa.Column("tested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tested_by", sa.String(length=200), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["bracelet_pk"],
            ["bracelet.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("daily_test", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_daily_test_bracelet_pk"), ["bracelet_pk"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_daily_test_tested_at"), ["tested_at"], unique=False)

    op.create_table(
        "missing_person_link",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("search_id", sa.String(length=32), nullable=False),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("report_number", sa.String(length=100), nullable=False),
        sa.Column("ncic_category", sa.String(length=50), nullable=False),
        sa.Column("entered_in_ncic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["search.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("missing_person_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_missing_person_link_search_id"), ["search_id"], unique=False
        )

    op.create_table(
        "search_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("search_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["search.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("search_event", schema=None) as batch_op:
        batch_op.create_index("search_event_by_time", ["search_id", "at"], unique=False)

    op.create_table(
        "search_team",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("search_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("receiver_ids", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["search.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("search_id", "name", name="search_team_name"),
    )
    with op.batch_alter_table("search_team", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_search_team_search_id"), ["search_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("search_team", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_team_search_id"))

    op.drop_table("search_team")
    with op.batch_alter_table("search_event", schema=None) as batch_op:
        batch_op.drop_index("search_event_by_time")

    op.drop_table("search_event")
    with op.batch_alter_table("missing_person_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_missing_person_link_search_id"))

    op.drop_table("missing_person_link")
    with op.batch_alter_table("daily_test", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_test_tested_at"))
        batch_op.drop_index(batch_op.f("ix_daily_test_bracelet_pk"))

    op.drop_table("daily_test")
    with op.batch_alter_table("co_response_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_co_response_link_search_id"))
        batch_op.drop_index(batch_op.f("ix_co_response_link_client_id"))

    op.drop_table("co_response_link")
    with op.batch_alter_table("battery_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_battery_change_bracelet_pk"))

    op.drop_table("battery_change")
    with op.batch_alter_table("search", schema=None) as batch_op:
        batch_op.drop_index(
            "one_active_search_per_client",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_search_client_id"))

    op.drop_table("search")
    with op.batch_alter_table("place", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_place_client_id"))

    op.drop_table("place")
    with op.batch_alter_table("family_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_family_link_user_id"))
        batch_op.drop_index(batch_op.f("ix_family_link_client_id"))

    op.drop_table("family_link")
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollment_client_id"))

    op.drop_table("enrollment")
    with op.batch_alter_table("caregiver", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caregiver_client_id"))

    op.drop_table("caregiver")
    with op.batch_alter_table("bracelet", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bracelet_client_id"))

    op.drop_table("bracelet")
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_at"))
        batch_op.drop_index("audit_by_entity")

    op.drop_table("audit_entry")
    op.drop_table("client")
    op.drop_table("app_user")
