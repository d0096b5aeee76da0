"""Home stations and their alerts: ``/api/v1/clients/{id}/home-station`` (register a receiver as
the client's home station, its minutes and quiet window), ``/api/v1/home-alerts`` (the open
wander alerts and station-silent notices) and one call that opens a search from a wander alert;
the page ``/home-alerts`` lists them with a button that does the same, and the WebSocket
``/api/v1/home-alerts/live`` tells it at once when an alert is raised or cleared. The fleet's sealed
sightings: ``/api/v1/searches/{id}/sightings`` (while the search is open, audited) and
``/api/v1/clients/{id}/sightings`` (refused while no search is open).

Included from :mod:`ui.routes.client_pages` (its router carries both of these routers).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from registry import home_stations, sightings
from registry.access import allowed
from registry.fields import RegistryInputError
from registry.notify import notifier_of
from safetynet.errors import ConflictError, ForbiddenError, NotFoundError
from ui.deps import ApiUser, App, Authed, PageUser, check_csrf, current_user, state_of
from ui.errors import status_of
from ui.local_time import agency_zone, local_text, machine_zone
from ui.routes.auth import FORM_EXPIRED
from ui.templating import render

api = APIRouter(tags=["home stations"])
pages = APIRouter(include_in_schema=False)
# How often a watching page's socket looks for alerts raised or cleared: by this server's ingest,
# another server process or cron's home-check alike (they share only the database).
LIVE_CHECK_S = 2.0


@api.put("/api/v1/clients/{client_id}/home-station")
async def put_home_station(
    app: App, user: ApiUser, client_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Register the client's home station (program staff, admins, the client's family; needs
    the client's consent to home-station alerts): ``receiver_id``, the home's ``lat_deg`` and
    ``lon_deg``, optionally ``wander_after_min`` (1–240; absent: chosen from the station's
    measured reception), ``quiet_from`` and ``quiet_until`` (hours:minutes, agency time)."""

    def work(session: Session) -> dict[str, Any]:
        home_stations.set_home_station(session, user.actor, client_id, body)
        found = home_stations.read_home_station(session, user.actor, client_id, datetime.now(UTC))
        assert found is not None
        return found

    return await app.run(work)


@api.get("/api/v1/clients/{client_id}/home-station")
async def get_home_station(app: App, user: ApiUser, client_id: str) -> dict[str, Any]:
    """The client's home station, the minutes in force, when it last reported and last heard
    the bracelet."""

    def work(session: Session) -> dict[str, Any]:
        found = home_stations.read_home_station(session, user.actor, client_id, datetime.now(UTC))
        if found is None:
            raise NotFoundError(f"client_id: client {client_id!r} has no home station")
        return found

    return await app.run(work)


@api.get("/api/v1/home-alerts")
async def get_home_alerts(app: App, user: ApiUser) -> list[dict[str, Any]]:
    """The open wander alerts (first) and station-silent notices, newest first."""
    return await app.run(lambda session: home_stations.open_alerts(session, user.actor))


@api.post("/api/v1/home-alerts/{alert_id}/search", status_code=201)
async def post_search_from_alert(app: App, user: ApiUser, alert_id: str) -> dict[str, Any]:
    """Open a search from a wander alert: the home as the last known point, the time the
    station last heard the bracelet as the time last seen (dispatchers and admins). Asked
    again, it answers with the same search."""

    def work(session: Session) -> dict[str, Any]:
        search = home_stations.search_from_alert(session, user.actor, alert_id)
        return {"search_id": search.id, "url": f"/searches/{search.id}"}

    return await app.run(work)


def station_view(session: Session, user: Authed, client_id: str) -> dict[str, Any] | None:
    """The client's home station as the record page shows it (times on the agency's clock)."""
    found = home_stations.read_home_station(session, user.actor, client_id, datetime.now(UTC))
    if found is None:
        return None
    zone = notifier_of(session).zone or machine_zone()  # the agency's, as the session carries it
    return {**found, "last_report_text": local_text(found["last_report_at"], zone),
            "last_heard_text": local_text(found["last_heard_at"], zone)}  # fmt: skip


def _number(value: str, whole: bool = False) -> Any:
    """A number typed in the form; the text itself when it is none (refused with its message)."""
    text = value.strip()
    if not text:
        return None
    try:
        return int(text) if whole else float(text)
    except ValueError:
        return text


@pages.post("/clients/{client_id}/home-station")
async def home_station_form(
    app: App, user: PageUser, client_id: str,
    receiver_id: Annotated[str, Form(max_length=200)] = "",
    lat_deg: Annotated[str, Form(max_length=40)] = "",
    lon_deg: Annotated[str, Form(max_length=40)] = "",
    wander_after_min: Annotated[str, Form(max_length=10)] = "",
    quiet_from: Annotated[str, Form(max_length=10)] = "",
    quiet_until: Annotated[str, Form(max_length=10)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """The record page's home-station form; back to the record with what was done or why not."""
    data = {"receiver_id": receiver_id, "lat_deg": _number(lat_deg),
            "lon_deg": _number(lon_deg), "wander_after_min": _number(wander_after_min, True),
            "quiet_from": quiet_from or None, "quiet_until": quiet_until or None}  # fmt: skip
    try:
        check_csrf(user, csrf, FORM_EXPIRED)
        await app.run(lambda s: home_stations.set_home_station(s, user.actor, client_id, data))
    except (RegistryInputError, ConflictError, ForbiddenError, NotFoundError) as err:
        return RedirectResponse(
            f"/clients/{client_id}?error={quote(str(err)[:300])}#home-station", 303
        )
    done = quote(f"Home station {receiver_id.strip()} saved.")
    return RedirectResponse(f"/clients/{client_id}?notice={done}#home-station", 303)


def _shown(rows: list[dict[str, Any]], zone: tzinfo) -> list[dict[str, Any]]:
    """The alerts as the page says them: times on the agency's clock, and how long ago."""
    now = datetime.now(UTC)
    out = []
    for row in rows:
        since = row["last_heard_at"] or row["raised_at"]
        ago_min = max(0, int((now - datetime.fromisoformat(since)).total_seconds() // 60))
        out.append({**row, "last_heard_text": local_text(row["last_heard_at"], zone),
                    "raised_text": local_text(row["raised_at"], zone),
                    "ago": "less than a minute" if ago_min < 1 else
                    f"{ago_min} minute{'s' if ago_min != 1 else ''}"})  # fmt: skip
    return out


async def _page(request: Request, app: App, user: Authed, error: str = "") -> Response:
    rows = await app.run(lambda session: home_stations.open_alerts(session, user.actor))
    return render(request, "home_alerts.html", user,
                  alerts=_shown(rows, agency_zone(app.settings)), error=error[:300],
                  can_search=allowed(user.role, "write", "search"))  # fmt: skip


@api.get("/api/v1/searches/{search_id}/sightings")
async def get_search_sightings(
    app: App, user: ApiUser, search_id: str, reason: Annotated[str, Query(max_length=500)] = ""
) -> list[dict[str, Any]]:
    """The fleet's sealed sightings of the search's client (the last first), while the search
    is open: dispatchers, clinicians and admins, with a reason (audited)."""
    return await app.run(
        lambda session: sightings.sightings_for_search(session, user.actor, search_id, reason)
    )


@api.get("/api/v1/clients/{client_id}/sightings")
async def get_client_sightings(
    app: App, user: ApiUser, client_id: str, reason: Annotated[str, Query(max_length=500)] = ""
) -> list[dict[str, Any]]:
    """The client's sightings through their open search; refused to every role while none is
    open (sealed)."""
    return await app.run(
        lambda session: sightings.sightings_of_client(session, user.actor, client_id, reason)
    )


def _brief(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a watching page is told of each open alert (the page reloads its list for the rest;
    a name only to say a new one aloud)."""
    return [{"id": r["id"], "kind": r["kind"], "name": r["name"],
             "search_id": r["search_id"]} for r in rows]  # fmt: skip


@api.websocket("/api/v1/home-alerts/live")
async def home_alerts_socket(websocket: WebSocket) -> None:
    """Tell a page the open home alerts at once, then again each time they change (one raised,
    cleared, or a search opened from one): ``{"type": "alerts", "alerts": [{id, kind, name,
    search_id}], "new": [ids raised since the last message]}``. The roles of the alerts page;
    a family hears only its own clients'."""
    user = await asyncio.to_thread(current_user, websocket)
    origin = websocket.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
        await websocket.close(code=1008, reason="cross-site socket refused")
        return
    if user is None:
        await websocket.close(code=1008, reason="log in to watch the home alerts")
        return
    app = state_of(websocket)

    async def read() -> list[dict[str, Any]] | None:
        try:
            return _brief(await app.run(lambda s: home_stations.open_alerts(s, user.actor)))
        except ForbiddenError:
            return None

    rows = await read()
    if rows is None:
        await websocket.close(code=1008, reason="log in as a role that may see home alerts")
        return
    await websocket.accept()

    async def until_closed() -> None:
        """Pages send nothing; this returns when the page (or the server's shutdown) closes."""
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    closed = asyncio.create_task(until_closed())
    seen = {r["id"] for r in rows}
    try:
        await websocket.send_json({"type": "alerts", "alerts": rows, "new": []})
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), LIVE_CHECK_S)
            if closed.done():
                break
            fresh = await read()
            if fresh is None:
                await websocket.close(code=1008, reason="no longer allowed to see home alerts")
                break
            if fresh != rows:
                new = [r["id"] for r in fresh if r["id"] not in seen]
                await websocket.send_json({"type": "alerts", "alerts": fresh, "new": new})
                rows, seen = fresh, seen | set(new)
    except WebSocketDisconnect:
        pass
    finally:
        closed.cancel()


@pages.get("/home-alerts")
async def home_alerts_page(request: Request, app: App, user: PageUser, error: str = "") -> Response:
    return await _page(request, app, user, error)


@pages.post("/home-alerts/{alert_id}/search")
async def search_from_alert_page(
    request: Request, app: App, user: PageUser, alert_id: str,
    csrf: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    try:
        check_csrf(user, csrf, FORM_EXPIRED)

        def work(session: Session) -> str:
            return home_stations.search_from_alert(session, user.actor, alert_id).id

        search_id = await app.run(work)
    except (ConflictError, ForbiddenError, NotFoundError) as err:
        page = await _page(request, app, user, str(err))
        page.status_code = status_of(err)
        return page
    return RedirectResponse(f"/searches/{search_id}", status_code=303)
