"""The JSON API under ``/api/v1``: ingest, searches, clients, program lists, receiver tokens.

Logged-in calls use the session cookie, and unsafe ones the ``X-CSRF-Token`` header; ingest
takes a receiver's bearer token too. Every handler is a thin shell over the registry's service
layer (roles, validation and audit live there) and the live hub.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from registry import records, searches, service
from registry.access import allowed
from registry.models import Role, SearchTeam
from registry.models import User as UserRow
from safetynet.reports import report_to_obj
from ui.app import (
    ApiError,
    Authed,
    current_user,
    in_transaction,
    receiver_of_token,
    require_user,
    state_of,
)
from ui.exports import to_geojson, to_gpx, to_kml
from ui.ingest import MAX_BODY_BYTES, BodyError, Sender, ingest, split_body
from ui.security import create_receiver_token, same_token

router = APIRouter(prefix="/api/v1")
User = Annotated[Authed, Depends(require_user)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestAnswer(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


class OpenSearch(_Body):
    client_id: str = Field(min_length=1, max_length=32)
    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)
    last_seen: datetime
    clothing: str | None = Field(default=None, max_length=2000)


class Team(_Body):
    name: str = Field(min_length=1, max_length=100)
    receiver_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]] = Field(
        default_factory=list, max_length=50
    )
    members: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50, description="usernames of the searchers on the team"
    )


class Found(_Body):
    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)
    condition: str = Field(min_length=1, max_length=2000)


class StatusChange(_Body):
    status: Literal["active", "found", "suspended", "closed"]
    version: int = Field(ge=1)
    found: Found | None = None


class Note(_Body):
    text: str = Field(min_length=1, max_length=4000)


class MissingPerson(_Body):
    agency: str = Field(min_length=1, max_length=200)
    report_number: str = Field(min_length=1, max_length=100)
    ncic_category: str = Field(max_length=50)
    entered_in_ncic: bool = False


class CoResponse(_Body):
    encounter_on: date
    kind: Literal["911-response", "follow-up"]
    clinician: str = Field(min_length=1, max_length=200)
    outcome: str | None = Field(default=None, max_length=4000)


class ClientEdit(_Body):
    version: int = Field(ge=1)
    changes: dict[str, Any]


class NewToken(_Body):
    receiver_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    label: str | None = Field(default=None, max_length=200)


@router.get("/health", tags=["meta"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post(
    "/reports",
    tags=["ingest"],
    response_model=IngestAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "maxItems": 1000, "items": {"type": "object"}}
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
    responses={
        401: {"description": "bad or missing token"},
        413: {"description": "too large"},
        429: {"description": "slow down (Retry-After)"},
    },
)
async def post_reports(request: Request) -> Any:
    """Store field reports (spec/reports.md): idempotent by (receiver_id, seq), partial
    acceptance; the reports feed the live searches at once."""
    app = state_of(request)
    receiver_id = await asyncio.to_thread(
        receiver_of_token, app, request.headers.get("authorization")
    )
    if receiver_id is not None:
        sender = Sender(receiver_id=receiver_id)
    else:
        user = current_user(request)
        if user is None:
            raise ApiError(
                401,
                "a receiver token (Authorization: Bearer) or a login is needed",
                {"WWW-Authenticate": "Bearer"},
            )
        if not same_token(request.headers.get("x-csrf-token", ""), user.csrf):
            raise ApiError(403, "missing or wrong CSRF token (X-CSRF-Token header)")
        sender = Sender(user_id=user.user_id, username=user.username, role=user.role)
    key = receiver_id or f"user:{sender.user_id}"
    wait = app.ingest_limit.retry_after(key)
    if wait > 0:
        raise ApiError(
            429,
            "too many requests; retry later",
            {"Retry-After": f"{wait:.0f}" if wait >= 1 else "1"},
        )
    app.ingest_limit.hit(key)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, f"body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
    body = bytearray()
    async for piece in request.stream():  # a chunked body has no length: count as it comes
        body.extend(piece)
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"body over the limit of {MAX_BODY_BYTES} bytes")
    try:
        items = split_body(bytes(body), request.headers.get("content-type", ""))
    except BodyError as err:
        raise ApiError(err.status, str(err)) from None

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            result = ingest(session, sender, items)
        fixes = app.hub.ingest(result.stored)
        if fixes or any(r.kind == "bearing" for r in result.stored):
            with app.transaction() as session:
                for search_id, found in fixes.items():
                    last = found[-1]  # the newest fix of this batch goes to the log
                    searches.add_event(
                        session, None, search_id, "fix", report_to_obj(last), at=last.t
                    )
        return result.answer()

    return await asyncio.to_thread(work)


# --- searches ------------------------------------------------------------------------------------
@router.get("/searches", tags=["searches"])
async def get_searches(request: Request, user: User, active: bool = False) -> list[dict[str, Any]]:
    return await in_transaction(
        request, lambda session: searches.list_searches(session, user.actor, active_only=active)
    )


@router.post("/searches", tags=["searches"], status_code=201)
async def post_search(request: Request, user: User, body: OpenSearch) -> dict[str, Any]:
    app = state_of(request)
    last_seen = body.last_seen if body.last_seen.tzinfo else body.last_seen.replace(tzinfo=UTC)

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            search = service.open_search(
                session,
                user.actor,
                body.client_id,
                body.lat_deg,
                body.lon_deg,
                last_seen,
                body.clothing,
            )
            out = searches.search_summary(search)
        app.hub.state(out["id"])  # live from now on: reports feed it before anyone watches
        return out

    return await asyncio.to_thread(work)


@router.get("/searches/{search_id}", tags=["searches"])
async def get_search(
    request: Request,
    user: User,
    search_id: str,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> dict[str, Any]:
    """The search with its client (clinical detail for the roles allowed, audited) and teams."""
    return await in_transaction(
        request, lambda session: searches.open_search_view(session, user.actor, search_id, reason)
    )


@router.get("/searches/{search_id}/state", tags=["searches"])
async def get_state(request: Request, user: User, search_id: str) -> dict[str, Any]:
    """What the live map shows now: fix, track, bearings, heard/not heard, receivers."""
    app = state_of(request)
    return await asyncio.to_thread(_snapshot, app, user, search_id)


def _snapshot(app: Any, user: Authed, search_id: str) -> dict[str, Any]:
    if not allowed(user.role, "read", "search"):
        raise ApiError(403, f"a {user.role.value} may not read searches")
    state = app.hub.state(search_id)
    if state is None:
        raise ApiError(404, f"no active search {search_id!r}")
    return state.snapshot()  # type: ignore[no-any-return]


@router.get("/searches/{search_id}/probability", tags=["searches"])
async def get_probability(request: Request, user: User, search_id: str) -> dict[str, Any]:
    """Where the person probably is: the heat image and its bounds, the smallest areas holding
    50 % and 90 %, and for each team the next listening point most likely to hear the bracelet."""
    app = state_of(request)

    def work() -> dict[str, Any]:
        _snapshot(app, user, search_id)  # the same checks as the live state
        out = app.hub.probability(search_id)
        if out is None:
            raise ApiError(404, f"no active search {search_id!r}")
        return out

    return await asyncio.to_thread(work)


@router.get("/searches/{search_id}/events", tags=["searches"])
async def get_events(
    request: Request,
    user: User,
    search_id: str,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    app = state_of(request)

    def work() -> Any:
        with app.transaction() as session:
            searches.get_search(session, search_id)
            return searches.recent_events(session, user.actor, search_id, limit)

    return await asyncio.to_thread(work)


@router.post("/searches/{search_id}/teams", tags=["searches"])
async def post_team(request: Request, user: User, search_id: str, body: Team) -> dict[str, str]:
    app = state_of(request)

    def work() -> None:
        with app.transaction() as session:
            members = []
            for name in body.members:
                row = session.scalar(select(UserRow).where(UserRow.username == name))
                if row is None:
                    raise service.RegistryInputError(f"members: no user {name!r}")
                members.append(row.id)
            searches.assign_team(session, user.actor, search_id, body.name, body.receiver_ids)
            team = session.scalar(
                select(SearchTeam).where(
                    SearchTeam.search_id == search_id, SearchTeam.name == body.name.strip()
                )
            )
            assert team is not None
            team.member_user_ids = members
        app.hub.forget(search_id)
        app.hub.state(search_id)  # rebuilt at once with the team's receivers

    await asyncio.to_thread(work)
    return {"status": "ok"}


@router.post("/searches/{search_id}/status", tags=["searches"])
async def post_status(
    request: Request, user: User, search_id: str, body: StatusChange
) -> dict[str, Any]:
    app = state_of(request)

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            found = None if body.found is None else body.found.model_dump()
            search = searches.set_status(
                session, user.actor, search_id, body.status, body.version, found
            )
            out = searches.search_summary(search)
        app.hub.forget(search_id)
        return out

    return await asyncio.to_thread(work)


@router.post("/searches/{search_id}/notes", tags=["searches"], status_code=201)
async def post_note(request: Request, user: User, search_id: str, body: Note) -> dict[str, Any]:
    app = state_of(request)

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            event = searches.add_note(session, user.actor, search_id, body.text)
            out = {
                "id": event.id,
                "at": event.at.isoformat(),
                "kind": event.kind,
                "body": event.body,
                "user_id": event.user_id,
            }
        app.hub.publish(search_id, {"type": "event", "event": out})
        return out

    return await asyncio.to_thread(work)


@router.post("/searches/{search_id}/missing-person-reports", tags=["searches"], status_code=201)
async def post_missing_person(
    request: Request, user: User, search_id: str, body: MissingPerson
) -> dict[str, str]:
    app = state_of(request)

    def work() -> str:
        with app.transaction() as session:
            return searches.link_missing_person(session, user.actor, search_id, body.model_dump())

    return {"id": await asyncio.to_thread(work)}


@router.post("/searches/{search_id}/co-response", tags=["searches"], status_code=201)
async def post_co_response(
    request: Request, user: User, search_id: str, body: CoResponse
) -> dict[str, str]:
    """Link a co-response encounter to the search's client (clinician and admin only)."""
    app = state_of(request)

    def work() -> str:
        with app.transaction() as session:
            search = searches.get_search(session, search_id)
            data = body.model_dump(mode="json")
            return records.link_co_response(session, user.actor, search.client_id, data, search_id)

    return {"id": await asyncio.to_thread(work)}


@router.get("/searches/{search_id}/export.{fmt}", tags=["searches"])
async def get_export(
    request: Request, user: User, search_id: str, fmt: Literal["geojson", "kml", "gpx"]
) -> Response:
    """The search for CalTopo/SARTopo and GIS: GeoJSON, KML or GPX."""
    app = state_of(request)

    def work() -> tuple[dict[str, Any], dict[str, Any]]:
        with app.transaction() as session:
            search = searches.get_search(session, search_id)
            # _snapshot checks that the role may read searches.
            return searches.search_summary(search), _snapshot(app, user, search_id)

    summary, snap = await asyncio.to_thread(work)
    writer, mime = {
        "geojson": (to_geojson, "application/geo+json"),
        "kml": (to_kml, "application/vnd.google-earth.kml+xml"),
        "gpx": (to_gpx, "application/gpx+xml"),
    }[fmt]
    return Response(
        writer(summary, snap),
        media_type=mime,
        headers={"Content-Disposition": f'attachment; filename="search-{search_id}.{fmt}"'},
    )


# --- clients -------------------------------------------------------------------------------------
@router.get("/clients", tags=["clients"])
async def get_clients(request: Request, user: User) -> list[dict[str, Any]]:
    return await in_transaction(request, lambda session: service.list_clients(session, user.actor))


@router.post("/clients", tags=["clients"], status_code=201)
async def post_client(request: Request, user: User, body: dict[str, Any]) -> dict[str, Any]:
    """Enrol a client from the enrollment form's fields (photo as ``photo_base64``)."""
    app = state_of(request)

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            client = service.enrol(session, user.actor, body)
            return {"id": client.id, "version": client.version}

    return await asyncio.to_thread(work)


@router.get("/clients/{client_id}", tags=["clients"])
async def get_client(
    request: Request,
    user: User,
    client_id: str,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> dict[str, Any]:
    """The client as the caller's role may see it; reading clinical detail needs a reason."""
    return await in_transaction(
        request, lambda session: service.read_client(session, user.actor, client_id, reason)
    )


@router.patch("/clients/{client_id}", tags=["clients"])
async def patch_client(
    request: Request, user: User, client_id: str, body: ClientEdit
) -> dict[str, Any]:
    """Change fields of a client made from ``version``; 409 if someone saved it since."""
    app = state_of(request)

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            client = records.update_client(
                session, user.actor, client_id, body.version, body.changes
            )
            return {"id": client.id, "version": client.version}

    return await asyncio.to_thread(work)


@router.get("/clients/{client_id}/co-response", tags=["clients"])
async def get_co_response(
    request: Request,
    user: User,
    client_id: str,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
) -> list[dict[str, Any]]:
    return await in_transaction(
        request, lambda session: records.read_co_response(session, user.actor, client_id, reason)
    )


# --- program -------------------------------------------------------------------------------------
@router.get("/program/batteries-due", tags=["program"])
async def get_batteries_due(
    request: Request, user: User, within_days: Annotated[int, Query(ge=0, le=3650)] = 14
) -> list[dict[str, Any]]:
    return await in_transaction(
        request, lambda session: service.batteries_due(session, user.actor, within_days)
    )


@router.get("/program/missed-tests", tags=["program"])
async def get_missed_tests(request: Request, user: User) -> list[dict[str, Any]]:
    return await in_transaction(request, lambda session: service.missed_tests(session, user.actor))


@router.get("/program/bracelets", tags=["program"])
async def get_bracelets(request: Request, user: User) -> list[dict[str, Any]]:
    return await in_transaction(
        request, lambda session: service.bracelet_inventory(session, user.actor)
    )


# --- receivers -----------------------------------------------------------------------------------
@router.post("/receivers/tokens", tags=["receivers"], status_code=201)
async def post_token(request: Request, user: User, body: NewToken) -> dict[str, str]:
    """A new receiver token (admin only); the token is shown once, only its hash is kept."""
    if user.role is not Role.ADMIN:
        raise ApiError(403, "only an admin may create receiver tokens")
    token = await in_transaction(
        request, lambda session: create_receiver_token(session, body.receiver_id, body.label)
    )
    return {"receiver_id": body.receiver_id, "token": token}
