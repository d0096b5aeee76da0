"""Two server processes' worth of apps on one shared store share the login lockout and the
ingest's rate limit: on PostgreSQL alone (its tables) and with a Redis of the test's own
(``SAFETYNET_BROKER_URL``). The lockout is the rule of ui/login_throttle.py: after
``FREE_FAILURES`` failures a pair waits ``BASE_DELAY_S``."""

from __future__ import annotations

import itertools
import random
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.db import make_engine
from tests.conftest import require_tool
from tests.ui_support import PASSWORD, TOKENS, seed, settings_for
from ui.app import create_app
from ui.login_throttle import BASE_DELAY_S, FREE_FAILURES
from ui.security import RateLimiter
from ui.shared_limits import PostgresLimiter, create_tables

INGEST_PER_S = 3


def attempt(client: TestClient, username: str, password: str) -> int:
    """One login through the form; its HTTP status (303: logged in)."""
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    data = {"username": username, "password": password, "login_csrf": token.group(1), "next": "/"}
    return int(client.post("/login", data=data, follow_redirects=False).status_code)


def pulse_body(seq: int) -> list[dict[str, Any]]:
    t = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return [
        {"kind": "pulse", "receiver_id": "HH-07", "seq": seq, "t": t, "channel": 19,
         "freq_hz": 216462612, "rssi_dbm": -97.0, "snr_db": 18.0}
    ]  # fmt: skip


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = require_tool("redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def two_apps(tmp_path: Path, url: str, **extra: Any) -> tuple[Any, Any]:
    seed(url)
    settings = settings_for(tmp_path, url, ingest_requests_per_s=INGEST_PER_S, **extra)
    return create_app(settings), create_app(settings, migrate=False)


def check_shared(app_a: Any, app_b: Any) -> None:
    with TestClient(app_a) as a, TestClient(app_b) as b:
        for _ in range(FREE_FAILURES):  # a guesser on process A ...
            assert attempt(a, "dispatcher", "wrong password!") == 401
        # ... is slowed on process B too, even with the right password
        assert attempt(b, "dispatcher", PASSWORD) == 429
        assert attempt(a, "dispatcher", PASSWORD) == 429
        # Another user from the same address is not slowed (the pair is username and address).
        assert attempt(b, "admin", PASSWORD) == 303
        time.sleep(BASE_DELAY_S + 0.2)
        assert attempt(b, "dispatcher", PASSWORD) == 303  # waited out; the success clears ...
        assert attempt(a, "dispatcher", "wrong password!") == 401  # ... so this is failure 1
        assert attempt(b, "dispatcher", PASSWORD) == 303
        # The ingest limit: INGEST_PER_S posts a second for a receiver, over both processes.
        auth = {"Authorization": f"Bearer {TOKENS['HH-07']}"}
        codes = [
            (a if i % 2 else b).post("/api/v1/reports", json=pulse_body(i), headers=auth)
            for i in range(INGEST_PER_S + 1)
        ]
        assert [c.status_code for c in codes] == [200] * INGEST_PER_S + [429]
        assert 0 < float(codes[-1].headers["Retry-After"]) <= 1
    for app in (app_a, app_b):
        app.state.safetynet.engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_processes_on_postgresql_share_the_limits(db_url: str, tmp_path: Path) -> None:
    app_a, app_b = two_apps(tmp_path, db_url)
    assert not isinstance(app_a.state.safetynet.ingest_limit, RateLimiter)
    check_shared(app_a, app_b)


def test_two_processes_with_redis_share_the_limits(tmp_path: Path, redis_url: str) -> None:
    app_a, app_b = two_apps(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", broker_url=redis_url)
    check_shared(app_a, app_b)


def test_one_process_on_sqlite_keeps_them_in_memory(tmp_path: Path) -> None:
    """The embedded default needs no service: two apps there do not share (nor need to)."""
    app_a, app_b = two_apps(tmp_path, f"sqlite:///{tmp_path / 'r.db'}")
    assert isinstance(app_a.state.safetynet.ingest_limit, RateLimiter)
    with TestClient(app_a) as a, TestClient(app_b) as b:
        for _ in range(FREE_FAILURES):
            assert attempt(a, "dispatcher", "wrong password!") == 401
        assert attempt(a, "dispatcher", PASSWORD) == 429
        assert attempt(b, "dispatcher", PASSWORD) == 303
    for app in (app_a, app_b):
        app.state.safetynet.engine.dispose()


def moving_window(times_s: list[float], limit: int, window_s: float) -> list[float]:
    """The rule spelled out: a request at t may go if fewer than ``limit`` admitted requests lie
    in (t - window_s, t]; the wait of one refused, till the oldest of those leaves. 0: admitted."""
    admitted: list[float] = []
    waits_s = []
    for t in times_s:
        recent = [a for a in admitted if a > t - window_s]
        if len(recent) < limit:
            admitted.append(t)
            waits_s.append(0.0)
        else:
            waits_s.append(sorted(recent)[-limit] + window_s - t)
    return waits_s


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_ingest_limit_holds_astride_a_whole_second(db_url: str) -> None:
    """Three requests just before a whole second and three just after: at 3 a second only the
    first three go (a window per whole second let all six through), and each refused one is
    told the wait till the first leaves the window; then the limit holds over a long random
    run, against the rule computed from the times."""
    engine = make_engine(db_url)
    try:
        create_tables(engine)
        limiter = PostgresLimiter(engine, limit=3, window_s=1.0)
        edge_s = [1000.7, 1000.8, 1000.9, 1001.0, 1001.1, 1001.2, 1001.75]
        waits_s = [limiter.acquire("HH-07", t) for t in edge_s]
        assert waits_s == pytest.approx([0, 0, 0, 0.7, 0.6, 0.5, 0])
        # Another key is counted apart.
        assert limiter.acquire("HH-08", 1001.2) == 0
        rng = random.Random(7)
        run_s = list(itertools.accumulate(rng.expovariate(4.0) for _ in range(300)))
        run_s = [2000.0 + t for t in run_s]
        got_s = [limiter.acquire("HH-09", t) for t in run_s]
        truth_s = moving_window(run_s, limit=3, window_s=1.0)
        assert 50 < sum(w > 0 for w in truth_s) < 250  # the run refuses some, admits most
        assert [g == 0 for g in got_s] == [w == 0 for w in truth_s]
        assert got_s == pytest.approx([max(w, 0.01) if w else 0.0 for w in truth_s])
    finally:
        engine.dispose()
