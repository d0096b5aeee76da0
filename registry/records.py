"""Editing a client's record: fields, caregivers, places, enrollment; co-response encounters;
soft delete and the retention purge.

Every edit names the version it was made from: if someone else saved the record since, the edit
is refused with a :class:`~registry.service.ConflictError` that says so, and nothing is written
(two people editing one record never silently overwrite each other). A race that slips past the
check between read and write is caught by the version column itself (SQLAlchemy's optimistic
locking) and reported the same way.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from registry.access import allowed
from registry.fields import DEFAULT_PHONE_REGION, FormCheck, caregivers, places
from registry.models import (
    CLINICAL_FIELDS,
    Bracelet,
    BraceletStatus,
    Caregiver,
    Client,
    CoResponseLink,
    EncounterKind,
    Enrollment,
    Place,
    PlaceKind,
    Role,
    Search,
    SearchStatus,
)
from registry.service import (
    PUBLIC_FIELDS,
    Actor,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RegistryInputError,
    _audit,
    _date,
    _now,
    _own,
    _record_fields,
    _require,
    _text,
    as_utc,
    check_consent,
    consent_stamp,
)

DEFAULT_RETENTION_DAYS = 365 * 7
KEEPERS = frozenset({Role.PROGRAM_STAFF, Role.ADMIN})  # who deletes any record and restores it
PURGED = "(purged)"
_BOOL_FIELDS = {"glasses", "verbal", "consent_home_alerts", "consent_fleet_sightings"}


def _client(session: Session, client_id: str) -> Client:
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    return client


def _check_version(client: Client, expected_version: int) -> None:
    if client.version != expected_version:
        raise ConflictError(
            f"client {client.id} was changed by someone else since you opened it (you edited "
            f"version {expected_version}, it is now version {client.version}); reload it and "
            "make your change again"
        )


def _flush(session: Session, client: Client) -> None:
    client_id = client.id  # read now: after the rollback the object is expired
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise ConflictError(
            f"client {client_id} was changed by someone else while you were saving; reload it "
            "and make your change again"
        ) from None


def update_client(
    session: Session, actor: Actor, client_id: str, expected_version: int,
    changes: dict[str, Any], *, phone_region: str = DEFAULT_PHONE_REGION,
) -> Client:  # fmt: skip
    """Apply ``changes`` (field → value; ``caregivers`` and ``places`` replace the lists) to the
    client, made from ``expected_version``. Every change is checked before anything is written,
    and every problem reported at once (as :func:`registry.service.enrol` does)."""
    client = _client(session, client_id)
    _check_version(client, expected_version)
    unknown = set(changes) - set(PUBLIC_FIELDS) - set(CLINICAL_FIELDS) - {"caregivers", "places"}
    if unknown:
        raise RegistryInputError.of({f: f"The record has no field “{f}”." for f in sorted(unknown)})
    kinds = {"public" if f in PUBLIC_FIELDS else "clinical" if f in CLINICAL_FIELDS
             else "contacts" for f in changes}  # fmt: skip
    for kind in sorted(kinds):
        _require(session, actor, "write", kind, client_id)  # type: ignore[arg-type]
    check = FormCheck(changes)
    values = _record_fields(check, changes, (*PUBLIC_FIELDS, *CLINICAL_FIELDS))
    rows = caregivers(changes["caregivers"], phone_region, check) if "caregivers" in changes else []
    spots = places(changes["places"], check) if "places" in changes else []
    check_consent(check, values, client)
    check.done()
    consented = (client.consent_home_alerts, client.consent_fleet_sightings)
    for field, value in values.items():
        setattr(client, field, value)
    consent_stamp(client, consented, _now())
    if "caregivers" in changes:
        client.caregivers.clear()
        client.caregivers.extend(Caregiver(**row) for row in rows)
    if "places" in changes:
        client.places.clear()
        client.places.extend(Place(**{**spot, "kind": PlaceKind(spot["kind"])}) for spot in spots)
    client.updated_at = _now()  # an UPDATE of the row: the version goes up, lists or not
    _flush(session, client)
    _audit(session, actor, "update", "client", client.id, sorted(changes), "edit")
    return client


def add_enrollment(session: Session, actor: Actor, client_id: str, data: dict[str, Any]) -> str:
    """Record an enrollment period with its eligibility; returns its id."""
    _client(session, client_id)
    _require(session, actor, "write", "program", client_id)
    starts = data.get("starts_on")
    try:
        starts_on = date.fromisoformat(starts) if isinstance(starts, str) else None
    except ValueError:
        starts_on = None
    if starts_on is None:
        raise RegistryInputError(f"starts_on: must be a date YYYY-MM-DD, got {starts!r}")
    ends = data.get("ends_on")
    ends_on = None
    if ends is not None:
        try:
            ends_on = date.fromisoformat(ends)
        except (TypeError, ValueError):
            raise RegistryInputError(f"ends_on: must be a date YYYY-MM-DD, got {ends!r}") from None
        if ends_on < starts_on:
            raise RegistryInputError(f"ends_on: must not be before starts_on ({starts_on})")
    flags = {}
    for flag in ("diagnosis_confirmed", "history_of_wandering", "caregiver_24_7"):
        value = data.get(flag)
        if not isinstance(value, bool):
            raise RegistryInputError(f"{flag}: must be true or false, got {value!r}")
        flags[flag] = value
    enrollment = Enrollment(client_id=client_id, starts_on=starts_on, ends_on=ends_on,
                            funding_source=_text(data, "funding_source"), **flags)  # fmt: skip
    session.add(enrollment)
    session.flush()
    _audit(session, actor, "create", "enrollment", enrollment.id, [], "enrollment")
    return enrollment.id


def link_co_response(
    session: Session, actor: Actor, client_id: str, data: dict[str, Any],
    search_id: str | None = None,
) -> str:  # fmt: skip
    """Link a co-response encounter to a client (clinician and admin only); returns its id."""
    _client(session, client_id)
    _require(session, actor, "write", "co_response", client_id)
    encounter_on = _date(data, "encounter_on", required=True)
    assert encounter_on is not None
    try:
        kind = EncounterKind(str(data.get("kind")))
    except ValueError:
        raise RegistryInputError(
            f"kind: one of {[k.value for k in EncounterKind]}, got {data.get('kind')!r}"
        ) from None
    link = CoResponseLink(client_id=client_id, search_id=search_id, encounter_on=encounter_on,
                          kind=kind, clinician=_text(data, "clinician", required=True),
                          outcome=_text(data, "outcome", max_len=4000))  # fmt: skip
    session.add(link)
    session.flush()
    _audit(session, actor, "create", "co_response", link.id, [], "encounter linked")
    return link.id


def read_co_response(
    session: Session, actor: Actor, client_id: str, reason: str
) -> list[dict[str, Any]]:
    """The client's co-response encounters (clinician and admin only; every read audited)."""
    _client(session, client_id)
    _require(session, actor, "read", "co_response", client_id)
    if not reason.strip():
        raise RegistryInputError(
            "reason: reading co-response detail needs a reason (it is audited)"
        )
    rows = session.scalars(
        select(CoResponseLink)
        .where(CoResponseLink.client_id == client_id)
        .order_by(CoResponseLink.encounter_on)
    )
    out = [{"id": r.id, "encounter_on": r.encounter_on.isoformat(), "kind": r.kind.value,
            "clinician": r.clinician, "outcome": r.outcome, "search_id": r.search_id}
           for r in rows]  # fmt: skip
    _audit(session, actor, "read", "co_response", client_id, ["*"], reason.strip())
    return out


def soft_delete_client(session: Session, actor: Actor, client_id: str, reason: str) -> None:
    """Mark a client deleted (program staff, an admin, or their family): hidden at once,
    restorable until purged after the retention period.

    The bracelet is unassigned (back to stock) so that it may be issued again."""
    client = _client(session, client_id)
    own = _own(session, actor, client_id)
    family_own = actor.role is Role.FAMILY and allowed(actor.role, "write", "public", own)
    if actor.role not in KEEPERS and not family_own:
        raise ForbiddenError(
            "only program staff, an admin or the client's family may delete a client"
        )
    if not reason.strip():
        raise RegistryInputError.of({"reason": (
            "Say why the record is deleted (a duplicate, moved away): it is kept in the audit "
            "log.")})  # fmt: skip
    active = session.scalar(select(Search.id).where(
        Search.client_id == client_id, Search.status == SearchStatus.ACTIVE))  # fmt: skip
    if active is not None:
        raise ConflictError(
            "This person is being searched for now: the record and its bracelet are in use by "
            "the search. Close the search first, then delete the record."
        )
    now = _now()
    client.deleted_at = now
    client.updated_at = now
    worn = select(Bracelet).where(
        Bracelet.client_id == client_id, Bracelet.status == BraceletStatus.ASSIGNED
    )
    for b in session.scalars(worn):
        b.status, b.client_id, b.updated_at = BraceletStatus.STOCK, None, now
    _flush(session, client)
    _audit(session, actor, "delete", "client", client_id, [], reason.strip())


def restore_client(session: Session, actor: Actor, client_id: str, reason: str) -> None:
    """Undo a soft delete within the retention period (program staff and admins)."""
    if actor.role not in KEEPERS:
        raise ForbiddenError("only program staff or an admin may restore a deleted client")
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is None:
        raise NotFoundError(f"client_id: no deleted client {client_id!r}")
    if client.first_name == PURGED:
        raise ConflictError("this record was purged at the end of its retention; it cannot be "
                            "restored")  # fmt: skip
    client.deleted_at = None
    client.updated_at = _now()
    _flush(session, client)
    _audit(session, actor, "restore", "client", client_id, [], reason.strip() or "restore")


def deleted_clients(
    session: Session, actor: Actor, retention_days: int = DEFAULT_RETENTION_DAYS
) -> list[dict[str, Any]]:
    """The soft-deleted records that can still be restored, newest deletion first (staff and
    admins), each with the day it will be purged."""
    if actor.role not in KEEPERS:
        raise ForbiddenError("only program staff or an admin may see deleted records")
    rows = []
    query = select(Client).where(Client.deleted_at.is_not(None), Client.first_name != PURGED)
    for c in session.scalars(query.order_by(Client.deleted_at.desc())):
        assert c.deleted_at is not None
        deleted = as_utc(c.deleted_at)
        purge_on = (deleted + timedelta(days=retention_days)).date()
        rows.append(
            {"id": c.id, "first_name": c.first_name, "last_name": c.last_name,
             "date_of_birth": c.date_of_birth.isoformat(), "deleted_at": deleted.isoformat(),
             "purge_on": purge_on.isoformat()}
        )  # fmt: skip
    return rows


def purge_expired(
    session: Session, actor: Actor, retention_days: int = DEFAULT_RETENTION_DAYS,
    now: datetime | None = None,
) -> list[str]:  # fmt: skip
    """Erase the personal detail of clients deleted more than ``retention_days`` ago.

    Names become "(purged)", every descriptive, clinical and contact field is cleared and the
    photo dropped; the row stays so that the search logs that name it (police records, kept
    under their own rules) still point somewhere. Returns the purged client ids."""
    if actor.role is not Role.ADMIN:
        raise ForbiddenError("only an admin may purge deleted records")
    if retention_days < 0:
        raise RegistryInputError(f"retention_days: must be 0 or more, got {retention_days}")
    cutoff = (now or _now()) - timedelta(days=retention_days)
    purged = []
    for client in session.scalars(select(Client).where(Client.deleted_at.is_not(None))):
        assert client.deleted_at is not None
        deleted = as_utc(client.deleted_at)
        if deleted > cutoff or client.first_name == PURGED:
            continue
        client.first_name = client.last_name = PURGED
        for field in (*PUBLIC_FIELDS[2:], *CLINICAL_FIELDS, "photo", "photo_type"):
            if field in ("date_of_birth",):
                continue
            setattr(client, field, False if field in _BOOL_FIELDS else None)
        client.date_of_birth = date(1900, 1, 1)
        client.caregivers.clear()
        client.places.clear()
        for link in session.scalars(select(CoResponseLink).where(
                CoResponseLink.client_id == client.id)):  # fmt: skip
            link.outcome = None
        client.updated_at = _now()
        purged.append(client.id)
        _audit(session, actor, "purge", "client", client.id, ["*"],
               f"retention of {retention_days} days ended")  # fmt: skip
    session.flush()
    return purged
