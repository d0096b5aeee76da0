"""Sealed fleet sightings on SQLite and PostgreSQL: kept only with the client's consent and
while no search is open; every role refused while no search is open; when one opens,
dispatchers, clinicians and admins see them ("heard by CAR-3 at 14:32, 1.2 km north-east of
home") with an audit entry and everyone else is still refused; after 72 hours the sightings and
the reports they came from are gone from the database (checked by query)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import sightings
from registry.bracelets import add_bracelet, assign_from_inventory
from registry.home_stations import set_home_station
from registry.models import AuditEntry, FleetSighting, Role, StoredReport
from registry.reports import ReportRow, store_reports
from registry.searches import live_setup
from registry.service import ForbiddenError, enrol, open_search
from safetynet.angles import compass_word
from safetynet.geodesy import forward
from safetynet.reports import Pulse, parse_report, report_to_json
from tests.registry.test_service import PUBLIC_FORM, actor

STAFF, DISPATCHER = actor(Role.PROGRAM_STAFF), actor(Role.DISPATCHER)
HOME = (42.30206, -71.05761)
CONSENT = {"consent_fleet_sightings": True, "consent_home_alerts": True,
           "consent_given_by": "the client"}  # fmt: skip


def pulse(receiver: str, seq: int, t: datetime, at: tuple[float, float] | None,
          bracelet: int = 0x3A7F) -> Pulse:  # fmt: skip
    obj: dict[str, Any] = {"kind": "pulse", "receiver_id": receiver, "seq": seq,
                           "t": t.isoformat().replace("+00:00", "Z"), "channel": 19,
                           "freq_hz": 216462612, "bracelet_id": f"{bracelet:04X}",
                           "rssi_dbm": -101.5, "snr_db": 12.0}  # fmt: skip
    if at is not None:
        obj.update(lat_deg=at[0], lon_deg=at[1])
    report = parse_report(obj)
    assert isinstance(report, Pulse)
    return report


def ingest(session: Session, pulses: list[Pulse], now: datetime) -> int:
    """What the ingest does: store the reports, then tell the sightings."""
    store_reports(session, [ReportRow(receiver_id=p.receiver_id, seq=p.seq, kind=p.kind, t=p.t,
                                      channel=p.channel, bracelet_id=p.bracelet_id,
                                      body=report_to_json(p), received_at=now, user_id=None)
                            for p in pulses])  # fmt: skip
    return sightings.record(session, pulses, now)


def client_with_bracelet(session: Session, first: str, bracelet: int, **extra: Any) -> str:
    client = enrol(session, STAFF, {**PUBLIC_FORM, "first_name": first, **extra}).id
    add_bracelet(session, STAFF, bracelet, 19)
    assign_from_inventory(session, STAFF, bracelet, client)
    return client


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_sightings_are_sealed_until_a_search_opens_and_gone_after_72_hours(
    session: Session,
) -> None:
    walter = client_with_bracelet(session, "Walter", 0x3A7F, **CONSENT)
    rose = client_with_bracelet(session, "Rose", 0x4B10)  # no consent
    set_home_station(session, STAFF, walter, {"receiver_id": "HOME-1", "lat_deg": HOME[0],
                                              "lon_deg": HOME[1]})  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    car3 = forward(HOME[0], HOME[1], 45.0, 1200.0)  # 1.2 km north-east of home
    heard = [
        pulse("CAR-3", 1, now - timedelta(hours=80), car3),  # older than the retention: dropped
        pulse("ROOF-2", 7, now - timedelta(hours=5), None),  # a roof site without a position
        pulse("CAR-3", 2, now - timedelta(minutes=20), car3),
        pulse("HOME-1", 9, now - timedelta(minutes=19), HOME),  # the home station: not the fleet
        pulse("CAR-3", 3, now - timedelta(minutes=18), car3, bracelet=0x4B10),  # Rose: no consent
    ]
    assert ingest(session, heard, now) == 2
    session.commit()
    assert count(session, FleetSighting) == 2
    assert session.scalar(select(FleetSighting).where(FleetSighting.client_id == rose)) is None
    # Sealed: every role is refused while no search is open.
    for role in Role:
        with pytest.raises(ForbiddenError, match="sealed"):
            sightings.sightings_of_client(session, actor(role), walter, "checking")
    assert session.scalar(select(AuditEntry).where(AuditEntry.entity == "fleet_sighting")) is None

    search = open_search(session, DISPATCHER, walter, HOME[0], HOME[1],
                         now - timedelta(minutes=25))  # fmt: skip
    session.commit()
    # The live map's setup takes the last sighting with a position since last seen as prior.
    live = live_setup(session, search.id)
    assert live is not None
    assert live.sighting is not None
    assert (live.sighting.receiver_id, live.sighting.t) == ("CAR-3", now - timedelta(minutes=20))
    for role in Role:
        if role in (Role.DISPATCHER, Role.CLINICIAN, Role.ADMIN):
            rows = sightings.sightings_of_client(session, actor(role), walter, "search opened")
            assert [r["receiver_id"] for r in rows] == ["CAR-3", "ROOF-2"]  # the last first
            last = rows[0]
            assert last["text"] == (
                f"heard by CAR-3 at {now - timedelta(minutes=20):%H:%M} UTC, 1.2 km north-east "
                "of home"
            )
            assert abs(last["from_origin_m"] - 1200.0) < 1.0
            assert rows[1]["text"].endswith("its position not known")
        else:
            with pytest.raises(ForbiddenError):
                sightings.sightings_for_search(session, actor(role), search.id, "curious")
    audits = list(session.scalars(select(AuditEntry).where(AuditEntry.entity == "fleet_sighting")))
    assert sorted(str(a.user_id) for a in audits) == ["admin", "clinician", "dispatcher"]
    assert all(search.id in a.reason for a in audits)
    # While the search is open, new hearings are the search's, not sightings.
    assert ingest(session, [pulse("CAR-3", 4, now, car3)], now) == 0

    # 72 hours on: gone, with the reports they came from (the home station's stays).
    later = now + timedelta(hours=72, minutes=1)
    assert sightings.purge(session, later) == 2
    session.commit()
    assert count(session, FleetSighting) == 0
    left = set(session.execute(select(StoredReport.receiver_id, StoredReport.seq)).all())
    assert ("CAR-3", 2) not in left
    assert ("ROOF-2", 7) not in left
    assert ("HOME-1", 9) in left
    assert compass_word(359.0) == "north"
    assert compass_word(200.0) == "south"
