"""A bound on every request body, before any route reads it.

Routes that read their own bodies (the ingest, :mod:`ui.bodies`) have tighter limits; this one
keeps FastAPI's own parsers (API bodies, forms) from reading an unbounded body into memory. A
body announced too large is refused at once; one sent without a length is read up to the bound
and refused past it. Either answers 413 in the one error shape (:mod:`ui.errors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_FORM_BYTES = 16 * 1024 * 1024  # a form with a photo: the page says what is wrong with it
MAX_OTHER_BYTES = 4 * 1024 * 1024  # JSON: an enrolment with its photo in base64 is the largest


class BodyLimit:
    """ASGI middleware: a request body is at most its kind's bound."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        limit = MAX_FORM_BYTES if kind == b"multipart/form-data" else MAX_OTHER_BYTES
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _refuse(send, 400, "bad_request", "Content-Length must be a whole number")
                return
            if int(length) > limit:
                await _refuse(send, 413, "body_too_large", _too_large(int(length), limit))
                return
            await self.app(scope, receive, send)
            return
        # No length said: read it here, up to the bound, then hand it on whole.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, 413, "body_too_large", _too_large(size, limit, at_least=True))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    said = f"at least {size:,}" if at_least else f"{size:,}"
    return f"the body is {said} bytes; at most {limit:,} are taken here"


async def _refuse(send: Send, status: int, error: str, detail: str) -> None:
    body = orjson.dumps({"error": error, "detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
