"""The FastAPI application, assembled: ingest, registry and search APIs, the live push, and the
pages.

``create_app(settings)`` builds it; ``safetynet serve`` and ``safetynet demo`` run it with
uvicorn. It only puts the parts together: the server's state (:mod:`ui.deps`), the routes (one
module per resource in :mod:`ui.routes`), the static files, the error answers (:mod:`ui.errors`:
each kind of error one HTTP status) and the security headers.

Security headers on every page: a Content-Security-Policy that allows scripts only from this
server and the page's own nonce (so an injected ``<script>`` or ``onerror=`` never runs), no
framing, no sniffing, no referrer leaving the site.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fastapi_swagger  # type: ignore[import-untyped]
import numpy as np
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import escape
from sqlalchemy import Engine

from locator.features import feature_masks, load_geojson
from registry.db import make_engine, upgrade
from safetynet.geodesy import LocalFrame
from safetynet.settings import Settings
from ui.body_limit import BodyLimit
from ui.deps import AppState
from ui.errors import install_error_handlers
from ui.hub import LiveHub
from ui.login_throttle import trusted_networks
from ui.maps import LEAFLET_DIR, OSM_ATTRIBUTION, OSM_TILES, BaseMap
from ui.routes import (
    auth,
    bracelets,
    client_pages,
    clients,
    home,
    meta,
    metrics,
    program,
    receivers,
    record_pages,
    reports,
    search_pages,
    searches,
    team_app,
)
from ui.sessions import ServerSessions
from ui.shared_limits import make_limits
from ui.tak import TakFeed
from ui.tiles import TileFile

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# Swagger UI 5 (it reads OpenAPI 3.1, which FastAPI writes), as the fastapi-swagger package ships
# it; only its files are used.
SWAGGER_DIR = Path(fastapi_swagger.__file__).parent / "resources"


def csp_header(base: BaseMap, nonce: str) -> str:
    img = "'self' data: blob:"
    if base.has_tiles and base.url.startswith(("http://", "https://")):
        parts = urlsplit(base.url.replace("{s}", "a"))
        host = parts.netloc
        if base.url.find("{s}") >= 0:
            host = parts.netloc.replace("a.", "*.", 1)
        img += f" {parts.scheme}://{host}"
    return (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' "
        f"'unsafe-inline'; img-src {img}; connect-src 'self' ws: wss:; "
        # The team page's service worker and manifest (ui/team_app.py) come from this server.
        "worker-src 'self'; manifest-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )


def _features(path: Path) -> dict[str, Any]:
    """The map features file, checked whole at start-up (an error names the bad feature)."""
    collection = load_geojson(path)
    feature_masks(collection, LocalFrame(0.0, 0.0), np.zeros((1, 1)), np.zeros((1, 1)))
    return collection


def _base_map(settings: Settings, tiles: TileFile | None) -> BaseMap:
    if tiles is not None:
        return BaseMap("/tiles/{z}/{x}/{y}." + tiles.extension, tiles.attribution)
    if settings.tile_url is None:
        return BaseMap(OSM_TILES, OSM_ATTRIBUTION)
    return BaseMap(settings.tile_url, settings.tile_attribution)


def _mqtt_ingest(app_state: AppState) -> Any:
    from ui.mqtt_ingest import MqttIngest  # paho-mqtt only when asked for

    assert app_state.settings.mqtt_url is not None
    return MqttIngest(app_state, app_state.settings.mqtt_url)


def make_hub(
    engine: Engine, features: dict[str, Any] | None = None, broker_url: str | None = None
) -> LiveHub:
    """The live hub for the database: on SQLite this process's own; on PostgreSQL shared between
    the processes on it (:class:`ui.shared_hub.SharedHub`; its live push through the outbox, or
    through Redis when ``broker_url`` names one), imported only then (it needs psycopg)."""
    if engine.dialect.name != "postgresql":
        return LiveHub(engine, features)
    from ui.shared_hub import SharedHub

    return SharedHub(engine, features, broker_url=broker_url)


def create_app(settings: Settings, engine: Engine | None = None, migrate: bool = True) -> FastAPI:
    """The application for ``settings`` (the database is migrated first unless told not to)."""
    settings.check_secrets()
    url = settings.resolved_database_url
    if migrate:
        upgrade(url)
    engine = engine or make_engine(url)
    tiles = TileFile(settings.tiles_file) if settings.tiles_file else None
    features = _features(settings.features_file) if settings.features_file else None
    base = _base_map(settings, tiles)
    # In memory for one process; in Redis or PostgreSQL for several (ui/shared_limits.py).
    login_failures, ingest_limit = make_limits(
        engine, settings.broker_url, settings.ingest_requests_per_s
    )
    app_state = AppState(
        settings=settings,
        engine=engine,
        sessions=ServerSessions(
            idle_s=settings.session_idle_minutes * 60.0, max_age_s=settings.session_hours * 3600.0
        ),
        hub=make_hub(engine, features, settings.broker_url),  # several processes: ui/shared_hub.py
        base_map=base,
        tiles=tiles,
        login_failures=login_failures,
        ingest_limit=ingest_limit,
        trusted_proxies=trusted_networks(settings.trusted_proxies),
    )

    # The live searches as Cursor-on-Target to a TAK server or multicast (SAFETYNET_COT_URL),
    # in a thread of its own: a TAK server away never slows ingest or the pages.
    feed = TakFeed(app_state.hub, settings, app_state.session) if settings.cot_url else None
    # Receiver fleets over MQTT (SAFETYNET_MQTT_URL): a worker of its own feeds the same ingest.
    mqtt = _mqtt_ingest(app_state) if settings.mqtt_url else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The live states are rebuilt in the background: the server answers meanwhile, and a
        # search still rebuilding says so (503 with Retry-After; the page shows "rebuilding").
        app_state.hub.rebuild_in_background()
        if feed is not None:
            feed.start()
        if mqtt is not None:
            mqtt.start()
        yield
        app_state.hub.stop()  # several processes: its leases and listener (ui/shared_hub.py)
        if mqtt is not None:
            mqtt.stop()
        if feed is not None:
            feed.stop()
        if tiles is not None:
            tiles.close()

    app = FastAPI(
        title="SafetyNet",
        version="0.1.0",
        lifespan=lifespan,
        description="Ingest of field reports, the registry and live searches.",
        docs_url=None,  # served below with its assets from this server, never a CDN
        redoc_url=None,
    )
    app.state.safetynet = app_state
    app.state.tak_feed = feed
    app.state.mqtt_ingest = mqtt
    app.mount("/static/leaflet", StaticFiles(directory=LEAFLET_DIR), name="leaflet")
    app.mount("/static/app", StaticFiles(directory=HERE / "static"), name="app-static")
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_DIR), name="swagger")

    @app.get("/docs", include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:
        """The API's interactive documentation, all of it from this server (works offline)."""
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="SafetyNet API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )
        nonce = escape(request.state.nonce)
        html = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
        return HTMLResponse(html)

    install_error_handlers(app)
    app.add_middleware(BodyLimit)  # every body bounded before a parser reads it

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        nonce = secrets.token_urlsafe(16)
        request.state.nonce = nonce
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", csp_header(base, nonce))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    for module in (meta, metrics, reports, searches, clients, program, bracelets, receivers):
        app.include_router(module.router)
    for module in (auth, home, search_pages, team_app, client_pages, record_pages):
        app.include_router(module.router)
    if tiles is not None:
        app.include_router(tiles.router())
    return app
