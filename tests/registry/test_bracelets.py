"""Bracelets from the inventory to a client and back, on SQLite and PostgreSQL: each rule (one
wearer per bracelet, one bracelet per client, retired never reissued, unknown IDs refused)
refused with a message that says what to do, and nothing changed; the program's gaps; the
dispatcher's warning when a search opens for someone without a working bracelet."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.bracelets import (
    add_bracelet,
    assign_from_inventory,
    parse_bracelet_id,
    program_gaps,
    retire_bracelet,
    swap_bracelet,
)
from registry.fields import RegistryInputError
from registry.models import AuditEntry, Bracelet, Role, SearchEvent
from registry.service import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    enrol,
    open_search,
    record_daily_test,
    search_warnings,
)
from tests.registry.test_service import PUBLIC_FORM, actor

STAFF, ADMIN = actor(Role.PROGRAM_STAFF), actor(Role.ADMIN)


def state(session: Session) -> tuple[list[tuple[Any, ...]], int]:
    """Every bracelet's row as stored, and the number of audit entries."""
    session.expire_all()
    rows = session.execute(
        select(Bracelet.bracelet_id, Bracelet.status, Bracelet.client_id,
               Bracelet.battery_installed_on, Bracelet.version).order_by(Bracelet.bracelet_id)
    ).all()  # fmt: skip
    audits = int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
    return [tuple(r) for r in rows], audits


def two_clients(session: Session) -> tuple[str, str]:
    walter = enrol(session, STAFF, PUBLIC_FORM).id
    rose = enrol(session, STAFF, {**PUBLIC_FORM, "first_name": "Rose"}).id
    session.commit()
    return walter, rose


def refused(session: Session, kind: type[Exception], match: str, call: Any) -> None:
    """``call`` raises ``kind`` with a message matching ``match``, and nothing changed."""
    before = state(session)
    with pytest.raises(kind, match=match):
        call()
    session.rollback()
    assert state(session) == before


def test_assignment_rules_each_refused_with_nothing_changed(session: Session) -> None:
    walter, rose = two_clients(session)
    add_bracelet(session, STAFF, 0x3A7F, 19)
    add_bracelet(session, STAFF, 0x1111, 5)
    add_bracelet(session, STAFF, 0x2222, 7)
    session.commit()
    assign_from_inventory(session, STAFF, 0x3A7F, walter, date.today())
    session.commit()
    # A second client for a worn bracelet: refused, naming the wearer.
    refused(session, ConflictError, "3A7F is already worn by Walter Brown",
            lambda: assign_from_inventory(session, STAFF, 0x3A7F, rose))  # fmt: skip
    # A second bracelet for a client who wears one: refused, pointing to a swap.
    refused(session, ConflictError, "Walter Brown already wears bracelet 3A7F. Swap it",
            lambda: assign_from_inventory(session, STAFF, 0x1111, walter))  # fmt: skip
    # An unknown ID: refused, on the bracelet's field.
    refused(session, RegistryInputError, "no bracelet 4B4B in the inventory",
            lambda: assign_from_inventory(session, STAFF, 0x4B4B, rose))  # fmt: skip
    # A retired bracelet is never given out again.
    retire_bracelet(session, STAFF, 0x2222, "cracked case")
    session.commit()
    refused(session, ConflictError, "2222 was retired on .*never given out again",
            lambda: assign_from_inventory(session, STAFF, 0x2222, rose))  # fmt: skip
    # A duplicate ID cannot enter the inventory; reserved IDs and channels outside 1..40 neither.
    refused(session, ConflictError, "1111 is already in the inventory",
            lambda: add_bracelet(session, STAFF, 0x1111, 9))  # fmt: skip
    refused(session, RegistryInputError, "channel must be a whole number from 1 to 40",
            lambda: add_bracelet(session, STAFF, 0x5555, 41))  # fmt: skip
    refused(session, RegistryInputError, "0000 and FFFF are never issued",
            lambda: add_bracelet(session, STAFF, 0xFFFF, 3))  # fmt: skip
    # Only program staff and admins keep the inventory (a family writes only tests and batteries).
    for role in (Role.FAMILY, Role.DISPATCHER, Role.SEARCHER, Role.CLINICIAN):

        def as_role(role: Role = role) -> None:
            assign_from_inventory(session, actor(role), 0x1111, rose)

        refused(session, ForbiddenError, "may not change the bracelet inventory", as_role)
    refused(session, NotFoundError, "no client",
            lambda: assign_from_inventory(session, STAFF, 0x1111, "nobody"))  # fmt: skip
    refused(session, RegistryInputError, "future",
            lambda: assign_from_inventory(session, STAFF, 0x1111, rose,
                                          date.today() + timedelta(days=2)))  # fmt: skip
    # The allowed assignment still goes through after all those refusals.
    assign_from_inventory(session, ADMIN, 0x1111, rose)
    session.commit()
    rows = {r[0]: (r[1].value, r[2]) for r in state(session)[0]}
    assert rows == {0x1111: ("assigned", rose), 0x2222: ("retired", None),
                    0x3A7F: ("assigned", walter)}  # fmt: skip


def test_swap_and_retire(session: Session) -> None:
    walter, rose = two_clients(session)
    for bracelet_id, channel in ((0x0A0A, 3), (0x0B0B, 4), (0x0C0C, 5)):
        add_bracelet(session, STAFF, bracelet_id, channel)
    assign_from_inventory(session, STAFF, 0x0A0A, walter, date.today() - timedelta(days=30))
    assign_from_inventory(session, STAFF, 0x0C0C, rose)
    session.commit()
    refused(session, ConflictError, "already worn by Rose Brown",
            lambda: swap_bracelet(session, STAFF, walter, 0x0C0C))  # fmt: skip
    # The swap puts the new one on and takes the old one back to stock, at once.
    new = swap_bracelet(session, STAFF, walter, 0x0B0B, reason="strap broke")
    session.commit()
    assert (new.bracelet_id, new.client_id, new.battery_installed_on) == (
        0x0B0B, walter, date.today())  # fmt: skip
    rows = {r[0]: (r[1].value, r[2]) for r in state(session)[0]}
    assert rows[0x0A0A] == ("stock", None)
    # Swapping with retire_old retires the old one for good.
    swap_bracelet(session, STAFF, walter, 0x0A0A, retire_old=True, reason="failed its test")
    session.commit()
    rows = {r[0]: (r[1].value, r[2]) for r in state(session)[0]}
    assert rows == {0x0A0A: ("assigned", walter), 0x0B0B: ("retired", None),
                    0x0C0C: ("assigned", rose)}  # fmt: skip
    refused(session, RegistryInputError, "Say why",
            lambda: retire_bracelet(session, STAFF, 0x0C0C, "  "))  # fmt: skip
    retire_bracelet(session, STAFF, 0x0C0C, "lost in the river")
    session.commit()
    refused(session, ConflictError, "already retired",
            lambda: retire_bracelet(session, STAFF, 0x0C0C, "again"))  # fmt: skip
    refused(session, ConflictError, "Rose Brown wears no bracelet to swap",
            lambda: swap_bracelet(session, STAFF, rose, 0x0A0A))  # fmt: skip
    reasons = session.scalars(select(AuditEntry.reason).where(AuditEntry.entity == "bracelet"))
    assert any("lost in the river (was on client" in r for r in reasons)


def test_the_program_gaps(session: Session) -> None:
    walter, rose = two_clients(session)
    add_bracelet(session, STAFF, 0x0101, 1)
    add_bracelet(session, STAFF, 0x0202, 2)
    assign_from_inventory(session, STAFF, 0x0101, walter)
    session.commit()
    gaps = program_gaps(session, STAFF)
    assert [c["id"] for c in gaps["clients_without_bracelet"]] == [rose]
    assert [b["bracelet_id"] for b in gaps["bracelets_without_client"]] == ["0202"]
    with pytest.raises(ForbiddenError):
        program_gaps(session, actor(Role.FAMILY))


def test_opening_a_search_warns_without_a_working_bracelet(session: Session) -> None:
    walter, rose = two_clients(session)
    add_bracelet(session, STAFF, 0x0101, 1)
    assign_from_inventory(session, STAFF, 0x0101, walter)
    session.commit()
    dispatcher = actor(Role.DISPATCHER)
    now = datetime.now(UTC)
    # Rose wears nothing: the receivers have nothing to listen for.
    [bare] = search_warnings(session, dispatcher, rose)
    assert "Rose Brown has no bracelet" in bare
    # Walter's bracelet was never tested.
    [untested] = search_warnings(session, dispatcher, walter)
    assert "bracelet 0101 (channel 1) has never passed a daily test" in untested
    # A test passed an hour ago: no warning; one that failed since does not count as working.
    bracelet = session.scalar(select(Bracelet).where(Bracelet.bracelet_id == 0x0101))
    assert bracelet is not None
    record_daily_test(session, STAFF, bracelet.id, now - timedelta(hours=1), True, "Ann")
    assert search_warnings(session, dispatcher, walter) == []
    record_daily_test(session, STAFF, bracelet.id, now - timedelta(minutes=5), False, "Ann")
    [failed] = search_warnings(session, dispatcher, walter)
    assert "failed its last daily test" in failed
    # Opening the search writes the warning into its log, where every screen of it shows it.
    search = open_search(session, dispatcher, rose, 42.3, -71.05, now - timedelta(minutes=20))
    session.commit()
    notes = session.scalars(select(SearchEvent).where(SearchEvent.search_id == search.id)).all()
    assert [n.body["text"] for n in notes] == [bare]
    with pytest.raises(ForbiddenError):
        search_warnings(session, actor(Role.FAMILY), rose)


@pytest.mark.parametrize(
    ("text", "number"), [("3A7F", 0x3A7F), ("0x3a7f", 0x3A7F), (" 1 ", 1), (0xFFFE, 0xFFFE)]
)
def test_bracelet_ids_as_printed(text: str | int, number: int) -> None:
    assert parse_bracelet_id(text) == number


@pytest.mark.parametrize("text", ["", "3A7G", "12345", "FFFF", "0", -1, 70000])
def test_bracelet_ids_refused(text: str | int) -> None:
    with pytest.raises(RegistryInputError) as err:
        parse_bracelet_id(text)
    assert set(err.value.errors) == {"bracelet_id"}


def test_the_command_line_keeps_the_inventory(tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "SAFETYNET_DATA_DIR": str(tmp_path), "SAFETYNET_DATABASE_URL": ""}

    def run(*words: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "safetynet", "registry", *words]
        return subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=120, check=False
        )

    form = tmp_path / "client.json"
    form.write_text(json.dumps(PUBLIC_FORM))
    walter = run("enrol", str(form)).stdout.strip()
    again = run("enrol", str(form))
    assert again.returncode == 1
    assert "is already enrolled" in again.stderr
    rose = run("enrol", str(form), "--not-a-duplicate").stdout.strip()
    assert run("add-bracelet", "3A7F", "--channel", "19").returncode == 0
    assert run("add-bracelet", "4b10", "--channel", "20").returncode == 0
    done = run("assign", walter, "3A7F")
    assert done.returncode == 0, done.stderr
    assert "bracelet 3A7F (channel 19) assigned" in done.stdout
    for words, message in [
        (("assign", rose, "3A7F"), "3A7F is already worn by Walter Brown"),
        (("assign", rose, "9999"), "There is no bracelet 9999 in the inventory"),
        (("assign", rose, "3A7G"), "four letters and digits printed on it"),
        (("add-bracelet", "3A7F", "--channel", "2"), "already in the inventory"),
    ]:
        refused = run(*words)
        assert refused.returncode == 1, words
        assert message in refused.stderr
        assert "Traceback" not in refused.stderr
    unassigned = run("unassigned")
    assert rose in unassigned.stdout
    assert "4B10  channel 20" in unassigned.stdout
    swapped = run("swap", walter, "4B10", "--retire-old", "--reason", "strap broke")
    assert "the old one retired" in swapped.stdout, swapped.stderr
    retired = run("assign", rose, "3A7F")
    assert "retired" in retired.stderr
    assert run("delete", rose, "--reason", "duplicate").returncode == 0
    assert rose not in run("unassigned").stdout
    assert run("restore", rose, "--reason", "not a duplicate").returncode == 0
    assert rose in run("unassigned").stdout
