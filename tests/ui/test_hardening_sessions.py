"""Sessions end when they end, through the real app on SQLite and PostgreSQL: a cookie replayed
after logout, after a password change or after the idle time reads nothing; a stranger's wrong
passwords do not stop the right user logging in from another address; X-Forwarded-For counts
only from a configured proxy, and so does X-Forwarded-Proto for a Secure cookie."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from registry.models import LoginSession
from tests.ui_support import PASSWORD, login, seed, settings_for
from ui.app import create_app
from ui.login_throttle import FREE_FAILURES

STRANGER = ("203.0.113.9", 40000)
USER_HOME = ("198.51.100.7", 40001)
PROXY = ("10.0.0.5", 40002)
NEW_PASSWORD = "a much longer new passphrase"


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[FastAPI, str]]:
    seeded = seed(db_url)
    app = create_app(settings_for(tmp_path, db_url, trusted_proxies="10.0.0.5"))
    with TestClient(app):  # the lifespan runs (the live rebuild)
        yield app, seeded.search_id
    app.state.safetynet.engine.dispose()


@contextmanager
def browser(app: FastAPI, address: tuple[str, int] = USER_HOME) -> Iterator[TestClient]:
    with TestClient(app, client=address) as client:
        yield client


def session_cookie(client: TestClient) -> str:
    value = client.cookies.get("safetynet_session")
    assert value, "no session cookie"
    return str(value)


def attempt(client: TestClient, username: str, password: str, **headers: str) -> int:
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"username": username, "password": password, "login_csrf": token.group(1)},
        headers=headers,
        follow_redirects=False,
    )
    return int(answer.status_code)


def note(client: TestClient, search_id: str, csrf: str) -> int:
    answer = client.post(
        f"/api/v1/searches/{search_id}/notes",
        json={"text": "checked the garden"},
        headers={"X-CSRF-Token": csrf},
    )
    return int(answer.status_code)


def test_logout_revokes_the_cookie(server: tuple[FastAPI, str]) -> None:
    app, search_id = server
    with browser(app) as client:
        csrf = login(client, "dispatcher")
        cookie = session_cookie(client)
        assert note(client, search_id, csrf) == 201
        done = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert done.status_code == 303
    with browser(app) as replay:  # the cookie kept by an attacker, replayed after logout
        replay.cookies.set("safetynet_session", cookie)
        assert replay.get("/api/v1/searches").status_code == 401
        assert note(replay, search_id, csrf) == 401
        assert replay.get(f"/searches/{search_id}", headers={"accept": "text/html"},
                          follow_redirects=False).status_code == 303  # fmt: skip


def test_a_password_change_ends_every_session_of_the_user(server: tuple[FastAPI, str]) -> None:
    app, search_id = server
    with browser(app) as laptop, browser(app, ("198.51.100.8", 40003)) as phone:
        csrf = login(laptop, "dispatcher")
        old_laptop = session_cookie(laptop)
        phone_csrf = login(phone, "dispatcher")
        wrong = laptop.post(
            "/api/v1/account/password",
            json={"current_password": "not it", "new_password": NEW_PASSWORD},
            headers={"X-CSRF-Token": csrf},
        )
        assert wrong.status_code == 403
        assert wrong.json()["error"] == "forbidden"
        short = laptop.post(
            "/api/v1/account/password",
            json={"current_password": PASSWORD, "new_password": "short"},
            headers={"X-CSRF-Token": csrf},
        )
        assert short.status_code == 422
        changed = laptop.post(
            "/api/v1/account/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers={"X-CSRF-Token": csrf},
        )
        assert changed.status_code == 200, changed.text
        new_csrf = changed.json()["csrf"]
        assert session_cookie(laptop) != old_laptop
        assert note(laptop, search_id, new_csrf) == 201  # this device goes on, with a new session
        assert note(phone, search_id, phone_csrf) == 401  # the other device is logged out
        laptop.cookies.set("safetynet_session", old_laptop)
        assert laptop.get("/api/v1/searches").status_code == 401  # the old cookie is dead
    with browser(app) as client:
        assert attempt(client, "dispatcher", PASSWORD) == 401
        assert attempt(client, "dispatcher", NEW_PASSWORD) == 303


def test_an_idle_session_ends(server: tuple[FastAPI, str]) -> None:
    app, _ = server
    idle_s = app.state.safetynet.settings.session_idle_minutes * 60.0
    with browser(app) as idle, browser(app) as busy:
        login(idle, "dispatcher")
        login(busy, "dispatcher")
        engine = app.state.safetynet.engine
        now = datetime.now(UTC)
        with Session(engine) as session, session.begin():
            # Time passes: one left alone past the idle time, one used just within it.
            for client, idle_for_s in ((idle, idle_s + 60.0), (busy, idle_s - 120.0)):
                digest = _digest(session_cookie(client))
                session.execute(
                    update(LoginSession)
                    .where(LoginSession.token_sha256 == digest)
                    .values(last_seen_at=now - timedelta(seconds=idle_for_s))
                )
        assert idle.get("/api/v1/searches").status_code == 401
        assert busy.get("/api/v1/searches").status_code == 200
        assert busy.get("/api/v1/searches").status_code == 200  # used again: still alive


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def test_a_strangers_wrong_passwords_do_not_stop_the_user(server: tuple[FastAPI, str]) -> None:
    app, _ = server
    with browser(app, STRANGER) as stranger:
        answers = [attempt(stranger, "dispatcher", f"guess {i}") for i in range(FREE_FAILURES + 5)]
        assert answers[:FREE_FAILURES] == [401] * FREE_FAILURES
        assert set(answers[FREE_FAILURES:]) == {429}  # slowed: each try now waits
        # The stranger is slowed even with the right password (it cannot tell it found it) ...
        assert attempt(stranger, "dispatcher", PASSWORD) == 429
        # ... and saying it comes from elsewhere does not help: no proxy stands in front of it.
        assert attempt(stranger, "dispatcher", PASSWORD, **{"X-Forwarded-For": USER_HOME[0]}) == 429
        # Another user behind the stranger's address is not slowed.
        assert attempt(stranger, "clinician", PASSWORD) == 303
    with browser(app, USER_HOME) as user:  # the real user, from their own address: at once
        assert attempt(user, "dispatcher", PASSWORD) == 303
        assert user.get("/api/v1/searches").status_code == 200


def test_forwarded_for_counts_only_from_the_configured_proxy(server: tuple[FastAPI, str]) -> None:
    app, _ = server
    with browser(app, PROXY) as proxy:
        for i in range(FREE_FAILURES + 1):  # the stranger, through the agency's proxy
            attempt(proxy, "dispatcher", f"guess {i}", **{"X-Forwarded-For": STRANGER[0]})
        assert attempt(proxy, "dispatcher", PASSWORD, **{"X-Forwarded-For": STRANGER[0]}) == 429
        # The user through the same proxy is told apart by the address the proxy saw.
        assert attempt(proxy, "dispatcher", PASSWORD, **{"X-Forwarded-For": USER_HOME[0]}) == 303
    answers: list[Any] = []
    with browser(app, STRANGER) as direct:  # the stranger, directly, naming the proxy's client
        for i in range(FREE_FAILURES + 1):
            answers.append(
                attempt(direct, "family", f"guess {i}", **{"X-Forwarded-For": "1.1.1.1"})
            )
    with browser(app, PROXY) as proxy:
        # Through the proxy, 1.1.1.1 itself was never slowed: the direct header was not believed.
        assert attempt(proxy, "family", PASSWORD, **{"X-Forwarded-For": "1.1.1.1"}) == 303
    assert answers[-1] == 429


def _secure_cookie(client: TestClient, **headers: str) -> bool:
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"username": "dispatcher", "password": PASSWORD, "login_csrf": token.group(1)},
        headers=headers,
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie"
                  and v.startswith("safetynet_session="))  # fmt: skip
    return "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_the_cookie_is_secure_behind_a_tls_proxy_only_when_it_says_so(
    server: tuple[FastAPI, str],
) -> None:
    app, _ = server
    https = {"X-Forwarded-Proto": "https"}
    with browser(app, PROXY) as proxy:
        assert _secure_cookie(proxy, **https)  # the agency's TLS proxy: Secure
        assert not _secure_cookie(proxy)  # the proxy, over plain HTTP
    with browser(app, STRANGER) as direct:
        assert not _secure_cookie(direct, **https)  # anyone else saying so is not believed
