"""The registry's schema on SQLite and PostgreSQL: migrations up and down, models and migrations
agreeing, and the rules the database itself enforces."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from registry.db import downgrade, make_engine, upgrade
from registry.models import (
    Base,
    Bracelet,
    BraceletStatus,
    Client,
    Place,
    PlaceKind,
    Search,
    SearchStatus,
)

NOW = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def test_migrations_up_down_and_agree_with_the_models(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert {"client", "bracelet", "search", "search_event", "audit_entry", "app_user"} <= tables
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
        assert diff == []  # what autogenerate would add: nothing
    downgrade(db_url)
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    upgrade(db_url)
    engine.dispose()


def client(**extra: object) -> Client:
    return Client(first_name="Ada", last_name="Lovelace", date_of_birth=date(1941, 3, 2),
                  created_at=NOW, updated_at=NOW, **extra)  # fmt: skip


def test_rules_the_database_enforces(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    with Session(engine) as session:
        c = client()
        session.add(c)
        session.flush()  # the client's id is given on insert
        session.add(Bracelet(bracelet_id=0x3A7F, channel=19, status=BraceletStatus.ASSIGNED,
                             client_id=c.id, created_at=NOW, updated_at=NOW))  # fmt: skip
        session.commit()
        session.add(Bracelet(bracelet_id=0x3A7F, channel=20, status=BraceletStatus.STOCK,
                             created_at=NOW, updated_at=NOW))  # fmt: skip
        with pytest.raises(IntegrityError):  # bracelet IDs are unique
            session.commit()
        session.rollback()
        session.add(Bracelet(bracelet_id=0x1234, channel=41, status=BraceletStatus.STOCK,
                             created_at=NOW, updated_at=NOW))  # fmt: skip
        with pytest.raises(IntegrityError):  # channels are 1..40
            session.commit()
        session.rollback()
        session.add(Bracelet(bracelet_id=0x1235, channel=4, status=BraceletStatus.ASSIGNED,
                             client_id=c.id, created_at=NOW, updated_at=NOW))  # fmt: skip
        with pytest.raises(IntegrityError):  # one worn bracelet per client
            session.commit()
        session.rollback()
        session.add(Bracelet(bracelet_id=0x1236, channel=4, status=BraceletStatus.ASSIGNED,
                             created_at=NOW, updated_at=NOW))  # fmt: skip
        with pytest.raises(IntegrityError):  # worn means worn by someone
            session.commit()
        session.rollback()
        session.add(Bracelet(bracelet_id=0x1237, channel=4, status=BraceletStatus.RETIRED,
                             client_id=c.id, created_at=NOW, updated_at=NOW))  # fmt: skip
        with pytest.raises(IntegrityError):  # a retired bracelet is worn by no one
            session.commit()
        session.rollback()
        session.add(Place(client_id=c.id, kind=PlaceKind.FREQUENTED, label="the park"))
        with pytest.raises(IntegrityError):  # a place often visited has a position
            session.commit()
        session.rollback()
        session.add(Place(client_id=c.id, kind=PlaceKind.PREVIOUS_ADDRESS, label="12 Elm St",
                          lat_deg=42.3))  # fmt: skip
        with pytest.raises(IntegrityError):  # a position is both coordinates or neither
            session.commit()
        session.rollback()
        session.add(Place(client_id=c.id, kind=PlaceKind.PREVIOUS_ADDRESS, label="12 Elm St"))
        session.commit()  # an address without a position is kept

        def search() -> Search:
            return Search(client_id=c.id, opened_at=NOW, last_known_lat_deg=42.3,
                          last_known_lon_deg=-71.05, last_known_at=NOW, status=SearchStatus.ACTIVE,
                          created_at=NOW, updated_at=NOW)  # fmt: skip

        first = search()
        session.add(first)
        session.commit()
        session.add(search())
        with pytest.raises(IntegrityError):  # one active search per client
            session.commit()
        session.rollback()
        first.status = SearchStatus.FOUND
        session.commit()
        session.add(search())  # once found, a new search may open
        session.commit()
        client_id = c.id
    # Two people edit the same record: the second, from a stale copy, is refused.
    with Session(engine) as one, Session(engine) as two:
        a = one.get(Client, client_id)
        b = two.get(Client, client_id)
        assert a is not None
        assert b is not None
        a.nickname = "Addie"
        one.commit()
        b.nickname = "Ada L."
        with pytest.raises(StaleDataError):
            two.commit()
    engine.dispose()
