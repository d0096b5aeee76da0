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

from registry import bracelets, forms, records, service
from registry.access import allowed
from registry.fields import PLACE_KIND_LABELS, check_photo, label
from registry.models import CLINICAL_FIELDS, Client
from registry.service import MAX_PHOTO_BYTES, PossibleDuplicateError, RegistryInputError
from safetynet.errors import ConflictError, ForbiddenError, NotFoundError
from ui.deps import App, Authed, PageUser, check_csrf
from ui.errors import status_of
from ui.maps import render_map
from ui.routes import home_alerts
from ui.routes.auth import FORM_EXPIRED
from ui.templating import render

router = APIRouter(include_in_schema=False)
# A client's home station and its alerts (the API in the schema, the page not).
router.include_router(home_alerts.api, include_in_schema=True)
router.include_router(home_alerts.pages)
CAREGIVER_ROWS = 3
MAX_DIGITS = 9  # the most digits a whole-number field of the form is read with
PLACE_ROWS = 3
US_CENTRE = (39.8283, -98.5795)  # the map's start when no place or search is on file
ERROR_IN_URL_CHARS = 300  # an error carried back to the record page in its query string


FORM_PART_BYTES = 4 * 1024 * 1024  # a kept photo (base64 in a text field) may be this large
MAX_ROWS = 50  # caregivers or places a form may carry


async def _read_form(request: Request) -> Any:
    return await request.form(max_part_size=FORM_PART_BYTES)


def _row_count(form: Any, name: str, default: int) -> int:
    """How many rows of a list the page drew (it says so), so that none beyond is dropped."""
    value = form.get(name)
    if isinstance(value, str) and value.isdigit():
        return min(int(value), MAX_ROWS)
    return default


async def _form_data(request: Request) -> tuple[dict[str, Any], bytes | None, str, str]:
    """The enrollment form's fields as the registry takes them, the photo, the CSRF token, and
    what is wrong with the photo (empty when nothing), so that its message comes beside every
    other field's rather than alone first."""
    form = await _read_form(request)
    data: dict[str, Any] = {}
    shown = form.get("checkboxes_shown") == "1"  # the page's form: an absent box is unticked
    for field in forms.client_fields():
        value = form.get(field.name)
        if field.kind == "bool":  # a checkbox: absent when unticked, so the form says it drew them
            if value is None:
                data[field.name] = False if shown else bool(field.default)
            else:
                data[field.name] = value == "on"
        elif isinstance(value, str) and value.strip():
            # A whole number the registry then checks; anything else (or a number of more
            # digits than any field takes) goes on as text, refused there with its message.
            text = value.strip()
            number = field.kind == "int" and text.isdigit() and len(text) <= MAX_DIGITS
            data[field.name] = int(text) if number else value
    caregivers = []
    for i in range(_row_count(form, "caregiver_rows", CAREGIVER_ROWS)):
        cg_name, phone = form.get(f"caregiver_name_{i}"), form.get(f"caregiver_phone_{i}")
        if any(isinstance(x, str) and x.strip() for x in (cg_name, phone)):
            caregivers.append(
                {
                    "name": cg_name,
                    "phone": phone if isinstance(phone, str) else "",
                    "relation": form.get(f"caregiver_relation_{i}") or None,
                    "available_24_7": form.get(f"caregiver_247_{i}") == "on",
                }
            )
    data["caregivers"] = caregivers
    places = []
    for i in range(_row_count(form, "place_rows", PLACE_ROWS)):
        label, lat, lon = (form.get(f"place_{k}_{i}") for k in ("label", "lat", "lon"))
        notes = form.get(f"place_notes_{i}")
        if not any(isinstance(x, str) and x.strip() for x in (label, lat, lon, notes)):
            continue
        places.append({"kind": form.get(f"place_kind_{i}") or "frequented", "label": label,
                       "lat_deg": _number(lat), "lon_deg": _number(lon),
                       "notes": form.get(f"place_notes_{i}") or None})  # fmt: skip
    data["places"] = places
    photo = form.get("photo")
    photo_bytes = None
    photo_error = ""
    if isinstance(photo, UploadFile) or hasattr(photo, "read"):
        photo_bytes = await photo.read(MAX_PHOTO_BYTES + 1)
        size = getattr(photo, "size", None)
        if photo_bytes:
            try:
                check_photo(photo_bytes, size_bytes=size)  # the real size, not the bytes read
            except RegistryInputError as err:
                photo_error = err.errors.get("photo", str(err))
                photo_bytes = None
        else:
            photo_bytes = None
    kept = form.get("photo_kept")
    if photo_bytes is None and isinstance(kept, str) and kept:
        try:  # the photo chosen before a refusal, kept
            photo_bytes = check_kept(base64.b64decode(kept, validate=True))
        except (ValueError, RegistryInputError):
            photo_error = "The photo could not be kept; please choose it again."
    csrf = form.get("csrf")
    return data, photo_bytes, csrf if isinstance(csrf, str) else "", photo_error


def check_kept(photo: bytes) -> bytes:
    check_photo(photo)
    return photo


def _with_photo(err: RegistryInputError, photo_error: str) -> RegistryInputError:
    """The registry's refusal with the photo's message beside the others'."""
    if not photo_error:
        return err
    return RegistryInputError.of({**err.errors, "photo": photo_error})


def _number(value: Any) -> Any:
    """A coordinate typed in a form: a number, None when empty, else the text (refused later)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        return value


FIELD_NAMES = {"name": "caregiver_name", "relation": "caregiver_relation",
               "phone": "caregiver_phone", "label": "place_label", "lat_deg": "place_lat",
               "lon_deg": "place_lon", "kind": "place_kind", "notes": "place_notes"}  # fmt: skip


def form_errors(err: Exception) -> dict[str, str]:
    """The registry's messages keyed by the form's input names (``caregivers.1.phone`` is
    ``caregiver_phone_1``)."""
    out: dict[str, str] = {}
    for key, message in getattr(err, "errors", {}).items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] in ("caregivers", "places"):
            out[f"{FIELD_NAMES.get(parts[2], parts[2])}_{parts[1]}"] = message
        elif len(parts) == 2:
            out[("caregiver_name_" if parts[0] == "caregivers" else "place_label_") + parts[1]] = (
                message
            )
        else:
            out[key] = message
    return out


def _form_context(user: Authed, **extra: Any) -> dict[str, Any]:
    clinical_read = allowed(user.role, "read", "clinical")
    labels = {f: label(f) for f in CLINICAL_FIELDS}
    return {
        "values": {}, "errors": {}, "error": "", "notice": "", "duplicate": None,
        "photo_kept": None, "map": None, "bracelets": [], "stock": [],
        "clinical_write": allowed(user.role, "write", "clinical"),
        "clinical_read": clinical_read, "on_file": [], "on_file_keys": [],
        "clinical_fields": list(labels.items()), "rows": range(CAREGIVER_ROWS),
        "place_rows": range(PLACE_ROWS), "place_kinds": PLACE_KIND_LABELS,
        "today": date.today().isoformat(), "max_photo_bytes": MAX_PHOTO_BYTES,
        "audit_notice": False, **extra,
    }  # fmt: skip


def _back_to_record(client_id: str, err: Exception | None = None, notice: str = "") -> Response:
    """To the client's record page, with the error (or what was done) shown on it."""
    if err is None:
        tail = f"?notice={quote(notice)}#bracelet" if notice else ""
        return RedirectResponse(f"/clients/{client_id}{tail}", status_code=303)
    return RedirectResponse(
        f"/clients/{client_id}?error={quote(str(err)[:ERROR_IN_URL_CHARS])}", 303
    )


@router.get("/clients/new")
async def new_client_page(request: Request, app: App, user: PageUser) -> Response:
    if not allowed(user.role, "write", "public"):
        raise ForbiddenError(f"a {user.role.value} may not enrol clients")
    centre = await app.run(lambda session: _searches_centre(session, user))
    context = _form_context(user, client=None, map=_map_for(app, centre))
    return render(request, "client_form.html", user, **context)


def _refused(err: Exception, data: dict[str, Any], photo: bytes | None) -> dict[str, Any]:
    """What a refused form shows: everything typed, each message by its field, the photo kept
    (when it was one the registry takes), the possible duplicate to confirm."""
    out: dict[str, Any] = {"values": data, "error": str(err), "errors": form_errors(err)}
    if isinstance(err, PossibleDuplicateError):
        out["duplicate"] = {"message": str(err), "matches": err.matches}
        out["error"] = ""
    if photo is not None and "photo" not in out["errors"]:
        try:
            kind = check_photo(photo)
            out["photo_kept"] = {"b64": base64.b64encode(photo).decode(), "type": kind}
        except RegistryInputError:
            pass
    return out


@router.post("/clients/new")
async def new_client(request: Request, app: App, user: PageUser) -> Response:
    data: dict[str, Any] = {}
    photo: bytes | None = None
    try:
        form = await _read_form(request)
        confirmed = form.get("not_duplicate") == "on"
        data, photo, csrf, photo_error = await _form_data(request)
        check_csrf(user, csrf, FORM_EXPIRED)
        body = dict(data)
        if photo is not None:
            body["photo_base64"] = base64.b64encode(photo).decode()
        region = app.settings.phone_region

        def work(session: Session) -> str:
            try:
                client = service.enrol(session, user.actor, body, phone_region=region,
                                       confirmed_not_duplicate=confirmed)  # fmt: skip
            except RegistryInputError as err:
                raise _with_photo(err, photo_error) from None
            if photo_error:  # everything else was fine: rolled back, the photo's message alone
                raise RegistryInputError.of({"photo": photo_error})
            return str(client.id)

        client_id = await app.run(work)
    except (RegistryInputError, ForbiddenError, ConflictError) as err:
        centre = await app.run(lambda session: _searches_centre(session, user))
        context = _form_context(user, client=None, **_refused(err, data, photo))
        context["map"] = _map_for(app, centre)
        response = render(request, "client_form.html", user, **context)
        response.status_code = status_of(err)
        return response
    return RedirectResponse(f"/clients/{client_id}?notice=Enrolled.", status_code=303)


def _record_context(session: Session, user: Authed, client_id: str) -> dict[str, Any]:
    reason = "client record page"
    record = service.read_client(session, user.actor, client_id, reason=reason)
    out: dict[str, Any] = {"client": record, "values": record}
    out["on_file"] = [label(f).lower() for f in record.get("clinical_on_file", [])]
    out["on_file_keys"] = record.get("clinical_on_file", [])
    out["audit_notice"] = allowed(user.role, "read", "clinical")
    out["can_read_program"] = allowed(user.role, "read", "program")
    out["can_keep"] = user.role.value in ("admin", "program_staff")
    out["can_export"] = user.role.value == "admin"
    out["can_delete"] = user.role.value in ("admin", "program_staff", "family")
    if out["can_read_program"]:
        out["bracelets"] = [
            {"id": b.id, "bracelet_id": f"{b.bracelet_id:04X}", "channel": b.channel,
             "battery_installed_on": b.battery_installed_on}
            for b in service.bracelets_of(session, user.actor, client_id)
        ]  # fmt: skip
        row = session.get(Client, client_id)
        out["bracelet_warning"] = None if row is None else service.bracelet_warning(session, row)
        out["home_station"] = home_alerts.station_view(session, user, client_id)
        out["can_write_program"] = allowed(user.role, "write", "program")
    if out["can_keep"]:
        out["stock"] = bracelets.program_gaps(session, user.actor)["bracelets_without_client"]
    spot = next((p for p in record.get("places", []) if p.get("lat_deg") is not None), None)
    centre = (spot["lat_deg"], spot["lon_deg"]) if spot else _searches_centre(session, user)
    out["centre"] = centre
    out["home_guess"] = None if spot is None else (spot["lat_deg"], spot["lon_deg"])  # a start
    return out


def _searches_centre(session: Session, user: Authed) -> tuple[float, float] | None:
    """Where the newest search began, for those who may read searches (a family may not)."""
    return service.map_centre(session) if allowed(user.role, "read", "search") else None


def _map_for(app: App, centre: tuple[float, float] | None) -> Any:
    """The map places are picked on; none without a base map (a blank map shows nothing to
    pick from: the form then asks for the coordinates)."""
    if not app.base_map.has_tiles:
        return None
    lat, lon = centre or US_CENTRE
    return render_map(lat, lon, app.base_map, zoom=15 if centre else 4)


@router.get("/clients/{client_id}")
async def client_page(
    request: Request, app: App, user: PageUser, client_id: str, error: str = "",
    notice: str = "",
) -> Response:  # fmt: skip
    data = await app.run(lambda session: _record_context(session, user, client_id))
    context = _form_context(user, error=error, notice=notice, **data)
    context["map"] = _map_for(app, data["centre"])
    return render(request, "client_form.html", user, **context)


@router.post("/clients/{client_id}")
async def edit_client(request: Request, app: App, user: PageUser, client_id: str) -> Response:
    form = await _read_form(request)
    data: dict[str, Any] = {}
    photo: bytes | None = None
    try:
        data, photo, csrf, photo_error = await _form_data(request)
        check_csrf(user, csrf, FORM_EXPIRED)
        version = int(str(form.get("version", "0")))
        changes = dict(data)
        clinical_read = allowed(user.role, "read", "clinical")
        public_write = allowed(user.role, "write", "public")
        if not allowed(user.role, "write", "contacts"):
            changes.pop("caregivers", None)  # a clinician saves health detail, not contacts
            changes.pop("places", None)
        for field in forms.client_fields():
            may_write = allowed(user.role, "write", "clinical") if field.clinical else public_write
            if not may_write:
                changes.pop(field.name, None)
            elif (
                field.kind in ("text", "int")
                and field.name not in changes
                and (not field.clinical or clinical_read)
            ):
                changes[field.name] = None  # an emptied box clears the field
        region = app.settings.phone_region

        def work(session: Session) -> None:
            try:
                records.update_client(session, user.actor, client_id, version, changes,
                                      phone_region=region)  # fmt: skip
            except RegistryInputError as err:
                raise _with_photo(err, photo_error) from None
            if photo_error:  # rolled back: nothing saved until the photo is one we take
                raise RegistryInputError.of({"photo": photo_error})
            if photo is not None:
                service.set_photo(session, user.actor, client_id, photo)

        await app.run(work)
    except (RegistryInputError, ForbiddenError, ConflictError, ValueError) as err:
        page = await app.run(lambda session: _record_context(session, user, client_id))
        context = _form_context(user, **page)
        context.update(_refused(err, data, photo))
        if isinstance(err, ConflictError):
            # Saved by someone else meanwhile: what is on file now, with its version, so that
            # saving again can only be a change made to it (never the stale copy over theirs).
            context["values"] = page["client"]
            context["error"] = (
                "Someone else saved this record after you opened it. Nothing of yours was "
                "saved: below is the record as it is now; make your change again."
            )
            context["errors"] = {}
        else:
            context["values"] = {**page["client"], **data}
        context["map"] = _map_for(app, page["centre"])
        response = render(request, "client_form.html", user, **context)
        response.status_code = status_of(err) if not isinstance(err, ValueError) else 422
        return response
    return RedirectResponse(f"/clients/{client_id}?notice=Saved.", status_code=303)


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
    done: str,
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
    return _back_to_record(client_id, notice=done)


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
        f"Battery change on {changed_on:%Y-%m-%d} logged.",
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
        "Daily test logged: heard (pass)."
        if result == "pass"
        else "Daily test logged: NOT heard (fail). Call the program to check the bracelet.",
    )
