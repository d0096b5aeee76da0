"""``POST /api/v1/reports``: the ingest of field reports (spec/reports.md "Ingest over HTTP").

A receiver sends with its bearer token; a logged-in searcher or dispatcher with the session
cookie and the CSRF header (manual bearings and silences only, see :mod:`ui.ingest`). Stored
reports feed the live searches at once, and each search's newest fix goes to its log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from safetynet.errors import (
    BodyError,
    BodyTooLargeError,
    ForbiddenError,
    NotAuthenticatedError,
    RateLimitError,
)
from ui.bodies import MAX_REPORTS_BYTES, report_items
from ui.deps import CSRF_HEADER, App, AppState, current_user, token_receiver
from ui.ingest import Sender
from ui.intake import take_in
from ui.security import same_token

router = APIRouter(prefix="/api/v1", tags=["ingest"])
log = logging.getLogger(__name__)


class IngestAnswer(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


@router.post(
    "/reports",
    response_model=IngestAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "maxItems": 1000, "items": {"type": "object"}}
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_reports(request: Request, app: App) -> Any:
    """Store field reports (spec/reports.md): idempotent by (receiver_id, seq), partial
    acceptance; the reports feed the live searches at once."""
    receiver_id = await asyncio.to_thread(token_receiver, app, request.headers.get("authorization"))
    if receiver_id is not None:
        sender = Sender(receiver_id=receiver_id)
    else:
        user = await asyncio.to_thread(current_user, request)
        if user is None:
            raise NotAuthenticatedError(
                "a receiver token (Authorization: Bearer) or a login is needed", challenge="Bearer"
            )
        if not same_token(request.headers.get(CSRF_HEADER, ""), user.csrf):
            raise ForbiddenError("missing or wrong CSRF token (X-CSRF-Token header)")
        sender = Sender(user_id=user.user_id, username=user.username, role=user.role)
    key = receiver_id or f"user:{sender.user_id}"
    wait_s = await asyncio.to_thread(app.ingest_limit.acquire, key)  # may be a round trip
    if wait_s > 0:
        app.metrics.refuse("http", "rate_limited")
        raise RateLimitError("too many requests; retry later", retry_after_s=wait_s)
    received_s = time.monotonic()
    depth = app.metrics.queue_depth.labels("http")
    depth.inc()
    try:
        items = await _items(request, app)
        result = await asyncio.to_thread(take_in, app, sender, items, "http", received_s)
    finally:
        depth.dec()
    return result.answer()


async def _items(request: Request, app: AppState) -> list[Any]:
    """The body's items, its size bounded as it comes; a body refused whole is counted."""
    try:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_REPORTS_BYTES:
            raise BodyTooLargeError(
                f"body of {length} bytes is over the limit of {MAX_REPORTS_BYTES}"
            )
        body = bytearray()
        async for piece in request.stream():  # a chunked body has no length: count as it comes
            body.extend(piece)
            if len(body) > MAX_REPORTS_BYTES:
                raise BodyTooLargeError(f"body over the limit of {MAX_REPORTS_BYTES} bytes")
        return report_items(bytes(body), request.headers.get("content-type"))
    except BodyTooLargeError:
        app.metrics.refuse("http", "too_large")
        raise
    except BodyError:
        app.metrics.refuse("http", "unreadable")
        raise
