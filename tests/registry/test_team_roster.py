"""A search's teams as the team page reads them (real SQLite and PostgreSQL): each team's
receivers and the searchers on it, by username, so that a searcher's page knows its own
handheld and labels the other teams' receivers with their names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from registry.models import Role
from registry.searches import assign_team, set_team_members, team_roster
from registry.service import ForbiddenError, NotFoundError, enrol, open_search
from tests.registry.test_service import FORM, actor

DISPATCHER, SEARCHER = actor(Role.DISPATCHER), actor(Role.SEARCHER)


def test_each_team_with_its_receivers_and_its_searchers_usernames(session: Session) -> None:
    client = enrol(session, actor(Role.FAMILY), FORM)
    seen = datetime.now(UTC) - timedelta(minutes=20)
    search = open_search(session, DISPATCHER, client.id, 42.35, -71.06, seen, None)
    session.commit()
    assign_team(session, DISPATCHER, search.id, "Team 2", ["HH-12"])
    assign_team(session, DISPATCHER, search.id, "Team 1", ["HH-07", "CAR-3"])
    set_team_members(session, DISPATCHER, search.id, "Team 1", ["searcher"])
    session.commit()
    assert team_roster(session, SEARCHER, search.id) == [
        {"name": "Team 1", "receiver_ids": ["HH-07", "CAR-3"], "members": ["searcher"]},
        {"name": "Team 2", "receiver_ids": ["HH-12"], "members": []},
    ]
    with pytest.raises(ForbiddenError):
        team_roster(session, actor(Role.FAMILY), search.id)
    with pytest.raises(NotFoundError):
        team_roster(session, SEARCHER, "no-such-search")
