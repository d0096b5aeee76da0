"""``/api/v1/health``: the server answers, its database and broker answer, which server
process holds which search's live state (several processes: :mod:`ui.shared_hub`) and how
many pages watch each search through this process."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import text

from ui.deps import App

router = APIRouter(prefix="/api/v1", tags=["meta"])
log = logging.getLogger(__name__)


@router.get("/health")
async def health(app: App, response: Response) -> dict[str, Any]:
    """``status`` ok (200) when the database and the broker answer, else ``degraded`` (503: a
    load balancer sends no one here)."""

    def work() -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ok"}
        try:
            with app.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            out["database"] = {"ok": True}
            out.update(app.hub.health())
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
