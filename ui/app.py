"""The FastAPI application: ingest, registry and search APIs, the live push, and the pages.

``create_app(settings)`` builds it; ``safetynet serve`` and ``safetynet demo`` run it with
uvicorn. Errors of the layers below map to HTTP: bad input → 422 with the message, a role that
may not → 403, a stale copy or a broken uniqueness rule → 409.

Security headers on every page: a Content-Security-Policy that allows scripts only from this
server and the page's own nonce (so an injected ``<script>`` or ``onerror=`` never runs), no
framing, no sniffing, no referrer leaving the site.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from locator.features import feature_masks, load_geojson
from registry.db import make_engine, upgrade
from registry.models import ReceiverToken, Role, User
from registry.service import Actor, ConflictError, ForbiddenError, RegistryInputError
from safetynet.geodesy import LocalFrame
from safetynet.settings import Settings
from ui.live import LiveHub
from ui.maps import LEAFLET_DIR, OSM_ATTRIBUTION, OSM_TILES, BaseMap
from ui.security import SESSION_COOKIE, RateLimiter, Sessions, same_token, token_digest
from ui.tiles import TileFile

log = logging.getLogger(__name__)
T = TypeVar("T")
HERE = Path(__file__).resolve().parent
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ApiError(Exception):
    """An HTTP error with a message for the caller."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass(frozen=True)
class Authed:
    """The logged-in user of a request."""

    user_id: str
    username: str
    display_name: str
    role: Role
    csrf: str

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.role)


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: Sessions
    hub: LiveHub
    base_map: BaseMap
    tiles: TileFile | None
    login_failures: RateLimiter
    ingest_limit: RateLimiter

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.session() as session, session.begin():
            yield session


async def in_transaction(request: Request, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in one transaction, in a worker thread (committed when it returns)."""
    app = state_of(request)

    def work() -> T:
        with app.transaction() as session:
            return fn(session)

    return await asyncio.to_thread(work)


def state_of(request: Request | WebSocket) -> AppState:
    return request.app.state.safetynet  # type: ignore[no-any-return]


def current_user(request: Request | WebSocket) -> Authed | None:
    """The request's user from the session cookie (None: not logged in, or deactivated)."""
    app = state_of(request)
    data = app.sessions.read(request.cookies.get(SESSION_COOKIE))
    if data is None:
        return None
    with app.session() as session:
        user = session.get(User, data.user_id)
        if user is None or not user.active:
            return None
        return Authed(user.id, user.username, user.display_name, user.role, data.csrf)


def require_user(request: Request) -> Authed:
    user = current_user(request)
    if user is None:
        raise ApiError(401, "log in first")
    if request.method in UNSAFE_METHODS:
        token = request.headers.get("x-csrf-token", "")
        if not same_token(token, user.csrf):
            raise ApiError(403, "missing or wrong CSRF token (X-CSRF-Token header)")
    return user


def receiver_of_token(app: AppState, authorization: str | None) -> str | None:
    """The receiver id a bearer token belongs to (None: no valid token)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    digest = token_digest(authorization[7:].strip())
    with app.session() as session:
        row = session.scalar(
            select(ReceiverToken).where(
                ReceiverToken.token_sha256 == digest, ReceiverToken.revoked_at.is_(None)
            )
        )
        return None if row is None else row.receiver_id


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
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )


def _features(path: Path) -> dict[str, Any]:
    """The map features file, checked whole at start-up (an error names the bad feature)."""
    collection = load_geojson(path)
    feature_masks(collection, LocalFrame(0.0, 0.0), np.zeros((1, 1)), np.zeros((1, 1)))
    return collection


def create_app(settings: Settings, engine: Engine | None = None, migrate: bool = True) -> FastAPI:
    """The application for ``settings`` (the database is migrated first unless told not to)."""
    settings.check_secrets()
    url = settings.resolved_database_url
    if migrate:
        upgrade(url)
    engine = engine or make_engine(url)
    tiles = TileFile(settings.tiles_file) if settings.tiles_file else None
    features = _features(settings.features_file) if settings.features_file else None
    if tiles is not None:
        base = BaseMap("/tiles/{z}/{x}/{y}." + tiles.extension, tiles.attribution)
    elif settings.tile_url is None:
        base = BaseMap(OSM_TILES, OSM_ATTRIBUTION)
    else:
        base = BaseMap(settings.tile_url, settings.tile_attribution)
    app_state = AppState(
        settings=settings,
        engine=engine,
        sessions=Sessions(settings.secret_key.get_secret_value()),
        hub=LiveHub(engine, features),
        base_map=base,
        tiles=tiles,
        login_failures=RateLimiter(limit=5, window_s=900.0),
        ingest_limit=RateLimiter(limit=settings.ingest_requests_per_s, window_s=1.0),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        count = await asyncio.to_thread(app_state.hub.load_active)
        log.info("rebuilt %d active searches from the stored reports", count)
        yield
        if tiles is not None:
            tiles.close()

    app = FastAPI(
        title="SafetyNet",
        version="0.1.0",
        lifespan=lifespan,
        description="Ingest of field reports, the registry and live searches.",
    )
    app.state.safetynet = app_state
    app.mount("/static/leaflet", StaticFiles(directory=LEAFLET_DIR), name="leaflet")
    app.mount("/static/app", StaticFiles(directory=HERE / "static"), name="app-static")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> Response:
        if err.status == 401 and _wants_html(request):
            from fastapi.responses import RedirectResponse

            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"detail": err.message}, err.status, headers=err.headers)

    @app.exception_handler(RegistryInputError)
    async def _input_error(_request: Request, err: RegistryInputError) -> Response:
        return JSONResponse({"detail": str(err)}, 422)

    @app.exception_handler(ForbiddenError)
    async def _forbidden(_request: Request, err: ForbiddenError) -> Response:
        return JSONResponse({"detail": str(err)}, 403)

    @app.exception_handler(ConflictError)
    async def _conflict(_request: Request, err: ConflictError) -> Response:
        return JSONResponse({"detail": str(err)}, 409)

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

    from ui import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    if tiles is not None:
        app.include_router(tiles.router())

    @app.websocket("/api/v1/searches/{search_id}/live")
    async def live(websocket: WebSocket, search_id: str) -> None:
        await live_socket(websocket, search_id)

    return app


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


async def live_socket(websocket: WebSocket, search_id: str) -> None:
    """Push a search's reports, fixes and events to a page: a snapshot, then every change."""
    from registry.access import allowed

    user = current_user(websocket)
    origin = websocket.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
        await websocket.close(code=1008, reason="cross-site socket refused")
        return
    if user is None or not allowed(user.role, "read", "search"):
        await websocket.close(code=1008, reason="log in as a role that may watch searches")
        return
    app = state_of(websocket)
    state = await asyncio.to_thread(app.hub.state, search_id)
    if state is None:
        await websocket.close(code=1008, reason="no active search with this id")
        return
    await websocket.accept()
    queue = app.hub.subscribe(search_id)

    async def until_closed() -> None:
        """Pages send nothing; this returns when the page (or the server's shutdown) closes."""
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    closed = asyncio.create_task(until_closed())
    try:
        await websocket.send_json(state.snapshot())
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                getter.cancel()
                break
            message = getter.result()
            if message["type"] in ("resync", "changed"):
                fresh = await asyncio.to_thread(app.hub.state, search_id)
                if fresh is None:
                    await websocket.send_json({"type": "ended"})
                    break
                await websocket.send_json(fresh.snapshot())
                continue
            await websocket.send_json(message)
    except WebSocketDisconnect:
        pass
    finally:
        closed.cancel()
        app.hub.unsubscribe(search_id, queue)
