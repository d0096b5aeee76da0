"""The registry's service layer: what the server and the command line call.

Every function takes the acting user (``Actor``) and a session; it checks the permission matrix
(:mod:`registry.access`), validates input (``RegistryInputError`` names the field, the value and
what is valid, and nothing is written), and writes the audit log for every read of clinical or
co-response detail (who, when, why — a reason is required) and for every change.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access import Kind, allowed
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
    Role,
    Search,
    SearchStatus,
    User,
)

# The tree's errors the registry raises, re-exported (``X as X``): callers may name them here.
from safetynet.errors import ConflictError as ConflictError  # noqa: PLC0414
from safetynet.errors import ForbiddenError as ForbiddenError  # noqa: PLC0414
from safetynet.errors import InputError
from safetynet.errors import NotFoundError as NotFoundError  # noqa: PLC0414

PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
MAX_PHOTO_BYTES = 2 * 1024 * 1024
PUBLIC_FIELDS = (
    "first_name", "last_name", "nickname", "date_of_birth", "height_cm", "build", "hair", "eyes",
    "glasses", "scars_marks", "language", "verbal", "useful_phrases",
)  # fmt: skip


class RegistryInputError(InputError):
    """Input the registry refuses; nothing was written."""


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
    value = data.get(field)
    if value is None:
        if required:
            raise RegistryInputError(f"{field}: required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise RegistryInputError(
            f"{field}: must be text that is not empty or only spaces, got {value!r}"
        )
    if len(value) > max_len:
        raise RegistryInputError(f"{field}: at most {max_len} characters, got {len(value)}")
    return value.strip()


def _date(data: dict[str, Any], field: str, required: bool = False) -> date | None:
    value = data.get(field)
    if value is None:
        if required:
            raise RegistryInputError(f"{field}: required")
        return None
    try:
        parsed = date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        raise RegistryInputError(f"{field}: must be a date YYYY-MM-DD, got {value!r}") from None
    if not isinstance(parsed, date):
        raise RegistryInputError(f"{field}: must be a date YYYY-MM-DD, got {value!r}")
    if parsed > date.today():
        raise RegistryInputError(f"{field}: must not be in the future, got {parsed.isoformat()}")
    return parsed


def _flag(data: dict[str, Any], field: str, default: bool) -> bool:
    value = data.get(field, default)
    if not isinstance(value, bool):
        raise RegistryInputError(f"{field}: must be true or false, got {value!r}")
    return value


def check_photo(photo: bytes) -> str:
    """The photo's MIME type; only JPEG and PNG up to 2 MiB are taken."""
    if len(photo) > MAX_PHOTO_BYTES:
        raise RegistryInputError(
            f"photo: at most {MAX_PHOTO_BYTES // 1024} KiB, got {len(photo) // 1024} KiB"
        )
    for magic, mime in PHOTO_TYPES.items():
        if photo.startswith(magic):
            return mime
    raise RegistryInputError("photo: must be a JPEG or PNG image")


def enrol(session: Session, actor: Actor, data: dict[str, Any]) -> Client:
    """Create a client from a dict (the enrollment form or a JSON file); returns it."""
    _require(session, actor, "write", "public")
    now = _now()
    client = Client(
        first_name=_text(data, "first_name", required=True),
        last_name=_text(data, "last_name", required=True),
        nickname=_text(data, "nickname"),
        date_of_birth=_date(data, "date_of_birth", required=True),
        build=_text(data, "build"), hair=_text(data, "hair"), eyes=_text(data, "eyes"),
        glasses=_flag(data, "glasses", False),
        scars_marks=_text(data, "scars_marks", max_len=2000),
        language=_text(data, "language"), verbal=_flag(data, "verbal", True),
        useful_phrases=_text(data, "useful_phrases", max_len=2000),
        created_at=now, updated_at=now,
    )  # fmt: skip
    height = data.get("height_cm")
    if height is not None:
        if not isinstance(height, int) or not 40 <= height <= 250:
            raise RegistryInputError(
                f"height_cm: must be a whole number of cm within 40..250, got {height!r}"
            )
        client.height_cm = height
    if "photo_base64" in data:
        try:
            photo = base64.b64decode(data["photo_base64"], validate=True)
        except (ValueError, TypeError):
            raise RegistryInputError("photo_base64: not valid base64") from None
        client.photo_type = check_photo(photo)
        client.photo = photo
    clinical = {f: _text(data, f, max_len=4000) for f in CLINICAL_FIELDS if data.get(f) is not None}
    if clinical:
        _require(session, actor, "write", "clinical")
        for field, value in clinical.items():
            setattr(client, field, value)
    caregivers = data.get("caregivers", [])
    if not isinstance(caregivers, list):
        raise RegistryInputError("caregivers: must be a list of objects")
    for i, c in enumerate(caregivers):
        if not isinstance(c, dict):
            raise RegistryInputError(f"caregivers[{i}]: must be an object")
        client.caregivers.append(
            Caregiver(name=_text(c, "name", required=True), relation=_text(c, "relation"),
                      phone=_text(c, "phone", required=True, max_len=40),
                      available_24_7=bool(c.get("available_24_7", False)), priority=i + 1)
        )  # fmt: skip
    session.add(client)
    session.flush()
    if actor.role is Role.FAMILY:
        session.add(FamilyLink(user_id=actor.user_id, client_id=client.id))
    _audit(session, actor, "create", "client", client.id, [], "enrollment")
    return client


def read_client(session: Session, actor: Actor, client_id: str, reason: str = "") -> dict[str, Any]:
    """The client as this actor may see it; clinical fields only where allowed, and audited."""
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    _require(session, actor, "read", "public", client_id)
    out: dict[str, Any] = {"id": client.id, "version": client.version}
    out.update({f: getattr(client, f) for f in PUBLIC_FIELDS})
    out["has_photo"] = client.photo is not None
    if allowed(actor.role, "read", "contacts", _own(session, actor, client_id)):
        out["caregivers"] = [
            {
                "name": c.name,
                "relation": c.relation,
                "phone": c.phone,
                "available_24_7": c.available_24_7,
            }
            for c in sorted(client.caregivers, key=lambda c: c.priority)
        ]
    if allowed(actor.role, "read", "clinical", _own(session, actor, client_id)):
        if not reason.strip():
            raise RegistryInputError(
                "reason: reading clinical detail needs a reason (it is audited)"
            )
        out.update({f: getattr(client, f) for f in CLINICAL_FIELDS})
        _audit(session, actor, "read", "client", client.id, list(CLINICAL_FIELDS), reason.strip())
    return out


def assign_bracelet(session: Session, actor: Actor, bracelet_id: int, channel: int, client_id: str,
                    installed_on: date, interval_days: int = 180) -> Bracelet:  # fmt: skip
    """Put a bracelet on a client (one bracelet per client at a time, IDs unique)."""
    _require(session, actor, "write", "program", client_id)
    if not 0 < bracelet_id < 0xFFFF:
        raise RegistryInputError(f"bracelet_id: must be within 0001..FFFE, got {bracelet_id:#06x}")
    if not 1 <= channel <= 40:
        raise RegistryInputError(f"channel: must be within 1..40, got {channel}")
    if session.get(Client, client_id) is None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    existing = session.scalar(select(Bracelet).where(Bracelet.bracelet_id == bracelet_id))
    if existing is not None and existing.status is BraceletStatus.ASSIGNED:
        raise ConflictError(f"bracelet {bracelet_id:04X} is already assigned")
    current = session.scalar(
        select(Bracelet).where(
            Bracelet.client_id == client_id, Bracelet.status == BraceletStatus.ASSIGNED
        )
    )
    if current is not None:
        raise ConflictError(
            f"client already wears bracelet {current.bracelet_id:04X}; retire it first"
        )
    now = _now()
    bracelet = existing or Bracelet(bracelet_id=bracelet_id, created_at=now)
    bracelet.channel, bracelet.client_id, bracelet.status = (
        channel,
        client_id,
        BraceletStatus.ASSIGNED,
    )
    bracelet.battery_installed_on, bracelet.battery_interval_days = installed_on, interval_days
    bracelet.updated_at = now
    session.add(bracelet)
    try:
        session.flush()
    except IntegrityError as err:
        raise ConflictError(f"bracelet {bracelet_id:04X}: {err.orig}") from err
    _audit(session, actor, "update", "bracelet", bracelet.id, ["client_id"], "assignment")
    return bracelet


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
    """Open a search (one active search per client)."""
    _require(session, actor, "write", "search")
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    if not -90 <= lat_deg <= 90 or not -180 <= lon_deg <= 180:
        raise RegistryInputError(
            f"last known point: latitude -90..90 and longitude -180..180, got {lat_deg}, {lon_deg}"
        )
    if last_seen > _now() + timedelta(minutes=5):
        raise RegistryInputError(
            f"last_known_at: must not be in the future, got {last_seen.isoformat()}"
        )
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
    _audit(session, actor, "create", "search", search.id, [], "search opened")
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
    """The full record of one client as JSON-ready data (admin only; audited)."""
    if actor.role is not Role.ADMIN:
        raise ForbiddenError("only an admin may export a client's full record")
    record = read_client(session, actor, client_id, reason=reason)
    client = session.get(Client, client_id)
    assert client is not None
    record["places"] = [
        {"kind": p.kind.value, "label": p.label, "lat_deg": p.lat_deg, "lon_deg": p.lon_deg}
        for p in client.places
    ]
    record["enrollments"] = [
        {
            "starts_on": e.starts_on.isoformat(),
            "ends_on": None if e.ends_on is None else e.ends_on.isoformat(),
            "funding_source": e.funding_source,
        }
        for e in client.enrollments
    ]
    record["bracelets"] = [
        {"bracelet_id": f"{b.bracelet_id:04X}", "channel": b.channel, "status": b.status.value}
        for b in session.scalars(select(Bracelet).where(Bracelet.client_id == client_id))
    ]
    record["searches"] = [
        {"id": s.id, "opened_at": s.opened_at.isoformat(), "status": s.status.value}
        for s in session.scalars(select(Search).where(Search.client_id == client_id))
    ]
    record["date_of_birth"] = client.date_of_birth.isoformat()
    if client.photo is not None:
        record["photo_base64"] = base64.b64encode(client.photo).decode()
        record["photo_type"] = client.photo_type
    _audit(session, actor, "export", "client", client_id, ["*"], reason)
    return record


def list_clients(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The clients this actor may see (a family: its own), with their bracelet, by name."""
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
    rows = []
    for c in session.scalars(query.order_by(Client.last_name, Client.first_name)):
        b = worn.get(c.id)
        rows.append({"id": c.id, "first_name": c.first_name, "last_name": c.last_name,
                     "nickname": c.nickname, "has_photo": c.photo is not None,
                     "bracelet_id": None if b is None else f"{b.bracelet_id:04X}",
                     "channel": None if b is None else b.channel})  # fmt: skip
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
