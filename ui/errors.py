"""Errors to HTTP answers: each kind of the project's error tree (``safetynet/errors.py``) maps to
one status here, and nowhere else.

Every error answer has one JSON shape::

    {"detail": "client_id: no client 'c-9'", "error": "not_found"}

``detail`` is the message (what was wrong and what is valid), ``error`` the kind, and for input
refused field by field ``errors`` maps each field's path to its message. A page (not the API)
that needs a login is sent to the login page instead of a 401; any other error a browser meets
on a page (403, 404, 405, 409, 422, 500, ...) is a styled page in words (:func:`error_page`),
with the same status, while the API keeps JSON. Starlette's own answers (no such
path 404, a method the path does not take 405, a body FastAPI could not parse 400) and FastAPI's
validation errors (422) come in the same shape.

The OpenAPI document says so: :func:`document_errors` gives every operation the error statuses
it can answer (:func:`statuses_of`), each with the :class:`ErrorBody` schema, in place of
FastAPI's default validation-error array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

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
from ui.templating import templates

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


# Starlette's own answers (routing, FastAPI's body parsing) by status: their kind name.
HTTP_KINDS = {400: "unreadable_body", 404: "not_found", 405: "method_not_allowed"}
DESCRIPTIONS = {
    400: "Bad Request: the body could not be read (not JSON, nested too deep, an integer past "
    "64 bits)",
    401: "Unauthorized: no login (or receiver token), or the session ended",
    403: "Forbidden: the role may not, or the CSRF token is missing or wrong",
    404: "Not Found: no such record, or none active by that id",
    405: "Method Not Allowed",
    409: "Conflict: the record changed since it was read, or its state does not allow this",
    413: "Content Too Large: the body is over its size or count limit",
    415: "Unsupported Media Type: the body's Content-Type is not taken",
    422: "Unprocessable Content: a field is missing, of the wrong type or out of range",
    429: "Too Many Requests: slow down (Retry-After says when)",
    503: "Service Unavailable: a search's live state is being rebuilt (Retry-After)",
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}},
}


class ErrorBody(BaseModel):
    """The one shape of every error answer."""

    detail: str = Field(description="what was wrong and what is valid")
    error: str = Field(description="the kind of error: " + ", ".join(
        sorted({kind for _, kind in ANSWERS.values()} | set(HTTP_KINDS.values()))))  # fmt: skip
    errors: dict[str, str] | None = Field(
        default=None, description="for input refused field by field: each field's message"
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that answers ``statuses`` in the error shape."""
    return {
        status: {"model": ErrorBody, "description": DESCRIPTIONS[status]} for status in statuses
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


# A browser's error page: its heading and what the person can do, by status.
PAGE_WORDS: dict[int, tuple[str, str]] = {
    400: ("The request could not be read", "Go back and try again."),
    403: (
        "You may not open this page",
        "Your role does not allow it. If you need it, ask your "
        "program's administrator, or log in as someone who may.",
    ),
    404: (
        "Nothing here",
        "The page or record does not exist, or is no longer active. Check the "
        "address, or start again from the home page.",
    ),
    405: ("This page cannot be used that way", "Go back and use the page's own buttons."),
    409: (
        "Someone else changed this first",
        "Reload the page to see the current record, then make your change again.",
    ),
    413: ("That was too large to send", "Send a smaller file or fewer items."),
    415: ("That kind of file is not taken", "Send one of the kinds the page asks for."),
    422: (
        "Some of what was sent was refused",
        "Go back, correct what is said above and send it again.",
    ),
    429: ("Too many tries", "Wait a little, then try again."),
    503: (
        "Not ready yet",
        "The search is being rebuilt; the page will work again in a few seconds.",
    ),
    500: (
        "Something went wrong on the server",
        "Nothing you did caused this. Try again; if it "
        "goes on, tell your administrator the time it happened.",
    ),
}


def error_page(request: Request, status: int, detail: str, kind: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:  # fmt: skip
    """A styled error page for a browser: the status's heading, the detail, what to do next."""
    heading, advice = PAGE_WORDS.get(status, ("That did not work", "Go back and try again."))
    return templates.TemplateResponse(
        request,
        "error.html",
        {"user": None, "csrf": "", "status": status, "heading": heading, "advice": advice,
         "detail": detail, "kind": kind},
        status_code=status,
        headers=headers,
    )  # fmt: skip


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
    if wants_html(request):
        status, kind = answer_of(err)
        return error_page(request, status, str(err), kind, headers)
    return JSONResponse(error_body(err), status_of(err), headers=headers)


async def _invalid_request(request: Request, err: Exception) -> Response:
    """FastAPI's own validation of paths, queries and bodies, in the same shape as ours."""
    assert isinstance(err, RequestValidationError)
    errors: dict[str, str] = {}
    for item in err.errors():
        where = ".".join(str(p) for p in item.get("loc", ())[1:]) or "body"
        errors.setdefault(where, str(item.get("msg", "invalid")))
    detail = "; ".join(f"{where}: {message}" for where, message in errors.items())
    status, kind = ANSWERS[InputError]
    if wants_html(request):
        return error_page(request, status, detail, kind)
    return JSONResponse({"detail": detail, "error": kind, "errors": errors}, status)


async def _http_answer(request: Request, err: Exception) -> Response:
    """Starlette's and FastAPI's own errors (404, 405, an unparsable body) in our shape."""
    assert isinstance(err, StarletteHTTPException)
    kind = HTTP_KINDS.get(err.status_code, "http_error")
    headers = dict(err.headers or {})
    if err.status_code in (204, 304):
        return Response(status_code=err.status_code, headers=headers)
    if wants_html(request) and err.status_code >= 400:
        return error_page(request, err.status_code, str(err.detail), kind, headers)
    return JSONResponse({"detail": str(err.detail), "error": kind}, err.status_code, headers)


async def _server_error(request: Request, _err: Exception) -> Response:
    """An error no handler knows (a bug): 500 in the one shape, never a trace to the caller (the
    server's log has it)."""
    detail = "an internal error; the server's log has the details"
    if wants_html(request):
        return error_page(request, 500, detail, "internal")
    return JSONResponse({"detail": detail, "error": "internal"}, 500)


def statuses_of(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer.

    Every operation may be refused as a whole for its input (422); one under ``/api/v1`` other
    than the health check needs a login or token (401) and a role (403), and may name a record
    that is not there (404); a body can be unreadable (400), too large (413) or of another type
    (415); an unsafe method can conflict (409) and be rate-limited (429); a search's live parts
    may still be rebuilding (503), and the ingest feeds them."""
    statuses = {422}
    protected = path.startswith("/api/v1/") and path != "/api/v1/health"
    if protected:
        statuses |= {401, 403, 404}
    if "requestBody" in operation:
        statuses |= {400, 413, 415}
    if method in ("post", "put", "patch", "delete"):
        statuses |= {409, 429} if protected else set()
    if path.startswith("/api/v1/searches/{") or path == "/api/v1/reports":
        statuses.add(503)
    return sorted(statuses)


def error_schema(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``build()``'s OpenAPI document with every operation's error answers in the one shape."""
    document = build()
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in statuses_of(path, method, operation):
                answer: dict[str, Any] = {
                    "description": DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": ref}},
                }
                if status in (429, 503):
                    answer["headers"] = RETRY_AFTER
                responses[str(status)] = answer
    return document


def document_errors(app: FastAPI) -> None:
    """Serve :func:`error_schema` of the app's routes as its OpenAPI document (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = error_schema(
                lambda: get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Answer every kind of :data:`ANSWERS` (and FastAPI's validation errors, and Starlette's
    own errors) as above, and document those answers in the OpenAPI."""
    for cls in ANSWERS:
        app.add_exception_handler(cls, _answer)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_answer)
    app.add_exception_handler(Exception, _server_error)
    document_errors(app)
