"""Two people changing one record at once: the second is told it changed (ConflictError, which
the server answers with 409), never a server error — on SQLite and PostgreSQL.

The races are played out as the server runs a request — one transaction, the record read and
then changed: the second reads (and holds) its copy, the first saves, then the second saves from
its now stale copy, so the database's version check is what refuses it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from registry.models import Client, Role, Search
from registry.records import update_client
from registry.searches import get_search, set_status
from registry.service import ConflictError, assign_bracelet, enrol, open_search
from tests.registry.test_service import FORM, actor

FAMILY, ADMIN, DISPATCHER = actor(Role.FAMILY), actor(Role.ADMIN), actor(Role.DISPATCHER)


def race(
    engine: Engine,
    read: Callable[[Session], object],
    first: Callable[[Session], object],
    second: Callable[[Session], object],
) -> None:
    """``second`` saves from a copy read before ``first`` saved (each in its own transaction,
    objects kept after commit as the server's sessions keep them)."""
    with Session(engine, expire_on_commit=False) as two, two.begin():
        held = read(two)  # held: the identity map keeps the stale copy
        with Session(engine) as one, one.begin():
            first(one)
        second(two)
        assert held is not None


def test_two_users_patching_one_client(session: Session) -> None:
    client_id = enrol(session, FAMILY, FORM).id
    session.commit()
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    caregivers = [{"name": "Bob Brown", "phone": "+1 617 555 0102"}]
    with pytest.raises(ConflictError, match=rf"client {client_id} was changed"):
        race(
            engine,
            lambda s: s.get(Client, client_id),
            lambda s: update_client(s, FAMILY, client_id, 1, {"hair": "grey"}),
            lambda s: update_client(
                s, ADMIN, client_id, 1, {"hair": "white", "caregivers": caregivers}
            ),
        )
    with Session(engine) as check:
        row = check.get(Client, client_id)
        assert row is not None
        assert (row.hair, row.version) == ("grey", 2)  # the first edit kept, nothing lost


def test_two_dispatchers_changing_one_search(session: Session) -> None:
    client_id = enrol(session, FAMILY, FORM).id
    seen = datetime.now(UTC) - timedelta(minutes=30)
    assign_bracelet(session, ADMIN, 0x3A7F, 19, client_id, seen.date())
    search_id = open_search(session, DISPATCHER, client_id, 42.3, -71.05, seen).id
    session.commit()
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with pytest.raises(ConflictError, match=rf"search {search_id} was changed"):
        race(
            engine,
            lambda s: get_search(s, search_id),
            lambda s: set_status(s, DISPATCHER, search_id, "suspended", 1),
            lambda s: set_status(s, DISPATCHER, search_id, "closed", 1),
        )
    with Session(engine) as check:
        row = check.get(Search, search_id)
        assert row is not None
        assert (row.status.value, row.version) == ("suspended", 2)
