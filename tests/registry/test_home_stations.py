"""Home stations on SQLite and PostgreSQL, with notices received by a real SMTP server: a
simulated station (a frame a second from the bracelet while the person is home, its own status
every 30 s) stops hearing the bracelet and the wander alert is raised within N + 1 minutes of
checks made once a minute, reaching the program, the people named for searches and the family;
a station that stops reporting raises its own "station silent" notice and never a wander alert;
the quiet window holds the alert until it ends; a search opens from the alert with the home and
the last-heard time; a station hearing the bracelet logs the daily test, and a low-battery bit
heard by any receiver raises a battery notice at once. The default minutes come from the
station's measured gaps."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import home_stations as hs
from registry.bracelets import add_bracelet, assign_from_inventory
from registry.fields import RegistryInputError
from registry.models import DailyTest, HomeAlert, HomeAlertKind, Role, Search, SearchStatus
from registry.notify import NOTIFIER, Notifier, Outbox, add_target
from registry.reports import ReportRow, store_reports
from registry.service import ConflictError, ForbiddenError, enrol
from safetynet.reports import Pulse, Status, parse_report, report_to_json
from tests.mail_support import Mailbox, mail_url, smtp_server, text_of
from tests.registry.test_notify import family_login
from tests.registry.test_service import PUBLIC_FORM, actor

ADMIN, STAFF, DISPATCHER = actor(Role.ADMIN), actor(Role.PROGRAM_STAFF), actor(Role.DISPATCHER)
HOME = (42.30206, -71.05761)
STATION = "HOME-0042"
BRACELET = 0x3A7F
CONSENT = {"consent_home_alerts": True, "consent_given_by": "the client"}
START = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday, midnight


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def _row(obj: dict[str, Any]) -> ReportRow:
    report = parse_report(obj)
    assert isinstance(report, Pulse | Status)
    return ReportRow(receiver_id=report.receiver_id, seq=report.seq, kind=report.kind,
                     t=report.t, channel=getattr(report, "channel", None),
                     bracelet_id=getattr(report, "bracelet_id", None),
                     body=report_to_json(report), received_at=report.t, user_id=None)  # fmt: skip


def pulse_obj(t: datetime, seq: int, receiver: str = STATION, low_battery: bool = False,
              rssi_dbm: float = -71.5) -> dict[str, Any]:  # fmt: skip
    return {"kind": "pulse", "receiver_id": receiver, "seq": seq,
            "t": t.isoformat().replace("+00:00", "Z"), "channel": 19, "freq_hz": 216462612,
            "bracelet_id": f"{BRACELET:04X}",
            "status": {"seq": seq % 32, "test": False, "strap_open": False,
                       "low_battery": low_battery},
            "rssi_dbm": rssi_dbm, "snr_db": 30.0}  # fmt: skip


def status_obj(t: datetime, seq: int) -> dict[str, Any]:
    return {"kind": "status", "receiver_id": STATION, "seq": seq,
            "t": t.isoformat().replace("+00:00", "Z"), "lat_deg": HOME[0], "lon_deg": HOME[1],
            "gps_fix": False, "gain_db": 28.0, "noise_dbm": -131.0, "clipping": False,
            "battery_v": None, "lo_error_ppm": None}  # fmt: skip


def simulate(session: Session, start: datetime, end: datetime, heard_until: datetime | None,
             reports_until: datetime | None = None) -> None:  # fmt: skip
    """The station from ``start`` to ``end``: a frame a second heard until ``heard_until``
    (the person walks out of range then), its status every 30 s until ``reports_until``."""
    rows, seq, t = [], 1, start
    reports_until = reports_until or end
    while t < end:
        if heard_until is not None and t < heard_until and t < reports_until:
            rows.append(_row(pulse_obj(t, seq)))
            seq += 1
        if t < reports_until and (t - start).total_seconds() % 30 == 0:
            rows.append(_row(status_obj(t, seq)))
            seq += 1
        t += timedelta(seconds=1)
    store_reports(session, rows)


def setup(session: Session, mailbox: Mailbox, **station: Any) -> tuple[str, Outbox]:
    outbox = Outbox()
    session.info[NOTIFIER] = Notifier(outbox=outbox, zone=UTC, timeout_s=5.0)
    client = enrol(session, STAFF, {**PUBLIC_FORM, "first_name": "Walter", **CONSENT}).id
    add_bracelet(session, STAFF, BRACELET, 19)
    assign_from_inventory(session, STAFF, BRACELET, client)
    family_login(session, "ann.brown@example.org", client)
    add_target(session, ADMIN, "program", "Program office",
               mail_url(mailbox.port, "office@example.org"))  # fmt: skip
    add_target(session, ADMIN, "search", "Dispatch", mail_url(mailbox.port, "dispatch@example.org"))
    add_target(session, ADMIN, "family_mail", "Program mail", mail_url(mailbox.port))
    hs.set_home_station(session, STAFF, client, {"receiver_id": STATION, "lat_deg": HOME[0],
                                                 "lon_deg": HOME[1], **station})  # fmt: skip
    session.commit()
    return client, outbox


def first_alert(session: Session, ticks: list[datetime]) -> tuple[datetime, HomeAlert] | None:
    """Check once a minute, as cron does; the first tick that raised an alert, and the alert."""
    for tick in ticks:
        raised = hs.check_stations(session, tick)
        session.commit()
        if raised:
            return tick, raised[0]
    return None


def minutes(start: datetime, n: int) -> list[datetime]:
    return [start + timedelta(minutes=i) for i in range(n)]


def test_the_wander_alert_arrives_within_n_plus_one_minutes(
    session: Session, mailbox: Mailbox
) -> None:
    n = 4
    client, outbox = setup(session, mailbox, wander_after_min=n)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    left = start + timedelta(minutes=10, seconds=17)  # walks out of range
    simulate(session, start, start + timedelta(minutes=30), heard_until=left)
    session.commit()
    found = first_alert(session, minutes(start + timedelta(minutes=1), 29))
    assert found is not None
    tick, alert = found
    latency = tick - left
    assert timedelta(minutes=n) < latency <= timedelta(minutes=n + 1), latency
    assert alert.kind is HomeAlertKind.WANDER
    assert alert.last_heard_at is not None
    assert abs((alert.last_heard_at - (left - timedelta(seconds=1))).total_seconds()) < 1.5
    assert outbox.wait(10)
    mailbox.wait_for(3)
    for address in ("office@example.org", "dispatch@example.org", "ann.brown@example.org"):
        (mail,) = mailbox.to(address)
        assert mail["Subject"] == "Wander alert: Walter Brown may have left home"
        assert "has not heard Walter Brown's bracelet since" in text_of(mail)
        assert "Bracelet 3A7F" in text_of(mail)
    # Open, once: a later check raises nothing new; the API lists it.
    assert hs.check_stations(session, tick + timedelta(minutes=1)) == []
    (row,) = hs.open_alerts(session, DISPATCHER)
    assert row["kind"] == "wander"
    assert row["home"] == {"lat_deg": HOME[0], "lon_deg": HOME[1]}
    # One click: a search from the home at the time last heard.
    with pytest.raises(ForbiddenError):
        hs.search_from_alert(session, STAFF, alert.id)
    search = hs.search_from_alert(session, DISPATCHER, alert.id)
    session.commit()
    assert (search.last_known_lat_deg, search.last_known_lon_deg) == HOME
    assert search.last_known_at == alert.last_heard_at
    assert search.status is SearchStatus.ACTIVE
    assert hs.search_from_alert(session, DISPATCHER, alert.id).id == search.id  # not twice
    assert session.scalar(select(Search.client_id).where(Search.id == search.id)) == client


def test_a_silent_station_raises_its_own_notice_and_no_wander_alert(
    session: Session, mailbox: Mailbox
) -> None:
    n = 3
    _, outbox = setup(session, mailbox, wander_after_min=n)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    dead = start + timedelta(minutes=8)  # unplugged: neither pulses nor status after this
    simulate(session, start, start + timedelta(minutes=30), heard_until=dead, reports_until=dead)
    session.commit()
    raised = []
    for tick in minutes(start + timedelta(minutes=1), 29):
        raised += hs.check_stations(session, tick)
        session.commit()
    assert [a.kind for a in raised] == [HomeAlertKind.STATION_SILENT]
    assert session.scalar(select(HomeAlert).where(HomeAlert.kind == HomeAlertKind.WANDER)) is None
    assert outbox.wait(10)
    mailbox.wait_for(2)
    (office,) = mailbox.to("office@example.org")
    assert office["Subject"] == "Home station silent: Walter Brown"
    assert "no wander alert can be raised" in text_of(office)
    assert mailbox.to("dispatch@example.org") == []  # not a search matter
    with pytest.raises(ConflictError):
        hs.search_from_alert(session, DISPATCHER, raised[0].id)
    # The station comes back and hears the bracelet: the notice clears.
    back = start + timedelta(minutes=40)
    store_reports(session, [_row(pulse_obj(back, 90_000)), _row(status_obj(back, 90_001))])
    hs.check_stations(session, back + timedelta(seconds=30))
    session.commit()
    assert hs.open_alerts(session, DISPATCHER) == []


def test_the_quiet_window_holds_the_alert_until_it_ends(session: Session, mailbox: Mailbox) -> None:
    n = 3
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    quiet_from, quiet_until = start + timedelta(minutes=5), start + timedelta(minutes=25)
    _, outbox = setup(session, mailbox, wander_after_min=n, quiet_from=f"{quiet_from:%H:%M}",
          quiet_until=f"{quiet_until:%H:%M}")  # fmt: skip
    left = start + timedelta(minutes=10)  # out of range inside the window (sleeping, say)
    simulate(session, start, start + timedelta(minutes=40), heard_until=left)
    session.commit()
    found = first_alert(session, minutes(start + timedelta(minutes=1), 39))
    assert found is not None
    tick, _ = found
    assert tick == quiet_until  # held through the window, raised as it ends
    assert outbox.wait(10)
    mailbox.wait_for(3)
    assert {str(m["Subject"]) for m in mailbox.messages} == {
        "Wander alert: Walter Brown may have left home"
    }


def test_heard_again_clears_and_no_consent_means_no_station(
    session: Session, mailbox: Mailbox
) -> None:
    client, _ = setup(session, mailbox, wander_after_min=3)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    away = start + timedelta(minutes=2)
    simulate(session, start, start + timedelta(minutes=12), heard_until=away)
    session.commit()
    assert first_alert(session, minutes(start + timedelta(minutes=1), 11)) is not None
    store_reports(session, [_row(pulse_obj(start + timedelta(minutes=12), 80_000))])
    hs.check_stations(session, start + timedelta(minutes=12, seconds=5))
    session.commit()
    assert hs.open_alerts(session, DISPATCHER) == []
    # Without consent: refused, nothing stored.
    other = enrol(session, STAFF, {**PUBLIC_FORM, "first_name": "Rose"}).id
    with pytest.raises(ConflictError, match="consent"):
        hs.set_home_station(session, STAFF, other, {"receiver_id": "HOME-0099",
                                                    "lat_deg": 42.0, "lon_deg": -71.0})  # fmt: skip
    assert hs.station_of(session, other) is None
    # Refused input: every problem by its field.
    with pytest.raises(RegistryInputError) as refused:
        hs.set_home_station(session, STAFF, client, {"receiver_id": "bad id!", "lat_deg": 95,
                                                     "lon_deg": 0, "wander_after_min": 0,
                                                     "quiet_from": "25:00"})  # fmt: skip
    assert set(refused.value.errors) == {"receiver_id", "lat_deg", "wander_after_min",
                                         "quiet_from"}  # fmt: skip
    # A searcher may not register one.
    with pytest.raises(ForbiddenError):
        hs.set_home_station(session, actor(Role.SEARCHER), client,
                            {"receiver_id": STATION, "lat_deg": 42.0,
                             "lon_deg": -71.0})  # fmt: skip


def test_a_station_logs_the_daily_test_and_low_battery_is_told_at_once(
    session: Session, mailbox: Mailbox
) -> None:
    _, outbox = setup(session, mailbox, wander_after_min=5)
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    pulses = [parse_report(pulse_obj(t + timedelta(seconds=i), 500 + i, rssi_dbm=-70.0 - i))
              for i in range(3)]  # fmt: skip
    assert all(isinstance(p, Pulse) for p in pulses)
    hs.heard(session, [p for p in pulses if isinstance(p, Pulse)])
    session.commit()
    (test,) = session.scalars(select(DailyTest))
    assert test.passed
    assert test.tested_by == f"home station {STATION}"
    assert test.rssi_dbm == -70.0
    first = pulses[0]
    assert isinstance(first, Pulse)
    assert first.status is not None
    assert test.status_byte == first.status.byte
    hs.heard(session, [p for p in pulses if isinstance(p, Pulse)])  # once a day
    session.commit()
    assert len(list(session.scalars(select(DailyTest)))) == 1
    assert mailbox.count() == 0
    # A car's roof station hears the low-battery bit: the notice goes out at once.
    low = parse_report(pulse_obj(t + timedelta(seconds=10), 9, receiver="CAR-3", low_battery=True))
    assert isinstance(low, Pulse)
    hs.heard(session, [low, low])
    session.commit()
    assert outbox.wait(10)
    mailbox.wait_for(2)
    (office,) = mailbox.to("office@example.org")
    assert office["Subject"] == "Battery low: Walter Brown's bracelet 3A7F"
    assert "CAR-3 heard it" in text_of(office)
    assert len(mailbox.to("ann.brown@example.org")) == 1
    assert len(list(session.scalars(select(DailyTest)))) == 1  # a car is not the home station
    # Every receiver hears the bit in every pulse: posts that keep coming queue nothing more.
    for k in range(20):
        again = parse_report(pulse_obj(t + timedelta(seconds=11 + k), 10 + k, receiver="CAR-3",
                                       low_battery=True))  # fmt: skip
        assert isinstance(again, Pulse)
        hs.heard(session, [again])
        session.commit()
    assert outbox.wait(10)
    assert mailbox.count() == 2


def test_the_default_minutes_come_from_measured_reception() -> None:
    day = 24 * 3600.0
    t0 = START.timestamp()

    def heard(gaps: list[float]) -> list[float]:
        """Hearings 5 s apart for a week but for ``gaps`` (seconds) each day, the first at
        10:00:05, the next at 15:00:05 and so on (5 s past the minute: the checks' phase)."""
        starts = [t0 + i * day + (10 + 5 * j) * 3600 + 5 for i in range(7)
                  for j in range(len(gaps))]  # fmt: skip
        times, t, k = [], t0, 0
        while t < t0 + 7 * day:
            times.append(t)
            if k < len(starts) and t >= starts[k]:
                t += gaps[k % len(gaps)]
                k += 1
            else:
                t += 5.0
        return times

    # Less than a day measured: the plain default.
    assert hs.default_wander_after_min([t0, t0 + 3600.0]) == hs.DEFAULT_WANDER_AFTER_MIN
    # Two doorway nulls of 5 min 30 s a day: checks on the minute see them at 4 minutes
    # (the check 4 min 55 s in), never at 5 (the gap ends 25 s past the limit, before a check).
    week = heard([330.0, 330.0])
    assert hs.alerts_in(week, 4) == 14
    assert hs.alerts_in(week, 5) == 0
    assert hs.default_wander_after_min(week) == 5
    # Outings (away 3 hours with the family) are not reception.
    assert hs.default_wander_after_min(heard([3 * 3600.0])) == hs.MIN_WANDER_AFTER_MIN
    # Reception so poor that every setting would cry wolf: the longest default.
    assert hs.default_wander_after_min(heard([1900.0] * 4)) == hs.MAX_DEFAULT_WANDER_AFTER_MIN
    # A gap wholly inside the quiet window raises nothing; one that outlasts it, at its end.
    night = hs.quiet_at(time(22, 0), time(7, 0), UTC)
    at_23 = START.replace(hour=23).timestamp()
    assert hs.alerts_in([at_23, at_23 + 3600.0], 3, night) == 0
    at_6 = START.replace(hour=6, minute=50).timestamp()
    assert hs.alerts_in([at_6, at_6 + 3600.0], 3, night) == 1
    assert hs.in_quiet_window(time(23, 30), time(22, 0), time(7, 0))
    assert hs.in_quiet_window(time(6, 59), time(22, 0), time(7, 0))
    assert not hs.in_quiet_window(time(7, 0), time(22, 0), time(7, 0))
    assert not hs.in_quiet_window(time(12, 0), None, None)


def test_the_cron_command_raises_a_silent_stations_notice_once(
    session: Session, mailbox: Mailbox, db_url: str
) -> None:
    setup(session, mailbox, wander_after_min=2)
    now = datetime.now(UTC).replace(microsecond=0)
    dead = now - timedelta(minutes=5)  # the station's last report five minutes ago
    simulate(session, dead - timedelta(minutes=3), dead, heard_until=dead)
    session.commit()
    env = {**os.environ, "SAFETYNET_DATABASE_URL": db_url, "SAFETYNET_TIME_ZONE": "UTC"}

    def home_check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "safetynet", "registry", "home-check"],
                              capture_output=True, text=True, env=env, timeout=120,
                              check=False)  # fmt: skip

    first = home_check()
    assert first.returncode == 0, first.stderr
    assert "raised station_silent alert" in first.stdout
    assert "Walter" not in first.stdout  # ids only: cron mails what it prints
    mailbox.wait_for(2)  # the program and the family, before the command ended
    assert {str(m["Subject"]) for m in mailbox.messages} == {"Home station silent: Walter Brown"}
    again = home_check()
    assert again.returncode == 0, again.stderr
    assert "no new home alert" in again.stdout
