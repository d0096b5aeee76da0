"""The pages: login, home, the dispatcher's live map, the search team's page, enrollment and
client records, the program's lists.

Templates are Jinja2 with autoescaping (a name like ``<img src=x onerror=...>`` is shown as
text); the pages' scripts build the DOM with ``textContent`` only, and the Content-Security-Policy
refuses any script without the page's nonce. Forms carry the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import searches, service
from registry.access import allowed
from registry.models import Bracelet, Role, User
from registry.service import MAX_PHOTO_BYTES, RegistryInputError
from ui.app import ApiError, Authed, current_user, in_transaction, state_of
from ui.ingest import web_receiver_id
from ui.maps import render_map
from ui.security import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    hash_password,
    same_token,
    verify_password,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


def _with_nonce(html: str, nonce: str) -> Markup:
    """folium's head (our own, no user data) with the page's nonce on its inline scripts."""
    return Markup(html.replace("<script>", f'<script nonce="{escape(nonce)}">'))


templates.env.filters["with_nonce"] = _with_nonce
LOGIN_CSRF_COOKIE = "safetynet_login_csrf"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked when a username does not exist, so that the answer takes as long either way."""
    return hash_password(secrets.token_hex(16))


def _page(request: Request, name: str, user: Authed | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "csrf": user.csrf if user else "",
            "nonce": request.state.nonce,
            "roles": Role,
            **context,
        },
    )


def _user(request: Request) -> Authed:
    user = current_user(request)
    if user is None:
        raise ApiError(401, "log in first")
    return user


def _search_reader(request: Request) -> Authed:
    user = _user(request)
    if not allowed(user.role, "read", "search"):
        raise ApiError(403, f"a {user.role.value} may not open searches")
    return user


def _check_csrf(user: Authed, token: str) -> None:
    if not same_token(token, user.csrf):
        raise ApiError(403, "the form is out of date (CSRF check); reload the page and try again")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


# --- login ---------------------------------------------------------------------------------------
@router.get("/login")
def login_page(request: Request, next: str = "/", error: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = _page(
        request, "login.html", None, login_csrf=token, next=_safe_next(next), error=error
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=3600,
    )
    return response


def _safe_next(target: str) -> str:
    """Only local paths: never redirect a login to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    login_csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    app = state_of(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not same_token(login_csrf, cookie):
        return _page(
            request,
            "login.html",
            None,
            login_csrf=cookie,
            next=_safe_next(next),
            error="The login form expired; please try again.",
        )
    client_ip = request.client.host if request.client else "?"
    keys = (f"user:{username.lower()}", f"ip:{client_ip}")
    wait = max(app.login_failures.retry_after(k) for k in keys)
    if wait > 0:
        response = _page(
            request,
            "login.html",
            None,
            login_csrf=cookie,
            next=_safe_next(next),
            error=f"Too many failed logins. Try again in {wait / 60:.0f} minutes.",
        )
        response.status_code = 429
        response.headers["Retry-After"] = f"{wait:.0f}"
        return response

    def check() -> str | None:
        with app.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None or not user.active:
                verify_password(_dummy_hash(), password)
                return None
            return user.id if verify_password(user.password_hash, password) else None

    user_id = await asyncio.to_thread(check)
    if user_id is None:
        for k in keys:
            app.login_failures.hit(k)
        response = _page(
            request,
            "login.html",
            None,
            login_csrf=cookie,
            next=_safe_next(next),
            error="Wrong username or password.",
        )
        response.status_code = 401
        return response
    app.login_failures.reset(keys[0])
    cookie_value, _ = app.sessions.issue(user_id)
    done = RedirectResponse(_safe_next(next), status_code=303)
    done.set_cookie(
        SESSION_COOKIE,
        cookie_value,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=SESSION_MAX_AGE_S,
    )
    done.delete_cookie(LOGIN_CSRF_COOKIE)
    return done


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    user = current_user(request)
    if user is not None:
        _check_csrf(user, csrf)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- home ----------------------------------------------------------------------------------------
@router.get("/")
async def home(request: Request, error: str = "") -> Response:
    user = _user(request)
    app = state_of(request)

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            out: dict[str, Any] = {"searches": [], "clients": []}
            if allowed(user.role, "read", "search"):
                out["searches"] = searches.list_searches(session, user.actor)
            if user.role is not Role.SEARCHER:
                out["clients"] = service.list_clients(session, user.actor)
            return out

    data = await asyncio.to_thread(work)
    can_open = allowed(user.role, "write", "search")
    return _page(
        request,
        "home.html",
        user,
        can_open=can_open,
        error=error,
        now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"),
        **data,
    )


# --- searches ------------------------------------------------------------------------------------
@router.get("/searches/{search_id}")
async def search_page(request: Request, search_id: str) -> Response:
    user = _search_reader(request)
    app = state_of(request)
    view = await in_transaction(
        request,
        lambda session: searches.open_search_view(
            session, user.actor, search_id, f"dispatcher map of search {search_id}"
        ),
    )
    lkp = view["last_known"]
    parts = render_map(lkp["lat_deg"], lkp["lon_deg"], app.base_map)
    return _page(
        request,
        "search.html",
        user,
        view=view,
        map=parts,
        clinical=allowed(user.role, "read", "clinical"),
        co_response=allowed(user.role, "write", "co_response"),
        can_write=allowed(user.role, "write", "search"),
    )


@router.get("/searches/{search_id}/team")
async def team_page(request: Request, search_id: str) -> Response:
    user = _search_reader(request)
    app = state_of(request)
    summary = await in_transaction(
        request, lambda session: searches.search_summary(searches.get_search(session, search_id))
    )
    lkp = summary["last_known"]
    parts = render_map(lkp["lat_deg"], lkp["lon_deg"], app.base_map, zoom=16)
    return _page(
        request,
        "team.html",
        user,
        search=summary,
        map=parts,
        receiver_id=web_receiver_id(user.username),
    )


class Heard(BaseModel):
    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)


@router.post(
    "/api/v1/searches/{search_id}/heard", include_in_schema=True, tags=["searches"], status_code=201
)
async def heard_here(request: Request, search_id: str, body: Heard) -> dict[str, Any]:
    """A searcher heard the bracelet by ear or on a scanner here (no signal strength)."""
    user = _user(request)
    _check_csrf(user, request.headers.get("x-csrf-token", ""))
    if user.role not in (Role.SEARCHER, Role.DISPATCHER, Role.ADMIN):
        raise ApiError(403, "only searchers and dispatchers report what they heard")
    app = state_of(request)

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            search = searches.get_search(session, search_id)
            if search.status.value != "active":
                raise ApiError(409, "the search is not active")
            body_obj = {
                "heard": True,
                "lat_deg": body.lat_deg,
                "lon_deg": body.lon_deg,
                "receiver_id": web_receiver_id(user.username),
                "by": user.username,
            }
            event = searches.add_event(session, None, search_id, "heard", body_obj)
            return {"id": event.id, "at": event.at.isoformat(), "kind": "heard", "body": body_obj}

    out = await asyncio.to_thread(work)
    app.hub.publish(search_id, {"type": "event", "event": out})
    return out


# --- clients -------------------------------------------------------------------------------------
CAREGIVER_ROWS = 3


async def _form_data(request: Request) -> tuple[dict[str, Any], bytes | None, str]:
    """The enrollment form's fields as the registry takes them, the photo, and the CSRF token."""
    form = await request.form()
    data: dict[str, Any] = {}
    text_fields = (
        "first_name",
        "last_name",
        "nickname",
        "date_of_birth",
        "build",
        "hair",
        "eyes",
        "scars_marks",
        "language",
        "useful_phrases",
        "diagnoses",
        "medications",
        "triggers",
        "approach_and_calm",
        "mobility_aids",
    )
    for name in text_fields:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            data[name] = value
    height = form.get("height_cm")
    if isinstance(height, str) and height.strip():
        if not height.strip().isdigit():
            raise RegistryInputError(f"height_cm: must be a whole number of cm, got {height!r}")
        data["height_cm"] = int(height)
    data["glasses"] = form.get("glasses") == "on"
    data["verbal"] = form.get("verbal", "on") == "on"
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


@router.get("/clients/new")
def new_client_page(request: Request) -> Response:
    user = _user(request)
    if not allowed(user.role, "write", "public"):
        raise ApiError(403, f"a {user.role.value} may not enrol clients")
    return _page(
        request,
        "client_form.html",
        user,
        client=None,
        error="",
        clinical_write=allowed(user.role, "write", "clinical"),
        rows=range(CAREGIVER_ROWS),
    )


@router.post("/clients/new")
async def new_client(request: Request) -> Response:
    user = _user(request)
    app = state_of(request)
    try:
        data, photo, csrf = await _form_data(request)
        _check_csrf(user, csrf)
        if photo is not None:
            data["photo_base64"] = base64.b64encode(photo).decode()

        def work() -> str:
            with app.transaction() as session:
                return service.enrol(session, user.actor, data).id

        client_id = await asyncio.to_thread(work)
    except (RegistryInputError, service.ForbiddenError) as err:
        response = _page(
            request,
            "client_form.html",
            user,
            client=None,
            error=str(err),
            clinical_write=allowed(user.role, "write", "clinical"),
            rows=range(CAREGIVER_ROWS),
        )
        response.status_code = 422 if isinstance(err, RegistryInputError) else 403
        return response
    return RedirectResponse(f"/clients/{client_id}", status_code=303)


@router.get("/clients/{client_id}")
async def client_page(request: Request, client_id: str, error: str = "") -> Response:
    user = _user(request)
    app = state_of(request)

    def work() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        with app.transaction() as session:
            record = service.read_client(
                session, user.actor, client_id, reason="client record page"
            )
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

    record, bracelets = await asyncio.to_thread(work)
    return _page(
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
async def edit_client(request: Request, client_id: str) -> Response:
    from registry import records

    user = _user(request)
    app = state_of(request)
    form = await request.form()
    try:
        data, photo, csrf = await _form_data(request)
        _check_csrf(user, csrf)
        version = int(str(form.get("version", "0")))
        changes = {k: v for k, v in data.items() if k != "caregivers" or v}
        if not allowed(user.role, "write", "clinical"):
            for field in (
                "diagnoses",
                "medications",
                "triggers",
                "approach_and_calm",
                "mobility_aids",
            ):
                changes.pop(field, None)

        def work() -> None:
            with app.transaction() as session:
                records.update_client(session, user.actor, client_id, version, changes)
                if photo is not None:
                    service.set_photo(session, user.actor, client_id, photo)

        await asyncio.to_thread(work)
    except (RegistryInputError, service.ForbiddenError, service.ConflictError, ValueError) as err:
        return RedirectResponse(f"/clients/{client_id}?error={_quote(str(err))}", 303)
    return RedirectResponse(f"/clients/{client_id}", status_code=303)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:300])


@router.get("/clients/{client_id}/photo")
async def client_photo(request: Request, client_id: str) -> Response:
    user = _user(request)
    photo = await in_transaction(
        request, lambda session: service.client_photo(session, user.actor, client_id)
    )
    if photo is None:
        return Response(status_code=404)
    return Response(photo[0], media_type=photo[1], headers={"Cache-Control": "private, no-store"})


async def _log_for_bracelet(
    request: Request,
    client_id: str,
    bracelet: str,
    csrf: str,
    record: Callable[[Session, Authed], None],
) -> Response:
    """Log something about one of the client's bracelets from its record page, then go back
    there (with the error, if any, shown on the page)."""
    user = _user(request)
    _check_csrf(user, csrf)
    app = state_of(request)

    def work() -> None:
        with app.transaction() as session:
            _bracelet_of(session, bracelet, client_id)
            record(session, user)

    try:
        await asyncio.to_thread(work)
    except (RegistryInputError, service.ForbiddenError) as err:
        return RedirectResponse(f"/clients/{client_id}?error={_quote(str(err))}", 303)
    return RedirectResponse(f"/clients/{client_id}", status_code=303)


@router.post("/clients/{client_id}/battery")
async def battery_change(
    request: Request,
    client_id: str,
    bracelet: Annotated[str, Form(max_length=32)],
    changed_on: Annotated[date, Form()],
    by: Annotated[str, Form(min_length=1, max_length=200)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return await _log_for_bracelet(
        request,
        client_id,
        bracelet,
        csrf,
        lambda session, user: service.record_battery_change(
            session, user.actor, bracelet, changed_on, by
        ),
    )


@router.post("/clients/{client_id}/test")
async def daily_test(
    request: Request,
    client_id: str,
    bracelet: Annotated[str, Form(max_length=32)],
    result: Annotated[str, Form(pattern="^(pass|fail)$")],
    by: Annotated[str, Form(min_length=1, max_length=200)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return await _log_for_bracelet(
        request,
        client_id,
        bracelet,
        csrf,
        lambda session, user: service.record_daily_test(
            session, user.actor, bracelet, datetime.now(UTC), result == "pass", by
        ),
    )


def _bracelet_of(session: Any, bracelet_pk: str, client_id: str) -> None:
    row = session.get(Bracelet, bracelet_pk)
    if row is None or row.client_id != client_id:
        raise RegistryInputError("bracelet: not a bracelet of this client")


# --- program -------------------------------------------------------------------------------------
@router.get("/program")
async def program_page(request: Request) -> Response:
    user = _user(request)
    if user.role not in (Role.PROGRAM_STAFF, Role.ADMIN):
        raise ApiError(403, "the program's lists are for program staff")
    app = state_of(request)

    def work() -> dict[str, Any]:
        with app.transaction() as session:
            names = {
                c["id"]: f"{c['first_name']} {c['last_name']}"
                for c in service.list_clients(session, user.actor)
            }
            return {
                "due": service.batteries_due(session, user.actor, 30),
                "missed": service.missed_tests(session, user.actor),
                "inventory": service.bracelet_inventory(session, user.actor),
                "names": names,
            }

    return _page(request, "program.html", user, **(await asyncio.to_thread(work)))
