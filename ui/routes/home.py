"""The home page (the searches and clients the user may see) and the program's lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from registry import bracelets, records, searches, service
from registry.access import allowed, may
from safetynet.errors import ForbiddenError
from ui.deps import App, PageUser
from ui.local_time import agency_zone
from ui.templating import render

router = APIRouter(include_in_schema=False)
PROGRAM_PAGE_DAYS = 30  # the program page lists batteries due within this many days


@router.get("/")
async def home(
    request: Request, app: App, user: PageUser, error: str = "", notice: str = ""
) -> Response:
    def work(session: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"searches": [], "clients": []}
        if allowed(user.role, "read", "search"):
            out["searches"] = searches.list_searches(session, user.actor)
        if may(user.role, "browse_clients"):
            out["clients"] = service.list_clients(session, user.actor)
        return out

    data = await app.run(work)
    return render(
        request,
        "home.html",
        user,
        can_open=allowed(user.role, "write", "search"),
        error=error,
        notice=notice,
        now=datetime.now(agency_zone(app.settings)).strftime("%Y-%m-%dT%H:%M"),
        **data,
    )


@router.get("/program")
async def program_page(
    request: Request, app: App, user: PageUser, error: str = "", notice: str = ""
) -> Response:
    if not may(user.role, "program_lists"):
        raise ForbiddenError("the program's lists are for program staff")

    def work(session: Any) -> dict[str, Any]:
        names = {
            c["id"]: f"{c['first_name']} {c['last_name']}"
            for c in service.list_clients(session, user.actor)
        }
        return {
            "due": service.batteries_due(session, user.actor, PROGRAM_PAGE_DAYS),
            "missed": service.missed_tests(session, user.actor),
            "inventory": service.bracelet_inventory(session, user.actor),
            "gaps": bracelets.program_gaps(session, user.actor),
            "deleted": records.deleted_clients(session, user.actor),
            "names": names,
        }

    data = await app.run(work)
    return render(request, "program.html", user, error=error, notice=notice, **data)
