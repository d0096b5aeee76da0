"""Passwords, CSRF tokens, receiver tokens and the ingest's rate limit.

- Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second choice).
- Login sessions are held by the server (:mod:`ui.sessions`), failed logins slowed per username
  and address (:mod:`ui.login_throttle`).
- CSRF: every form carries the session's token in a hidden field and every script sends it in
  the ``X-CSRF-Token`` header; unsafe requests without the matching token are refused.
- Receiver tokens are random 256-bit strings shown once; only their SHA-256 is stored.
- The ingest's rate limit is a sliding window held in this process; a deployment of several
  processes shares one in Redis or PostgreSQL instead (:mod:`ui.shared_limits`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from registry.logins import add_receiver_token

_hasher = PasswordHasher()


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens; any text (a header may hold non-ASCII)."""
    return bool(expected) and hmac.compare_digest(
        given.encode("utf-8", "replace"), expected.encode("utf-8")
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_receiver_token() -> str:
    return "snr_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_receiver_token(session: Session, receiver_id: str, label: str | None) -> str:
    """A new token for a receiver; only its digest is stored, so the caller shows it once."""
    token = new_receiver_token()
    add_receiver_token(session, receiver_id, token_digest(token), label)
    return token


@dataclass
class RateLimiter:
    """At most ``limit`` events per ``window_s`` per key (a sliding window)."""

    limit: int
    window_s: float
    _events: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds until ``key`` may act again (0: it may now). Does not count an event."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(key)
            if events is None:
                return 0.0
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) < self.limit:
                return 0.0
            return events[0] + self.window_s - now

    def hit(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._events.setdefault(key, deque()).append(now)
            if len(self._events) > 100_000:  # forget idle keys rather than grow without bound
                idle = [k for k, v in self._events.items() if not v or v[-1] < now - self.window_s]
                for k in idle:
                    del self._events[k]

    def acquire(self, key: str, now: float | None = None) -> float:
        """Count one event of ``key`` if it may act now and return 0, or return the seconds
        until it may (the event then does not count)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait_s = self.retry_after(key, now)
            if wait_s <= 0:
                self.hit(key, now)
            return wait_s

    def reset(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)
