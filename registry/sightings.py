"""Fleet sightings: an enrolled bracelet heard by one of the fleet's receivers — a cruiser's roof
station, a fire station, a fixed roof site, listening all shift — while no search is open for its
wearer.

A sighting is kept only with the client's consent to fleet sightings, and sealed:

- **stored** by :func:`record` (what the ingest calls with the pulses it stored) for a decoded
  bracelet worn by a consenting client, heard by a receiver other than the client's home
  station, while no search is open for the client (an open search hears it live);
- **read by no one** while no search is open for the client: :func:`sightings_of_client`
  refuses every role;
- **shown when a search opens**, to dispatchers, clinicians and admins only, with a reason
  written to the audit log (:func:`sightings_for_search`): "last heard by CAR-3 at 14:32,
  1.2 km north-east of home";
- **erased** after :data:`RETENTION` (72 hours) by :func:`purge` (``safetynet registry
  home-check``, run every minute from cron, calls it), together with the stored report it was
  made from, unless that report belongs to a search of the client (its receiver on one of the
  search's teams).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from registry.access import may
from registry.fields import RegistryInputError
from registry.models import (
    Bracelet,
    BraceletStatus,
    Client,
    FleetSighting,
    HomeStation,
    Search,
    SearchStatus,
    SearchTeam,
    StoredReport,
)
from registry.service import Actor, ForbiddenError, NotFoundError, _audit, _now, as_utc
from safetynet.angles import compass_word
from safetynet.geodesy import inverse
from safetynet.reports import Pulse

log = logging.getLogger(__name__)

RETENTION = timedelta(hours=72)
SEALED = (
    "Fleet sightings are sealed: no one may read them while no search is open for this client. "
    "They are shown, with an audit entry, to dispatchers, clinicians and admins once a search "
    "opens."
)


def distance_words(distance_m: float) -> str:
    return f"{distance_m / 1000:.1f} km" if distance_m >= 1000 else f"{distance_m:.0f} m"


def _active_search(session: Session, client_id: str) -> Search | None:
    return session.scalar(select(Search).where(
        Search.client_id == client_id, Search.status == SearchStatus.ACTIVE))  # fmt: skip


def record(session: Session, pulses: Iterable[Pulse], now: datetime | None = None) -> int:
    """Store the sightings among ``pulses`` (see the module's docstring); how many."""
    now = now or _now()
    wearers: dict[str, tuple[str, str | None] | None] = {}  # bracelet → (client, home receiver)
    stored = 0
    for pulse in pulses:
        if pulse.bracelet_id is None or pulse.t < now - RETENTION:
            continue
        if pulse.bracelet_id not in wearers:
            wearers[pulse.bracelet_id] = _consenting_wearer(session, pulse.bracelet_id)
        wearer = wearers[pulse.bracelet_id]
        if wearer is None or wearer[1] == pulse.receiver_id:
            continue
        session.add(FleetSighting(client_id=wearer[0], receiver_id=pulse.receiver_id,
                                  seq=pulse.seq, t=pulse.t, lat_deg=pulse.lat_deg,
                                  lon_deg=pulse.lon_deg, rssi_dbm=pulse.rssi_dbm))  # fmt: skip
        stored += 1
    if stored:
        session.flush()
    return stored


def _consenting_wearer(session: Session, bracelet_hex: str) -> tuple[str, str | None] | None:
    """The client wearing the bracelet and their home station's receiver, when the client
    consented to fleet sightings and no search is open for them (else None: nothing kept)."""
    bracelet = session.scalar(select(Bracelet).where(
        Bracelet.bracelet_id == int(bracelet_hex, 16),
        Bracelet.status == BraceletStatus.ASSIGNED))  # fmt: skip
    if bracelet is None or bracelet.client_id is None:
        return None
    client = session.get(Client, bracelet.client_id)
    if client is None or client.deleted_at is not None or not client.consent_fleet_sightings:
        return None
    if _active_search(session, client.id) is not None:
        return None
    home = session.scalar(select(HomeStation.receiver_id).where(
        HomeStation.client_id == client.id))  # fmt: skip
    return client.id, home


def sightings_of_client(session: Session, actor: Actor, client_id: str, reason: str
                        ) -> list[dict[str, Any]]:  # fmt: skip
    """The client's sightings, only through the client's open search (refused to every role
    while none is open)."""
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    search = _active_search(session, client_id)
    if search is None:
        raise ForbiddenError(SEALED)
    return sightings_for_search(session, actor, search.id, reason)


def sightings_for_search(session: Session, actor: Actor, search_id: str, reason: str,
                         now: datetime | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The fleet's sightings of the search's client within the retention period, the last
    first, each with where it was from the home (or the last known point) in words; for
    dispatchers, clinicians and admins while the search is open, audited with ``reason``."""
    if not may(actor.role, "fleet_sightings"):
        raise ForbiddenError(
            f"a {actor.role.value} may not read fleet sightings (dispatchers, clinicians and "
            "admins do, while a search is open)"
        )
    search = session.get(Search, search_id)
    if search is None:
        raise NotFoundError(f"search_id: no search {search_id!r}")
    if search.status is not SearchStatus.ACTIVE:
        raise ForbiddenError(SEALED)
    if not reason.strip():
        raise RegistryInputError.of(
            {"reason": "Reading fleet sightings needs a reason: it is written to the audit log."}
        )
    now = now or _now()
    home = session.scalar(select(HomeStation).where(HomeStation.client_id == search.client_id))
    if home is not None:
        origin, origin_name = (home.lat_deg, home.lon_deg), "home"
    else:
        origin = (search.last_known_lat_deg, search.last_known_lon_deg)
        origin_name = "the last known point"
    rows = session.scalars(
        select(FleetSighting)
        .where(FleetSighting.client_id == search.client_id,
               FleetSighting.t >= now - RETENTION)
        .order_by(FleetSighting.t.desc())
    )  # fmt: skip
    out = []
    for r in rows:
        heard_at = as_utc(r.t)
        row: dict[str, Any] = {"receiver_id": r.receiver_id, "t": heard_at.isoformat(),
                               "lat_deg": r.lat_deg, "lon_deg": r.lon_deg,
                               "rssi_dbm": r.rssi_dbm}  # fmt: skip
        where = "its position not known"
        if r.lat_deg is not None and r.lon_deg is not None:
            leg = inverse(origin[0], origin[1], r.lat_deg, r.lon_deg)
            row["from_origin_m"], row["from_origin_bearing_deg"] = leg.distance_m, leg.azimuth1_deg
            where = f"{distance_words(leg.distance_m)} {compass_word(leg.azimuth1_deg)} of " + (
                origin_name
            )
        row["origin"] = origin_name
        row["text"] = f"heard by {r.receiver_id} at {heard_at:%H:%M} UTC, {where}"
        out.append(row)
    _audit(session, actor, "read", "fleet_sighting", search.client_id, ["*"],
           f"{reason.strip()} (search {search.id})")  # fmt: skip
    return out


def last_sighting(session: Session, client_id: str, since: datetime) -> FleetSighting | None:
    """The client's newest sighting with a position since ``since`` (the map's prior evidence:
    the caller holds an open search)."""
    return session.scalar(
        select(FleetSighting)
        .where(FleetSighting.client_id == client_id, FleetSighting.t >= since,
               FleetSighting.lat_deg.is_not(None))
        .order_by(FleetSighting.t.desc())
        .limit(1)
    )  # fmt: skip


def purge(session: Session, now: datetime | None = None, retention: timedelta = RETENTION) -> int:
    """Erase the sightings older than ``retention`` and the stored reports they were made from
    (a report of a receiver on a team of the client's searches stays: it is the search's);
    how many sightings were erased. The caller commits."""
    cutoff = (now or _now()) - retention
    old = list(session.scalars(select(FleetSighting).where(FleetSighting.t < cutoff)))
    if not old:
        return 0
    on_teams: dict[str, set[str]] = {}
    for s in old:
        if s.client_id not in on_teams:
            teams = session.scalars(
                select(SearchTeam.receiver_ids)
                .join(Search, Search.id == SearchTeam.search_id)
                .where(Search.client_id == s.client_id)
            )
            on_teams[s.client_id] = {r for ids in teams for r in ids}
        if s.receiver_id not in on_teams[s.client_id]:
            session.execute(delete(StoredReport).where(
                StoredReport.receiver_id == s.receiver_id, StoredReport.seq == s.seq))  # fmt: skip
    session.execute(delete(FleetSighting).where(FleetSighting.t < cutoff))
    log.info("%d fleet sighting(s) older than %s erased", len(old), retention)
    return len(old)
