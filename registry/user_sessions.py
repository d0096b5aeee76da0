"""Login sessions held by the server, so that a session ends when it should.

A session is a row keyed by the SHA-256 of a random token (the cookie holds the token; a
stolen database holds no usable cookie). It is valid only while all of these hold:

- not ended (``ended_at``): logout ends it, and so does :func:`set_password` for every session
  of that user;
- the user's password is the one it was opened with (``password_mark``, the SHA-256 of the
  stored hash): a password changed by any path ends every session opened before;
- the user exists and is active;
- used within ``idle_s`` (the last use is written at most every :data:`TOUCH_EVERY_S`, so a
  busy page does not write on every request), and opened less than ``max_age_s`` ago.

Times are timezone-aware UTC; the caller passes the clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session

from registry.models import LoginSession, User
from safetynet.errors import NotFoundError

TOUCH_EVERY_S = 60.0


def password_mark(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive times; they were written as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class OpenSession:
    """A valid session: whose it is and its CSRF token."""

    user_id: str
    csrf: str


def start_session(
    session: Session, user_id: str, token_sha256: str, csrf: str, now: datetime
) -> None:
    """Open a session for an active user (the caller made the token and shows it once)."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise NotFoundError(f"no active user {user_id!r}")
    session.add(
        LoginSession(
            token_sha256=token_sha256,
            user_id=user_id,
            csrf=csrf,
            password_mark=password_mark(user.password_hash),
            created_at=now,
            last_seen_at=now,
        )
    )


def session_for(
    session: Session, token_sha256: str, now: datetime, idle_s: float, max_age_s: float
) -> OpenSession | None:
    """The session with this token digest if it is still valid (and mark it used)."""
    row = session.get(LoginSession, token_sha256)
    if row is None or row.ended_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or row.password_mark != password_mark(user.password_hash):
        return None
    last_seen = _utc(row.last_seen_at)
    if now - last_seen > timedelta(seconds=idle_s):
        return None
    if now - _utc(row.created_at) > timedelta(seconds=max_age_s):
        return None
    if (now - last_seen).total_seconds() >= TOUCH_EVERY_S:
        row.last_seen_at = now
    return OpenSession(row.user_id, row.csrf)


def end_session(session: Session, token_sha256: str, now: datetime) -> None:
    """Logout: the session ends (a replayed cookie finds it ended)."""
    session.execute(
        update(LoginSession)
        .where(LoginSession.token_sha256 == token_sha256, LoginSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_user_sessions(session: Session, user_id: str, now: datetime) -> None:
    """Every session of the user ends (a password change, a deactivation)."""
    session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def set_password(session: Session, user_id: str, password_hash: str, now: datetime) -> None:
    """A new password (hashed by the caller); every session opened before it ends."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id!r}")
    user.password_hash = password_hash
    end_user_sessions(session, user_id, now)


def purge_sessions(session: Session, now: datetime, max_age_s: float) -> int:
    """Delete sessions ended, or opened more than ``max_age_s`` ago; returns how many."""
    cutoff = now - timedelta(seconds=max_age_s)
    result = session.execute(
        delete(LoginSession).where(
            or_(LoginSession.ended_at.is_not(None), LoginSession.created_at < cutoff)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
