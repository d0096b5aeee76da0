"""Errors to HTTP answers: each kind of the project's error tree (``safetynet/errors.py``) maps to
one status here, and nowhere else.

Every error answer has one JSON shape::

    {"detail": "client_id: no client 'c-9'", "error": "not_found"}

``detail`` is the message (what was wrong and what is valid), ``error`` the kind, and for input
refused field by field ``errors`` maps each field's path to its message. A page (not the API)
that needs a login is sent to the login page instead of a 401.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response

from safetynet.errors import (
    BodyError,
    BodyTooLargeError,
    ConflictError,
    ForbiddenError,
    InputError,
    MediaTypeError,
    NotAuthenticatedError,
    NotFoundError,
    RateLimitError,
    SafetyNetError,
    UnavailableError,
)

# Each kind: its HTTP status and its name in the body. A subclass not listed answers as its
# nearest listed ancestor; a kind not listed at all (ConfigError, DeviceError) is a server error.
ANSWERS: dict[type[SafetyNetError], tuple[int, str]] = {
    InputError: (422, "invalid"),
    BodyError: (400, "unreadable_body"),
    BodyTooLargeError: (413, "body_too_large"),
    MediaTypeError: (415, "unsupported_media_type"),
    NotAuthenticatedError: (401, "not_authenticated"),
    ForbiddenError: (403, "forbidden"),
    NotFoundError: (404, "not_found"),
    ConflictError: (409, "conflict"),
    RateLimitError: (429, "rate_limited"),
    UnavailableError: (503, "rebuilding"),
}


def answer_of(err: SafetyNetError) -> tuple[int, str]:
    """The HTTP status and kind name of ``err`` (500 for a kind that is not in the table)."""
    for cls in type(err).__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls]
    return 500, "internal"


def status_of(err: SafetyNetError) -> int:
    return answer_of(err)[0]


def error_body(err: SafetyNetError) -> dict[str, Any]:
    """The JSON body of an error answer."""
    body: dict[str, Any] = {"detail": str(err), "error": answer_of(err)[1]}
    errors = getattr(err, "errors", None)
    if isinstance(errors, dict) and errors:
        body["errors"] = {str(k): str(v) for k, v in errors.items()}
    return body


def wants_html(request: Request) -> bool:
    """A browser asking for a page (not the API)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


async def _answer(request: Request, err: Exception) -> Response:
    assert isinstance(err, SafetyNetError)
    if isinstance(err, NotAuthenticatedError) and wants_html(request):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    headers: dict[str, str] = {}
    if isinstance(err, NotAuthenticatedError) and err.challenge:
        headers["WWW-Authenticate"] = err.challenge
    if isinstance(err, RateLimitError | UnavailableError):
        wait_s = err.retry_after_s
        headers["Retry-After"] = f"{wait_s:.0f}" if wait_s >= 1 else "1"
    return JSONResponse(error_body(err), status_of(err), headers=headers)


async def _invalid_request(_request: Request, err: Exception) -> Response:
    """FastAPI's own validation of paths, queries and bodies, in the same shape as ours."""
    assert isinstance(err, RequestValidationError)
    errors: dict[str, str] = {}
    for item in err.errors():
        where = ".".join(str(p) for p in item.get("loc", ())[1:]) or "body"
        errors.setdefault(where, str(item.get("msg", "invalid")))
    detail = "; ".join(f"{where}: {message}" for where, message in errors.items())
    status, kind = ANSWERS[InputError]
    return JSONResponse({"detail": detail, "error": kind, "errors": errors}, status)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every kind of :data:`ANSWERS` (and FastAPI's validation errors) as above."""
    for cls in ANSWERS:
        app.add_exception_handler(cls, _answer)
    app.add_exception_handler(RequestValidationError, _invalid_request)
