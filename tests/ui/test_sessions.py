"""Sessions that end when they should, a login throttle a stranger cannot turn against the real
user, and X-Forwarded-For believed only from the configured proxies."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from registry.models import LoginSession, User
from registry.user_sessions import TOUCH_EVERY_S, purge_sessions, set_password
from safetynet.errors import ConfigError
from ui.login_throttle import (
    FREE_FAILURES,
    MAX_DELAY_S,
    MAX_PAIRS,
    LoginThrottle,
    client_address,
    trusted_networks,
)
from ui.sessions import ServerSessions

NOW = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
SESSIONS = ServerSessions(idle_s=1800.0, max_age_s=12 * 3600.0)


def test_logout_ends_the_session_on_the_server(session: Session) -> None:
    cookie, csrf = SESSIONS.open(session, "dispatcher", NOW)
    session.commit()
    found = SESSIONS.read(session, cookie, NOW + timedelta(minutes=1))
    assert found is not None
    assert (found.user_id, found.csrf) == ("dispatcher", csrf)
    SESSIONS.end(session, cookie, NOW + timedelta(minutes=2))
    session.commit()
    assert SESSIONS.read(session, cookie, NOW + timedelta(minutes=3)) is None  # replayed: nothing
    # Only the token's digest is stored.
    assert session.query(LoginSession).filter_by(token_sha256=cookie).first() is None


def test_a_password_change_ends_every_session_of_that_user(session: Session) -> None:
    mine, _ = SESSIONS.open(session, "dispatcher", NOW)
    other_device, _ = SESSIONS.open(session, "dispatcher", NOW)
    theirs, _ = SESSIONS.open(session, "searcher", NOW)
    session.commit()
    set_password(session, "dispatcher", "new-hash", NOW + timedelta(minutes=5))
    session.commit()
    later = NOW + timedelta(minutes=6)
    assert SESSIONS.read(session, mine, later) is None
    assert SESSIONS.read(session, other_device, later) is None
    assert SESSIONS.read(session, theirs, later) is not None
    # A password changed by any other path ends them too (the hash no longer matches).
    fresh, _ = SESSIONS.open(session, "searcher", later)
    user = session.get(User, "searcher")
    assert user is not None
    user.password_hash = "changed-elsewhere"
    session.commit()
    assert SESSIONS.read(session, fresh, later) is None


def test_idle_and_shift_limits(session: Session) -> None:
    cookie, _ = SESSIONS.open(session, "clinician", NOW)
    session.commit()
    t = NOW
    for _ in range(20):  # used every 20 minutes: never idle 30, but a shift is 12 h
        t += timedelta(minutes=20)
        alive = SESSIONS.read(session, cookie, t)
        session.commit()
        assert (alive is not None) == (t - NOW <= timedelta(hours=12))
    idle, _ = SESSIONS.open(session, "clinician", NOW)
    session.commit()
    assert SESSIONS.read(session, idle, NOW + timedelta(seconds=TOUCH_EVERY_S / 2)) is not None
    assert SESSIONS.read(session, idle, NOW + timedelta(minutes=31)) is None
    user = session.get(User, "clinician")
    assert user is not None
    fresh, _ = SESSIONS.open(session, "clinician", NOW)
    user.active = False
    session.commit()
    assert SESSIONS.read(session, fresh, NOW) is None  # a deactivated user's sessions end
    assert purge_sessions(session, NOW + timedelta(hours=13), 12 * 3600.0) >= 3
    for junk in (None, "", "x" * 10_000, "sns_" + "a" * 43, "\x00"):
        assert SESSIONS.read(session, junk, NOW) is None


def test_a_strangers_wrong_passwords_do_not_lock_the_user_out() -> None:
    throttle = LoginThrottle()
    for i in range(50):  # a stranger hammers the dispatcher's name from one address
        now_s = float(i)
        if throttle.retry_after("dispatcher", "203.0.113.9", now_s) == 0:
            throttle.failed("dispatcher", "203.0.113.9", now_s)
    assert throttle.retry_after("dispatcher", "203.0.113.9", 50.0) > 0  # the stranger waits
    assert throttle.retry_after("dispatcher", "198.51.100.7", 50.0) == 0  # the user does not
    assert throttle.retry_after("searcher", "203.0.113.9", 50.0) == 0  # nor others behind it


def test_backoff_doubles_and_is_capped() -> None:
    throttle = LoginThrottle()
    now_s = 0.0
    waits = []
    for _ in range(FREE_FAILURES + 12):
        now_s += throttle.retry_after("ada", "192.0.2.1", now_s)
        throttle.failed("ada", "192.0.2.1", now_s)
        waits.append(throttle.retry_after("ada", "192.0.2.1", now_s))
    assert waits[: FREE_FAILURES - 1] == [0.0] * (FREE_FAILURES - 1)
    doubling = waits[FREE_FAILURES - 1 : FREE_FAILURES + 5]
    assert all(b == 2 * a for a, b in itertools.pairwise(doubling))
    assert max(waits) == MAX_DELAY_S
    throttle.succeeded("ada", "192.0.2.1")
    assert throttle.retry_after("ada", "192.0.2.1", now_s) == 0
    for i in range(MAX_PAIRS + 10):
        throttle.failed(f"u{i}", "192.0.2.1", 0.0)
    assert len(throttle._pairs) == MAX_PAIRS  # bounded memory


def test_forwarded_for_only_from_trusted_proxies() -> None:
    assert trusted_networks("") == []
    proxies = trusted_networks("10.0.0.5, 10.1.0.0/16, ::1")
    spoofed = "1.2.3.4"
    # No proxies configured: the header is ignored, even from the local machine.
    assert client_address("127.0.0.1", spoofed, []) == "127.0.0.1"
    # From a stranger directly: ignored.
    assert client_address("198.51.100.7", spoofed, proxies) == "198.51.100.7"
    # Through the proxy: the nearest untrusted hop (a client's own prefix is not believed).
    assert client_address("10.0.0.5", "1.2.3.4, 198.51.100.7", proxies) == "198.51.100.7"
    assert client_address("10.0.0.5", "198.51.100.7, 10.1.2.3", proxies) == "198.51.100.7"
    assert client_address("10.0.0.5", "not-an-ip", proxies) == "10.0.0.5"
    assert client_address(None, None, proxies) == "unknown"
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        trusted_networks("10.0.0.300")


def test_an_administrators_unlock_forgets_a_user_or_an_address() -> None:
    throttle = LoginThrottle()
    for address in ("203.0.113.9", "198.51.100.7"):
        for user in ("ada", "bo"):
            for _ in range(FREE_FAILURES + 1):
                throttle.failed(user, address, 0.0)
    throttle.reset("user:ADA")  # usernames are compared without case
    assert throttle.retry_after("ada", "203.0.113.9", 1.0) == 0
    assert throttle.retry_after("ada", "198.51.100.7", 1.0) == 0
    assert throttle.retry_after("bo", "203.0.113.9", 1.0) > 0
    throttle.reset("ip:203.0.113.9")
    assert throttle.retry_after("bo", "203.0.113.9", 1.0) == 0
    assert throttle.retry_after("bo", "198.51.100.7", 1.0) > 0
    with pytest.raises(ValueError, match="user:<username>"):
        throttle.reset("ada")
