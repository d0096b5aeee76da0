"""Login sessions as the server hands them out: a cookie with a random token, the session
itself held in the database (:mod:`registry.user_sessions`), so logout, a password change and
an idle time end it — a replayed cookie after any of them reads nothing.

The cookie is HttpOnly, SameSite=Strict, and Secure when the request came over TLS; it holds
``sns_`` and 256 random bits, and only their SHA-256 is stored. Idle time and a shift's length
are settings of the deployment (defaults: 30 minutes idle, 12 hours at most).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from registry.user_sessions import (
    OpenSession,
    end_session,
    session_for,
    start_session,
)

SESSION_COOKIE = "safetynet_session"
IDLE_S = 30 * 60.0  # a dispatcher's page polls and pushes; a page left alone this long logs out
MAX_AGE_S = 12 * 3600.0  # one long shift
_PREFIX = "sns_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class ServerSessions:
    """Opens, reads and ends sessions; ``idle_s`` and ``max_age_s`` bound a session's life."""

    idle_s: float = IDLE_S
    max_age_s: float = MAX_AGE_S

    def open(self, session: Session, user_id: str, now: datetime | None = None) -> tuple[str, str]:
        """A new session for ``user_id``: (the cookie's value, its CSRF token)."""
        token = _PREFIX + secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        start_session(session, user_id, _digest(token), csrf, now or datetime.now(UTC))
        return token, csrf

    def read(
        self, session: Session, cookie: str | None, now: datetime | None = None
    ) -> OpenSession | None:
        """The session a cookie names, if it is still valid (None: log in again)."""
        if not cookie or not cookie.startswith(_PREFIX) or len(cookie) > 100:
            return None
        return session_for(
            session, _digest(cookie), now or datetime.now(UTC), self.idle_s, self.max_age_s
        )

    def end(self, session: Session, cookie: str | None, now: datetime | None = None) -> None:
        """Logout: the cookie's session ends on the server, whatever the browser keeps."""
        if cookie:
            end_session(session, _digest(cookie), now or datetime.now(UTC))
