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
    ("patch", "message"),
    [
        ({"date_of_birth": (date.today() + timedelta(days=3)).isoformat()}, "future"),
        ({"first_name": "   "}, "only spaces"),
        ({"photo_base64": base64.b64encode(b"GIF89a" + b"0" * 10).decode()}, "JPEG or PNG"),
        ({"photo_base64": base64.b64encode(PNG + b"\x00" * (3 * 1024 * 1024)).decode()}, "KiB"),
        ({"height_cm": 400}, "height_cm"),
        ({"caregivers": 5}, "caregivers"),
        ({"verbal": "yes"}, "verbal"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    session: Session, patch: dict[str, Any], message: str
) -> None:
    before = count(session)
    with pytest.raises(RegistryInputError, match=message):
        enrol(session, actor(Role.FAMILY), {**FORM, **patch})
    session.rollback()
    assert count(session) == before


def test_bracelets_and_batteries(session: Session) -> None:
    staff = actor(Role.PROGRAM_STAFF)

    a = enrol(session, staff, PUBLIC_FORM)
    b = enrol(session, staff, {**PUBLIC_FORM, "first_name": "Rose"})
    today = date(2026, 11, 28)
    assign_bracelet(session, staff, 0x3A7F, 19, a.id, today - timedelta(days=170), 180)
    with pytest.raises(ConflictError, match="already assigned"):
        assign_bracelet(session, staff, 0x3A7F, 19, b.id, today, 180)
    with pytest.raises(ConflictError, match="already wears"):
        assign_bracelet(session, staff, 0x1111, 5, a.id, today, 180)
    with pytest.raises(RegistryInputError, match="channel"):
        assign_bracelet(session, staff, 0x2222, 41, b.id, today, 180)
    assign_bracelet(session, staff, 0x2222, 3, b.id, today - timedelta(days=10), 180)
    due = batteries_due(session, staff, within_days=14, today=today)
    assert due == [
        {"bracelet_id": "3A7F", "client_id": a.id, "due_on": "2026-12-08", "days_remaining": 10}
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
    assert record["bracelets"] == [{"bracelet_id": "0A0A", "channel": 7, "status": "assigned"}]
    assert base64.b64decode(record["photo_base64"]) == PNG
    exports = session.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all()
    assert [e.reason for e in exports] == ["records request"]


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
    assert "first_name" in refused.stderr
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
