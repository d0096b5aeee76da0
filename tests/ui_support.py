"""Helpers for the server's tests: settings, seeded users and a search, logins, a running server
in a thread, and a feeder that posts a simulated search's reports as the receivers would."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import load_scenario
from firmware_sim.world import World
from registry.db import make_engine, upgrade
from registry.models import ReceiverToken, Role, SearchTeam
from registry.searches import assign_team
from registry.service import Actor, assign_bracelet, create_user, enrol, open_search
from safetynet.reports import FieldReport, report_to_obj
from safetynet.settings import Settings
from ui.app import create_app
from ui.security import hash_password, token_digest

SCENARIO = Path(__file__).resolve().parents[1] / "ui" / "demo_scenario.toml"
ORIGIN = (42.30206, -71.05761)
PASSWORD = "correct horse battery"
ROLES = {
    "admin": Role.ADMIN,
    "staff": Role.PROGRAM_STAFF,
    "dispatcher": Role.DISPATCHER,
    "team1": Role.SEARCHER,
    "loner": Role.SEARCHER,
    "clinician": Role.CLINICIAN,
    "family": Role.FAMILY,
    "family2": Role.FAMILY,
}
TOKENS = {
    "HH-07": "tok-hh07-" + "x" * 20,
    "HH-12": "tok-hh12-" + "y" * 20,
    "ROOF-1": "tok-roof-" + "z" * 20,
}
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def settings_for(tmp_path: Path, db_url: str | None = None, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=db_url, secret_key=SecretStr("s" * 40), tile_url="", **extra
    )


@dataclass
class Seeded:
    search_id: str
    client_id: str
    users: dict[str, str]  # username -> id


_HASH: dict[str, str] = {}


def seed(url: str, now: datetime | None = None) -> Seeded:
    """One user per role (password ``PASSWORD``), Walter with bracelet 3A7F on channel 19 and
    an active search with two teams; receiver tokens for the scenario's receivers."""
    now = now or datetime.now(UTC)
    if "h" not in _HASH:
        _HASH["h"] = hash_password(PASSWORD)
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        users = {
            name: create_user(session, name, name.title(), role, _HASH["h"]).id
            for name, role in ROLES.items()
        }
        family = Actor(users["family"], Role.FAMILY)
        client = enrol(
            session,
            family,
            {
                "first_name": "Walter",
                "last_name": "Brown",
                "date_of_birth": "1944-05-01",
                "hair": "white",
                "approach_and_calm": "speak softly",
                "triggers": "sirens",
            },
        )
        admin = Actor(users["admin"], Role.ADMIN)
        assign_bracelet(session, admin, 0x3A7F, 19, client.id, now.date())
        dispatcher = Actor(users["dispatcher"], Role.DISPATCHER)
        search = open_search(
            session, dispatcher, client.id, ORIGIN[0], ORIGIN[1], now - timedelta(seconds=30)
        )
        for name, receivers, members in (
            ("Team 1", ["HH-07"], ["team1"]),
            ("Team 2", ["HH-12"], []),
            ("Roof", ["ROOF-1"], []),
        ):
            assign_team(session, dispatcher, search.id, name, receivers)
            team = session.scalar(
                select(SearchTeam).where(SearchTeam.search_id == search.id, SearchTeam.name == name)
            )
            assert team is not None
            team.member_user_ids = [users[m] for m in members]
        for receiver_id, token in TOKENS.items():
            session.add(
                ReceiverToken(
                    receiver_id=receiver_id, token_sha256=token_digest(token), created_at=now
                )
            )
        out = Seeded(search.id, client.id, users)
    engine.dispose()
    return out


def scenario_reports(start: datetime, seconds: float) -> list[FieldReport]:
    """The demo scenario's reports (report mode) for its first ``seconds``, starting at
    ``start``."""
    scenario = load_scenario(SCENARIO).model_copy(update={"start": start, "duration_s": seconds})
    return simulate_reports(World(scenario))


def walker_truth(start: datetime, seconds: float) -> World:
    scenario = load_scenario(SCENARIO).model_copy(update={"start": start, "duration_s": seconds})
    return World(scenario)


def login(client: httpx.Client | Any, username: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "login_csrf": token.group(1),
            "next": "/",
        },
    )
    assert answer.status_code in (200, 303), answer.text[:300]
    home = client.get("/")
    csrf = re.search(r'name="csrf-token" content="([^"]*)"', home.text)
    assert csrf is not None, "no page"
    assert csrf.group(1), "not logged in"
    return csrf.group(1)


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    """Log ``page`` (Playwright) in through the login form; waits for the home page."""
    page.goto(f"{base}/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r".*/$"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _QuietServer(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free local port in a thread; yields its base URL."""
    port = free_port()
    server = _QuietServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Feeder:
    """Posts reports to the ingest API as their receivers would, ``speed`` times real time,
    each receiver with its own token (reports are re-timed so that they end up "now")."""

    def __init__(self, base_url: str, reports: list[FieldReport], speed: float) -> None:
        self.base_url, self.reports, self.speed = base_url, reports, speed
        self.posted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        t0 = self.reports[0].t
        wall0 = time.monotonic()
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            i = 0
            while i < len(self.reports) and not self._stop.is_set():
                now_s = (time.monotonic() - wall0) * self.speed
                batch: dict[str, list[dict[str, Any]]] = {}
                while i < len(self.reports) and (self.reports[i].t - t0).total_seconds() <= now_s:
                    r = self.reports[i]
                    batch.setdefault(r.receiver_id, []).append(report_to_obj(r))
                    i += 1
                for receiver_id, items in batch.items():
                    answer = client.post(
                        "/api/v1/reports",
                        json=items,
                        headers={"Authorization": f"Bearer {TOKENS[receiver_id]}"},
                    )
                    answer.raise_for_status()
                    self.posted += len(items)
                self._stop.wait(0.05)


@contextmanager
def fed_server(tmp: Path, seconds: float, speed: float) -> Iterator[dict[str, Any]]:
    """A running server (SQLite in ``tmp``) with the seeded active search, fed the demo
    scenario's first ``seconds`` of reports at ``speed`` times real time; yields its ``base``
    URL, the ``seeded`` registry and the ``feeder``."""
    url = f"sqlite:///{tmp / 'registry.db'}"
    start = datetime.now(UTC) - timedelta(seconds=10)
    seeded = seed(url, now=start + timedelta(seconds=5))
    app = create_app(settings_for(tmp, url, ingest_requests_per_s=1000))
    with running_server(app) as base:
        feeder = Feeder(base, scenario_reports(start, seconds), speed=speed).start()
        try:
            yield {"base": base, "seeded": seeded, "feeder": feeder}
        finally:
            feeder.stop()
    app.state.safetynet.engine.dispose()
