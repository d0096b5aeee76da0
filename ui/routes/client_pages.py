"""A client's pages: enrollment, the record (edits, photo), and the battery changes and daily
tests a family or the program logs from it.

The form's fields are the registry's (:func:`registry.forms.client_fields`): a field added
there is read here without a second list.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from registry import forms, records, service
from registry.access import allowed
from registry.service import MAX_PHOTO_BYTES, RegistryInputError
from safetynet.errors import ConflictError, ForbiddenError, NotFoundError
from ui.deps import App, Authed, PageUser, check_csrf
from ui.errors import status_of
from ui.routes.auth import FORM_EXPIRED
from ui.templating import render

router = APIRouter(include_in_schema=False)
CAREGIVER_ROWS = 3
UNIT_WORDS = {"_cm": "cm"}  # how a form's message names the unit of a field's suffix
ERROR_IN_URL_CHARS = 300  # an error carried back to the record page in its query string


def _whole_number(name: str, value: str) -> int:
    if not value.strip().isdigit():
        unit = next((f" of {w}" for s, w in UNIT_WORDS.items() if name.endswith(s)), "")
        raise RegistryInputError(f"{name}: must be a whole number{unit}, got {value!r}")
    return int(value)


async def _form_data(request: Request) -> tuple[dict[str, Any], bytes | None, str]:
    """The enrollment form's fields as the registry takes them, the photo, and the CSRF token."""
    form = await request.form()
    data: dict[str, Any] = {}
    for field in forms.client_fields():
        value = form.get(field.name)
        if field.kind == "bool":  # a checkbox: absent when unticked, then the column's default
            data[field.name] = bool(field.default) if value is None else value == "on"
        elif isinstance(value, str) and value.strip():
            data[field.name] = _whole_number(field.name, value) if field.kind == "int" else value
    caregivers = []
    for i in range(CAREGIVER_ROWS):
        cg_name, phone = form.get(f"caregiver_name_{i}"), form.get(f"caregiver_phone_{i}")
        if isinstance(cg_name, str) and cg_name.strip():
            caregivers.append(
                {
                    "name": cg_name,
                    "phone": phone if isinstance(phone, str) else "",
                    "relation": form.get(f"caregiver_relation_{i}") or None,
                    "available_24_7": form.get(f"caregiver_247_{i}") == "on",
                }
            )
    data["caregivers"] = caregivers
    photo = form.get("photo")
    photo_bytes = None
    if isinstance(photo, UploadFile) or hasattr(photo, "read"):
        photo_bytes = await photo.read(MAX_PHOTO_BYTES + 1)  # type: ignore[union-attr]
        if not photo_bytes:
            photo_bytes = None
    csrf = form.get("csrf")
    return data, photo_bytes, csrf if isinstance(csrf, str) else ""


def _back_to_record(client_id: str, err: Exception | None = None) -> Response:
    """To the client's record page, with the error (if any) shown on it."""
    if err is None:
        return RedirectResponse(f"/clients/{client_id}", status_code=303)
    return RedirectResponse(
        f"/clients/{client_id}?error={quote(str(err)[:ERROR_IN_URL_CHARS])}", 303
    )


@router.get("/clients/new")
def new_client_page(request: Request, user: PageUser) -> Response:
    if not allowed(user.role, "write", "public"):
        raise ForbiddenError(f"a {user.role.value} may not enrol clients")
    return render(
        request,
        "client_form.html",
        user,
        client=None,
        error="",
        clinical_write=allowed(user.role, "write", "clinical"),
        rows=range(CAREGIVER_ROWS),
    )


@router.post("/clients/new")
async def new_client(request: Request, app: App, user: PageUser) -> Response:
    try:
        data, photo, csrf = await _form_data(request)
        check_csrf(user, csrf, FORM_EXPIRED)
        if photo is not None:
            data["photo_base64"] = base64.b64encode(photo).decode()
        client_id = await app.run(lambda session: service.enrol(session, user.actor, data).id)
    except (RegistryInputError, ForbiddenError) as err:
        response = render(
            request,
            "client_form.html",
            user,
            client=None,
            error=str(err),
            clinical_write=allowed(user.role, "write", "clinical"),
            rows=range(CAREGIVER_ROWS),
        )
        response.status_code = status_of(err)
        return response
    return RedirectResponse(f"/clients/{client_id}", status_code=303)


@router.get("/clients/{client_id}")
async def client_page(
    request: Request, app: App, user: PageUser, client_id: str, error: str = ""
) -> Response:
    def work(session: Session) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        record = service.read_client(session, user.actor, client_id, reason="client record page")
        bracelets = []
        if allowed(user.role, "read", "program"):
            bracelets = [
                {
                    "id": b.id,
                    "bracelet_id": f"{b.bracelet_id:04X}",
                    "channel": b.channel,
                    "battery_installed_on": b.battery_installed_on,
                }
                for b in service.bracelets_of(session, user.actor, client_id)
            ]
        return record, bracelets

    record, bracelets = await app.run(work)
    return render(
        request,
        "client_form.html",
        user,
        client=record,
        bracelets=bracelets,
        error=error,
        clinical_write=allowed(user.role, "write", "clinical"),
        rows=range(CAREGIVER_ROWS),
        today=date.today().isoformat(),
    )


@router.post("/clients/{client_id}")
async def edit_client(request: Request, app: App, user: PageUser, client_id: str) -> Response:
    form = await request.form()
    try:
        data, photo, csrf = await _form_data(request)
        check_csrf(user, csrf, FORM_EXPIRED)
        version = int(str(form.get("version", "0")))
        changes = {k: v for k, v in data.items() if k != "caregivers" or v}
        if not allowed(user.role, "write", "clinical"):
            for field in forms.client_fields():
                if field.clinical:
                    changes.pop(field.name, None)

        def work(session: Session) -> None:
            records.update_client(session, user.actor, client_id, version, changes)
            if photo is not None:
                service.set_photo(session, user.actor, client_id, photo)

        await app.run(work)
    except (RegistryInputError, NotFoundError, ForbiddenError, ConflictError, ValueError) as err:
        return _back_to_record(client_id, err)
    return _back_to_record(client_id)


@router.get("/clients/{client_id}/photo")
async def client_photo(app: App, user: PageUser, client_id: str) -> Response:
    photo = await app.run(lambda session: service.client_photo(session, user.actor, client_id))
    if photo is None:
        return Response(status_code=404)
    return Response(photo[0], media_type=photo[1], headers={"Cache-Control": "private, no-store"})


async def _log_for_bracelet(
    app: App,
    user: Authed,
    client_id: str,
    bracelet: str,
    csrf: str,
    record: Callable[[Session], None],
) -> Response:
    """Log something about one of the client's bracelets from its record page, then go back
    there (with the error, if any, shown on the page)."""
    check_csrf(user, csrf, FORM_EXPIRED)

    def work(session: Session) -> None:
        forms.check_bracelet_of(session, bracelet, client_id)
        record(session)

    try:
        await app.run(work)
    except (RegistryInputError, NotFoundError, ForbiddenError) as err:
        return _back_to_record(client_id, err)
    return _back_to_record(client_id)


@router.post("/clients/{client_id}/battery")
async def battery_change(
    app: App,
    user: PageUser,
    client_id: str,
    bracelet: Annotated[str, Form(max_length=32)],
    changed_on: Annotated[date, Form()],
    by: Annotated[str, Form(min_length=1, max_length=200)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return await _log_for_bracelet(
        app,
        user,
        client_id,
        bracelet,
        csrf,
        lambda session: service.record_battery_change(
            session, user.actor, bracelet, changed_on, by
        ),
    )


@router.post("/clients/{client_id}/test")
async def daily_test(
    app: App,
    user: PageUser,
    client_id: str,
    bracelet: Annotated[str, Form(max_length=32)],
    result: Annotated[str, Form(pattern="^(pass|fail)$")],
    by: Annotated[str, Form(min_length=1, max_length=200)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return await _log_for_bracelet(
        app,
        user,
        client_id,
        bracelet,
        csrf,
        lambda session: service.record_daily_test(
            session, user.actor, bracelet, datetime.now(UTC), result == "pass", by
        ),
    )
