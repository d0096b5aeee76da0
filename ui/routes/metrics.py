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
    if not is_operator(request, app):
        raise NotAuthenticatedError("the metrics token is needed", challenge="Bearer")
    return Response(app.metrics.exposition(), media_type=CONTENT_TYPE)


def is_operator(request: Request, app: App) -> bool:
    """Whether the request carries the operators' token (``Authorization: Bearer`` with
    ``SAFETYNET_METRICS_TOKEN``; never, while it is unset)."""
    token = app.settings.metrics_token
    if token is None or not token.get_secret_value():
        return False
    given = request.headers.get("authorization", "")
    return given.lower().startswith("bearer ") and same_token(
        given[7:].strip(), token.get_secret_value()
    )
