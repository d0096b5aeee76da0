"""Home stations: a receiver at a client's home listening for their bracelet, the wander alert
when it stops hearing it, and what a station hearing the bracelet does on its own.

A home station is registered for a client who consented to home-station alerts (without the
consent nothing is stored, and a withdrawn consent silences the station's alerts at once).
:func:`check_station` compares, at a moment ``now``:

- the station's own last report (any kind: pulses, silences, its status): when it is older than
  the client's wander minutes, the station itself is silent — a *station silent* notice is
  raised, never a wander alert (a dead station says nothing of where the person is);
- the last time the station heard the client's bracelet: when it is older than the wander
  minutes while the station keeps reporting, a *wander alert* is raised, unless the moment
  falls in the quiet window the family set (the alert is then raised when the window ends, if
  the bracelet is still not heard).

An alert stays open until the bracelet (or the station) is heard again; one open alert of each
kind per client (the database's ``one_open_home_alert``). Raising one tells the program, the
people it names for searches and the family (:mod:`registry.notify`) once the transaction
commits. From a wander alert, :func:`search_from_alert` opens a search whose last known point is
the home and whose last-seen time is the moment the station last heard the bracelet.

The wander minutes are the client's setting; without one, the default is chosen from the
station's measured reception (:func:`default_wander_after_min`). The bracelet sends a frame
every second (spec/air-interface.md), so a gap of m minutes is 60·m frames missed in a row:
independent losses never make one (at 90 % loss per frame, 180 in a row happen with probability
0.9¹⁸⁰ ≈ 6·10⁻⁹); what makes gaps are correlated outages — a doorway null, the body between the
bracelet and the antenna, a bath. The default is the shortest whole number of minutes, from
:data:`MIN_WANDER_AFTER_MIN`, at which the station's own gaps of the last week would have raised
fewer than :data:`FALSE_ALERTS_PER_WEEK` alerts a week outside the quiet window (gaps longer
than :data:`OUTING_S` are outings, the person away with someone, not reception).
``bench/home_false_alerts.py`` measures what that gives over simulated weeks at home.

:func:`heard` is what the ingest calls with the pulses it stored: a home station hearing its
client's bracelet logs that day's daily test (by the station: heard, with the RSSI and the
status byte), and a low-battery status bit heard by any receiver raises a battery notice at
once, ahead of the calendar.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time as clock
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access import allowed
from registry.fields import FormCheck
from registry.models import (
    Bracelet,
    BraceletStatus,
    Client,
    DailyTest,
    HomeAlert,
    HomeAlertKind,
    HomeStation,
    NoticeSent,
    NoticeStatus,
    NotifyScope,
    NotifyTarget,
    Role,
    Search,
    SearchTeam,
    StoredReport,
)
from registry.notify import (
    Notice,
    Recipient,
    engine_of,
    family_addresses,
    local_day,
    notifier_of,
    targets,
    to_each,
    when,
    with_recipient,
)
from registry.service import (
    Actor,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    _audit,
    _now,
    _own,
    _require,
    as_utc,
    open_search,
    worn_bracelet,
)
from safetynet.reports import Pulse

log = logging.getLogger(__name__)

BRACELET_CADENCE_S = 1.0  # one frame a second (spec/air-interface.md)
DEFAULT_WANDER_AFTER_MIN = 10  # before a day of reception has been measured
MIN_WANDER_AFTER_MIN = 3  # 180 frames missed in a row
MAX_DEFAULT_WANDER_AFTER_MIN = 30  # a default never waits longer; the family may set up to 240
WANDER_AFTER_RANGE_MIN = (1, 240)
MEASURE_DAYS = 7  # reception is measured over the last week
MIN_MEASURED_S = 24 * 3600  # less than a day heard: the default stays DEFAULT_WANDER_AFTER_MIN
REMEASURE_EVERY = timedelta(hours=24)
OUTING_S = 2 * 3600.0  # a gap longer than this is the person away, not reception
FALSE_ALERTS_PER_WEEK = 0.5  # the default aims at fewer false alerts than this
WEEK_S = 7 * 24 * 3600.0
# A station's clock within this of the server's (its newest report's own time against its
# arrival: the link's delay included) is taken as it is; farther off, its times are corrected.
CLOCK_TRUSTED_S = 120.0
TESTED_BY_STATION = "home station {receiver_id}"
LOW_BATTERY = "battery-low"
# A low battery is heard in every pulse by every receiver: its notice is queued at most once per
# bracelet in this long by this process, and not at all once it reached them that day (a flood
# of the same notice would hold up a wander alert or "person found" in the notice queue).
LOW_BATTERY_REQUEUE_S = 900.0
_low_battery_queued: weakref.WeakKeyDictionary[Engine, dict[str, float]] = (
    weakref.WeakKeyDictionary()
)  # per database: notice and day -> when queued
_low_battery_lock = threading.Lock()


# --- the default from measured reception (pure) -------------------------------------------------
QuietAt = Callable[[float], bool]  # whether a moment (POSIX seconds) is in the quiet window


def gaps_s(times_s: Sequence[float]) -> list[float]:
    """The gaps between consecutive hearings, in seconds (``times_s`` in order)."""
    return [b - a for a, b in itertools.pairwise(times_s)]


def alerts_in(times_s: Sequence[float], minutes: int, quiet: QuietAt | None = None) -> int:
    """The wander alerts checks once a minute (on the minute) would raise over a station's
    hearings at ``times_s`` (POSIX seconds, in order) with ``minutes``: one for each gap that
    outlasts them at a check outside the quiet window; gaps longer than :data:`OUTING_S` are
    outings, not reception, and not counted."""
    limit_s = minutes * 60.0
    alerts = 0
    for a, b in itertools.pairwise(times_s):
        if b - a <= limit_s or b - a > OUTING_S:
            continue
        tick = (math.floor((a + limit_s) / 60.0) + 1) * 60.0  # the first check past the limit
        while tick < b:
            if quiet is None or not quiet(tick):
                alerts += 1
                break
            tick += 60.0
    return alerts


def default_wander_after_min(times_s: Sequence[float], quiet: QuietAt | None = None) -> int:
    """The wander minutes chosen from a station's measured hearings (POSIX seconds, in order):
    the shortest from :data:`MIN_WANDER_AFTER_MIN` whose alerts, outside the quiet window and
    scaled to a week, stay below :data:`FALSE_ALERTS_PER_WEEK`, at most
    :data:`MAX_DEFAULT_WANDER_AFTER_MIN`; with less than :data:`MIN_MEASURED_S` measured,
    :data:`DEFAULT_WANDER_AFTER_MIN`."""
    span_s = times_s[-1] - times_s[0] if len(times_s) > 1 else 0.0
    if span_s < MIN_MEASURED_S:
        return DEFAULT_WANDER_AFTER_MIN
    shortest_s = MIN_WANDER_AFTER_MIN * 60.0
    ends = [x for a, b in itertools.pairwise(times_s) if b - a > shortest_s for x in (a, b)]
    for minutes in range(MIN_WANDER_AFTER_MIN, MAX_DEFAULT_WANDER_AFTER_MIN + 1):
        # Only the long gaps matter: each as a pair of hearings of its own.
        alerts = sum(alerts_in(ends[i : i + 2], minutes, quiet) for i in range(0, len(ends), 2))
        if alerts * WEEK_S / span_s < FALSE_ALERTS_PER_WEEK:
            return minutes
    return MAX_DEFAULT_WANDER_AFTER_MIN


def quiet_at(quiet_from: time | None, quiet_until: time | None, zone: tzinfo | None) -> QuietAt:
    """The quiet window as a test of moments (POSIX seconds), on the agency's clock."""

    def test(t_s: float) -> bool:
        local = datetime.fromtimestamp(t_s, UTC).astimezone(zone).time()
        return in_quiet_window(local, quiet_from, quiet_until)

    return test


def in_quiet_window(local: time, quiet_from: time | None, quiet_until: time | None) -> bool:
    """Whether the local time of day ``local`` falls in the window (which may run past
    midnight: 22:00–07:00)."""
    if quiet_from is None or quiet_until is None or quiet_from == quiet_until:
        return False
    if quiet_from < quiet_until:
        return quiet_from <= local < quiet_until
    return local >= quiet_from or local < quiet_until


# --- registering a station ---------------------------------------------------------------------
def _client(session: Session, client_id: str) -> Client:
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    return client


def _time_of_day(check: FormCheck, data: dict[str, Any], field: str, name: str) -> time | None:
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            parsed = time.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None:
            return parsed.replace(second=0, microsecond=0)
    check.fail(field, f"{name} must be a time of day written hours:minutes, such as 22:00; "
                      f"“{value}” is not.")  # fmt: skip
    return None


def set_home_station(
    session: Session, actor: Actor, client_id: str, data: dict[str, Any]
) -> HomeStation:
    """Register (or change) the client's home station from ``data``: ``receiver_id``, the home's
    ``lat_deg`` and ``lon_deg``, and optionally ``wander_after_min`` (1–240; absent: the default
    from measured reception), ``quiet_from`` and ``quiet_until`` (hours:minutes, the agency's
    time). Program staff, admins and the client's family; refused without the client's consent
    to home-station alerts."""
    client = _client(session, client_id)
    _require(session, actor, "write", "program", client_id)
    if not client.consent_home_alerts:
        raise ConflictError(
            "There is no consent to home-station alerts in this record: record the client's or "
            "their guardian's consent on the record page first (nothing is stored without it)."
        )
    unknown = set(data) - {"receiver_id", "lat_deg", "lon_deg", "wander_after_min",
                           "quiet_from", "quiet_until"}  # fmt: skip
    check = FormCheck(data)
    for field in sorted(unknown):
        check.fail(field, f"A home station has no setting “{field}”.")
    receiver_id = check.text("receiver_id", required=True, max_len=64,
                             name="The home station's receiver ID")  # fmt: skip
    if receiver_id is not None and not all(c.isalnum() or c in "._-" for c in receiver_id):
        check.fail("receiver_id", "The home station's receiver ID is letters, digits, dots, "
                                  f"dashes and underscores, as its token has it; “{receiver_id}” "
                                  "is not.")  # fmt: skip
    lat, lon = data.get("lat_deg"), data.get("lon_deg")
    if (
        isinstance(lat, bool) or isinstance(lon, bool)
        or not isinstance(lat, int | float) or not isinstance(lon, int | float)
        or not (-90 <= lat <= 90 and -180 <= lon <= 180)
    ):  # fmt: skip
        check.fail("lat_deg", "The home's position must be a latitude within -90..90 and a "
                              f"longitude within -180..180, got {lat}, {lon}.")  # fmt: skip
    minutes = data.get("wander_after_min")
    low, high = WANDER_AFTER_RANGE_MIN
    if minutes is not None and (
        isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high
    ):
        check.fail("wander_after_min", f"The minutes unheard before an alert must be a whole "
                                       f"number from {low} to {high}; got {minutes}.")  # fmt: skip
    quiet_from = _time_of_day(check, data, "quiet_from", "The quiet window's start")
    quiet_until = _time_of_day(check, data, "quiet_until", "The quiet window's end")
    if (quiet_from is None) != (quiet_until is None) and not check.errors:
        check.fail("quiet_until", "A quiet window needs both its start and its end.")
    check.done()
    assert receiver_id is not None
    assert isinstance(lat, int | float)
    assert isinstance(lon, int | float)
    taken = session.scalar(select(HomeStation).where(
        HomeStation.receiver_id == receiver_id, HomeStation.client_id != client_id))  # fmt: skip
    if taken is not None:
        raise ConflictError(f"Receiver {receiver_id} is already another client's home station.")
    _check_own_receiver(session, actor, client, receiver_id)
    now = _now()
    station = session.scalar(select(HomeStation).where(HomeStation.client_id == client_id))
    if station is None:
        station = HomeStation(client_id=client_id, created_at=now)
        session.add(station)
    elif station.receiver_id != receiver_id:
        station.measured_after_min = station.measured_at = None  # another receiver: measure anew
    station.receiver_id, station.lat_deg, station.lon_deg = receiver_id, float(lat), float(lon)
    station.wander_after_min = minutes
    station.quiet_from, station.quiet_until = quiet_from, quiet_until
    station.updated_at = now
    try:
        session.flush()
    except IntegrityError as err:
        raise ConflictError(
            f"Receiver {receiver_id} was registered by someone else meanwhile; reload and try again"
        ) from err
    _audit(session, actor, "update", "home_station", station.id, sorted(data),
           f"home station of client {client_id}")  # fmt: skip
    return station


def _check_own_receiver(session: Session, actor: Actor, client: Client, receiver_id: str) -> None:
    """Refuse a receiver that belongs elsewhere: one on a search's team (a cruiser, a handheld,
    the fleet's) for anyone; for a family, also one that has heard other people's bracelets
    (the fleet's receivers hear every enrolled one; a home station only its client's). A
    station not yet registered that heard only this client's bracelet, or nothing, is theirs
    to register."""
    teams = session.scalars(select(SearchTeam.receiver_ids))
    if any(receiver_id in (ids or []) for ids in teams):
        raise ConflictError(
            f"Receiver {receiver_id} is one of the search teams' receivers: a home station needs "
            "a receiver of its own (its ID is the one its token was issued for)."
        )
    if actor.role is not Role.FAMILY:
        return
    own = worn_bracelet(session, client.id)
    others = select(StoredReport.id).where(
        StoredReport.receiver_id == receiver_id, StoredReport.kind == "pulse",
        StoredReport.bracelet_id.is_not(None))  # fmt: skip
    if own is not None:
        others = others.where(StoredReport.bracelet_id != _hex(own))
    if session.scalar(others.limit(1)) is not None:
        raise ConflictError(
            f"Receiver {receiver_id} has heard other people's bracelets: it is not this home's "
            "station. Check the ID on the station's label, or ask the program to register it."
        )


def station_of(session: Session, client_id: str) -> HomeStation | None:
    return session.scalar(select(HomeStation).where(HomeStation.client_id == client_id))


# --- checking a station ------------------------------------------------------------------------
def _hex(bracelet: Bracelet) -> str:
    return f"{bracelet.bracelet_id:04X}"


def _measure(session: Session, station: HomeStation, bracelet: Bracelet, now: datetime) -> int:
    """The default wander minutes from the last week's hearings (measured once a day)."""
    if (
        station.measured_at is not None and station.measured_after_min is not None
        and now - as_utc(station.measured_at) < REMEASURE_EVERY
    ):  # fmt: skip
        return station.measured_after_min
    since = now - timedelta(days=MEASURE_DAYS)
    times = [as_utc(t).timestamp() for t in session.scalars(
        select(StoredReport.t).where(
            StoredReport.receiver_id == station.receiver_id,
            StoredReport.bracelet_id == _hex(bracelet), StoredReport.kind == "pulse",
            StoredReport.t >= since, StoredReport.t <= now)
        .order_by(StoredReport.t))]  # fmt: skip
    quiet = quiet_at(station.quiet_from, station.quiet_until, notifier_of(session).zone)
    station.measured_after_min = default_wander_after_min(times, quiet)
    station.measured_at = now
    return station.measured_after_min


def wander_after_min(
    session: Session, station: HomeStation, bracelet: Bracelet | None, now: datetime
) -> int:
    """The client's setting, else the default from the station's measured reception."""
    if station.wander_after_min is not None:
        return station.wander_after_min
    if bracelet is None:
        return DEFAULT_WANDER_AFTER_MIN
    return _measure(session, station, bracelet, now)


def _open_alert(session: Session, client_id: str, kind: HomeAlertKind) -> HomeAlert | None:
    return session.scalar(select(HomeAlert).where(
        HomeAlert.client_id == client_id, HomeAlert.kind == kind,
        HomeAlert.cleared_at.is_(None)))  # fmt: skip


def _clear(session: Session, client_id: str, kind: HomeAlertKind, now: datetime) -> None:
    alert = _open_alert(session, client_id, kind)
    if alert is not None:
        alert.cleared_at = now
        log.info("home alert %s (%s) of client %s cleared", alert.id, kind.value, client_id)


@dataclass(frozen=True)
class StationState:
    """What one check of a station found: its last report and the bracelet's last hearing,
    the wander minutes in force, and the alert raised by this check (None: none new)."""

    last_report_at: datetime | None
    last_heard_at: datetime | None
    wander_after_min: int
    raised: HomeAlert | None


def _raise(session: Session, station: HomeStation, kind: HomeAlertKind, now: datetime,
           last: datetime | None) -> HomeAlert | None:  # fmt: skip
    """Raise the alert unless one is open; None when one is (or another check — cron's, or an
    ingest's — raised it meanwhile: the insert then does nothing, and neither check fails)."""
    if _open_alert(session, station.client_id, kind) is not None:
        return None
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    statement = (
        insert(HomeAlert)
        .values(client_id=station.client_id, receiver_id=station.receiver_id, kind=kind,
                raised_at=now, last_heard_at=last)
        .on_conflict_do_nothing(index_elements=["client_id", "kind"],
                                index_where=HomeAlert.cleared_at.is_(None))
        .returning(HomeAlert.id)
    )  # fmt: skip
    alert_id = session.scalar(statement)
    if alert_id is None:
        log.info("home alert (%s) for client %s raised by another check meanwhile", kind.value,
                 station.client_id)  # fmt: skip
        return None
    alert = session.get(HomeAlert, alert_id)
    assert alert is not None
    log.info("home alert %s (%s) raised for client %s", alert.id, kind.value, station.client_id)
    _notify(session, station, alert)
    return alert


def _last_times(
    session: Session, station: HomeStation, bracelet: Bracelet | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The station's last report of any kind, and its last hearing of the bracelet, by ``now``,
    both on the server's clock: the report's arrival, and the pulse's own time — corrected by
    how far the station's clock is off when that is more than :data:`CLOCK_TRUSTED_S` (the
    newest report's own time against its arrival), and never later than it arrived. A station
    whose clock runs an hour fast or slow neither raises an alert nor holds one back; one that
    sends a backlog after its link came back keeps the times it heard them."""
    newest = session.execute(
        select(StoredReport.t, StoredReport.received_at)
        .where(StoredReport.receiver_id == station.receiver_id, StoredReport.received_at <= now)
        .order_by(StoredReport.received_at.desc(), StoredReport.t.desc())
        .limit(1)
    ).first()  # fmt: skip
    if newest is None:
        return None, None
    newest_t, newest_arrival = newest
    last_report = as_utc(newest_arrival)
    offset = last_report - as_utc(newest_t)
    if bracelet is None:
        return last_report, None
    pulse = session.execute(
        select(StoredReport.t, StoredReport.received_at)
        .where(StoredReport.receiver_id == station.receiver_id,
               StoredReport.bracelet_id == _hex(bracelet), StoredReport.kind == "pulse",
               StoredReport.received_at <= now)
        .order_by(StoredReport.t.desc())
        .limit(1)
    ).first()  # fmt: skip
    if pulse is None:
        return last_report, None
    pulse_t, pulse_arrival = pulse
    heard = as_utc(pulse_t)
    if abs(offset.total_seconds()) > CLOCK_TRUSTED_S:
        heard += offset  # the station's clock is off: its time as the server's
    return last_report, min(heard, as_utc(pulse_arrival))


def read_home_station(
    session: Session, actor: Actor, client_id: str, now: datetime
) -> dict[str, Any] | None:
    """The client's home station as the API shows it (None: it has none): its settings, the
    minutes in force, when it last reported and last heard the bracelet."""
    _client(session, client_id)
    _require(session, actor, "read", "program", client_id)
    station = station_of(session, client_id)
    if station is None:
        return None
    bracelet = worn_bracelet(session, client_id)
    last_report, last_heard = _last_times(session, station, bracelet, now)
    return {
        "receiver_id": station.receiver_id, "lat_deg": station.lat_deg,
        "lon_deg": station.lon_deg, "wander_after_min": station.wander_after_min,
        "wander_after_min_in_force": wander_after_min(session, station, bracelet, now),
        "quiet_from": None if station.quiet_from is None else f"{station.quiet_from:%H:%M}",
        "quiet_until": None if station.quiet_until is None else f"{station.quiet_until:%H:%M}",
        "last_report_at": None if last_report is None else last_report.isoformat(),
        "last_heard_at": None if last_heard is None else last_heard.isoformat(),
    }  # fmt: skip


def check_station(session: Session, station: HomeStation, now: datetime) -> StationState:
    """Raise or clear the client's home alerts as things stand at ``now`` (see the module's
    docstring). The caller commits; notices go out then."""
    client = session.get(Client, station.client_id)
    bracelet = worn_bracelet(session, station.client_id)
    minutes = wander_after_min(session, station, bracelet, now)
    if client is None or client.deleted_at is not None or not client.consent_home_alerts:
        for kind in HomeAlertKind:
            _clear(session, station.client_id, kind, now)
        return StationState(None, None, minutes, None)
    limit = timedelta(minutes=minutes)
    last_report, last_heard = _last_times(session, station, bracelet, now)
    registered = as_utc(station.created_at)
    if now - (last_report or registered) > limit:
        raised = _raise(session, station, HomeAlertKind.STATION_SILENT, now, last_report)
        return StationState(last_report, last_heard, minutes, raised)
    _clear(session, station.client_id, HomeAlertKind.STATION_SILENT, now)
    if bracelet is None:
        return StationState(last_report, last_heard, minutes, None)
    if now - (last_heard or registered) <= limit:
        _clear(session, station.client_id, HomeAlertKind.WANDER, now)
        return StationState(last_report, last_heard, minutes, None)
    local = now.astimezone(notifier_of(session).zone).time()
    if in_quiet_window(local, station.quiet_from, station.quiet_until):
        return StationState(last_report, last_heard, minutes, None)
    raised = _raise(session, station, HomeAlertKind.WANDER, now, last_heard)
    return StationState(last_report, last_heard, minutes, raised)


def check_stations(
    session: Session, now: datetime, receiver_ids: Iterable[str] | None = None
) -> list[HomeAlert]:
    """Check every home station (or those of ``receiver_ids``); the alerts raised."""
    query = select(HomeStation)
    if receiver_ids is not None:
        query = query.where(HomeStation.receiver_id.in_(list(receiver_ids)))
    raised = []
    for station in session.scalars(query.order_by(HomeStation.receiver_id)).all():
        state = check_station(session, station, now)
        if state.raised is not None:
            raised.append(state.raised)
    return raised


# --- notices -----------------------------------------------------------------------------------
def _family(session: Session, client_id: str) -> list[Recipient]:
    account = session.scalar(
        select(NotifyTarget).where(NotifyTarget.scope == NotifyScope.FAMILY_MAIL)
    )
    if account is None:
        return []
    addresses = family_addresses(session, [client_id]).get(client_id, [])
    return [Recipient(f"family:{user_id}", f"family login {address}",
                      with_recipient(account.url, address))
            for user_id, address in addresses]  # fmt: skip


def _notify(session: Session, station: HomeStation, alert: HomeAlert) -> None:
    client = session.get(Client, station.client_id)
    name = "an enrolled client" if client is None else f"{client.first_name} {client.last_name}"
    zone = notifier_of(session).zone
    since = "it was set up" if alert.last_heard_at is None else when(alert.last_heard_at, zone)
    if alert.kind is HomeAlertKind.WANDER:
        bracelet = worn_bracelet(session, station.client_id)
        radio = "" if bracelet is None else (
            f" Bracelet {_hex(bracelet)}, channel {bracelet.channel}.")  # fmt: skip
        notice = Notice(
            f"wander:{alert.id}", f"Wander alert: {name} may have left home",
            f"The home station {station.receiver_id} keeps reporting but has not heard {name}'s "
            f"bracelet since {since}.{radio}\nCheck the home now. To search, open the alert in "
            "SafetyNet (Home alerts): one click starts a search from the home at the time last "
            f"heard. Alert {alert.id}.",
        )  # fmt: skip
        recipients = [*targets(session, NotifyScope.PROGRAM), *targets(session, NotifyScope.SEARCH)]
    else:
        notice = Notice(
            f"station-silent:{alert.id}", f"Home station silent: {name}",
            f"The home station {station.receiver_id} at {name}'s home has not reported since "
            f"{since}. Check that it is plugged in and online: until it reports again, no wander "
            f"alert can be raised for {name}.",
        )  # fmt: skip
        recipients = targets(session, NotifyScope.PROGRAM)
    recipients += _family(session, station.client_id)
    to_each(session, recipients, notice, local_day(alert.raised_at, zone))


# --- the alerts, read and acted on --------------------------------------------------------------
def alert_row(session: Session, alert: HomeAlert) -> dict[str, Any]:
    client = session.get(Client, alert.client_id)
    station = station_of(session, alert.client_id)
    return {
        "id": alert.id, "kind": alert.kind.value, "client_id": alert.client_id,
        "name": "" if client is None else f"{client.first_name} {client.last_name}",
        "receiver_id": alert.receiver_id, "raised_at": as_utc(alert.raised_at).isoformat(),
        "last_heard_at": None if alert.last_heard_at is None
        else as_utc(alert.last_heard_at).isoformat(),
        "cleared_at": None if alert.cleared_at is None else as_utc(alert.cleared_at).isoformat(),
        "search_id": alert.search_id,
        "home": None if station is None else {"lat_deg": station.lat_deg,
                                              "lon_deg": station.lon_deg},
    }  # fmt: skip


def open_alerts(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The open home alerts, wander alerts first, newest first (a family: its own clients')."""
    _require(session, actor, "read", "program")
    query = select(HomeAlert).where(HomeAlert.cleared_at.is_(None))
    rows = [alert_row(session, a) for a in session.scalars(query)
            if _own(session, actor, a.client_id)]  # fmt: skip
    rows.sort(key=lambda r: r["raised_at"], reverse=True)
    rows.sort(key=lambda r: r["kind"] != HomeAlertKind.WANDER.value)
    return rows


def search_from_alert(session: Session, actor: Actor, alert_id: str) -> Search:
    """Open a search from a wander alert: the home as the last known point, the moment the
    station last heard the bracelet as the time last seen (dispatchers and admins). An alert
    a search was opened from answers with that search."""
    if not allowed(actor.role, "write", "search"):
        raise ForbiddenError(f"a {actor.role.value} may not open searches (dispatchers do)")
    alert = session.get(HomeAlert, alert_id)
    if alert is None:
        raise NotFoundError(f"alert: no home alert {alert_id!r}")
    if alert.kind is not HomeAlertKind.WANDER:
        raise ConflictError(
            "A silent station says nothing of where the person is: call the home; open a "
            "search from the search page if they are missing."
        )
    if alert.search_id is not None:
        found = session.get(Search, alert.search_id)
        assert found is not None
        return found
    station = station_of(session, alert.client_id)
    if station is None:
        raise ConflictError("This client's home station was removed; open the search from the "
                            "search page with the last known point.")  # fmt: skip
    last_seen = as_utc(alert.last_heard_at or alert.raised_at)
    search = open_search(session, actor, alert.client_id, station.lat_deg, station.lon_deg,
                         last_seen)  # fmt: skip
    alert.search_id = search.id
    _audit(session, actor, "update", "home_alert", alert.id, ["search_id"],
           f"search {search.id} opened from the wander alert")  # fmt: skip
    return search


# --- what a station hearing the bracelet does ---------------------------------------------------
def heard(session: Session, pulses: Iterable[Pulse]) -> None:
    """What the ingest calls with the pulses it stored: a home station hearing its client's
    bracelet logs the day's daily test (once a day, by the station, with the RSSI and status
    byte); a low-battery bit heard by any receiver raises a battery notice at once."""
    zone = notifier_of(session).zone
    logged: set[tuple[str, str]] = set()
    warned: set[str] = set()
    worn: dict[str, Bracelet | None] = {}  # asked once per bracelet of the batch
    for pulse in pulses:
        if pulse.bracelet_id is None:
            continue
        if pulse.bracelet_id not in worn:
            worn[pulse.bracelet_id] = session.scalar(select(Bracelet).where(
                Bracelet.bracelet_id == int(pulse.bracelet_id, 16),
                Bracelet.status == BraceletStatus.ASSIGNED))  # fmt: skip
        bracelet = worn[pulse.bracelet_id]
        if bracelet is None or bracelet.client_id is None:
            continue
        if pulse.status is not None and pulse.status.low_battery and bracelet.id not in warned:
            warned.add(bracelet.id)
            _battery_low(session, bracelet, pulse, zone)
        if (bracelet.id, pulse.receiver_id) in logged:
            continue
        logged.add((bracelet.id, pulse.receiver_id))  # looked at once per batch
        station = station_of(session, bracelet.client_id)
        if station is None or station.receiver_id != pulse.receiver_id:
            continue
        client = session.get(Client, bracelet.client_id)
        if client is None or not client.consent_home_alerts:
            continue
        local = pulse.t.astimezone(zone)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        done = session.scalar(select(DailyTest.id).where(
            DailyTest.bracelet_pk == bracelet.id, DailyTest.passed.is_(True),
            DailyTest.tested_at >= day_start).limit(1))  # fmt: skip
        if done is not None:
            continue
        session.add(DailyTest(
            bracelet_pk=bracelet.id, tested_at=pulse.t, passed=True,
            tested_by=TESTED_BY_STATION.format(receiver_id=pulse.receiver_id),
            rssi_dbm=pulse.rssi_dbm,
            status_byte=None if pulse.status is None else pulse.status.byte))  # fmt: skip


def _battery_low(session: Session, bracelet: Bracelet, pulse: Pulse, zone: tzinfo | None) -> None:
    assert bracelet.client_id is not None
    key, day = f"{LOW_BATTERY}:{_hex(bracelet)}", local_day(pulse.t, zone)
    now_s = clock.monotonic()
    with _low_battery_lock:
        queued = _low_battery_queued.setdefault(engine_of(session), {})
        for old, at in list(queued.items()):
            if now_s - at >= LOW_BATTERY_REQUEUE_S:
                del queued[old]
        if f"{key}:{day}" in queued:
            return
        queued[f"{key}:{day}"] = now_s
    reached = session.scalar(select(NoticeSent.id).where(
        NoticeSent.notice_key == key, NoticeSent.day == day,
        NoticeSent.status != NoticeStatus.FAILED).limit(1))  # fmt: skip
    if reached is not None:
        return
    client = session.get(Client, bracelet.client_id)
    name = "an enrolled client" if client is None else f"{client.first_name} {client.last_name}"
    notice = Notice(
        f"{LOW_BATTERY}:{_hex(bracelet)}", f"Battery low: {name}'s bracelet {_hex(bracelet)}",
        f"{name}'s bracelet {_hex(bracelet)} reported a low battery (less than a tenth left) "
        f"when {pulse.receiver_id} heard it at {when(pulse.t, zone)}. Change the battery now, "
        "ahead of the calendar, and log the change on the record page.",
    )  # fmt: skip
    recipients = [*targets(session, NotifyScope.PROGRAM), *_family(session, bracelet.client_id)]
    to_each(session, recipients, notice, local_day(pulse.t, zone))
