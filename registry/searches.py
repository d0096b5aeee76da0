"""Searches: their teams, their append-only event log, their status, and their links to
missing-person reports — the queries the dispatcher's screen makes.

The event log is append-only: there is no function that edits or removes an event. A status
change, a team assignment and a link are each written to the log as well, so the log alone
tells the story of a search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from registry import search_notices, sightings
from registry.access import allowed
from registry.models import (
    Bracelet,
    BraceletStatus,
    Client,
    MissingPersonLink,
    Search,
    SearchEvent,
    SearchStatus,
    SearchTeam,
    User,
)
from registry.service import (
    Actor,
    ConflictError,
    NotFoundError,
    RegistryInputError,
    _audit,
    _now,
    _require,
    _text,
    as_utc,
    bracelet_warning,
    read_client,
    worn_bracelet,
)

EVENT_KINDS = ("report", "fix", "note", "assignment", "status", "link", "heard", "acknowledged")
# The alerts of the dispatcher's map a dispatcher acknowledges (once for everyone watching): the
# bracelet heard, the first fix, the person found, and a receiver that stopped reporting (its id
# and the time of its last report, seconds since 1970: a second silence is a new alert).
ALERT_KEY = re.compile(r"heard|first-fix|found|silent:[A-Za-z0-9._-]{1,64}:[0-9]{1,12}")
ALERT_TITLES = {"heard": "bracelet heard", "first-fix": "first fix", "found": "person found"}
NCIC_CATEGORIES = ("Disability", "Endangered", "Involuntary", "Juvenile", "Catastrophe Victim",
                   "Other")  # fmt: skip
# Which status may follow which: a search can be suspended and resumed, found or closed.
NEXT_STATUS = {
    SearchStatus.ACTIVE: {SearchStatus.FOUND, SearchStatus.SUSPENDED, SearchStatus.CLOSED},
    SearchStatus.SUSPENDED: {SearchStatus.ACTIVE, SearchStatus.CLOSED},
    SearchStatus.FOUND: {SearchStatus.CLOSED},
    SearchStatus.CLOSED: set(),
}


def get_search(session: Session, search_id: str) -> Search:
    search = session.get(Search, search_id)
    if search is None:
        raise NotFoundError(f"search_id: no search {search_id!r}")
    return search


def search_summary(search: Search) -> dict[str, Any]:
    return {
        "id": search.id, "client_id": search.client_id, "status": search.status.value,
        "version": search.version, "opened_at": as_utc(search.opened_at).isoformat(),
        "last_known": {"lat_deg": search.last_known_lat_deg, "lon_deg": search.last_known_lon_deg,
                       "at": as_utc(search.last_known_at).isoformat()},
        "clothing": search.clothing,
        "found": None if search.found_at is None else {
            "at": as_utc(search.found_at).isoformat(), "lat_deg": search.found_lat_deg,
            "lon_deg": search.found_lon_deg, "condition": search.found_condition},
    }  # fmt: skip


def list_searches(
    session: Session, actor: Actor, active_only: bool = False
) -> list[dict[str, Any]]:
    _require(session, actor, "read", "search")
    query = select(Search, Client.first_name, Client.last_name).join(Client)
    if active_only:
        query = query.where(Search.status == SearchStatus.ACTIVE)
    rows = []
    for search, first, last in session.execute(query.order_by(Search.opened_at.desc())):
        row = search_summary(search)
        row["client_name"] = f"{first} {last}"
        rows.append(row)
    return rows


def open_search_view(
    session: Session, actor: Actor, search_id: str, reason: str = ""
) -> dict[str, Any]:
    """The search with its client (clinical detail where the role allows, audited) and teams."""
    _require(session, actor, "read", "search")
    search = get_search(session, search_id)
    view = search_summary(search)
    view["client"] = read_client(session, actor, search.client_id,
                                 reason=reason or f"search {search_id}")  # fmt: skip
    client = session.get(Client, search.client_id)
    worn = worn_bracelet(session, search.client_id)
    view["bracelet"] = None if worn is None else {
        "bracelet_id": f"{worn.bracelet_id:04X}", "channel": worn.channel}  # fmt: skip
    # Whether the radio can be counted on now (the bracelet, its last daily test, its battery).
    warning = None if client is None else bracelet_warning(session, client)
    view["warnings"] = [] if warning is None else [warning]
    view["teams"] = [
        {"name": t.name, "receiver_ids": list(t.receiver_ids)}
        for t in session.scalars(select(SearchTeam).where(SearchTeam.search_id == search_id))
    ]
    view["missing_person_reports"] = [
        {"agency": m.agency, "report_number": m.report_number, "ncic_category": m.ncic_category,
         "entered_in_ncic": m.entered_in_ncic}
        for m in session.scalars(select(MissingPersonLink)
                                 .where(MissingPersonLink.search_id == search_id))
    ]  # fmt: skip
    return view


def add_event(
    session: Session, actor: Actor | None, search_id: str, kind: str, body: dict[str, Any],
    at: datetime | None = None,
) -> SearchEvent:  # fmt: skip
    """Append one event to a search's log (``actor`` None: the system, e.g. ingest)."""
    if actor is not None:
        _require(session, actor, "write", "search")
    if kind not in EVENT_KINDS:
        raise RegistryInputError(f"kind: one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    if not isinstance(body, dict):
        raise RegistryInputError("body: must be an object")
    event = SearchEvent(search_id=search_id, at=at or _now(), kind=kind, body=body,
                        user_id=None if actor is None else actor.user_id)  # fmt: skip
    session.add(event)
    session.flush()
    return event


def add_note(session: Session, actor: Actor, search_id: str, text: str) -> SearchEvent:
    get_search(session, search_id)
    note = _text({"text": text}, "text", required=True, max_len=4000)
    return add_event(session, actor, search_id, "note", {"text": note})


def acknowledged_alerts(session: Session, actor: Actor, search_id: str) -> list[dict[str, Any]]:
    """The acknowledgements of a search's alerts, oldest first: each event's body holds the
    alert's ``key``, who acknowledged it (``by``) and the log's ``text``."""
    get_search(session, search_id)
    return recent_events(session, actor, search_id, 10_000, kinds=("acknowledged",))


def acknowledge_alert(
    session: Session, actor: Actor, search_id: str, key: str
) -> tuple[dict[str, Any], bool]:
    """Record in the search's log that ``actor`` acknowledged the alert ``key`` (see
    :data:`ALERT_KEY`), e.g. "Alert acknowledged: first fix, by Dana". An alert is acknowledged
    once: a second acknowledgement returns the first. Returns the event and whether it is new."""
    _require(session, actor, "write", "search")
    if not isinstance(key, str) or not ALERT_KEY.fullmatch(key):
        raise RegistryInputError(
            "key: heard, first-fix, found or silent:<receiver id>:<seconds since 1970>, "
            f"got {key!r}"
        )
    for done in acknowledged_alerts(session, actor, search_id):
        if done["body"].get("key") == key:
            return done, False
    user = session.get(User, actor.user_id)
    by = user.display_name if user is not None else actor.user_id
    silent = key.startswith("silent:")
    title = f"{key.split(':')[1]} stopped reporting" if silent else ALERT_TITLES[key]
    body = {"key": key, "by": by, "text": f"Alert acknowledged: {title}, by {by}"}
    event = add_event(session, actor, search_id, "acknowledged", body)
    out = {"id": event.id, "at": as_utc(event.at).isoformat(), "kind": event.kind,
           "body": event.body, "user_id": event.user_id}  # fmt: skip
    return out, True


def recent_events(
    session: Session, actor: Actor, search_id: str, limit: int = 500, kinds: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The newest ``limit`` events of a search, oldest first (the timeline's page)."""
    _require(session, actor, "read", "search")
    if not 1 <= limit <= 10_000:
        raise RegistryInputError(f"limit: must be within 1..10000, got {limit}")
    query = select(SearchEvent).where(SearchEvent.search_id == search_id)
    if kinds:
        query = query.where(SearchEvent.kind.in_(kinds))
    rows = session.scalars(query.order_by(SearchEvent.at.desc(), SearchEvent.id.desc())
                           .limit(limit)).all()  # fmt: skip
    return [{"id": e.id, "at": as_utc(e.at).isoformat(), "kind": e.kind, "body": e.body,
             "user_id": e.user_id} for e in reversed(rows)]  # fmt: skip


def assign_team(
    session: Session, actor: Actor, search_id: str, name: str, receiver_ids: list[str]
) -> None:
    """Add a team to a search (or change its receivers), logged as an assignment."""
    _require(session, actor, "write", "search")
    search = get_search(session, search_id)
    if search.status is not SearchStatus.ACTIVE:
        raise ConflictError(f"search {search_id} is {search.status.value}, not active")
    team_name = _text({"name": name}, "name", required=True, max_len=100)
    if not isinstance(receiver_ids, list) or not all(
        isinstance(r, str) and 0 < len(r) <= 64 for r in receiver_ids
    ):
        raise RegistryInputError("receiver_ids: must be a list of receiver ids (1-64 characters)")
    team = session.scalar(
        select(SearchTeam).where(SearchTeam.search_id == search_id, SearchTeam.name == team_name)
    )
    if team is None:
        session.add(SearchTeam(search_id=search_id, name=team_name, receiver_ids=receiver_ids))
    else:
        team.receiver_ids = list(receiver_ids)
    add_event(session, actor, search_id, "assignment",
              {"team": team_name, "receiver_ids": receiver_ids})  # fmt: skip


def set_status(
    session: Session, actor: Actor, search_id: str, status: str, expected_version: int,
    found: dict[str, Any] | None = None,
) -> Search:  # fmt: skip
    """Move a search to ``status`` (found needs where and in what condition)."""
    _require(session, actor, "write", "search")
    search = get_search(session, search_id)
    if search.version != expected_version:
        raise ConflictError(
            f"search {search_id} was changed by someone else (you acted on version "
            f"{expected_version}, it is now version {search.version}, {search.status.value}); "
            "reload it"
        )
    try:
        new = SearchStatus(status)
    except ValueError:
        raise RegistryInputError(
            f"status: one of {[s.value for s in SearchStatus]}, got {status!r}"
        ) from None
    if new not in NEXT_STATUS[search.status]:
        raise ConflictError(f"a {search.status.value} search cannot become {new.value}")
    now = _now()
    if new is SearchStatus.FOUND:
        found = found or {}
        lat, lon = found.get("lat_deg"), found.get("lon_deg")
        if (
            not isinstance(lat, int | float)
            or not isinstance(lon, int | float)
            or not (-90 <= lat <= 90 and -180 <= lon <= 180)
        ):
            raise RegistryInputError("found: lat_deg -90..90 and lon_deg -180..180 are required")
        search.found_at, search.found_lat_deg, search.found_lon_deg = now, float(lat), float(lon)
        search.found_condition = _text(found, "condition", required=True, max_len=2000)
    if new is SearchStatus.CLOSED:
        search.closed_at = now
    old = search.status
    search.status, search.updated_at = new, now
    client_id = search.client_id  # read now: after a rollback the object is expired
    try:
        session.flush()
    except StaleDataError:  # another dispatcher saved it between our read and this write
        session.rollback()
        raise ConflictError(
            f"search {search_id} was changed by someone else while you were saving; reload it"
        ) from None
    except IntegrityError as err:  # resuming while another search of the client is active
        session.rollback()
        raise ConflictError(f"client {client_id} already has an active search") from err
    change: dict[str, Any] = {"from": old.value, "to": new.value}
    if found:
        change["found"] = found
    add_event(session, actor, search_id, "status", change)
    _audit(session, actor, "update", "search", search_id, ["status"], f"{old.value}->{new.value}")
    if new is SearchStatus.FOUND:
        search_notices.search_found(session, search)  # sent once this commits
    return search


def link_missing_person(
    session: Session, actor: Actor, search_id: str, data: dict[str, Any]
) -> str:
    """Link a search to the agency's missing-person report; returns the link's id."""
    _require(session, actor, "write", "search")
    get_search(session, search_id)
    category = data.get("ncic_category")
    if category not in NCIC_CATEGORIES:
        raise RegistryInputError(
            f"ncic_category: one of {', '.join(NCIC_CATEGORIES)}, got {category!r}"
        )
    entered = data.get("entered_in_ncic", False)
    if not isinstance(entered, bool):
        raise RegistryInputError(f"entered_in_ncic: must be true or false, got {entered!r}")
    link = MissingPersonLink(search_id=search_id, agency=_text(data, "agency", required=True),
                             report_number=_text(data, "report_number", required=True,
                                                 max_len=100),
                             ncic_category=category, entered_in_ncic=entered)  # fmt: skip
    session.add(link)
    session.flush()
    add_event(session, actor, search_id, "link",
              {"missing_person_report": link.report_number, "agency": link.agency})  # fmt: skip
    return link.id


def can_read_clinical(actor: Actor) -> bool:
    return allowed(actor.role, "read", "clinical")


def set_team_members(
    session: Session, actor: Actor, search_id: str, team_name: str, usernames: list[str]
) -> None:
    """Name the searchers on a team of a search (by username; a searcher on a team of an active
    search may send manual bearings). The team must exist (:func:`assign_team`)."""
    _require(session, actor, "write", "search")
    members = []
    for name in usernames:
        user_id = session.scalar(select(User.id).where(User.username == name))
        if user_id is None:
            raise RegistryInputError(f"members: no user {name!r}")
        members.append(user_id)
    team = session.scalar(
        select(SearchTeam).where(
            SearchTeam.search_id == search_id, SearchTeam.name == team_name.strip()
        )
    )
    if team is None:
        raise NotFoundError(f"team: search {search_id} has no team {team_name!r}")
    team.member_user_ids = members


def team_roster(session: Session, actor: Actor, search_id: str) -> list[dict[str, Any]]:
    """The search's teams by name: each one's ``name``, ``receiver_ids`` and ``members`` (the
    usernames of the searchers on it)."""
    _require(session, actor, "read", "search")
    get_search(session, search_id)
    teams = session.scalars(
        select(SearchTeam).where(SearchTeam.search_id == search_id).order_by(SearchTeam.name)
    ).all()
    ids = {user_id for team in teams for user_id in team.member_user_ids}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
    return [
        {"name": team.name, "receiver_ids": list(team.receiver_ids),
         "members": [names[u] for u in team.member_user_ids if u in names]}
        for team in teams
    ]  # fmt: skip


def on_active_team(session: Session, user_id: str | None) -> bool:
    """Whether the user is on a team of an active search."""
    teams = session.scalars(
        select(SearchTeam.member_user_ids).join(Search).where(Search.status == SearchStatus.ACTIVE)
    )
    return any(user_id in members for members in teams)


# --- what the live map of a search starts from ---------------------------------------------------
SEARCH_CATEGORIES = ("dementia", "autism")  # the lost-person statistics a map can start from
_AUTISM = re.compile(r"autis|\bASD\b", re.IGNORECASE)


def category_of(diagnoses: str | None) -> str:
    """The lost-person category a search's map starts from: "autism" when the client's recorded
    diagnoses name autism (or an autism spectrum disorder), else "dementia" (the program's most
    common). Read for the map only; nothing clinical is shown by it."""
    return "autism" if _AUTISM.search(diagnoses or "") else "dementia"


@dataclass(frozen=True)
class LiveSetup:
    """What an active search's live state is built from (times aware UTC)."""

    search_id: str
    bracelet_id: str | None  # the client's assigned bracelet, four hex digits as on the air
    channel: int | None
    last_known_lat_deg: float
    last_known_lon_deg: float
    last_known_at: datetime
    opened_at: datetime
    category: str  # one of SEARCH_CATEGORIES
    teams: dict[str, str]  # receiver_id -> team name
    # the fleet's last sighting with a position since the person was last seen (the map's
    # prior evidence; registry.sightings), or None
    sighting: LastSighting | None = None


@dataclass(frozen=True)
class LastSighting:
    """Where and when one of the fleet's receivers last heard the bracelet, and how strongly."""

    receiver_id: str
    lat_deg: float
    lon_deg: float
    t: datetime
    rssi_dbm: float


def live_setup(session: Session, search_id: str) -> LiveSetup | None:
    """The setup of the active search ``search_id`` (None: no such search, or not active).

    The server's own read for the live map, made for whoever watches; the routes check the
    watcher's role first."""
    search = session.get(Search, search_id)
    if search is None or search.status is not SearchStatus.ACTIVE:
        return None
    bracelet = session.scalar(
        select(Bracelet).where(
            Bracelet.client_id == search.client_id, Bracelet.status == BraceletStatus.ASSIGNED
        )
    )
    client = session.get(Client, search.client_id)
    teams: dict[str, str] = {}
    for team in session.scalars(select(SearchTeam).where(SearchTeam.search_id == search.id)):
        for receiver_id in team.receiver_ids:
            teams[receiver_id] = team.name
    seen = sightings.last_sighting(session, search.client_id, as_utc(search.last_known_at))
    last = None
    if seen is not None and seen.lat_deg is not None and seen.lon_deg is not None:
        last = LastSighting(seen.receiver_id, seen.lat_deg, seen.lon_deg, as_utc(seen.t),
                            seen.rssi_dbm)  # fmt: skip
    return LiveSetup(
        sighting=last,
        search_id=search.id,
        bracelet_id=None if bracelet is None else f"{bracelet.bracelet_id:04X}",
        channel=None if bracelet is None else bracelet.channel,
        last_known_lat_deg=search.last_known_lat_deg,
        last_known_lon_deg=search.last_known_lon_deg,
        last_known_at=as_utc(search.last_known_at),
        opened_at=as_utc(search.opened_at),
        category=category_of(None if client is None else client.diagnoses),
        teams=teams,
    )


def active_search_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Search.id).where(Search.status == SearchStatus.ACTIVE)))
