"""Logging in and out, and changing one's password.

- The login page has its own CSRF cookie, so a login cannot be forged.
- Failed logins are slowed per username *and* address (:mod:`ui.login_throttle`): a stranger's
  guesses slow the stranger, never the real user logging in from elsewhere. The address is the
  socket's peer, or ``X-Forwarded-For`` from a configured proxy only.
- A login opens a session held by the server (:mod:`ui.sessions`); logout ends it there, so a
  cookie kept or replayed afterwards reads nothing. The cookie is Secure when the request came
  over TLS, to this server or to a configured proxy (``X-Forwarded-Proto``).
- ``POST /api/v1/account/password`` changes the caller's password: every session of that user
  ends (other devices too) and this device gets a new one.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from registry.logins import password_of
from registry.user_sessions import set_password
from safetynet.errors import ForbiddenError, RateLimitError
from ui.bodies import STRICT_BODY
from ui.deps import ApiUser, App, MaybeUser, check_csrf, client_address_of, over_tls
from ui.errors import error_responses
from ui.security import hash_password, same_token, verify_password
from ui.sessions import SESSION_COOKIE
from ui.templating import render

router = APIRouter()
LOGIN_CSRF_COOKIE = "safetynet_login_csrf"
FORM_EXPIRED = "the form is out of date (CSRF check); reload the page and try again"
MIN_PASSWORD_CHARS = 12


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked when a username does not exist, so that the answer takes as long either way."""
    return hash_password(secrets.token_hex(16))


def safe_next(target: str) -> str:
    """Only local paths: never redirect a login to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _set_session_cookie(response: Response, request: Request, app: App, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=over_tls(request),
        max_age=int(app.sessions.max_age_s),
    )


async def _check_password(app: App, username: str, password: str) -> str | None:
    """The user id if ``password`` is ``username``'s (Argon2 in a worker thread)."""

    def check() -> str | None:
        with app.session() as session:
            found = password_of(session, username)
        if found is None:
            verify_password(_dummy_hash(), password)
            return None
        user_id, password_hash = found
        return user_id if verify_password(password_hash, password) else None

    return await asyncio.to_thread(check)


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/", error: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", None, login_csrf=token, next=safe_next(next), error=error
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=over_tls(request),
        max_age=3600,
    )
    return response


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    app: App,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    login_csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")

    def page(error: str, status: int = 200) -> Response:
        response = render(
            request, "login.html", None, login_csrf=cookie, next=safe_next(next), error=error
        )
        response.status_code = status
        return response

    if not same_token(login_csrf, cookie):
        return page("The login form expired; please try again.")
    address = client_address_of(request)
    # The failed-login counts may be a round trip (PostgreSQL or Redis): never on the loop.
    wait = await asyncio.to_thread(app.login_failures.retry_after, username, address)
    if wait > 0:
        response = page(
            f"Too many failed logins. Try again in {max(1, round(wait / 60))} minute(s).", 429
        )
        response.headers["Retry-After"] = f"{max(1.0, wait):.0f}"
        return response
    user_id = await _check_password(app, username, password)
    if user_id is None:
        await asyncio.to_thread(app.login_failures.failed, username, address)
        return page("Wrong username or password.", 401)
    await asyncio.to_thread(app.login_failures.succeeded, username, address)
    cookie_value, _ = await app.run(lambda session: app.sessions.open(session, user_id))
    done = RedirectResponse(safe_next(next), status_code=303)
    _set_session_cookie(done, request, app, cookie_value)
    done.delete_cookie(LOGIN_CSRF_COOKIE)
    return done


@router.post("/logout", include_in_schema=False)
async def logout(
    request: Request, app: App, user: MaybeUser, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    if user is not None:
        check_csrf(user, csrf, FORM_EXPIRED)
        cookie = request.cookies.get(SESSION_COOKIE)
        await app.run(lambda session: app.sessions.end(session, cookie))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


class PasswordChange(BaseModel):
    model_config = STRICT_BODY

    current_password: str = Field(max_length=1000)
    new_password: str = Field(min_length=MIN_PASSWORD_CHARS, max_length=1000)


@router.post(
    "/api/v1/account/password",
    tags=["account"],
    responses=error_responses(400, 401, 403, 413, 415, 422, 429),
)
async def change_password(
    request: Request, app: App, user: ApiUser, body: PasswordChange
) -> JSONResponse:
    """Change the caller's password (the current one is asked for again). Every session of the
    user ends, on every device; the answer carries this device's new session cookie."""
    address = client_address_of(request)
    wait = await asyncio.to_thread(app.login_failures.retry_after, user.username, address)
    if wait > 0:
        raise RateLimitError("too many wrong passwords; retry later", retry_after_s=wait)
    if await _check_password(app, user.username, body.current_password) != user.user_id:
        await asyncio.to_thread(app.login_failures.failed, user.username, address)
        raise ForbiddenError("current_password is wrong")
    await asyncio.to_thread(app.login_failures.succeeded, user.username, address)
    new_hash = await asyncio.to_thread(hash_password, body.new_password)

    def change(session: Session) -> tuple[str, str]:
        set_password(session, user.user_id, new_hash, datetime.now(UTC))
        return app.sessions.open(session, user.user_id)

    cookie_value, csrf = await app.run(change)
    response = JSONResponse({"status": "changed", "csrf": csrf})
    _set_session_cookie(response, request, app, cookie_value)
    return response
