"""The bracelet inventory and who wears what: add, assign, swap, retire, and the program's gaps.

A bracelet's life: it enters the inventory in ``stock`` (its 16-bit ID unique, ``0001``–``FFFE``,
on one of the 40 channels of ``spec/air-interface.md``), is ``assigned`` to one client, goes back
to stock when taken off (a swap, a soft-deleted client), and ends ``retired`` (lost, broken,
failed its test), never to be given out again. One client wears at most one bracelet, a bracelet
is worn by at most one client; the database enforces both (``bracelet_worn_by_client``,
``one_bracelet_per_client``), and every function here refuses first with a message that says
what is wrong and what to do, changing nothing. Only program staff and admins keep the
inventory; every change is in the audit log with its reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from registry.fields import RegistryInputError
from registry.models import Bracelet, BraceletStatus, Client, Role
from registry.service import (
    Actor,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    _audit,
    _now,
    bracelet_warning,
)

CHANNELS = range(1, 41)  # spec/air-interface.md §1
BRACELET_IDS = range(0x0001, 0xFFFF)  # 0000 and FFFF are reserved, never issued
DEFAULT_BATTERY_INTERVAL_DAYS = 180
INVENTORY_ROLES = frozenset({Role.PROGRAM_STAFF, Role.ADMIN})


def parse_bracelet_id(value: str | int) -> int:
    """A bracelet's ID as printed on it (four hex digits, ``3A7F``; ``0x3A7F`` too) or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip().upper().removeprefix("0X")
        if not text or len(text) > 4 or any(ch not in "0123456789ABCDEF" for ch in text):
            raise RegistryInputError.of({"bracelet_id": (
                f"A bracelet's ID is the four letters and digits printed on it (0-9 and A-F, "
                f"such as 3A7F); “{value.strip()}” is not one.")})  # fmt: skip
        number = int(text, 16)
    else:
        raise RegistryInputError.of({"bracelet_id": "A bracelet's ID must be written as text."})
    if number not in BRACELET_IDS:
        raise RegistryInputError.of({"bracelet_id": (
            f"Bracelet IDs run from 0001 to FFFE (0000 and FFFF are never issued); "
            f"got {number:04X}." if 0 <= number <= 0xFFFF else
            f"Bracelet IDs run from 0001 to FFFE; {number} is out of range.")})  # fmt: skip
    return number


def _keeper(actor: Actor) -> None:
    if actor.role not in INVENTORY_ROLES:
        raise ForbiddenError(
            f"a {actor.role.value} may not change the bracelet inventory (program staff and "
            "admins do)"
        )


def _name(client: Client) -> str:
    return f"{client.first_name} {client.last_name}"


def _find(session: Session, bracelet_id: int) -> Bracelet:
    bracelet = session.scalar(select(Bracelet).where(Bracelet.bracelet_id == bracelet_id))
    if bracelet is None:
        raise RegistryInputError.of({"bracelet_id": (
            f"There is no bracelet {bracelet_id:04X} in the inventory. Check the ID printed on "
            "the bracelet, or add the bracelet to the inventory first.")})  # fmt: skip
    return bracelet


def _client(session: Session, client_id: str) -> Client:
    client = session.get(Client, client_id)
    if client is None or client.deleted_at is not None:
        raise NotFoundError(f"client_id: no client {client_id!r}")
    return client


def _worn_by(session: Session, client_id: str) -> Bracelet | None:
    return session.scalar(select(Bracelet).where(
        Bracelet.client_id == client_id, Bracelet.status == BraceletStatus.ASSIGNED))  # fmt: skip


def _installed(installed_on: date | None) -> date:
    day = installed_on or date.today()
    if day > date.today():
        raise RegistryInputError.of({"installed_on": (
            f"The battery's date can't be in the future ({day.isoformat()}).")})  # fmt: skip
    return day


def _free(session: Session, bracelet: Bracelet, for_client: Client) -> None:
    """Refuse a bracelet that cannot be put on ``for_client``."""
    if bracelet.status is BraceletStatus.RETIRED:
        when = "" if bracelet.retired_at is None else f" on {bracelet.retired_at.date()}"
        raise ConflictError(
            f"Bracelet {bracelet.bracelet_id:04X} was retired{when}; a retired bracelet is "
            "never given out again. Choose another from the inventory."
        )
    if bracelet.status is BraceletStatus.ASSIGNED:
        assert bracelet.client_id is not None
        if bracelet.client_id == for_client.id:
            raise ConflictError(
                f"{_name(for_client)} already wears bracelet {bracelet.bracelet_id:04X}."
            )
        wearer = session.get(Client, bracelet.client_id)
        who = "another client" if wearer is None else _name(wearer)
        raise ConflictError(
            f"Bracelet {bracelet.bracelet_id:04X} is already worn by {who}. A bracelet is worn by "
            "one person: take it off that record first (swap or retire it there)."
        )


def _flush(session: Session, what: str) -> None:
    try:
        session.flush()
    except (IntegrityError, StaleDataError) as err:  # the caller's transaction rolls back
        raise ConflictError(
            f"{what} was changed by someone else while you were saving; reload and try again"
        ) from err


def add_bracelet(
    session: Session, actor: Actor, bracelet_id: int, channel: int,
    battery_interval_days: int = DEFAULT_BATTERY_INTERVAL_DAYS,
) -> Bracelet:  # fmt: skip
    """Put a new bracelet into the inventory (in stock); IDs are unique."""
    _keeper(actor)
    parse_bracelet_id(bracelet_id)
    errors = {}
    if isinstance(channel, bool) or not isinstance(channel, int) or channel not in CHANNELS:
        errors["channel"] = f"The channel must be a whole number from 1 to 40; got {channel}."
    if (
        isinstance(battery_interval_days, bool) or not isinstance(battery_interval_days, int)
        or not 1 <= battery_interval_days <= 3650
    ):  # fmt: skip
        errors["battery_interval_days"] = (
            "The battery is changed every so many days: a whole number from 1 to 3650; "
            f"got {battery_interval_days}."
        )
    if errors:
        raise RegistryInputError.of(errors)
    existing = session.scalar(select(Bracelet).where(Bracelet.bracelet_id == bracelet_id))
    if existing is not None:
        raise ConflictError(
            f"Bracelet {bracelet_id:04X} is already in the inventory ({existing.status.value}, "
            f"channel {existing.channel}); every bracelet's ID is unique."
        )
    now = _now()
    bracelet = Bracelet(bracelet_id=bracelet_id, channel=channel, status=BraceletStatus.STOCK,
                        battery_interval_days=battery_interval_days, created_at=now,
                        updated_at=now)  # fmt: skip
    session.add(bracelet)
    _flush(session, f"bracelet {bracelet_id:04X}")
    _audit(session, actor, "create", "bracelet", bracelet.id, [], "added to the inventory")
    return bracelet


def assign_from_inventory(
    session: Session, actor: Actor, bracelet_id: int, client_id: str,
    installed_on: date | None = None,
) -> Bracelet:  # fmt: skip
    """Put a bracelet from the inventory on a client who wears none (battery fitted that day)."""
    _keeper(actor)
    client = _client(session, client_id)
    parse_bracelet_id(bracelet_id)
    day = _installed(installed_on)
    bracelet = _find(session, bracelet_id)
    _free(session, bracelet, client)
    current = _worn_by(session, client_id)
    if current is not None:
        raise ConflictError(
            f"{_name(client)} already wears bracelet {current.bracelet_id:04X}. Swap it for "
            f"{bracelet_id:04X} instead, so the old one is taken back."
        )
    now = _now()
    bracelet.status, bracelet.client_id = BraceletStatus.ASSIGNED, client_id
    bracelet.battery_installed_on, bracelet.updated_at = day, now
    _flush(session, f"bracelet {bracelet_id:04X}")
    _audit(session, actor, "update", "bracelet", bracelet.id, ["client_id", "status"],
           f"assigned to client {client_id}")  # fmt: skip
    return bracelet


def swap_bracelet(
    session: Session, actor: Actor, client_id: str, new_bracelet_id: int,
    installed_on: date | None = None, retire_old: bool = False, reason: str = "",
) -> Bracelet:  # fmt: skip
    """Replace the client's bracelet with one from the inventory; the old one goes back to stock
    (or is retired with ``retire_old``: broken, lost, failed its test). Returns the new one."""
    _keeper(actor)
    client = _client(session, client_id)
    parse_bracelet_id(new_bracelet_id)
    day = _installed(installed_on)
    old = _worn_by(session, client_id)
    if old is None:
        raise ConflictError(
            f"{_name(client)} wears no bracelet to swap; assign one from the inventory instead."
        )
    new = _find(session, new_bracelet_id)
    _free(session, new, client)
    now = _now()
    old.status = BraceletStatus.RETIRED if retire_old else BraceletStatus.STOCK
    old.client_id, old.updated_at = None, now
    if retire_old:
        old.retired_at = now
    _flush(session, f"bracelet {old.bracelet_id:04X}")  # the old one off before the new one on
    new.status, new.client_id = BraceletStatus.ASSIGNED, client_id
    new.battery_installed_on, new.updated_at = day, now
    _flush(session, f"bracelet {new_bracelet_id:04X}")
    why = reason.strip() or "swap"
    _audit(session, actor, "update", "bracelet", old.id, ["client_id", "status"],
           f"{why}: taken off client {client_id}, {old.status.value}")  # fmt: skip
    _audit(session, actor, "update", "bracelet", new.id, ["client_id", "status"],
           f"{why}: assigned to client {client_id}")  # fmt: skip
    return new


def retire_bracelet(session: Session, actor: Actor, bracelet_id: int, reason: str) -> Bracelet:
    """Take a bracelet out of service for good (lost, broken); a wearer is left without one."""
    _keeper(actor)
    parse_bracelet_id(bracelet_id)
    if not reason.strip():
        raise RegistryInputError.of({"reason": (
            "Say why the bracelet is retired (lost, broken, failed its test): it is kept in the "
            "audit log.")})  # fmt: skip
    bracelet = _find(session, bracelet_id)
    if bracelet.status is BraceletStatus.RETIRED:
        raise ConflictError(f"Bracelet {bracelet_id:04X} is already retired.")
    wearer = bracelet.client_id
    now = _now()
    bracelet.status, bracelet.client_id = BraceletStatus.RETIRED, None
    bracelet.retired_at, bracelet.updated_at = now, now
    _flush(session, f"bracelet {bracelet_id:04X}")
    note = reason.strip() if wearer is None else f"{reason.strip()} (was on client {wearer})"
    _audit(session, actor, "update", "bracelet", bracelet.id, ["status"], f"retired: {note}")
    return bracelet


def program_gaps(session: Session, actor: Actor) -> dict[str, list[dict[str, Any]]]:
    """What the program page must show staff: enrolled clients who wear no bracelet (with why a
    search for them would be blind), and bracelets in stock that no one wears."""
    _keeper(actor)
    worn = select(Bracelet.client_id).where(Bracelet.status == BraceletStatus.ASSIGNED)
    bare = session.scalars(
        select(Client)
        .where(Client.deleted_at.is_(None), Client.id.not_in(worn))
        .order_by(Client.last_name, Client.first_name)
    )
    clients = [{"id": c.id, "first_name": c.first_name, "last_name": c.last_name,
                "enrolled_on": c.created_at.date().isoformat(),
                "warning": bracelet_warning(session, c)} for c in bare]  # fmt: skip
    stock = session.scalars(
        select(Bracelet)
        .where(Bracelet.status == BraceletStatus.STOCK)
        .order_by(Bracelet.bracelet_id)
    )
    bracelets = [{"id": b.id, "bracelet_id": f"{b.bracelet_id:04X}", "channel": b.channel,
                  "battery_interval_days": b.battery_interval_days} for b in stock]  # fmt: skip
    return {"clients_without_bracelet": clients, "bracelets_without_client": bracelets}
