"""A search's pages: the dispatcher's live map and the search team's page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from registry import searches, service
from registry.access import allowed
from ui.deps import App, SearchReader
from ui.ingest import web_receiver_id
from ui.maps import render_map
from ui.templating import render

router = APIRouter(include_in_schema=False)
TEAM_MAP_ZOOM = 16  # the team's page starts close in: streets and paths around the last point


@router.get("/searches/{search_id}")
async def search_page(request: Request, app: App, user: SearchReader, search_id: str) -> Response:
    view = await app.run(
        lambda session: searches.open_search_view(
            session, user.actor, search_id, f"dispatcher map of search {search_id}"
        )
    )
    lkp = view["last_known"]
    parts = render_map(lkp["lat_deg"], lkp["lon_deg"], app.base_map)
    return render(
        request,
        "search.html",
        user,
        view=view,
        map=parts,
        clinical=allowed(user.role, "read", "clinical"),
        co_response=allowed(user.role, "write", "co_response"),
        can_write=allowed(user.role, "write", "search"),
        ncic_categories=searches.NCIC_CATEGORIES,
    )


@router.get("/searches/{search_id}/team")
async def team_page(request: Request, app: App, user: SearchReader, search_id: str) -> Response:
    def work(session: Any) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        search = searches.get_search(session, search_id)
        # What a searcher needs to recognise the person: the public part of the record only.
        record = service.read_client(session, user.actor, search.client_id,
                                     reason=f"team page of search {search_id}")  # fmt: skip
        person = {k: record.get(k) for k in ("id", "has_photo", *service.PUBLIC_FIELDS)}
        roster = searches.team_roster(session, user.actor, search_id)
        return searches.search_summary(search), person, roster

    summary, person, roster = await app.run(work)
    lkp = summary["last_known"]
    parts = render_map(lkp["lat_deg"], lkp["lon_deg"], app.base_map, zoom=TEAM_MAP_ZOOM)
    mine = next((t for t in roster if user.username in t["members"]), None)
    # Every team's receivers, and its searchers' phones (their manual reports), by team name:
    # the map labels the other teams' receivers with their names.
    teams = {
        receiver_id: team["name"]
        for team in roster
        for receiver_id in (*team["receiver_ids"], *map(web_receiver_id, team["members"]))
    }
    return render(
        request,
        "team.html",
        user,
        search=summary,
        person=person,
        map=parts,
        receiver_id=web_receiver_id(user.username),
        team_name=None if mine is None else mine["name"],
        handhelds=[] if mine is None else mine["receiver_ids"],
        teams=teams,
    )
