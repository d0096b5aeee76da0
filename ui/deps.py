"""What a route is handed: the server's state, a database session, the settings, the live hub and
the user making the request, as typed ``Annotated`` dependencies (FastAPI's full-stack template,
``backend/app/api/deps.py``).

``ApiUser`` is a logged-in user whose unsafe calls (POST, PUT, PATCH, DELETE) carry the session's
CSRF token in the ``X-CSRF-Token`` header; ``PageUser`` a logged-in user of a page, whose forms
carry the token as a field (the route checks it with :func:`check_csrf`). Neither logged in:
:class:`~safetynet.errors.NotAuthenticatedError` (a page is sent to the login page).

The session is the server's (:mod:`ui.sessions`): every request reads it from the database, so
a cookie replayed after logout, a password change or an idle time reads nothing.
:func:`client_address_of` is the caller's address, believing ``X-Forwarded-For`` only from the
configured proxies (:mod:`ui.login_throttle`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from registry.access import allowed
from registry.logins import active_login, receiver_of_token
from registry.models import Role
from registry.notify import NOTIFIER, Notifier
from registry.service import Actor
from safetynet.errors import ForbiddenError, NotAuthenticatedError
from safetynet.settings import Settings
from ui.hub import LiveHub
from ui.local_time import agency_zone
from ui.login_throttle import Network, client_address, from_trusted_proxy
from ui.maps import BaseMap
from ui.metrics import Metrics
from ui.security import same_token, token_digest
from ui.sessions import SESSION_COOKIE, ServerSessions
from ui.shared_limits import Limiter, Throttle
from ui.tiles import TileFile

T = TypeVar("T")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_HEADER = "x-csrf-token"


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
    """Everything one server process holds, built once by :func:`ui.app.create_app`."""

    settings: Settings
    engine: Engine
    sessions: ServerSessions
    hub: LiveHub
    base_map: BaseMap
    tiles: TileFile | None
    login_failures: Throttle  # in memory, or shared by several processes (ui/shared_limits.py)
    ingest_limit: Limiter
    trusted_proxies: list[Network] = field(default_factory=list)
    notifier: Notifier | None = None  # how a search's notices go out; made from the settings
    metrics: Metrics = field(default_factory=Metrics)  # GET /metrics (ui/metrics.py)

    def __post_init__(self) -> None:
        if self.notifier is None:  # notices tell times on the agency's clock
            self.notifier = Notifier(zone=agency_zone(self.settings))

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False, info={NOTIFIER: self.notifier})

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.session() as session, session.begin():
            yield session

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction, in a worker thread (committed when it returns)."""

        def work() -> T:
            with self.transaction() as session:
                return fn(session)

        return await asyncio.to_thread(work)


def state_of(conn: HTTPConnection) -> AppState:
    return conn.app.state.safetynet  # type: ignore[no-any-return]


def settings_of(conn: HTTPConnection) -> Settings:
    return state_of(conn).settings


def hub_of(conn: HTTPConnection) -> LiveHub:
    return state_of(conn).hub


async def in_transaction(request: Request, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in one transaction of the request's server, in a worker thread."""
    return await state_of(request).run(fn)


def client_address_of(conn: HTTPConnection) -> str:
    """The address the request came from (``X-Forwarded-For`` only from a trusted proxy)."""
    peer = conn.client.host if conn.client else None
    return client_address(peer, conn.headers.get("x-forwarded-for"), state_of(conn).trusted_proxies)


def over_tls(conn: HTTPConnection) -> bool:
    """Whether the request came over TLS: to this server, or to a configured proxy that says
    so in ``X-Forwarded-Proto`` (its nearest value; believed from no one else)."""
    if conn.url.scheme in ("https", "wss"):
        return True
    peer = conn.client.host if conn.client else None
    if not from_trusted_proxy(peer, state_of(conn).trusted_proxies):
        return False
    proto = conn.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    return proto == "https"


def current_user(conn: HTTPConnection) -> Authed | None:
    """The request's user from the session cookie (None: not logged in, the session ended —
    logout, a password change, idle too long, past a shift — or the user deactivated)."""
    app = state_of(conn)
    cookie = conn.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    with app.transaction() as session:  # a read marks the session used (at most once a minute)
        open_session = app.sessions.read(session, cookie, datetime.now(UTC))
        if open_session is None:
            return None
        login = active_login(session, open_session.user_id)
    if login is None:
        return None
    return Authed(login.user_id, login.username, login.display_name, login.role, open_session.csrf)


def check_csrf(user: Authed, token: str, message: str) -> None:
    """Refuse a request whose CSRF token is not the session's."""
    if not same_token(token, user.csrf):
        raise ForbiddenError(message)


def page_user(request: Request) -> Authed:
    """The logged-in user of a page."""
    user = current_user(request)
    if user is None:
        raise NotAuthenticatedError("log in first")
    return user


def api_user(request: Request) -> Authed:
    """The logged-in user of an API call (unsafe methods: with the CSRF header)."""
    user = page_user(request)
    if request.method in UNSAFE_METHODS:
        check_csrf(
            user,
            request.headers.get(CSRF_HEADER, ""),
            "missing or wrong CSRF token (X-CSRF-Token header)",
        )
    return user


def search_reader(request: Request) -> Authed:
    """The logged-in user of a search's page, whose role may read searches."""
    user = page_user(request)
    if not allowed(user.role, "read", "search"):
        raise ForbiddenError(f"a {user.role.value} may not open searches")
    return user


def token_receiver(app: AppState, authorization: str | None) -> str | None:
    """The receiver id a bearer token belongs to (None: no valid token)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    digest = token_digest(authorization[7:].strip())
    with app.session() as session:
        return receiver_of_token(session, digest)


App = Annotated[AppState, Depends(state_of)]
AppSettings = Annotated[Settings, Depends(settings_of)]
Hub = Annotated[LiveHub, Depends(hub_of)]
MaybeUser = Annotated[Authed | None, Depends(current_user)]
PageUser = Annotated[Authed, Depends(page_user)]
ApiUser = Annotated[Authed, Depends(api_user)]
SearchReader = Annotated[Authed, Depends(search_reader)]
