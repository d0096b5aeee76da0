"""``GET /metrics``: this process's figures in the Prometheus text format (:mod:`ui.metrics`).

Only for operators: it answers to ``Authorization: Bearer`` with ``SAFETYNET_METRICS_TOKEN``
(Prometheus's ``authorization`` scrape setting sends it) and is not there at all (404) while no
token is set, so a deployment that never thought about it shows nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from safetynet.errors import NotAuthenticatedError, NotFoundError
from ui.deps import App
from ui.metrics import CONTENT_TYPE
from ui.security import same_token

router = APIRouter(tags=["meta"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, app: App) -> Response:
    token = app.settings.metrics_token
    if token is None or not token.get_secret_value():
        raise NotFoundError("no metrics here (SAFETYNET_METRICS_TOKEN is not set)")
    given = request.headers.get("authorization", "")
    if not given.lower().startswith("bearer ") or not same_token(
        given[7:].strip(), token.get_secret_value()
    ):
        raise NotAuthenticatedError("the metrics token is needed", challenge="Bearer")
    return Response(app.metrics.exposition(), media_type=CONTENT_TYPE)
