"""The forms of a record's keeping: a bracelet assigned, swapped or retired from the record page,
a bracelet added to the inventory from the program page, a record soft-deleted and restored,
and the admin's full export (a JSON file and a printable page, both audited).

Each form goes back to the page it came from, with the registry's message shown there when it
was refused (nothing changed).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from registry import bracelets, records, service
from registry.fields import PLACE_KIND_LABELS, RegistryInputError, label
from registry.models import CLINICAL_FIELDS
from safetynet.errors import SafetyNetError
from ui.deps import App, PageUser, check_csrf
from ui.routes.auth import FORM_EXPIRED
from ui.templating import render

router = APIRouter(include_in_schema=False)
ERROR_IN_URL_CHARS = 400
Text = Annotated[str, Form(max_length=500)]


def _back(url: str, err: Exception | None = None, notice: str = "") -> Response:
    if err is not None:
        return RedirectResponse(f"{url}?error={quote(str(err)[:ERROR_IN_URL_CHARS])}", 303)
    if notice:
        return RedirectResponse(f"{url}?notice={quote(notice)}", 303)
    return RedirectResponse(url, 303)


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text.strip() else None


async def _do(app: App, url: str, work: Any, notice: str = "") -> Response:
    try:
        await app.run(work)
    except (SafetyNetError, ValueError) as err:
        return _back(url, err)
    return _back(url, notice=notice)


@router.post("/clients/{client_id}/bracelet/assign")
async def assign(
    app: App, user: PageUser, client_id: str, bracelet_id: Text, installed_on: Text = "",
    csrf: Text = "",
) -> Response:  # fmt: skip
    check_csrf(user, csrf, FORM_EXPIRED)
    url = f"/clients/{client_id}"

    def work(session: Any) -> None:
        number = bracelets.parse_bracelet_id(bracelet_id)
        bracelets.assign_from_inventory(session, user.actor, number, client_id, _day(installed_on))

    return await _do(app, url, work, f"Bracelet {bracelet_id.upper()} assigned.")


@router.post("/clients/{client_id}/bracelet/swap")
async def swap(
    app: App, user: PageUser, client_id: str, bracelet_id: Text, reason: Text = "",
    retire_old: Text = "", csrf: Text = "",
) -> Response:  # fmt: skip
    check_csrf(user, csrf, FORM_EXPIRED)

    def work(session: Any) -> None:
        number = bracelets.parse_bracelet_id(bracelet_id)
        bracelets.swap_bracelet(session, user.actor, client_id, number,
                                retire_old=retire_old == "on", reason=reason)  # fmt: skip

    return await _do(app, f"/clients/{client_id}", work, f"Now wearing {bracelet_id.upper()}.")


@router.post("/clients/{client_id}/bracelet/retire")
async def retire_worn(
    app: App, user: PageUser, client_id: str, bracelet_id: Text, reason: Text = "",
    csrf: Text = "",
) -> Response:  # fmt: skip
    check_csrf(user, csrf, FORM_EXPIRED)

    def work(session: Any) -> None:
        number = bracelets.parse_bracelet_id(bracelet_id)
        worn = service.worn_bracelet(session, client_id)
        if worn is None or worn.bracelet_id != number:
            raise RegistryInputError.of({"bracelet_id": (
                f"Bracelet {bracelet_id} is not the one this client wears; nothing was "
                "retired.")})  # fmt: skip
        bracelets.retire_bracelet(session, user.actor, number, reason)

    return await _do(app, f"/clients/{client_id}", work, f"Bracelet {bracelet_id} retired.")


@router.post("/program/bracelets")
async def add(
    app: App, user: PageUser, bracelet_id: Text, channel: Text, battery_interval_days: Text = "180",
    csrf: Text = "",
) -> Response:  # fmt: skip
    check_csrf(user, csrf, FORM_EXPIRED)

    def work(session: Any) -> None:
        number = bracelets.parse_bracelet_id(bracelet_id)
        bracelets.add_bracelet(session, user.actor, number, _whole(channel, "channel"),
                               _whole(battery_interval_days, "battery_interval_days"))  # fmt: skip

    return await _do(app, "/program", work, f"Bracelet {bracelet_id.upper()} is in stock.")


@router.post("/program/bracelets/retire")
async def retire_stock(
    app: App, user: PageUser, bracelet_id: Text, reason: Text = "", csrf: Text = ""
) -> Response:
    check_csrf(user, csrf, FORM_EXPIRED)

    def work(session: Any) -> None:
        bracelets.retire_bracelet(
            session, user.actor, bracelets.parse_bracelet_id(bracelet_id), reason
        )

    return await _do(app, "/program", work, f"Bracelet {bracelet_id} retired.")


def _whole(text: str, field: str) -> int:
    if not text.strip().isdigit():
        raise RegistryInputError.of({field: f"Write a whole number here; “{text}” is not one."})
    return int(text)


@router.post("/clients/{client_id}/delete")
async def delete(
    app: App, user: PageUser, client_id: str, reason: Text = "", csrf: Text = ""
) -> Response:
    check_csrf(user, csrf, FORM_EXPIRED)
    try:
        await app.run(
            lambda session: records.soft_delete_client(session, user.actor, client_id, reason)
        )
    except SafetyNetError as err:
        return _back(f"/clients/{client_id}", err)
    back = "/program" if user.role.value in ("admin", "program_staff") else "/"
    return _back(back, notice="The record was deleted. Program staff can restore it.")


@router.post("/clients/{client_id}/restore")
async def restore(
    app: App, user: PageUser, client_id: str, reason: Text = "", csrf: Text = ""
) -> Response:
    check_csrf(user, csrf, FORM_EXPIRED)
    try:
        await app.run(
            lambda session: records.restore_client(session, user.actor, client_id, reason)
        )
    except SafetyNetError as err:
        return _back("/program", err)
    return _back(f"/clients/{client_id}", notice="The record was restored.")


def _export(app: App, user: Any, client_id: str, reason: str) -> Any:
    return app.run(lambda session: service.export_client(session, user.actor, client_id, reason))


@router.post("/clients/{client_id}/export")
async def export(
    request: Request, app: App, user: PageUser, client_id: str, reason: Text = "",
    as_file: Text = "", csrf: Text = "",
) -> Response:  # fmt: skip
    """The admin's full export, as a JSON file or a printable page (both audited)."""
    check_csrf(user, csrf, FORM_EXPIRED)
    try:
        record = await _export(app, user, client_id, reason)
    except SafetyNetError as err:
        return _back(f"/clients/{client_id}", err)
    if as_file == "json":
        name = f"safetynet-client-{client_id}-{datetime.now(UTC):%Y%m%d}.json"
        return Response(
            json.dumps(record, indent=2, ensure_ascii=False),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"',
                     "Cache-Control": "private, no-store"},
        )  # fmt: skip
    fields = [(f, label(f)) for f in ("date_of_birth", *service.PUBLIC_FIELDS[4:],
                                      *CLINICAL_FIELDS)]  # fmt: skip
    page = render(request, "export.html", user, record=record, reason=reason,
                  printed_at=datetime.now(UTC), labels=fields,
                  place_kinds=PLACE_KIND_LABELS)  # fmt: skip
    page.headers["Cache-Control"] = "private, no-store"  # the full record, health included
    return page
