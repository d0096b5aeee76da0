"""The home alerts page live, in a real browser against the real server on SQLite and PostgreSQL:
a dispatcher watching the page sees a wander alert appear, without a reload, when the home
station's own post raises it (the ingest), said aloud in the page's live region, and sees it go
when the station hears the bracelet again; on a phone, a "station silent" notice raised by
another process on the same database (cron's home-check) appears the same way. The socket is
refused without a login and from another site. Screenshots in ``test-artifacts/screenshots``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketDisconnect

from registry import home_stations as hs
from registry.db import make_engine
from registry.notify import NOTIFIER, Notifier, Outbox
from tests.mail_support import Mailbox, smtp_server
from tests.ui.test_home_alerts import (
    DESKTOP,
    HOME,
    PHONE,
    SHOTS,
    STATION,
    TOKEN,
    _app,
    rose_at_home,
    station_reports,
)
from tests.ui.test_program_notices import _serious
from tests.ui_support import login, running_server, seed, sign_in

LIVE_WAIT_MS = 15_000  # the socket looks every 2 s; a loaded machine may take longer


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def post(base: str, body: list[dict[str, Any]]) -> None:
    """The station's own post, to the running server."""
    answer = httpx.post(f"{base}/api/v1/reports", json=body, timeout=30,
                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"] == []


def test_the_alerts_page_shows_alerts_as_they_are_raised_and_cleared(
    browser: Any, db_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    seeded = seed(db_url)
    app = _app(tmp_path, db_url)
    now = datetime.now(UTC).replace(microsecond=0)
    with TestClient(app) as staff:
        csrf = login(staff, "staff")
        rose = rose_at_home(db_url, seeded, mailbox, staff, csrf)
        # The station heard Rose until three minutes ago and kept reporting (not yet registered).
        reports = station_reports(now - timedelta(minutes=6), now, now - timedelta(minutes=3))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert staff.post("/api/v1/reports", json=reports, headers=auth).status_code == 200
        with (
            pytest.raises(WebSocketDisconnect),  # no login: refused
            TestClient(app) as stranger,
            stranger.websocket_connect("/api/v1/home-alerts/live") as socket,
        ):
            socket.receive_json()
        with (
            pytest.raises(WebSocketDisconnect),
            staff.websocket_connect(
                "/api/v1/home-alerts/live", headers={"origin": "https://evil.example"}
            ) as socket,
        ):
            socket.receive_json()
    seq = 10_000
    with running_server(app) as base:
        # --- a desktop: the station's own post raises the alert, a later one clears it --------
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        sign_in(page, base, "dispatcher")
        page.goto(f"{base}/home-alerts")
        page.wait_for_selector("#home-alerts-state:has-text('Live:')", timeout=LIVE_WAIT_MS)
        assert page.locator("#no-alerts").is_visible()
        page.evaluate("window.notReloaded = true")
        with TestClient(app) as staff:
            csrf = login(staff, "staff")
            put = staff.put(f"/api/v1/clients/{rose}/home-station",
                            headers={"X-CSRF-Token": csrf},
                            json={"receiver_id": STATION, "lat_deg": HOME[0], "lon_deg": HOME[1],
                                  "wander_after_min": 2})  # fmt: skip
            assert put.status_code == 200, put.text
        at = datetime.now(UTC).replace(microsecond=0)
        post(base, station_reports(at, at + timedelta(seconds=1), at, seq0=seq))  # a status
        seq += 10
        page.wait_for_selector(".wander-alert", timeout=LIVE_WAIT_MS)
        main = page.inner_text("main")
        assert "Rose Hill may have left home" in main
        assert "Start a search from home" in main
        news = page.locator("#home-alerts-news")
        assert news.get_attribute("role") == "alert"
        assert news.inner_text() == "New wander alert: Rose Hill may have left home."
        assert page.evaluate("window.notReloaded") is True  # shown without a reload
        assert page.title().startswith("(1) Home alerts")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= DESKTOP["width"]
        page.screenshot(path=str(SHOTS / "home-alert-live-desktop.png"), full_page=True)
        assert _serious(page) == []
        # The station hears Rose again: the alert goes.
        at = datetime.now(UTC).replace(microsecond=0)
        post(base, station_reports(at, at + timedelta(seconds=2), at + timedelta(seconds=2),
                                   seq0=seq))  # fmt: skip
        seq += 10
        page.wait_for_selector("#no-alerts", timeout=LIVE_WAIT_MS)
        assert page.locator(".wander-alert").count() == 0
        assert page.evaluate("window.notReloaded") is True
        context.close()

        # --- a phone: cron's check, another process on the database, raises "station silent" --
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        sign_in(page, base, "dispatcher")
        page.goto(f"{base}/home-alerts")
        page.wait_for_selector("#home-alerts-state:has-text('Live:')", timeout=LIVE_WAIT_MS)
        page.evaluate("window.notReloaded = true")
        engine = make_engine(db_url)
        with Session(engine) as cron:
            cron.info[NOTIFIER] = Notifier(outbox=Outbox(), zone=UTC, timeout_s=2.0)
            station = hs.station_of(cron, rose)
            assert station is not None
            later = datetime.now(UTC) + timedelta(minutes=3)  # the station silent since
            (raised,) = hs.check_stations(cron, later)
            raised_id = raised.id
            cron.commit()
        engine.dispose()
        page.wait_for_selector(f"#alert-{raised_id}", timeout=LIVE_WAIT_MS)
        assert "has not reported for" in page.inner_text(".silent-stations")
        assert page.locator("#home-alerts-news").inner_text() == (
            "Rose Hill's home station has gone silent."
        )
        assert page.evaluate("window.notReloaded") is True
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide on a phone"
        page.screenshot(path=str(SHOTS / "home-alert-live-phone.png"), full_page=True)
        assert _serious(page) == []
        context.close()
    app.state.safetynet.engine.dispose()
