"""Edits with version conflicts, co-response links, soft delete and retention, and the search
lifecycle with its append-only log — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.models import AuditEntry, Client, Role, SearchEvent
from registry.records import (
    add_enrollment,
    deleted_clients,
    link_co_response,
    purge_expired,
    read_co_response,
    restore_client,
    soft_delete_client,
    update_client,
)
from registry.searches import (
    add_note,
    assign_team,
    link_missing_person,
    list_searches,
    open_search_view,
    recent_events,
    set_status,
)
from registry.service import (
    Actor,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RegistryInputError,
    assign_bracelet,
    enrol,
    list_clients,
    open_search,
    read_client,
)
from tests.registry.test_service import FORM, actor

ADMIN, FAMILY, CLINICIAN = actor(Role.ADMIN), actor(Role.FAMILY), actor(Role.CLINICIAN)
DISPATCHER, SEARCHER = actor(Role.DISPATCHER), actor(Role.SEARCHER)


def _enrolled(session: Session) -> str:
    client_id = enrol(session, FAMILY, FORM).id
    session.commit()
    return client_id


def test_concurrent_edits_conflict_instead_of_overwriting(session: Session) -> None:
    client_id = _enrolled(session)
    seen = read_client(session, FAMILY, client_id)["version"]
    # The family's first edit lands; a second edit made from the same (now stale) copy is refused.
    update_client(session, FAMILY, client_id, seen, {"hair": "grey", "nickname": "Walt"})
    session.commit()
    with pytest.raises(ConflictError, match=r"changed by someone else.*version 1.*version 2"):
        update_client(session, ADMIN, client_id, seen, {"hair": "white"})
    session.rollback()
    fresh = read_client(session, ADMIN, client_id, reason="test")
    assert (fresh["hair"], fresh["nickname"], fresh["version"]) == ("grey", "Walt", 2)
    # Lists replace: the caregivers and places change, and so does the version.
    update_client(session, FAMILY, client_id, 2, {
        "caregivers": [{"name": "Bob Brown", "phone": "+1 617 555 0102"}],
        "places": [{"kind": "frequented", "label": "Park St church", "lat_deg": 42.357,
                    "lon_deg": -71.062}],
    })  # fmt: skip
    session.commit()
    after = read_client(session, FAMILY, client_id)
    assert [(c["name"], c["phone"]) for c in after["caregivers"]] == [("Bob Brown", "+16175550102")]
    assert after["version"] == 3
    # The new fields edit like the others.
    update_client(
        session,
        FAMILY,
        client_id,
        3,
        {"usual_clothing": "red anorak", "description": "  short, quick walker "},
    )
    session.commit()
    after = read_client(session, FAMILY, client_id)
    assert (after["usual_clothing"], after["description"]) == ("red anorak", "short, quick walker")


def test_edits_are_checked_before_anything_is_written(session: Session) -> None:
    client_id = _enrolled(session)
    bad: list[dict[str, Any]] = [
        {"first_name": "   "},
        {"date_of_birth": (datetime.now(UTC) + timedelta(days=3)).date().isoformat()},
        {"height_cm": 900},
        {"places": [{"label": "x", "lat_deg": 91, "lon_deg": 0}]},
        {"favourite_colour": "blue"},
        {"hair": "grey", "verbal": "yes"},
        {"caregivers": [{"name": "Bob Brown", "phone": "call ann"}]},
        {"description": "x" * 4001},
    ]
    for change in bad:
        with pytest.raises(RegistryInputError):
            update_client(session, FAMILY, client_id, 1, change)
        session.rollback()
    record = read_client(session, ADMIN, client_id, reason="test")
    assert (record["version"], record["hair"]) == (1, "white")
    # A searcher may not edit; another family may not touch this client at all.
    with pytest.raises(ForbiddenError):
        update_client(session, SEARCHER, client_id, 1, {"hair": "grey"})
    with pytest.raises(ForbiddenError):
        update_client(session, Actor("other_family", Role.FAMILY), client_id, 1, {"hair": "x"})
    # Program staff edit the public record but not clinical detail.
    with pytest.raises(ForbiddenError):
        update_client(session, actor(Role.PROGRAM_STAFF), client_id, 1, {"triggers": "dogs"})


def test_enrollment_periods(session: Session) -> None:
    client_id = _enrolled(session)
    staff = actor(Role.PROGRAM_STAFF)
    add_enrollment(session, staff, client_id, {
        "starts_on": "2026-01-05", "diagnosis_confirmed": True, "history_of_wandering": True,
        "caregiver_24_7": True, "funding_source": "county aging services"})  # fmt: skip
    with pytest.raises(RegistryInputError, match="ends_on"):
        add_enrollment(session, staff, client_id, {
            "starts_on": "2026-01-05", "ends_on": "2025-12-31", "diagnosis_confirmed": True,
            "history_of_wandering": True, "caregiver_24_7": True})  # fmt: skip
    with pytest.raises(RegistryInputError, match="history_of_wandering"):
        add_enrollment(
            session, staff, client_id,
            {"starts_on": "2026-01-05", "diagnosis_confirmed": True, "caregiver_24_7": True},
        )  # fmt: skip


def test_co_response_is_for_clinicians_and_admins_and_every_read_is_audited(
    session: Session,
) -> None:
    client_id = _enrolled(session)
    encounter = {"encounter_on": "2026-10-02", "kind": "911-response", "clinician": "Dr. Osei",
                 "outcome": "returned home with daughter"}  # fmt: skip
    for who in (FAMILY, DISPATCHER, SEARCHER, actor(Role.PROGRAM_STAFF)):
        with pytest.raises(ForbiddenError):
            link_co_response(session, who, client_id, encounter)
        with pytest.raises(ForbiddenError):
            read_co_response(session, who, client_id, reason="curious")
    link_co_response(session, CLINICIAN, client_id, encounter)
    with pytest.raises(RegistryInputError, match="kind"):
        link_co_response(session, CLINICIAN, client_id, {**encounter, "kind": "visit"})
    with pytest.raises(RegistryInputError, match="reason"):
        read_co_response(session, ADMIN, client_id, reason=" ")
    before = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    rows = read_co_response(session, ADMIN, client_id, reason="case review 2026-31")
    assert [r["clinician"] for r in rows] == ["Dr. Osei"]
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert (entry.user_id, entry.entity, entry.reason) == ("admin", "co_response",
                                                           "case review 2026-31")  # fmt: skip
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == before + 1


def test_soft_delete_hides_restores_and_purges_after_retention(session: Session) -> None:
    client_id = _enrolled(session)
    bracelet = assign_bracelet(session, ADMIN, 0x2A17, 7, client_id,
                               datetime.now(UTC).date())  # fmt: skip
    with pytest.raises(ForbiddenError):
        soft_delete_client(session, Actor("other_family", Role.FAMILY), client_id, "moved")
    soft_delete_client(session, FAMILY, client_id, "moved out of the county")
    session.commit()
    assert bracelet.status.value == "stock"  # free to issue again
    with pytest.raises(NotFoundError, match="no client"):
        read_client(session, ADMIN, client_id, reason="x")
    restore_client(session, ADMIN, client_id, "deleted by mistake")
    assert read_client(session, ADMIN, client_id, reason="x")["first_name"] == "Walter"
    soft_delete_client(session, ADMIN, client_id, "records request")
    session.commit()
    # Within the retention period nothing is purged; after it, the personal detail is gone.
    assert purge_expired(session, ADMIN, retention_days=30) == []
    later = datetime.now(UTC) + timedelta(days=31)
    assert purge_expired(session, ADMIN, retention_days=30, now=later) == [client_id]
    session.commit()
    client = session.get(Client, client_id)
    assert client is not None
    assert (client.first_name, client.diagnoses, client.photo, client.caregivers) == (
        "(purged)", None, None, [])  # fmt: skip
    with pytest.raises(ForbiddenError):
        purge_expired(session, FAMILY)
    with pytest.raises(ConflictError, match="purged"):
        restore_client(session, ADMIN, client_id, "too late")


def test_staff_soft_delete_a_duplicate_and_restore_it(session: Session) -> None:
    staff = actor(Role.PROGRAM_STAFF)
    first = _enrolled(session)
    second = enrol(session, FAMILY, FORM, confirmed_not_duplicate=True).id
    session.commit()
    with pytest.raises(RegistryInputError, match="Say why"):
        soft_delete_client(session, staff, second, " ")
    soft_delete_client(session, staff, second, "duplicate of the first record")
    session.commit()
    assert [c["id"] for c in list_clients(session, staff)] == [first]
    [gone] = deleted_clients(session, staff)
    assert (gone["id"], gone["first_name"]) == (second, "Walter")
    for role in (Role.FAMILY, Role.DISPATCHER, Role.CLINICIAN, Role.SEARCHER):
        with pytest.raises(ForbiddenError):
            restore_client(session, actor(role), second, "want it back")
        with pytest.raises(ForbiddenError):
            deleted_clients(session, actor(role))
    restore_client(session, staff, second, "it was not a duplicate after all")
    session.commit()
    assert sorted(c["id"] for c in list_clients(session, staff)) == sorted([first, second])
    assert deleted_clients(session, staff) == []
    reasons = session.scalars(
        select(AuditEntry.reason).where(
            AuditEntry.entity_id == second, AuditEntry.action != "create"
        )
    )
    assert list(reasons) == ["duplicate of the first record", "it was not a duplicate after all"]


def test_search_lifecycle_log_and_links(session: Session) -> None:
    client_id = _enrolled(session)
    seen = datetime.now(UTC) - timedelta(minutes=20)
    search = open_search(session, DISPATCHER, client_id, 42.35, -71.06, seen, "red coat")
    session.commit()
    assign_team(session, DISPATCHER, search.id, "Team 1", ["hh-1", "hh-2"])
    add_note(session, DISPATCHER, search.id, "caregiver says he likes the bakery")
    report = {"agency": "Boston PD", "report_number": "26-004417", "ncic_category": "Disability"}
    link_missing_person(session, DISPATCHER, search.id, report)
    with pytest.raises(RegistryInputError, match="ncic_category"):
        link_missing_person(session, DISPATCHER, search.id, {
            "agency": "Boston PD", "report_number": "1", "ncic_category": "Lost"})  # fmt: skip
    with pytest.raises(ForbiddenError):
        add_note(session, SEARCHER, search.id, "I may only read")
    session.commit()
    view = open_search_view(session, DISPATCHER, search.id)
    assert view["teams"] == [{"name": "Team 1", "receiver_ids": ["hh-1", "hh-2"]}]
    assert view["client"]["triggers"] == "sirens"  # a dispatcher sees how to approach
    assert "triggers" not in open_search_view(session, SEARCHER, search.id)["client"]
    with pytest.raises(ForbiddenError):
        open_search_view(session, FAMILY, search.id)
    assert [s["id"] for s in list_searches(session, DISPATCHER, active_only=True)] == [search.id]
    # Status moves: stale versions and impossible moves are refused.
    with pytest.raises(RegistryInputError, match="found"):
        set_status(session, DISPATCHER, search.id, "found", search.version, {"lat_deg": 42.3})
    session.rollback()
    found = {"lat_deg": 42.351, "lon_deg": -71.058, "condition": "cold, unhurt"}
    set_status(session, DISPATCHER, search.id, "found", 1, found)
    session.commit()
    with pytest.raises(ConflictError, match="version"):
        set_status(session, DISPATCHER, search.id, "closed", 1)
    with pytest.raises(ConflictError, match="cannot become"):
        set_status(session, DISPATCHER, search.id, "active", 2)
    set_status(session, DISPATCHER, search.id, "closed", 2)
    session.commit()
    kinds = [e["kind"] for e in recent_events(session, SEARCHER, search.id)]
    # The first note is the registry's: Walter wears no bracelet, the radio cannot help.
    assert kinds == ["note", "assignment", "note", "link", "status", "status"]
    first = recent_events(session, SEARCHER, search.id)[0]["body"]
    assert first["warning"] == "bracelet"
    assert "Walter Brown has no bracelet on record" in first["text"]
    assert [e["kind"] for e in recent_events(session, SEARCHER, search.id, limit=2)] == [
        "status", "status"]  # fmt: skip
    # A new search may open now that the old one is closed.
    open_search(session, DISPATCHER, client_id, 42.35, -71.06, seen)
    session.commit()
    # six events of the first search, the second search's warning: nothing was edited away
    assert session.scalar(select(func.count()).select_from(SearchEvent)) == 7
