"""The registry's service layer: what the server and the command line call.

Every function takes the acting user (``Actor``) and a session; it checks the permission matrix
(:mod:`registry.access`), validates input (``RegistryInputError`` names the field, the value and
what is valid, and nothing is written), and writes the audit log for every read of clinical or
co-response detail (who, when, why — a reason is required) and for every change.

A record's fields are checked by :mod:`registry.fields` (every problem at once, in a family's
words, keyed by the field); a new record with the name and date of birth of one already enrolled
is held back as a :class:`PossibleDuplicateError` until the person enrolling confirms it is
someone else. A search opened for a client without a bracelet that passed its daily test carries
a plain warning (:func:`search_warnings`), written into the search's log as well.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry import search_notices
from registry.access import Kind, allowed
from registry.fields import (
    CONSENT_FIELDS,
    DEFAULT_PHONE_REGION,
    MAX_LENGTHS,
    FormCheck,
    caregivers,
    display_phone,
    places,
)
from registry.fields import MAX_PHOTO_BYTES as MAX_PHOTO_BYTES  # noqa: PLC0414
from registry.fields import PHOTO_TYPES as PHOTO_TYPES  # noqa: PLC0414
from registry.fields import RegistryInputError as RegistryInputError  # noqa: PLC0414
from registry.fields import check_photo as check_photo  # noqa: PLC0414
from registry.models import (
    CLINICAL_FIELDS,
    AuditEntry,
    BatteryChange,
    Bracelet,
    BraceletStatus,
    Caregiver,
    Client,
    DailyTest,
    FamilyLink,
    Place,
    PlaceKind,
    Role,
    Search,
    SearchEvent,
    SearchStatus,
    User,
)

# The tree's errors the registry raises, re-exported (``X as X``): callers may name them here.
from safetynet.errors import ConflictError as ConflictError  # noqa: PLC0414
from safetynet.errors import ForbiddenError as ForbiddenError  # noqa: PLC0414
from safetynet.errors import NotFoundError as NotFoundError  # noqa: PLC0414

PUBLIC_FIELDS = (
    "first_name", "last_name", "nickname", "date_of_birth", "height_cm", "build", "hair", "eyes",
    "glasses", "scars_marks", "description", "usual_clothing", "language", "verbal",
    "useful_phrases", *CONSENT_FIELDS,
)  # fmt: skip
_TEXT_FIELDS = tuple(f for f in (*PUBLIC_FIELDS, *CLINICAL_FIELDS) if f in MAX_LENGTHS)
TESTED_WITHIN = timedelta(hours=24)  # a bracelet is known to work if it passed a test this recently


class PossibleDuplicateError(ConflictError):
    """A client with the same name and date of birth is already enrolled; ``matches`` holds the
    ids of those the acting user may open (a family: only its own)."""

    def __init__(self, message: str, matches: list[str]) -> None:
        super().__init__(message)
        self.matches = matches


@dataclass(frozen=True)
class Actor:
    user_id: str
    role: Role


def _now() -> datetime:
    return datetime.now(UTC)


def as_utc(t: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite gives it back naive)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _own(session: Session, actor: Actor, client_id: str) -> bool:
    if actor.role is not Role.FAMILY:
        return True
    link = session.scalar(
        select(FamilyLink).where(
            FamilyLink.user_id == actor.user_id, FamilyLink.client_id == client_id
        )
    )
    return link is not None


def _require(
    session: Session, actor: Actor, action: str, kind: Kind, client_id: str | None = None
) -> None:
    own = True if client_id is None else _own(session, actor, client_id)
    if not allowed(actor.role, action, kind, own):  # type: ignore[arg-type]
        raise ForbiddenError(f"a {actor.role.value} may not {action} {kind} data of this client")


def _audit(session: Session, actor: Actor, action: str, entity: str, entity_id: str,
           fields: list[str], reason: str) -> None:  # fmt: skip
    session.add(AuditEntry(at=_now(), user_id=actor.user_id, action=action, entity=entity,
                           entity_id=entity_id, fields=fields, reason=reason))  # fmt: skip


def _text(
    data: dict[str, Any], field: str, required: bool = False, max_len: int = 200
) -> str | None:
    """One text field checked alone (required: not empty; at most ``max_len`` characters)."""
    check = FormCheck(data)
    value = check.text(field, required=required, max_len=max_len)
    check.done()
    return value


def _date(data: dict[str, Any], field: str, required: bool = False) -> date | None:
    """One date field checked alone (year-month-day, not in the future)."""
    check = FormCheck(data)
    value = check.date(field, required=required)
    check.done()
    return value


def _record_fields(
    check: FormCheck, data: dict[str, Any], fields: tuple[str, ...]
) -> dict[str, Any]:
    """The record's own fields present in ``data`` among ``fields``, each checked."""
    values: dict[str, Any] = {}
    for field in fields:
        if field in ("first_name", "last_name", "date_of_birth"):
            if field not in data:
                continue
            values[field] = (check.date(field, required=True) if field == "date_of_birth"
                             else check.text(field, required=True))  # fmt: skip
        elif field not in data:
            continue
        elif field in ("glasses", "verbal", "consent_home_alerts", "consent_fleet_sightings"):
            values[field] = check.flag(field, field == "verbal")
        elif field == "consent_given_by":
            values[field] = check.text(field, max_len=MAX_LENGTHS[field])
        elif field == "height_cm":
            values[field] = check.height_cm()
        else:
            values[field] = check.text(field)
    return values


def check_consent(check: FormCheck, values: dict[str, Any], current: Client | None = None) -> None:
    """Refuse a consent given by no one: ticking either consent needs who gave it (the client
    or their guardian); ``current`` is the record as stored, for a change of some fields only."""

    def now_(field: str) -> Any:
        return values[field] if field in values else getattr(current, field, None)

    given = now_("consent_home_alerts") or now_("consent_fleet_sightings")
    if given and not now_("consent_given_by"):
        check.fail("consent_given_by", "Say who gave the consent: the client, or their guardian "
                                       "by name.")  # fmt: skip


def consent_stamp(client: Client, before: tuple[bool, bool], now: datetime) -> None:
    """When a consent was given or withdrawn, record the moment (what was consented to, and
    when, is what the home station and the fleet check before storing anything)."""
    after = (bool(client.consent_home_alerts), bool(client.consent_fleet_sightings))
    if after != before:
        client.consent_recorded_at = now


def possible_duplicates(
    session: Session, first_name: str, last_name: str, date_of_birth: date,
    exclude_id: str | None = None,
) -> list[Client]:  # fmt: skip
    """Enrolled clients with this name and date of birth (names compared without case or the
    spaces around them)."""
    query = select(Client).where(
        func.lower(Client.first_name) == first_name.strip().lower(),
        func.lower(Client.last_name) == last_name.strip().lower(),
        Client.date_of_birth == date_of_birth,
        Client.deleted_at.is_(None),
    )
    if exclude_id is not None:
        query = query.where(Client.id != exclude_id)
    return list(session.scalars(query))


def _check_duplicates(session: Session, actor: Actor, first: str, last: str, born: date) -> None:
    found = possible_duplicates(session, first, last, born)
    if not found:
        return
    visible = [c.id for c in found if _own(session, actor, c.id)]
    where = (
        "you can open it from your list of clients" if visible
        else "it was enrolled by someone else; call the program to have it shared with you"
    )  # fmt: skip
    raise PossibleDuplicateError(
        f"{first} {last}, born {born.isoformat()}, is already enrolled ({where}). If this is a "
        "different person with the same name and date of birth, confirm it and enrol again.",
        visible,
    )


def enrol(
    session: Session, actor: Actor, data: dict[str, Any], *,
    phone_region: str = DEFAULT_PHONE_REGION, confirmed_not_duplicate: bool = False,
) -> Client:  # fmt: skip
    """Create a client from a dict (the enrollment form or a JSON file); returns it.

    Every field is checked before anything is written and every problem is reported at once
    (:class:`RegistryInputError` with ``errors`` by field); caregivers' phone numbers are read in
    ``phone_region`` when they carry no country code and stored in E.164. A client with the name
    and date of birth of one already enrolled raises :class:`PossibleDuplicateError` unless
    ``confirmed_not_duplicate``."""
    _require(session, actor, "write", "public")
    check = FormCheck(data)
    unknown = set(data) - set(PUBLIC_FIELDS) - set(CLINICAL_FIELDS) - {
        "caregivers", "places", "photo_base64"}  # fmt: skip
    for field in sorted(unknown):
        check.fail(field, f"The record has no field “{field}”.")
    values = _record_fields(check, {"first_name": None, "last_name": None,
                                    "date_of_birth": None, **data}, PUBLIC_FIELDS)  # fmt: skip
    check_consent(check, values)
    photo = check.photo_base64()
    clinical = {f: check.text(f) for f in CLINICAL_FIELDS if data.get(f) is not None}
    rows = caregivers(data.get("caregivers"), phone_region, check)
    spots = places(data.get("places"), check)
    check.done()
    if any(v is not None for v in clinical.values()):
        _require(session, actor, "write", "clinical")
    first, last, born = values["first_name"], values["last_name"], values["date_of_birth"]
    if not confirmed_not_duplicate:
        _check_duplicates(session, actor, first, last, born)
    now = _now()
    client = Client(**values, **{f: v for f, v in clinical.items() if v is not None},
                    created_at=now, updated_at=now)  # fmt: skip
    consent_stamp(client, (False, False), now)
    if photo is not None:
        client.photo, client.photo_type = photo
    client.caregivers.extend(Caregiver(**row) for row in rows)
    client.places.extend(Place(**{**spot, "kind": PlaceKind(spot["kind"])}) for spot in spots)
    session.add(client)
    session.flush()
    if actor.role is Role.FAMILY:
        session.add(FamilyLink(user_id=actor.user_id, client_id=client.id))
    _audit(session, actor, "create", "client", client.id, [], "enrollment")
    return client


def caregiver_rows(client: Client) -> list[dict[str, Any]]:
    """The client's caregivers by priority, each number stored (E.164) and as people dial it."""
    return [{"name": c.name, "relation": c.relation, "phone": c.phone,
             "phone_display": display_phone(c.phone), "available_24_7": c.available_24_7}
            for c in sorted(client.caregivers, key=lambda c: c.priority)]  # fmt: skip


def place_rows(client: Client) -> list[dict[str, Any]]:
    """The client's places: often visited, previous addresses, where found before."""
    return [{"kind": p.kind.value, "label": p.label, "lat_deg": p.lat_deg, "lon_deg": p.lon_deg,
             "notes": p.notes} for p in client.places]  # fmt: skip


def read_client(session: Session, actor: Actor, client_id: str, reason: str = "") -> dict[str, Any]:
    """The client as this actor may see it; clinical fields only where allowed, and audited."""
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    _require(session, actor, "read", "public", client_id)
    out: dict[str, Any] = {"id": client.id, "version": client.version}
    out.update({f: getattr(client, f) for f in PUBLIC_FIELDS})
    out["has_photo"] = client.photo is not None
    out["consent_recorded_at"] = (None if client.consent_recorded_at is None
                                  else as_utc(client.consent_recorded_at).isoformat())  # fmt: skip
    if allowed(actor.role, "read", "contacts", _own(session, actor, client_id)):
        out["caregivers"] = caregiver_rows(client)
        out["places"] = place_rows(client)
    if allowed(actor.role, "read", "clinical", _own(session, actor, client_id)):
        if not reason.strip():
            raise RegistryInputError(
                "reason: reading clinical detail needs a reason (it is audited)"
            )
        out.update({f: getattr(client, f) for f in CLINICAL_FIELDS})
        _audit(session, actor, "read", "client", client.id, list(CLINICAL_FIELDS), reason.strip())
    elif allowed(actor.role, "write", "clinical", _own(session, actor, client_id)):
        # Who writes health detail but may not read it back (a family) is told what is on file.
        out["clinical_on_file"] = [f for f in CLINICAL_FIELDS if getattr(client, f)]
    return out


def assign_bracelet(session: Session, actor: Actor, bracelet_id: int, channel: int, client_id: str,
                    installed_on: date, interval_days: int = 180) -> Bracelet:  # fmt: skip
    """A bracelet new out of its box, entered in the inventory and put on a client in one step
    (the demo's set-up); a bracelet already in stock is taken if its channel matches. The pages,
    the API and ``safetynet registry assign`` use :func:`registry.bracelets.assign_from_inventory`.
    """
    _require(session, actor, "write", "program", client_id)
    if actor.role is Role.FAMILY:
        raise ForbiddenError("a family may not assign bracelets (program staff and admins do)")
    if not 0 < bracelet_id < 0xFFFF:
        raise RegistryInputError.of({"bracelet_id": (
            f"Bracelet IDs run from 0001 to FFFE; got {bracelet_id:04X}.")})  # fmt: skip
    if not 1 <= channel <= 40:
        raise RegistryInputError.of({"channel": (
            f"The channel must be a whole number from 1 to 40; got {channel}.")})  # fmt: skip
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    existing = session.scalar(select(Bracelet).where(Bracelet.bracelet_id == bracelet_id))
    if existing is not None and existing.status is not BraceletStatus.STOCK:
        raise ConflictError(f"Bracelet {bracelet_id:04X} is {existing.status.value}, not in stock.")
    if existing is not None and existing.channel != channel:
        raise ConflictError(
            f"Bracelet {bracelet_id:04X} is on channel {existing.channel} in the inventory, "
            f"not {channel}."
        )
    current = worn_bracelet(session, client_id)
    if current is not None:
        raise ConflictError(
            f"{client.first_name} {client.last_name} already wears bracelet "
            f"{current.bracelet_id:04X}; swap it instead."
        )
    now = _now()
    bracelet = existing or Bracelet(bracelet_id=bracelet_id, channel=channel, created_at=now)
    bracelet.client_id, bracelet.status = client_id, BraceletStatus.ASSIGNED
    bracelet.battery_installed_on, bracelet.battery_interval_days = installed_on, interval_days
    bracelet.updated_at = now
    session.add(bracelet)
    try:
        session.flush()
    except IntegrityError as err:
        raise ConflictError(
            f"Bracelet {bracelet_id:04X} was changed by someone else meanwhile; reload it"
        ) from err
    _audit(session, actor, "update", "bracelet", bracelet.id, ["client_id"], "assignment")
    return bracelet


def worn_bracelet(session: Session, client_id: str) -> Bracelet | None:
    """The bracelet the client wears now, if any."""
    return session.scalar(select(Bracelet).where(
        Bracelet.client_id == client_id, Bracelet.status == BraceletStatus.ASSIGNED))  # fmt: skip


def bracelet_warning(session: Session, client: Client, now: datetime | None = None) -> str | None:
    """Why a search for ``client`` could not count on the bracelet, in plain words (None: it
    passed a daily test within the last 24 hours and its battery is not overdue)."""
    now = now or _now()
    name = f"{client.first_name} {client.last_name}"
    bracelet = worn_bracelet(session, client.id)
    if bracelet is None:
        return (
            f"{name} has no bracelet on record: the receivers have nothing to listen for. "
            "Search by sight with the photo and description, and call the caregivers."
        )
    which = f"{name}'s bracelet {bracelet.bracelet_id:04X} (channel {bracelet.channel})"
    last = session.execute(
        select(DailyTest.tested_at, DailyTest.passed)
        .where(DailyTest.bracelet_pk == bracelet.id)
        .order_by(DailyTest.tested_at.desc())
        .limit(1)
    ).first()
    passed = session.scalar(select(func.max(DailyTest.tested_at)).where(
        DailyTest.bracelet_pk == bracelet.id, DailyTest.passed.is_(true())))  # fmt: skip
    listen = "it may not be transmitting. Listen for it, and search by sight as well."
    if last is not None and not last.passed:
        at = as_utc(last.tested_at).strftime("%Y-%m-%d %H:%M UTC")
        return f"{which} failed its last daily test ({at}): {listen}"
    if passed is None:
        return f"{which} has never passed a daily test: {listen}"
    if now - as_utc(passed) > TESTED_WITHIN:
        at = as_utc(passed).strftime("%Y-%m-%d %H:%M UTC")
        return f"{which} has not passed a daily test since {at}: {listen}"
    if bracelet.battery_installed_on is not None:
        due = bracelet.battery_installed_on + timedelta(days=bracelet.battery_interval_days)
        if due < now.date():
            return f"{which}: its battery was due for a change on {due.isoformat()}; {listen}"
    return None


def search_warnings(session: Session, actor: Actor, client_id: str) -> list[str]:
    """What a dispatcher must know before counting on the radio for this client's search."""
    _require(session, actor, "write", "search")
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    warning = bracelet_warning(session, client)
    return [] if warning is None else [warning]


def batteries_due(
    session: Session, actor: Actor, within_days: int, today: date | None = None
) -> list[dict[str, Any]]:
    """Assigned bracelets whose battery runs out within ``within_days``, soonest first."""
    _require(session, actor, "read", "program")
    today = today or date.today()
    rows = []
    query = select(
        Bracelet.bracelet_id, Bracelet.client_id, Bracelet.battery_installed_on,
        Bracelet.battery_interval_days,
    ).where(
        Bracelet.status == BraceletStatus.ASSIGNED, Bracelet.battery_installed_on.is_not(None)
    )  # fmt: skip
    for bracelet_id, client_id, installed_on, interval_days in session.execute(query):
        if installed_on is None:
            continue
        due = installed_on + timedelta(days=interval_days)
        left = (due - today).days
        if left <= within_days:
            rows.append({"bracelet_id": f"{bracelet_id:04X}", "client_id": client_id,
                         "due_on": due.isoformat(), "days_remaining": left})  # fmt: skip
    return sorted(rows, key=lambda r: r["days_remaining"])


def record_battery_change(
    session: Session, actor: Actor, bracelet_pk: str, on: date, by: str
) -> None:
    bracelet = session.get(Bracelet, bracelet_pk)
    if bracelet is None:
        raise NotFoundError(f"bracelet: no bracelet {bracelet_pk!r}")
    _require(session, actor, "write", "program", bracelet.client_id)
    if on > date.today():
        raise RegistryInputError(f"changed_on: must not be in the future, got {on.isoformat()}")
    session.add(
        BatteryChange(bracelet_pk=bracelet_pk, changed_on=on, changed_by=by, user_id=actor.user_id)
    )
    bracelet.battery_installed_on = on
    bracelet.updated_at = _now()


def record_daily_test(
    session: Session, actor: Actor, bracelet_pk: str, at: datetime, passed: bool, by: str
) -> None:
    bracelet = session.get(Bracelet, bracelet_pk)
    if bracelet is None:
        raise NotFoundError(f"bracelet: no bracelet {bracelet_pk!r}")
    _require(session, actor, "write", "program", bracelet.client_id)
    if at > _now() + timedelta(minutes=5):
        raise RegistryInputError(f"tested_at: must not be in the future, got {at.isoformat()}")
    session.add(
        DailyTest(
            bracelet_pk=bracelet_pk,
            tested_at=at,
            tested_by=by,
            passed=passed,
            user_id=actor.user_id,
        )
    )


def open_search(session: Session, actor: Actor, client_id: str, lat_deg: float, lon_deg: float,
                last_seen: datetime, clothing: str | None = None) -> Search:  # fmt: skip
    """Open a search (one active search per client).

    A client without a bracelet that passed its daily test gets the warning of
    :func:`search_warnings` written into the search's log (a note by no user), so every screen
    of the search shows it; the caller shows it to the dispatcher who opened it. The people the
    program names for searches are told once the transaction commits, in the background
    (:mod:`registry.search_notices`)."""
    _require(session, actor, "write", "search")
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    errors = {}
    if not -90 <= lat_deg <= 90 or not -180 <= lon_deg <= 180:
        errors["last_known"] = (
            "The last known point must be a latitude within -90..90 and a longitude within "
            f"-180..180; got {lat_deg}, {lon_deg}."
        )
    if last_seen.tzinfo is None:
        errors["last_seen"] = "The time last seen must say its time zone."
    elif last_seen > _now() + timedelta(minutes=5):
        errors["last_seen"] = (
            "The time last seen can't be in the future "
            f"({last_seen.isoformat(timespec='minutes')})."
        )
    check = FormCheck({"clothing": clothing})
    clothing = check.text("clothing", max_len=MAX_LENGTHS["usual_clothing"],
                          name="What they wore")  # fmt: skip
    errors.update(check.errors)
    if errors:
        raise RegistryInputError.of(errors)
    active = session.scalar(
        select(Search).where(Search.client_id == client_id, Search.status == SearchStatus.ACTIVE)
    )
    if active is not None:
        raise ConflictError(f"client {client_id} already has an active search ({active.id})")
    now = _now()
    search = Search(client_id=client_id, opened_at=now, last_known_lat_deg=lat_deg,
                    last_known_lon_deg=lon_deg, last_known_at=last_seen, clothing=clothing,
                    status=SearchStatus.ACTIVE, created_at=now, updated_at=now)  # fmt: skip
    session.add(search)
    session.flush()
    warning = bracelet_warning(session, client, now)
    if warning is not None:
        session.add(SearchEvent(search_id=search.id, at=now, kind="note",
                                body={"text": warning, "warning": "bracelet"}))  # fmt: skip
    _audit(session, actor, "create", "search", search.id, [], "search opened")
    search_notices.search_opened(session, search, warning)  # sent once this commits
    return search


def missed_tests(
    session: Session, actor: Actor, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Assigned bracelets with no passed daily test in the last 24 hours, longest first."""
    _require(session, actor, "read", "program")
    now = now or _now()
    last_passed = (
        select(DailyTest.bracelet_pk, func.max(DailyTest.tested_at).label("last"))
        .where(DailyTest.passed.is_(True))
        .group_by(DailyTest.bracelet_pk)
        .subquery()
    )
    query = (
        select(Bracelet.bracelet_id, Bracelet.client_id, last_passed.c.last)
        .outerjoin(last_passed, last_passed.c.bracelet_pk == Bracelet.id)
        .where(Bracelet.status == BraceletStatus.ASSIGNED)
    )
    rows = []
    for bracelet_id, client_id, stored in session.execute(query):
        last = None if stored is None else as_utc(stored)
        if last is None or now - last > timedelta(hours=24):
            rows.append({"bracelet_id": f"{bracelet_id:04X}", "client_id": client_id,
                         "last_passed": None if last is None else last.isoformat()})  # fmt: skip
    return sorted(rows, key=lambda r: r["last_passed"] or "")


def export_client(session: Session, actor: Actor, client_id: str, reason: str) -> dict[str, Any]:
    """The full record of one client as JSON-ready data (admin only; audited): every field,
    caregivers, places, enrollments, the bracelet worn with its battery changes and daily tests,
    the searches, and the photo byte for byte (base64)."""
    if actor.role is not Role.ADMIN:
        raise ForbiddenError("only an admin may export a client's full record")
    record = read_client(session, actor, client_id, reason=reason)
    client = session.get(Client, client_id)
    assert client is not None
    record["enrollments"] = [
        {"starts_on": e.starts_on.isoformat(),
         "ends_on": None if e.ends_on is None else e.ends_on.isoformat(),
         "funding_source": e.funding_source, "diagnosis_confirmed": e.diagnosis_confirmed,
         "history_of_wandering": e.history_of_wandering, "caregiver_24_7": e.caregiver_24_7}
        for e in sorted(client.enrollments, key=lambda e: e.starts_on)
    ]  # fmt: skip
    record["bracelets"] = []
    for b in session.scalars(select(Bracelet).where(Bracelet.client_id == client_id)):
        changes = session.scalars(select(BatteryChange).where(BatteryChange.bracelet_pk == b.id)
                                  .order_by(BatteryChange.changed_on))  # fmt: skip
        tests = session.scalars(select(DailyTest).where(DailyTest.bracelet_pk == b.id)
                                .order_by(DailyTest.tested_at))  # fmt: skip
        record["bracelets"].append({
            "bracelet_id": f"{b.bracelet_id:04X}", "channel": b.channel, "status": b.status.value,
            "battery_installed_on": None if b.battery_installed_on is None
            else b.battery_installed_on.isoformat(),
            "battery_interval_days": b.battery_interval_days,
            "battery_changes": [{"changed_on": c.changed_on.isoformat(), "changed_by": c.changed_by}
                                for c in changes],
            "daily_tests": [{"tested_at": as_utc(t.tested_at).isoformat(), "passed": t.passed,
                             "tested_by": t.tested_by} for t in tests],
        })  # fmt: skip
    record["searches"] = [
        {"id": s.id, "opened_at": as_utc(s.opened_at).isoformat(), "status": s.status.value,
         "last_known": {"lat_deg": s.last_known_lat_deg, "lon_deg": s.last_known_lon_deg,
                        "at": as_utc(s.last_known_at).isoformat()},
         "clothing": s.clothing,
         "found_at": None if s.found_at is None else as_utc(s.found_at).isoformat()}
        for s in session.scalars(select(Search).where(Search.client_id == client_id)
                                 .order_by(Search.opened_at))
    ]  # fmt: skip
    record["date_of_birth"] = client.date_of_birth.isoformat()
    record["enrolled_at"] = as_utc(client.created_at).isoformat()
    record["updated_at"] = as_utc(client.updated_at).isoformat()
    if client.photo is not None:
        record["photo_base64"] = base64.b64encode(client.photo).decode()
        record["photo_type"] = client.photo_type
    _audit(session, actor, "export", "client", client_id, ["*"], reason.strip())
    return record


def list_clients(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The clients this actor may see (a family: its own), with their bracelet and, while a
    search for them is active, when it was opened (``searched_since``), by name."""
    _require(session, actor, "read", "public")
    query = select(Client).where(Client.deleted_at.is_(None))
    if actor.role is Role.FAMILY:
        query = query.join(FamilyLink, FamilyLink.client_id == Client.id).where(
            FamilyLink.user_id == actor.user_id
        )
    worn = {
        b.client_id: b
        for b in session.scalars(select(Bracelet).where(Bracelet.status == BraceletStatus.ASSIGNED))
    }
    # Each client's active search, if any: when it was opened (a family must see at once that
    # a search is under way; nothing else of the search is said here).
    searching = dict(
        session.execute(
            select(Search.client_id, func.min(Search.opened_at))
            .where(Search.status == SearchStatus.ACTIVE)
            .group_by(Search.client_id)
        ).all()
    )
    rows = []
    for c in session.scalars(query.order_by(Client.last_name, Client.first_name)):
        b = worn.get(c.id)
        rows.append({"id": c.id, "first_name": c.first_name, "last_name": c.last_name,
                     "nickname": c.nickname, "has_photo": c.photo is not None,
                     "date_of_birth": c.date_of_birth.isoformat(),
                     "bracelet_id": None if b is None else f"{b.bracelet_id:04X}",
                     "channel": None if b is None else b.channel,
                     "searched_since": searching.get(c.id)})  # fmt: skip
    return rows


def client_photo(session: Session, actor: Actor, client_id: str) -> tuple[bytes, str] | None:
    """The client's photo and its MIME type (for those who may read public data)."""
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    _require(session, actor, "read", "public", client_id)
    if client.photo is None or client.photo_type is None:
        return None
    return client.photo, client.photo_type


def set_photo(session: Session, actor: Actor, client_id: str, photo: bytes) -> None:
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    _require(session, actor, "write", "public", client_id)
    client.photo_type = check_photo(photo)
    client.photo = photo
    client.updated_at = _now()
    _audit(session, actor, "update", "client", client_id, ["photo"], "photo")


def bracelet_inventory(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """Every bracelet with its status, channel, wearer and battery date (program staff)."""
    _require(session, actor, "read", "program")
    if actor.role is Role.FAMILY:
        raise ForbiddenError("the bracelet inventory is for program staff")
    return [
        {"id": b.id, "bracelet_id": f"{b.bracelet_id:04X}", "channel": b.channel,
         "status": b.status.value, "client_id": b.client_id,
         "battery_installed_on": None if b.battery_installed_on is None
         else b.battery_installed_on.isoformat(),
         "battery_interval_days": b.battery_interval_days}
        for b in session.scalars(select(Bracelet).order_by(Bracelet.bracelet_id))
    ]  # fmt: skip


def bracelets_of(session: Session, actor: Actor, client_id: str) -> list[Bracelet]:
    _require(session, actor, "read", "program", client_id)
    return list(session.scalars(select(Bracelet).where(
        Bracelet.client_id == client_id, Bracelet.status == BraceletStatus.ASSIGNED)))  # fmt: skip


def create_user(session: Session, username: str, display_name: str, role: Role,
                password_hash: str) -> User:  # fmt: skip
    """A new login (the caller hashes the password); usernames are unique."""
    name = _text({"username": username}, "username", required=True, max_len=100)
    if session.scalar(select(User).where(User.username == name)) is not None:
        raise ConflictError(f"username {name!r} is taken")
    user = User(username=name, display_name=_text({"d": display_name}, "d", required=True) or name,
                password_hash=password_hash, role=role, active=True)  # fmt: skip
    session.add(user)
    session.flush()
    return user


def link_family(session: Session, user_id: str, client_id: str) -> None:
    """Let a family member see and edit a client."""
    session.add(FamilyLink(user_id=user_id, client_id=client_id))
    session.flush()


def map_centre(session: Session) -> tuple[float, float] | None:
    """Where a map of the program starts: the newest search's last known point, else None."""
    row = session.execute(
        select(Search.last_known_lat_deg, Search.last_known_lon_deg)
        .order_by(Search.opened_at.desc())
        .limit(1)
    ).first()
    return None if row is None else (float(row[0]), float(row[1]))
