"""The permission matrix: every role against every kind of data and action."""

from __future__ import annotations

import itertools

import pytest

from registry.access import allowed, may
from registry.models import Role

KINDS = ("public", "contacts", "clinical", "co_response", "program", "search")

# What the rules of #6 say, written out independently of registry/access.py's table.
EXPECTED_READ = {
    Role.ADMIN: set(KINDS),
    Role.PROGRAM_STAFF: {"public", "contacts", "program", "search"},
    Role.DISPATCHER: {"public", "contacts", "clinical", "program", "search"},
    Role.SEARCHER: {"public", "search"},
    Role.CLINICIAN: {"public", "contacts", "clinical", "co_response", "search"},
    Role.FAMILY: {"public", "contacts", "program"},
}
EXPECTED_WRITE = {
    Role.ADMIN: set(KINDS),
    Role.PROGRAM_STAFF: {"public", "contacts", "program"},
    Role.DISPATCHER: {"search"},
    Role.SEARCHER: set(),
    Role.CLINICIAN: {"clinical", "co_response"},
    Role.FAMILY: {"public", "contacts", "clinical", "program"},
}


@pytest.mark.parametrize(("role", "kind"), list(itertools.product(Role, KINDS)))
def test_matrix(role: Role, kind: str) -> None:
    assert allowed(role, "read", kind) == (kind in EXPECTED_READ[role])  # type: ignore[arg-type]
    assert allowed(role, "write", kind) == (kind in EXPECTED_WRITE[role])  # type: ignore[arg-type]


def test_clinical_and_co_response_rules() -> None:
    clinical_readers = {r for r in Role if allowed(r, "read", "clinical")}
    assert clinical_readers == {Role.DISPATCHER, Role.CLINICIAN, Role.ADMIN}
    assert {r for r in Role if allowed(r, "read", "co_response")} == {Role.CLINICIAN, Role.ADMIN}


@pytest.mark.parametrize("kind", KINDS)
def test_family_only_for_their_own_client(kind: str) -> None:
    for action in ("read", "write"):
        assert not allowed(Role.FAMILY, action, kind, own_client=False)  # type: ignore[arg-type]


def test_fleet_sightings_are_for_dispatchers_clinicians_and_admins() -> None:
    # Issue #20: shown, once a search opens, to dispatcher, clinician and admin only.
    holders = {r for r in Role if may(r, "fleet_sightings")}
    assert holders == {Role.DISPATCHER, Role.CLINICIAN, Role.ADMIN}
