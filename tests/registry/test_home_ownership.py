"""Home stations against what the outside world can get wrong, on SQLite and PostgreSQL: a family
cannot register a receiver that belongs elsewhere (a search team's, one that hears other
people's bracelets, another home's); a station whose clock runs an hour fast or slow neither
raises an alert nor holds one back (the alert comes N to N + 1 minutes after the person truly
left, by the server's clock); and cron's check racing an ingest's over the same station raises
one alert, told once, and neither check fails."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import home_stations as hs
from registry.models import HomeAlert, HomeAlertKind, NoticeSent, Role
from registry.reports import ReportRow, store_reports
from registry.searches import assign_team
from registry.service import Actor, ConflictError, enrol, open_search
from tests.mail_support import Mailbox, smtp_server
from tests.registry.test_home_stations import (
    CONSENT,
    DISPATCHER,
    HOME,
    STAFF,
    STATION,
    _row,
    minutes,
    pulse_obj,
    setup,
    status_obj,
)
from tests.registry.test_notify import family_login
from tests.registry.test_service import PUBLIC_FORM


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def family_of(session: Session, client_id: str, username: str) -> Actor:
    return Actor(family_login(session, username, client_id), Role.FAMILY)


def station(receiver_id: str) -> dict[str, object]:
    return {"receiver_id": receiver_id, "lat_deg": HOME[0], "lon_deg": HOME[1]}


def test_a_family_cannot_register_a_receiver_that_belongs_elsewhere(
    session: Session, mailbox: Mailbox
) -> None:
    walter, _ = setup(session, mailbox, wander_after_min=5)  # STATION is Walter's home's
    ada = enrol(session, STAFF, {**PUBLIC_FORM, "first_name": "Ada", **CONSENT}).id
    family = family_of(session, ada, "ada.family@example.org")
    now = datetime.now(UTC).replace(microsecond=0)
    # A cruiser on a search's team; a roof receiver that hears other people's bracelets.
    search = open_search(session, DISPATCHER, walter, HOME[0], HOME[1], now)
    assign_team(session, DISPATCHER, search.id, "Car 3", ["CAR-3"])
    store_reports(session, [_row(pulse_obj(now - timedelta(minutes=3), 1, receiver="ROOF-2"))])
    session.commit()
    for receiver, said in (("CAR-3", "search teams' receivers"),
                           ("ROOF-2", "heard other people's bracelets"),
                           (STATION, "already another client's home station")):  # fmt: skip
        with pytest.raises(ConflictError, match=said):
            hs.set_home_station(session, family, ada, station(receiver))
        session.rollback()
    assert hs.station_of(session, ada) is None  # nothing stored
    # The program may register a reused roof receiver; no one a search team's.
    with pytest.raises(ConflictError, match="search teams' receivers"):
        hs.set_home_station(session, STAFF, ada, station("CAR-3"))
    session.rollback()
    assert hs.set_home_station(session, STAFF, ada, station("ROOF-2")).receiver_id == "ROOF-2"
    session.rollback()
    # A new station that has heard nothing yet is the family's to register.
    assert hs.set_home_station(session, family, ada, station("HOME-0077")).receiver_id == (
        "HOME-0077"
    )
    session.commit()


def skewed(rows: list[ReportRow], skew: timedelta) -> list[ReportRow]:
    """The rows of a station whose clock is ``skew`` off: their own times shifted, their
    arrival (the server's clock) true."""
    return [replace(r, t=r.t + skew, received_at=r.t) for r in rows]


@pytest.mark.parametrize("skew_min", [60, -60])
def test_a_station_clock_far_off_neither_raises_nor_holds_back_an_alert(
    session: Session, mailbox: Mailbox, skew_min: int
) -> None:
    n = 5
    setup(session, mailbox, wander_after_min=n)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    left = start + timedelta(minutes=12, seconds=20)  # the person walks out of range
    rows, seq, t = [], 1, start
    while t < start + timedelta(minutes=30):
        if t < left:
            rows.append(_row(pulse_obj(t, seq)))
            seq += 1
        if (t - start).total_seconds() % 30 == 0:
            rows.append(_row(status_obj(t, seq)))
            seq += 1
        t += timedelta(seconds=1)
    store_reports(session, skewed(rows, timedelta(minutes=skew_min)))
    session.commit()
    raised: list[tuple[datetime, HomeAlert]] = []
    for tick in minutes(start + timedelta(minutes=1), 29):
        raised += [(tick, a) for a in hs.check_stations(session, tick)]
        session.commit()
    kinds = [a.kind for _, a in raised]
    assert kinds == [HomeAlertKind.WANDER], kinds  # never "station silent": it kept reporting
    tick, alert = raised[0]
    assert timedelta(minutes=n) < tick - left <= timedelta(minutes=n + 1), tick - left
    assert alert.last_heard_at is not None
    assert abs((alert.last_heard_at - left).total_seconds()) < 2.0  # on the server's clock


def test_cron_and_an_ingest_checking_at_once_raise_one_alert(
    session: Session, mailbox: Mailbox
) -> None:
    setup(session, mailbox, wander_after_min=5)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    rows, seq = [], 1
    for k in range(20 * 60):
        t = start + timedelta(seconds=k)
        if k < 5 * 60:
            rows.append(_row(pulse_obj(t, seq)))
            seq += 1
        if k % 30 == 0:
            rows.append(_row(status_obj(t, seq)))
            seq += 1
    store_reports(session, rows)
    session.commit()
    assert hs.check_stations(session, start + timedelta(minutes=6)) == []
    session.commit()
    tick = start + timedelta(minutes=12)
    (first,) = hs.check_stations(session, tick)  # cron: raised, not yet committed
    other: list[object] = []

    def ingest_check() -> None:
        with Session(session.get_bind()) as second:
            second.info.update(session.info)  # the same notifier
            try:
                other.extend(hs.check_stations(second, tick))
                second.commit()
            except Exception as err:  # the race this test is about
                other.append(err)

    thread = threading.Thread(target=ingest_check)
    thread.start()
    thread.join(1.0)  # it waits on the first check's insert
    session.commit()
    thread.join(40)
    assert not thread.is_alive()
    assert other == []  # no second alert, and no error
    assert first.kind is HomeAlertKind.WANDER
    count = session.scalar(select(func.count()).select_from(HomeAlert))
    assert count == 1
    mailbox.wait_for(3)
    told = session.scalars(select(NoticeSent.notice_key)).all()
    assert told == [f"wander:{first.id}"] * 3  # the program, dispatch, the family: once each
