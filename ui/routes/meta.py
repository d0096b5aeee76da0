"""``/api/v1/health``: the server answers, its database and broker answer — to anyone (a load
balancer's check carries no login) — and, to the operators' token only (``Authorization:
Bearer`` with ``SAFETYNET_METRICS_TOKEN``, as ``/metrics``), which server process holds which
search's live state (several processes: :mod:`ui.shared_hub`) and how many pages watch each
search through this process: which searches are open, and on which host, is not for the
internet."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from ui.deps import App
from ui.routes.metrics import is_operator

router = APIRouter(prefix="/api/v1", tags=["meta"])
log = logging.getLogger(__name__)


@router.get("/health")
async def health(request: Request, app: App, response: Response) -> dict[str, Any]:
    """``status`` ok (200) when the database and the broker answer, else ``degraded`` (503: a
    load balancer sends no one here); the searches' owners and pages for operators only."""
    operator = is_operator(request, app)

    def work() -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ok"}
        try:
            with app.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            out["database"] = {"ok": True}
            hub = app.hub.health()
            out["broker"] = hub["broker"]
            if operator:
                out.update(hub)
        except Exception as err:  # the database away: say so, never fail the answer
            log.warning("health: the database does not answer: %s", err)
            out["database"] = {"ok": False, "error": type(err).__name__}
        if not (out["database"]["ok"] and out.get("broker", {}).get("ok")):
            out["status"] = "degraded"
        return out

    out = await asyncio.to_thread(work)
    if out["status"] != "ok":
        response.status_code = 503
    return out
