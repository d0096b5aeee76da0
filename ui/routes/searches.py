"""Searches under ``/api/v1/searches``: open one, its view, live state, probability map, log,
teams, status, notes, links, exports, "heard here", and the live push over a WebSocket."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from registry import records, searches, service
from registry.access import allowed, may
from registry.service import as_utc
from safetynet.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    UnavailableError,
)
from ui import cot
from ui.clock import report_window
from ui.deps import ApiUser, App, AppState, Authed, current_user, state_of
from ui.exports import to_geojson, to_gpx, to_kml
from ui.ingest import web_receiver_id
from ui.local_time import agency_zone, as_aware
from ui.tak import export_events, person_on_tak

router = APIRouter(prefix="/api/v1/searches", tags=["searches"])


def _as_text(value: Any) -> Any:
    """A time or date in a body is RFC 3339 text; a number (seconds since when?) is refused."""
    if not isinstance(value, str | datetime | date):
        raise ValueError("must be RFC 3339 text, such as 2026-12-02T03:10:00-05:00")
    return value


TextTime = Annotated[datetime, BeforeValidator(_as_text), Field(strict=False)]
TextDate = Annotated[date, BeforeValidator(_as_text), Field(strict=False)]


HEARD_KEY = r"^[A-Za-z0-9_-]{8,64}$"
# A heard report's key is checked and stored under this lock (one process, as SQLite runs) and
# the search row's (PostgreSQL, any number of processes): the same key sent twice at once is
# still stored once.
_heard_lock = threading.Lock()


class _Body(BaseModel):
    """A request body taken as JSON says it: no unknown keys, no ``false`` for a number, no
    ``"3"`` for an integer (strict), times and dates as RFC 3339 text."""

    model_config = ConfigDict(extra="forbid", strict=True)


class OpenSearch(_Body):
    client_id: str = Field(min_length=1, max_length=32)
    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)
    last_seen: TextTime = Field(
        description="when last seen; a time without an offset is the agency's local time "
        "(SAFETYNET_TIME_ZONE)",
    )
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
    version: int = Field(ge=1, le=2**31 - 1)
    found: Found | None = None


class Note(_Body):
    text: str = Field(min_length=1, max_length=4000)


class MissingPerson(_Body):
    agency: str = Field(min_length=1, max_length=200)
    report_number: str = Field(min_length=1, max_length=100)
    ncic_category: str = Field(max_length=50)
    entered_in_ncic: bool = False


class CoResponse(_Body):
    encounter_on: TextDate
    kind: Literal["911-response", "follow-up"]
    clinician: str = Field(min_length=1, max_length=200)
    outcome: str | None = Field(default=None, max_length=4000)


class Acknowledgement(_Body):
    key: str = Field(
        min_length=1,
        max_length=100,
        pattern=f"^(?:{searches.ALERT_KEY.pattern})$",
        description="the alert: heard, first-fix, found or silent:<receiver id>:<seconds since "
        "1970 of its last report>",
    )


class Heard(_Body):
    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)
    t: TextTime | None = Field(
        default=None,
        description="when it was heard (a phone without coverage sends it later); a time "
        "without an offset is the agency's local time; default: now",
    )
    key: str | None = Field(
        default=None,
        pattern=HEARD_KEY,
        description="the sender's id for this report (8 to 64 letters, digits, - or _): sent "
        "again, it is stored once (200 with the first)",
    )


@router.get("")
async def get_searches(app: App, user: ApiUser, active: bool = False) -> list[dict[str, Any]]:
    return await app.run(
        lambda session: searches.list_searches(session, user.actor, active_only=active)
    )


@router.post("", status_code=201)
async def post_search(app: App, user: ApiUser, body: OpenSearch) -> dict[str, Any]:
    # A time without an offset is the agency's wall clock (what the home page's field holds).
    last_seen = as_aware(body.last_seen, agency_zone(app.settings))

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
            # What the dispatcher must know before counting on the radio (no tested bracelet).
            out["warnings"] = service.search_warnings(session, user.actor, body.client_id)
        app.hub.state(out["id"])  # live from now on: reports feed it before anyone watches
        return out

    return await asyncio.to_thread(work)


@router.get("/{search_id}")
async def get_search(
    app: App,
    user: ApiUser,
    search_id: str,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> dict[str, Any]:
    """The search with its client (clinical detail for the roles allowed, audited) and teams."""
    return await app.run(
        lambda session: searches.open_search_view(session, user.actor, search_id, reason)
    )


def _snapshot(app: AppState, user: Authed, search_id: str) -> dict[str, Any]:
    if not allowed(user.role, "read", "search"):
        raise ForbiddenError(f"a {user.role.value} may not read searches")
    snapshot = app.hub.snapshot(search_id)
    if snapshot is None:
        raise NotFoundError(f"no active search {search_id!r}")
    return snapshot


@router.get("/{search_id}/state")
async def get_state(app: App, user: ApiUser, search_id: str) -> dict[str, Any]:
    """What the live map shows now: fix, track, bearings, heard/not heard, receivers."""
    return await asyncio.to_thread(_snapshot, app, user, search_id)


@router.get("/{search_id}/probability")
async def get_probability(app: App, user: ApiUser, search_id: str) -> dict[str, Any]:
    """Where the person probably is: the heat image and its bounds, the smallest areas holding
    50 % and 90 %, and for each team the next listening point most likely to hear the bracelet."""

    def work() -> dict[str, Any]:
        _snapshot(app, user, search_id)  # the same checks as the live state
        out = app.hub.probability(search_id)
        if out is None:
            raise NotFoundError(f"no active search {search_id!r}")
        return out

    return await asyncio.to_thread(work)


@router.get("/{search_id}/events")
async def get_events(
    app: App,
    user: ApiUser,
    search_id: str,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    def work(session: Any) -> list[dict[str, Any]]:
        searches.get_search(session, search_id)
        return searches.recent_events(session, user.actor, search_id, limit)

    return await app.run(work)


@router.post("/{search_id}/teams")
async def post_team(app: App, user: ApiUser, search_id: str, body: Team) -> dict[str, str]:
    def work() -> None:
        with app.transaction() as session:
            searches.assign_team(session, user.actor, search_id, body.name, body.receiver_ids)
            searches.set_team_members(session, user.actor, search_id, body.name, body.members)
        app.hub.forget(search_id)
        app.hub.state(search_id)  # rebuilt at once with the team's receivers

    await asyncio.to_thread(work)
    return {"status": "ok"}


@router.post("/{search_id}/status")
async def post_status(
    app: App, user: ApiUser, search_id: str, body: StatusChange
) -> dict[str, Any]:
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


@router.post("/{search_id}/notes", status_code=201)
async def post_note(app: App, user: ApiUser, search_id: str, body: Note) -> dict[str, Any]:
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


@router.get("/{search_id}/alerts/acknowledged")
async def get_acknowledged(app: App, user: ApiUser, search_id: str) -> list[dict[str, Any]]:
    """The search's alerts a dispatcher acknowledged (the map shows them to no one again)."""
    return await app.run(
        lambda session: searches.acknowledged_alerts(session, user.actor, search_id)
    )


@router.post("/{search_id}/alerts/acknowledged", status_code=201)
async def post_acknowledged(
    app: App, user: ApiUser, search_id: str, body: Acknowledgement, response: Response
) -> dict[str, Any]:
    """Acknowledge one of the map's alerts for every dispatcher of the search, in its log
    (201; 200 with the first acknowledgement when someone was quicker)."""

    def work() -> tuple[dict[str, Any], bool]:
        # Two dispatchers clicking at once: one acknowledgement (the search's row locked on
        # PostgreSQL, this process's lock on SQLite, as for "heard here").
        with _heard_lock, app.transaction() as session:
            search = searches.get_search(session, search_id)
            session.refresh(search, with_for_update=True)
            return searches.acknowledge_alert(session, user.actor, search_id, body.key)

    out, new = await asyncio.to_thread(work)
    if new:
        app.hub.publish(search_id, {"type": "event", "event": out})
    else:
        response.status_code = 200
    return out


@router.post("/{search_id}/missing-person-reports", status_code=201)
async def post_missing_person(
    app: App, user: ApiUser, search_id: str, body: MissingPerson
) -> dict[str, str]:
    link_id = await app.run(
        lambda session: searches.link_missing_person(
            session, user.actor, search_id, body.model_dump()
        )
    )
    return {"id": link_id}


@router.post("/{search_id}/co-response", status_code=201)
async def post_co_response(
    app: App, user: ApiUser, search_id: str, body: CoResponse
) -> dict[str, str]:
    """Link a co-response encounter to the search's client (clinician and admin only)."""

    def work(session: Any) -> str:
        search = searches.get_search(session, search_id)
        data = body.model_dump(mode="json")
        return records.link_co_response(session, user.actor, search.client_id, data, search_id)

    return {"id": await app.run(work)}


@router.get("/{search_id}/export.{fmt}")
async def get_export(
    app: App,
    user: ApiUser,
    search_id: str,
    fmt: Literal["geojson", "kml", "gpx", "cot", "zip"],
) -> Response:
    """The search for CalTopo/SARTopo and GIS (GeoJSON, KML, GPX) and for TAK: its current
    picture as Cursor-on-Target events (``cot``, ``<events>`` around them) or as a TAK data
    package a TAK user imports (``zip``, with its manifest)."""
    if fmt in ("cot", "zip"):
        return await asyncio.to_thread(_tak_export, app, user, search_id, fmt)

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


def _tak_export(app: AppState, user: Authed, search_id: str, fmt: str) -> Response:
    """The CoT export or the TAK data package of an active search (what the TAK feed sends)."""
    with app.transaction() as session:
        searches.get_search(session, search_id)
        _snapshot(app, user, search_id)  # the role may read searches; the search is active
        label, photo = person_on_tak(session, app.settings, search_id)
    now = datetime.now(UTC)
    events = export_events(app.hub, search_id, label, now, photo)
    if events is None:
        raise NotFoundError(f"no active search {search_id!r}")
    if fmt == "cot":
        body, mime = cot.document(events), "application/xml"
    else:
        name = f"SafetyNet search {search_id}"
        body = cot.data_package(name, cot.uid_of(search_id, "package"), events)
        mime = "application/zip"
    return Response(
        body,
        media_type=mime,
        headers={"Content-Disposition": f'attachment; filename="search-{search_id}.{fmt}"'},
    )


@router.post(
    "/{search_id}/heard",
    status_code=201,
    responses={200: {"description": "the same key came before from this login: the first"}},
)
async def heard_here(
    app: App, user: ApiUser, search_id: str, body: Heard, response: Response
) -> dict[str, Any]:
    """A searcher heard the bracelet by ear or on a scanner here (no signal strength): 201; 200
    with the first when the same ``key`` came before from this login (a phone's retry)."""
    if not may(user.role, "send_field_reports"):
        raise ForbiddenError("only searchers and dispatchers report what they heard")
    receiver_id = web_receiver_id(user.username)
    now = datetime.now(UTC)
    at = now if body.t is None else as_aware(body.t, agency_zone(app.settings))

    def work() -> tuple[dict[str, Any], bool]:
        with _heard_lock, app.transaction() as session:
            search = searches.get_search(session, search_id)
            session.refresh(search, with_for_update=True)
            if search.status.value != "active":
                raise ConflictError("the search is not active")
            late_or_early = report_window(now, [as_utc(search.last_known_at)]).problem(at)
            if late_or_early is not None:
                raise InputError(f"t: {late_or_early}")
            if body.key is not None:
                for before in searches.recent_events(
                    session, user.actor, search_id, 10_000, kinds=("heard",)
                ):
                    if (before["body"].get("key"), before["body"].get("receiver_id")) == (
                        body.key,
                        receiver_id,
                    ):
                        return before, False
            body_obj = {
                "heard": True,
                "lat_deg": body.lat_deg,
                "lon_deg": body.lon_deg,
                "receiver_id": receiver_id,
                "by": user.username,
            }
            if body.key is not None:
                body_obj["key"] = body.key
            event = searches.add_event(session, None, search_id, "heard", body_obj, at=at)
            out = {"id": event.id, "at": as_utc(event.at).isoformat(), "kind": "heard",
                   "body": body_obj, "user_id": None}  # fmt: skip
            return out, True

    out, new = await asyncio.to_thread(work)
    if new:
        app.hub.publish(search_id, {"type": "event", "event": out})
    else:
        response.status_code = 200
    return out


@router.websocket("/{search_id}/live")
async def live_socket(websocket: WebSocket, search_id: str) -> None:
    """Push a search's reports, fixes and events to a page: a snapshot, then every change.

    Several processes (:mod:`ui.shared_hub`): every message carries its event ``id``, and a page
    that reconnects with ``?after=<the last id it saw>`` is sent what it missed instead of a
    snapshot (a snapshot when that is no longer kept)."""
    user = await asyncio.to_thread(current_user, websocket)
    origin = websocket.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
        await websocket.close(code=1008, reason="cross-site socket refused")
        return
    if user is None or not allowed(user.role, "read", "search"):
        await websocket.close(code=1008, reason="log in as a role that may watch searches")
        return
    after_text = websocket.query_params.get("after")
    if after_text is not None and not (
        after_text.isascii() and after_text.isdigit() and len(after_text) <= 18
    ):
        await websocket.close(code=1008, reason="after must be an event id (digits)")
        return
    app = state_of(websocket)
    try:
        live = await asyncio.to_thread(app.hub.is_live, search_id)
    except UnavailableError:
        await websocket.close(code=1013, reason="rebuilding the live state; try again shortly")
        return
    if not live:
        await websocket.close(code=1008, reason="no active search with this id")
        return
    await websocket.accept()
    subscription = app.hub.subscribe(search_id)

    async def until_closed() -> None:
        """Pages send nothing; this returns when the page (or the server's shutdown) closes."""
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    async def snapshot() -> dict[str, Any] | None:
        return await asyncio.to_thread(app.hub.snapshot, search_id)

    closed = asyncio.create_task(until_closed())
    # Messages up to ``shown`` are already on the page (resumed: every kind; after a snapshot:
    # what the snapshot draws).
    shown, resumed = -1, False
    try:
        missed = None
        if after_text is not None:
            missed = await asyncio.to_thread(app.hub.since, search_id, int(after_text))
            if missed is not None and any(m["type"] in ("resync", "changed") for m in missed):
                missed = None
        if missed is None:
            first = await snapshot()
            await websocket.send_json(first if first is not None else {"type": "ended"})
            shown = int((first or {}).get("id", -1))
        else:
            resumed, shown = True, int(after_text or -1)
            for message in missed:
                await websocket.send_json(message)
                shown = message["id"]
        while True:
            getter = asyncio.create_task(subscription.get())
            done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                getter.cancel()
                break
            message = getter.result()
            event_id = message.get("id")
            if (
                event_id is not None
                and event_id <= shown
                and (resumed or message["type"] in _DRAWN)
            ):
                continue
            if message["type"] in ("resync", "changed"):
                fresh = await snapshot()
                if fresh is None:
                    await websocket.send_json({"type": "ended"})
                    break
                await websocket.send_json(fresh)
                shown, resumed = int(fresh.get("id", -1)), False
                continue
            await websocket.send_json(message)
            if resumed and event_id is not None:
                shown = event_id
    except UnavailableError:
        await websocket.close(code=1013, reason="rebuilding the live state; try again shortly")
    except WebSocketDisconnect:
        pass
    finally:
        closed.cancel()
        app.hub.unsubscribe(search_id, subscription)


_DRAWN = ("report", "fix", "smoothed", "batch")  # what a snapshot already shows
