"""The registry's service layer on SQLite and PostgreSQL: roles, audit, bad input, rules."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.models import AuditEntry, Client, Role
from registry.service import (
    Actor,
    ConflictError,
    ForbiddenError,
    RegistryInputError,
    assign_bracelet,
    batteries_due,
    enrol,
    open_search,
    read_client,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
FORM: dict[str, Any] = {
    "first_name": "Walter", "last_name": "Brown", "date_of_birth": "1944-05-01",
    "height_cm": 178, "hair": "white", "language": "English", "verbal": True,
    "diagnoses": "Alzheimer's disease", "triggers": "sirens", "approach_and_calm": "speak softly",
    "caregivers": [{"name": "Ann Brown", "phone": "+1 617 555 0101", "available_24_7": True}],
    "photo_base64": base64.b64encode(PNG).decode(),
}  # fmt: skip
# The form without clinical detail, as program staff (who may not write it) fill it in.
PUBLIC_FORM = {
    k: v for k, v in FORM.items() if k not in ("diagnoses", "triggers", "approach_and_calm")
}


def actor(role: Role, user: str | None = None) -> Actor:
    return Actor(user or role.value, role)


def test_enrol_and_read_by_role_with_audit(session: Session) -> None:
    client = enrol(session, actor(Role.FAMILY), FORM)
    session.commit()
    dispatcher = read_client(session, actor(Role.DISPATCHER), client.id, reason="search 17 opened")
    assert dispatcher["diagnoses"] == "Alzheimer's disease"
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "read")).all()
    assert len(audit) == 1
    assert audit[0].user_id == "dispatcher"
    assert audit[0].reason == "search 17 opened"
    searcher = read_client(session, actor(Role.SEARCHER), client.id)
    assert "diagnoses" not in searcher
    assert "caregivers" not in searcher
    assert searcher["first_name"] == "Walter"
    family = read_client(session, actor(Role.FAMILY), client.id)
    assert family["caregivers"][0]["name"] == "Ann Brown"
    assert "diagnoses" not in family
    with pytest.raises(ForbiddenError):
        read_client(session, actor(Role.FAMILY, "other_family"), client.id)
    with pytest.raises(RegistryInputError, match="reason"):
        read_client(session, actor(Role.CLINICIAN), client.id)


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Client)) or 0)


@pytest.mark.parametrize(
    ("patch", "field", "message"),
    [
        ({"date_of_birth": (date.today() + timedelta(days=3)).isoformat()}, "date_of_birth",
         "Date of birth can't be in the future"),
        ({"first_name": "   "}, "first_name", "First name is required."),
        ({"last_name": "x" * 500}, "last_name", "Last name is 500 characters long; it can be at "
         "most 100."),
        ({"photo_base64": base64.b64encode(b"GIF89a" + b"0" * 10).decode()}, "photo",
         "JPEG or PNG"),
        ({"photo_base64": base64.b64encode(PNG + b"\x00" * (3 * 1024 * 1024)).decode()}, "photo",
         "The photo is 3.1 MB; it can be at most 2 MB."),
        ({"height_cm": 400}, "height_cm", "Height must be a whole number of centimetres"),
        ({"caregivers": 5}, "caregivers", "Caregivers must be a list"),
        ({"verbal": "yes"}, "verbal", "Speaks must be yes or no"),
        ({"caregivers": [{"name": "Ann Brown", "phone": "call ann"}]}, "caregivers.0.phone",
         "The phone number for Ann Brown (caregiver 1) doesn't look like a phone number"),
        ({"caregivers": [{"name": "Ann Brown", "phone": "12"}]}, "caregivers.0.phone",
         "Ann Brown (caregiver 1)"),
        ({"places": [{"kind": "frequented", "label": "the pond"}]}, "places.0.lat_deg",
         "needs a position"),
        ({"shoe_size": 9}, "shoe_size", "The record has no field “shoe_size”."),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_changes_nothing(
    session: Session, patch: dict[str, Any], field: str, message: str
) -> None:
    before = count(session)
    with pytest.raises(RegistryInputError) as err:
        enrol(session, actor(Role.FAMILY), {**FORM, **patch})
    assert message in err.value.errors[field]
    assert message in str(err.value)
    session.rollback()
    assert count(session) == before


def test_every_problem_reported_at_once(session: Session) -> None:
    form = {
        **FORM,
        "first_name": "",
        "date_of_birth": "1944-02-30",
        "caregivers": [
            {"name": "Ann Brown", "phone": "call ann"},
            {"name": "", "phone": "617 555 0102"},
        ],
    }
    with pytest.raises(RegistryInputError) as err:
        enrol(session, actor(Role.FAMILY), form)
    assert set(err.value.errors) == {"first_name", "date_of_birth", "caregivers.0.phone",
                                     "caregivers.1.name"}  # fmt: skip


def test_phones_places_and_new_fields_stored_and_read_back(session: Session) -> None:
    form = {**FORM, "description": "tall, stooped, walks fast", "usual_clothing": "tan raincoat",
            "caregivers": [{"name": "Ann Brown", "phone": "(617) 555-0101", "available_24_7": True},
                           {"name": "Lee", "phone": "+44 20 7946 0958", "relation": "son"}],
            "places": [{"kind": "frequented", "label": "Dunkin' on Main St", "lat_deg": 42.3601,
                        "lon_deg": -71.0589},
                       {"kind": "previous_address", "label": "12 Elm St, Quincy"},
                       {"kind": "found_before", "label": "bus depot", "lat_deg": 42.35,
                        "lon_deg": -71.06, "notes": "2025-07-04, asleep on a bench"}]}  # fmt: skip
    client = enrol(session, actor(Role.FAMILY), form)
    session.commit()
    seen = read_client(session, actor(Role.DISPATCHER), client.id, reason="search")
    assert seen["description"] == "tall, stooped, walks fast"
    assert seen["usual_clothing"] == "tan raincoat"
    assert [(c["phone"], c["phone_display"]) for c in seen["caregivers"]] == [
        ("+16175550101", "+1 617-555-0101"), ("+442079460958", "+44 20 7946 0958")]  # fmt: skip
    assert [(p["kind"], p["lat_deg"]) for p in seen["places"]] == [
        ("frequented", 42.3601), ("previous_address", None), ("found_before", 42.35)]  # fmt: skip
    family = read_client(session, actor(Role.FAMILY), client.id)
    assert "diagnoses" not in family
    # What the family wrote is on file (they may not read it back, but they are told so).
    assert family["clinical_on_file"] == ["diagnoses", "triggers", "approach_and_calm"]


def test_a_possible_duplicate_is_held_back_until_confirmed(session: Session) -> None:
    from registry.service import PossibleDuplicateError

    family = actor(Role.FAMILY)
    first = enrol(session, family, FORM)
    session.commit()
    before = count(session)
    # Same name (other case, stray spaces) and date of birth: held back, pointing to the record.
    with pytest.raises(PossibleDuplicateError, match="already enrolled") as err:
        enrol(session, family, {**FORM, "first_name": " walter ", "last_name": "BROWN"})
    assert err.value.matches == [first.id]
    session.rollback()
    assert count(session) == before
    # Another family is told a record exists, not which.
    with pytest.raises(PossibleDuplicateError, match="enrolled by someone else") as err:
        enrol(session, actor(Role.FAMILY, "other_family"), FORM)
    assert err.value.matches == []
    session.rollback()
    # Confirmed as a different person with the same name and birthday: enrolled.
    enrol(session, family, FORM, confirmed_not_duplicate=True)
    session.commit()
    assert count(session) == before + 1
    # A different date of birth is no duplicate.
    enrol(session, family, {**FORM, "date_of_birth": "1944-05-02"})


def test_bracelets_and_batteries(session: Session) -> None:
    staff = actor(Role.PROGRAM_STAFF)

    a = enrol(session, staff, PUBLIC_FORM)
    b = enrol(session, staff, {**PUBLIC_FORM, "first_name": "Rose"})
    today = date.today()
    assign_bracelet(session, staff, 0x3A7F, 19, a.id, today - timedelta(days=170), 180)
    with pytest.raises(ConflictError, match="assigned, not in stock"):
        assign_bracelet(session, staff, 0x3A7F, 19, b.id, today, 180)
    with pytest.raises(ConflictError, match="already wears"):
        assign_bracelet(session, staff, 0x1111, 5, a.id, today, 180)
    with pytest.raises(RegistryInputError, match="channel"):
        assign_bracelet(session, staff, 0x2222, 41, b.id, today, 180)
    assign_bracelet(session, staff, 0x2222, 3, b.id, today - timedelta(days=10), 180)
    due = batteries_due(session, staff, within_days=14, today=today)
    due_on = (today + timedelta(days=10)).isoformat()
    assert due == [
        {"bracelet_id": "3A7F", "client_id": a.id, "due_on": due_on, "days_remaining": 10}
    ]
    with pytest.raises(ForbiddenError):
        batteries_due(session, actor(Role.SEARCHER), 14)


def test_one_active_search_per_client(session: Session) -> None:

    c = enrol(session, actor(Role.PROGRAM_STAFF), PUBLIC_FORM)
    now = datetime.now(UTC)
    open_search(session, actor(Role.DISPATCHER), c.id, 42.3, -71.05, now - timedelta(minutes=20))
    with pytest.raises(ConflictError, match="active search"):
        open_search(session, actor(Role.DISPATCHER), c.id, 42.3, -71.05, now)
    with pytest.raises(ForbiddenError):
        open_search(session, actor(Role.FAMILY), c.id, 42.3, -71.05, now)


def test_missed_tests_and_export(session: Session) -> None:
    from registry.service import export_client, missed_tests, record_daily_test

    staff = actor(Role.PROGRAM_STAFF)

    a = enrol(session, staff, PUBLIC_FORM)
    b = enrol(session, staff, {**PUBLIC_FORM, "first_name": "Rose"})
    now = datetime.now(UTC)
    ba = assign_bracelet(session, staff, 0x0A0A, 7, a.id, date.today(), 180)
    bb = assign_bracelet(session, staff, 0x0B0B, 8, b.id, date.today(), 180)
    record_daily_test(session, staff, ba.id, now - timedelta(hours=2), True, "Ann")
    record_daily_test(session, staff, bb.id, now - timedelta(hours=30), True, "Tom")
    record_daily_test(session, staff, bb.id, now - timedelta(hours=1), False, "Tom")  # failed
    session.commit()
    missed = missed_tests(session, staff, now)
    assert [m["bracelet_id"] for m in missed] == ["0B0B"]
    with pytest.raises(ForbiddenError):
        export_client(session, actor(Role.DISPATCHER), a.id, "asked")
    record = export_client(session, actor(Role.ADMIN), a.id, "records request")
    [worn] = record["bracelets"]
    assert (worn["bracelet_id"], worn["channel"], worn["status"]) == ("0A0A", 7, "assigned")
    assert worn["battery_installed_on"] == date.today().isoformat()
    assert [(t["passed"], t["tested_by"]) for t in worn["daily_tests"]] == [(True, "Ann")]
    assert base64.b64decode(record["photo_base64"]) == PNG
    # The full record holds every field that was enrolled, the new ones included.
    full = {**FORM, "description": "walks with a stoop", "usual_clothing": "tan raincoat",
            "places": [{"kind": "previous_address", "label": "12 Elm St", "lat_deg": None,
                        "lon_deg": None, "notes": "until 2019"}]}  # fmt: skip
    c = enrol(session, actor(Role.FAMILY), full, confirmed_not_duplicate=True)
    out = export_client(session, actor(Role.ADMIN), c.id, "records request")
    for field, value in full.items():
        if field == "caregivers":
            assert [(g["name"], g["phone"]) for g in out[field]] == [("Ann Brown", "+16175550101")]
        elif field == "photo_base64":
            assert base64.b64decode(out[field]) == PNG
        else:
            assert out[field] == value, field
    exports = session.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all()
    assert [e.reason for e in exports] == ["records request", "records request"]


def test_registry_commands(tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "SAFETYNET_DATA_DIR": str(tmp_path), "SAFETYNET_DATABASE_URL": ""}
    form = tmp_path / "client.json"
    form.write_text(json.dumps(FORM))
    run = [sys.executable, "-m", "safetynet", "registry"]
    enrolled = subprocess.run(
        [*run, "enrol", str(form)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    client_id = enrolled.stdout.strip()
    exported = subprocess.run([*run, "export", client_id, "--reason", "test"], capture_output=True,
                              text=True, env=env, timeout=120, check=False)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["diagnoses"] == "Alzheimer's disease"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**FORM, "first_name": " "}))
    refused = subprocess.run(
        [*run, "enrol", str(bad)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert refused.returncode == 1
    assert "First name is required." in refused.stderr
    assert "Traceback" not in refused.stderr
    due = subprocess.run(
        [*run, "batteries-due"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert due.returncode == 0, due.stderr


def test_battery_change_resets_the_due_date(session: Session) -> None:
    from registry.service import record_battery_change

    staff = actor(Role.PROGRAM_STAFF)
    c = enrol(session, staff, PUBLIC_FORM)
    today = date.today()
    b = assign_bracelet(session, staff, 0x0C0C, 9, c.id, today - timedelta(days=175), 180)
    assert batteries_due(session, staff, 14, today)[0]["days_remaining"] == 5
    with pytest.raises(RegistryInputError, match="future"):
        record_battery_change(session, staff, b.id, today + timedelta(days=1), "Ann")
    record_battery_change(session, staff, b.id, today, "Ann")
    assert batteries_due(session, staff, 14, today) == []
