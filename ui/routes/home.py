"""The home page (the searches and clients the user may see) and the program's page: its lists,
and where its notices go with the forms that keep them (program admins add a target, send it a
test, remove it; program staff see the targets, masked, and the last notices sent).

A refused target comes back on the program page with what was typed kept and the message beside
its field (the URL named with its secrets hidden); that page is not stored by the browser, since
what was typed may hold a password.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from registry import bracelets, notify, records, searches, service
from registry.access import allowed, may
from registry.daily_notices import BATTERY_NOTICE_DAYS
from registry.fields import RegistryInputError
from safetynet.errors import ForbiddenError, NotFoundError
from ui.deps import App, Authed, PageUser, check_csrf
from ui.local_time import agency_zone
from ui.routes.auth import FORM_EXPIRED
from ui.templating import render

router = APIRouter(include_in_schema=False)
PROGRAM_PAGE_DAYS = 30  # the program page lists batteries due within this many days
BACK = "/program"
ERROR_IN_URL_CHARS = 400
Text = Annotated[str, Form(max_length=500)]
UrlText = Annotated[str, Form(max_length=notify.MAX_URL_CHARS + 100)]


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


def program_context(session: Session, user: Authed) -> dict[str, Any]:
    """What the program page shows: batteries due, daily tests missed, the inventory and its
    gaps, deleted records, and where notices go with the last ones sent."""
    names = {
        c["id"]: f"{c['first_name']} {c['last_name']}"
        for c in service.list_clients(session, user.actor)
    }
    addresses = notify.family_addresses(session)
    return {
        "due": service.batteries_due(session, user.actor, PROGRAM_PAGE_DAYS),
        "missed": service.missed_tests(session, user.actor),
        "inventory": service.bracelet_inventory(session, user.actor),
        "gaps": bracelets.program_gaps(session, user.actor),
        "deleted": records.deleted_clients(session, user.actor),
        "names": names,
        "notify": {
            "targets": notify.list_targets(session, user.actor),
            "sent": notify.recent_notices(session, user.actor),
            "scopes": [(s.value, label) for s, label in notify.SCOPE_LABELS.items()],
            "family_logins": sum(len(found) for found in addresses.values()),
            "can_edit": may(user.role, "notify_targets"),
            "battery_days": BATTERY_NOTICE_DAYS,
        },
        "notify_values": {"scope": "search", "label": "", "url": ""},
        "notify_errors": {},
    }


@router.get("/program")
async def program_page(
    request: Request, app: App, user: PageUser, error: str = "", notice: str = "",
    notify_error: str = "", notify_notice: str = "",
) -> Response:  # fmt: skip
    """The program page; ``notify_error`` and ``notify_notice`` are said in its notices section
    (where the form that made them is)."""
    if not may(user.role, "program_lists"):
        raise ForbiddenError("the program's lists are for program staff")
    data = await app.run(lambda session: program_context(session, user))
    return render(request, "program.html", user, error=error, notice=notice,
                  notify_error=notify_error, notify_notice=notify_notice, **data)  # fmt: skip


# --- where notices go ---------------------------------------------------------------------------
def _back(notice: str = "", error: str = "") -> Response:
    """Back to the program page's notices section, with what was done or why not said there."""
    if error:
        said = f"notify_error={quote(error[:ERROR_IN_URL_CHARS])}"
    else:
        said = f"notify_notice={quote(notice)}"
    return RedirectResponse(f"{BACK}?{said}#notices", 303)


@router.post("/program/notices/targets")
async def add_target(
    request: Request, app: App, user: PageUser, scope: Text = "", label: Text = "",
    url: UrlText = "", csrf: Text = "",
) -> Response:  # fmt: skip
    check_csrf(user, csrf, FORM_EXPIRED)

    def work(session: Session) -> str:
        return notify.add_target(session, user.actor, scope, label, url).label

    try:
        who = await app.run(work)
    except RegistryInputError as err:
        errors = err.errors or {"url": str(err)}

        def page(session: Session) -> dict[str, Any]:
            data = program_context(session, user)
            data["notify_values"] = {"scope": scope, "label": label, "url": url}
            data["notify_errors"] = errors
            return data

        data = await app.run(page)
        response = render(request, "program.html", user, error="", notice="", notify_error="",
                          notify_notice="", **data)  # fmt: skip
        response.status_code = 422
        response.headers["Cache-Control"] = "no-store"  # what was typed may hold a password
        return response
    return _back(notice=f"Notices now go to {who} as well.")


@router.post("/program/notices/targets/{target_id}/remove")
async def remove_target(app: App, user: PageUser, target_id: str, csrf: Text = "") -> Response:
    check_csrf(user, csrf, FORM_EXPIRED)
    try:
        target = await app.run(lambda s: notify.remove_target(s, user.actor, target_id).label)
    except NotFoundError as err:  # removed meanwhile (a role that may not: the 403 page)
        return _back(error=str(err))
    return _back(notice=f"{target} gets no more notices.")


@router.post("/program/notices/targets/{target_id}/test")
async def send_test_notice(app: App, user: PageUser, target_id: str, csrf: Text = "") -> Response:
    check_csrf(user, csrf, FORM_EXPIRED)
    try:
        target = await app.run(lambda s: notify.send_test(s, user.actor, target_id).label)
    except NotFoundError as err:  # removed meanwhile (a role that may not: the 403 page)
        return _back(error=str(err))
    return _back(notice=(
        f"A test notice is on its way to {target}. How it went shows under “Last notices "
        "sent” in a few seconds (reload the page).")
    )  # fmt: skip
