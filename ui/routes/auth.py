"""Logging in and out: the login page (with its own CSRF cookie, so a login cannot be forged),
failed logins rate-limited per username and per address, the signed session cookie."""

from __future__ import annotations

import asyncio
import secrets
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from registry.logins import password_of
from ui.deps import App, MaybeUser, check_csrf
from ui.security import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    hash_password,
    same_token,
    verify_password,
)
from ui.templating import render

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "safetynet_login_csrf"
FORM_EXPIRED = "the form is out of date (CSRF check); reload the page and try again"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked when a username does not exist, so that the answer takes as long either way."""
    return hash_password(secrets.token_hex(16))


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(target: str) -> str:
    """Only local paths: never redirect a login to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
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
        secure=_secure(request),
        max_age=3600,
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    app: App,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    login_csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not same_token(login_csrf, cookie):
        return render(
            request,
            "login.html",
            None,
            login_csrf=cookie,
            next=safe_next(next),
            error="The login form expired; please try again.",
        )
    client_ip = request.client.host if request.client else "?"
    keys = (f"user:{username.lower()}", f"ip:{client_ip}")
    wait = max(app.login_failures.retry_after(k) for k in keys)
    if wait > 0:
        response = render(
            request,
            "login.html",
            None,
            login_csrf=cookie,
            next=safe_next(next),
            error=f"Too many failed logins. Try again in {wait / 60:.0f} minutes.",
        )
        response.status_code = 429
        response.headers["Retry-After"] = f"{wait:.0f}"
        return response

    def check() -> str | None:
        with app.session() as session:
            found = password_of(session, username)
        if found is None:
            verify_password(_dummy_hash(), password)
            return None
        user_id, password_hash = found
        return user_id if verify_password(password_hash, password) else None

    user_id = await asyncio.to_thread(check)
    if user_id is None:
        for k in keys:
            app.login_failures.hit(k)
        response = render(
            request,
            "login.html",
            None,
            login_csrf=cookie,
            next=safe_next(next),
            error="Wrong username or password.",
        )
        response.status_code = 401
        return response
    app.login_failures.reset(keys[0])
    cookie_value, _ = app.sessions.issue(user_id)
    done = RedirectResponse(safe_next(next), status_code=303)
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
def logout(user: MaybeUser, csrf: Annotated[str, Form()] = "") -> Response:
    if user is not None:
        check_csrf(user, csrf, FORM_EXPIRED)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
