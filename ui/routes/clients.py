"""Clients under ``/api/v1/clients``: the list, enrollment, a record as the caller's role may
see it, edits made from a version, and co-response encounters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from registry import records, service
from ui.deps import ApiUser, App

router = APIRouter(prefix="/api/v1/clients", tags=["clients"])


class ClientEdit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = Field(ge=1, le=2**31 - 1)
    changes: dict[str, Any]


@router.get("")
async def get_clients(app: App, user: ApiUser) -> list[dict[str, Any]]:
    return await app.run(lambda session: service.list_clients(session, user.actor))


@router.post("", status_code=201)
async def post_client(app: App, user: ApiUser, body: dict[str, Any]) -> dict[str, Any]:
    """Enrol a client from the enrollment form's fields (photo as ``photo_base64``)."""

    def work(session: Any) -> dict[str, Any]:
        client = service.enrol(session, user.actor, body, phone_region=app.settings.phone_region)
        return {"id": client.id, "version": client.version}

    return await app.run(work)


@router.get("/{client_id}")
async def get_client(
    app: App,
    user: ApiUser,
    client_id: str,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> dict[str, Any]:
    """The client as the caller's role may see it; reading clinical detail needs a reason."""
    return await app.run(
        lambda session: service.read_client(session, user.actor, client_id, reason)
    )


@router.patch("/{client_id}")
async def patch_client(app: App, user: ApiUser, client_id: str, body: ClientEdit) -> dict[str, Any]:
    """Change fields of a client made from ``version``; 409 if someone saved it since."""

    def work(session: Any) -> dict[str, Any]:
        client = records.update_client(session, user.actor, client_id, body.version, body.changes)
        return {"id": client.id, "version": client.version}

    return await app.run(work)


@router.get("/{client_id}/co-response")
async def get_co_response(
    app: App,
    user: ApiUser,
    client_id: str,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
) -> list[dict[str, Any]]:
    return await app.run(
        lambda session: records.read_co_response(session, user.actor, client_id, reason)
    )
