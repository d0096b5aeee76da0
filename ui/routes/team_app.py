"""The team page as an installable app: its manifest, its service worker and its icons
(:mod:`ui.team_app`). None needs a login: they name no person, and a phone fetches the manifest
without its cookies."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import Response

from safetynet.errors import NotFoundError
from ui.team_app import (
    ICON_SIZES_PX,
    SEARCH_ID,
    service_worker_js,
    team_icon_png,
    team_manifest,
)

router = APIRouter(include_in_schema=False)
# The worker is asked for again on every visit (the browser compares it byte for byte): never
# from a stale HTTP cache. The icons change only with the server.
WORKER_CACHE = "no-cache"
ICON_CACHE = "public, max-age=86400"


def _search_id(search_id: str) -> str:
    if not SEARCH_ID.fullmatch(search_id):
        raise NotFoundError(f"search_id: no search {search_id[:80]!r}")
    return search_id


@router.get("/searches/{search_id}/team-sw.js")
async def team_worker(search_id: str) -> Response:
    """The service worker of the search's team pages (its scope: ``/searches/<id>/``)."""
    _search_id(search_id)
    return Response(
        service_worker_js(),
        media_type="text/javascript",
        headers={"Cache-Control": WORKER_CACHE},
    )


@router.get("/searches/{search_id}/team.webmanifest")
async def team_manifest_file(search_id: str) -> Response:
    """The web app manifest of the search's team page."""
    body = json.dumps(team_manifest(_search_id(search_id)))
    return Response(body, media_type="application/manifest+json")


@router.get("/icons/team-{size_px}.png")
async def team_icon(size_px: int) -> Response:
    """The app's icon, 192 or 512 pixels square."""
    if size_px not in ICON_SIZES_PX:
        raise NotFoundError(f"icon: sizes {', '.join(map(str, ICON_SIZES_PX))} px, got {size_px}")
    return Response(
        team_icon_png(size_px), media_type="image/png", headers={"Cache-Control": ICON_CACHE}
    )
