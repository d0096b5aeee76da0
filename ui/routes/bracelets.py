"""Bracelets and the record's keeping under ``/api/v1``: the inventory (add, retire), a client's
bracelet (assign, swap), the program's gaps, soft delete and restore, and the admin's full
export — thin handlers over :mod:`registry.bracelets` and :mod:`registry.records`.

A refusal answers with the registry's message: 422 for input (``errors`` by field), 409 for a
rule (a bracelet already worn, retired), 403 for a role that may not, 404 for no such client.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from registry import bracelets, records, service
from ui.deps import ApiUser, App

router = APIRouter(prefix="/api/v1", tags=["bracelets"])
BRACELET_ID = r"^(0[xX])?[0-9A-Fa-f]{1,4}$"


class _Body(BaseModel):
    """Strict JSON: no unknown keys, no ``true`` for a number, dates as ``YYYY-MM-DD`` text."""

    model_config = ConfigDict(extra="forbid", strict=True)


class NewBracelet(_Body):
    bracelet_id: str = Field(pattern=BRACELET_ID, description="as printed on it: four hex digits")
    channel: int = Field(ge=1, le=40)
    battery_interval_days: int = Field(default=180, ge=1, le=3650)


class Assignment(_Body):
    bracelet_id: str = Field(pattern=BRACELET_ID, description="a bracelet in stock")
    installed_on: date | None = Field(
        default=None, strict=False, description="the battery's date; today"
    )


class Swap(Assignment):
    retire_old: bool = Field(default=False, description="retire the old one (else: to stock)")
    reason: str = Field(default="", max_length=500)


class Reason(_Body):
    reason: str = Field(min_length=1, max_length=500, description="kept in the audit log")


def _row(b: Any) -> dict[str, Any]:
    return {"id": b.id, "bracelet_id": f"{b.bracelet_id:04X}", "channel": b.channel,
            "status": b.status.value, "client_id": b.client_id}  # fmt: skip


@router.post("/program/bracelets", status_code=201)
async def post_bracelet(app: App, user: ApiUser, body: NewBracelet) -> dict[str, Any]:
    """Put a new bracelet into the inventory (in stock); 409 if its ID is already there."""
    number = bracelets.parse_bracelet_id(body.bracelet_id)
    return await app.run(lambda session: _row(bracelets.add_bracelet(
        session, user.actor, number, body.channel, body.battery_interval_days)))  # fmt: skip


@router.post("/program/bracelets/{bracelet_id}/retire")
async def retire_bracelet(
    app: App,
    user: ApiUser,
    bracelet_id: Annotated[str, Path(pattern=BRACELET_ID, description="as printed: 3A7F")],
    body: Reason,
) -> dict[str, Any]:
    """Take a bracelet out of service for good; its wearer, if any, is left without one."""
    number = bracelets.parse_bracelet_id(bracelet_id)
    return await app.run(
        lambda session: _row(bracelets.retire_bracelet(session, user.actor, number, body.reason))
    )


@router.get("/program/gaps")
async def get_gaps(app: App, user: ApiUser) -> dict[str, list[dict[str, Any]]]:
    """Clients without a bracelet (with the warning a search for them would carry) and
    bracelets in stock that no one wears."""
    return await app.run(lambda session: bracelets.program_gaps(session, user.actor))


@router.get("/program/deleted")
async def get_deleted(app: App, user: ApiUser) -> list[dict[str, Any]]:
    """Soft-deleted records that can still be restored, with the day each will be purged."""
    return await app.run(lambda session: records.deleted_clients(session, user.actor))


@router.post("/clients/{client_id}/bracelet")
async def assign_bracelet(
    app: App, user: ApiUser, client_id: str, body: Assignment
) -> dict[str, Any]:
    """Put a bracelet from the inventory on a client who wears none."""
    number = bracelets.parse_bracelet_id(body.bracelet_id)
    return await app.run(lambda session: _row(bracelets.assign_from_inventory(
        session, user.actor, number, client_id, body.installed_on)))  # fmt: skip


@router.post("/clients/{client_id}/bracelet/swap")
async def swap_bracelet(app: App, user: ApiUser, client_id: str, body: Swap) -> dict[str, Any]:
    """Replace the client's bracelet with one from the inventory (the old one to stock, or
    retired with ``retire_old``)."""
    number = bracelets.parse_bracelet_id(body.bracelet_id)
    return await app.run(lambda session: _row(bracelets.swap_bracelet(
        session, user.actor, client_id, number, body.installed_on, body.retire_old,
        body.reason)))  # fmt: skip


@router.post("/clients/{client_id}/delete")
async def delete_client(app: App, user: ApiUser, client_id: str, body: Reason) -> dict[str, Any]:
    """Soft-delete a record (program staff, admins, the client's family): hidden at once,
    restorable until purged."""
    await app.run(
        lambda session: records.soft_delete_client(session, user.actor, client_id, body.reason)
    )
    return {"id": client_id, "deleted": True}


@router.post("/clients/{client_id}/restore")
async def restore_client(app: App, user: ApiUser, client_id: str, body: Reason) -> dict[str, Any]:
    """Restore a soft-deleted record (program staff and admins)."""
    await app.run(
        lambda session: records.restore_client(session, user.actor, client_id, body.reason)
    )
    return {"id": client_id, "deleted": False}


@router.get("/clients/{client_id}/export")
async def export_client(
    app: App,
    user: ApiUser,
    client_id: str,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
) -> dict[str, Any]:
    """The client's full record (admin only; audited with ``reason``): every field, caregivers,
    places, enrollments, bracelet with its logs, searches, and the photo as base64."""
    return await app.run(
        lambda session: service.export_client(session, user.actor, client_id, reason)
    )
