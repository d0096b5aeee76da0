"""``POST /api/v1/reports``: the ingest of field reports (spec/reports.md "Ingest over HTTP").

A receiver sends with its bearer token; a logged-in searcher or dispatcher with the session
cookie and the CSRF header (manual bearings and silences only, see :mod:`ui.ingest`). Stored
reports feed the live searches at once, and each search's newest fix goes to its log.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from registry import home_stations, searches, sightings
from safetynet.errors import (
    BodyTooLargeError,
    ForbiddenError,
    NotAuthenticatedError,
    RateLimitError,
)
from safetynet.reports import FieldReport, Pulse, report_to_obj
from ui.bodies import MAX_REPORTS_BYTES, report_items
from ui.deps import CSRF_HEADER, App, AppState, current_user, token_receiver
from ui.ingest import Sender, ingest
from ui.security import same_token

router = APIRouter(prefix="/api/v1", tags=["ingest"])
log = logging.getLogger(__name__)


def _home_stations(app: AppState, stored: list[FieldReport]) -> None:
    """What the stored reports tell the home stations and the fleet's sightings, in a
    transaction of its own: a station hearing its client's bracelet logs the daily test, a
    low-battery bit is told at once, each station that reported is checked for a wander alert,
    and an enrolled bracelet heard while no search is open is kept as a sealed sighting (with
    consent). Its failure is logged, never the ingest's."""
    if not stored:
        return
    pulses = [r for r in stored if isinstance(r, Pulse)]
    try:
        with app.transaction() as session:
            home_stations.heard(session, pulses)
            sightings.record(session, pulses)
            home_stations.check_stations(session, datetime.now(UTC),
                                         {r.receiver_id for r in stored})  # fmt: skip
    except Exception:  # a check racing another, or a fault: the next report or minute checks
        # again; the reports are stored and already on the live maps, whatever happens here.
        log.exception("home-station check after ingest failed")


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
    wait_s = app.ingest_limit.retry_after(key)
    if wait_s > 0:
        raise RateLimitError("too many requests; retry later", retry_after_s=wait_s)
    app.ingest_limit.hit(key)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_REPORTS_BYTES:
        raise BodyTooLargeError(f"body of {length} bytes is over the limit of {MAX_REPORTS_BYTES}")
    body = bytearray()
    async for piece in request.stream():  # a chunked body has no length: count as it comes
        body.extend(piece)
        if len(body) > MAX_REPORTS_BYTES:
            raise BodyTooLargeError(f"body over the limit of {MAX_REPORTS_BYTES} bytes")
    items = report_items(bytes(body), request.headers.get("content-type"))

    def work() -> dict[str, Any]:
        window_of = app.hub.window_of(datetime.now(UTC))
        with app.transaction() as session:
            result = ingest(session, sender, items, window_of)
        fixes = app.hub.ingest(result.stored)  # the live maps first: they are the search
        if fixes or any(r.kind == "bearing" for r in result.stored):
            with app.transaction() as session:
                for search_id, found in fixes.items():
                    last = found[-1]  # the newest fix of this batch goes to the log
                    searches.add_event(
                        session, None, search_id, "fix", report_to_obj(last), at=last.t
                    )
        _home_stations(app, result.stored)
        return result.answer()

    return await asyncio.to_thread(work)
