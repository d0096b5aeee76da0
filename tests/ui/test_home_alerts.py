"""Home stations through the real server on SQLite and PostgreSQL, with a real SMTP server: a
home station posts its reports with its own token, stops hearing the bracelet while it keeps
reporting, and the wander alert is raised by its own next post (the API lists it, the page shows
it, the program's target gets the mail); one click on the page opens a search from the home at
the time last heard; the station's hearing logged the daily test. In a real browser: the alert
page on a desktop and a phone (screenshots in ``test-artifacts/screenshots``)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.bracelets import add_bracelet, assign_from_inventory
from registry.db import make_engine
from registry.models import DailyTest, ReceiverToken, Role
from registry.notify import Notifier, add_target
from registry.service import Actor
from tests.mail_support import Mailbox, mail_url, smtp_server, text_of
from tests.ui.test_program_notices import _serious
from tests.ui_support import (
    ARTIFACTS,
    TOKENS,
    Seeded,
    login,
    running_server,
    seed,
    settings_for,
)
from ui.app import create_app
from ui.security import token_digest

HTML = {"accept": "text/html"}
SHOTS = ARTIFACTS / "screenshots"
STATION, TOKEN = "HOME-0042", "tok-home-" + "h" * 20
HOME = (42.30555, -71.06012)
BRACELET = 0x4B10
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def _app(tmp_path: Path, db_url: str) -> Any:
    app = create_app(settings_for(tmp_path, db_url, time_zone="UTC"))
    app.state.safetynet.notifier = Notifier(zone=UTC, timeout_s=2.0)
    return app


def _z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def station_reports(start: datetime, end: datetime, heard_until: datetime,
                    seq0: int = 1) -> list[dict[str, Any]]:  # fmt: skip
    """A home station's reports: a frame a second until ``heard_until``, its status every 30 s."""
    out, seq, t = [], seq0, start
    while t < end:
        if t < heard_until:
            out.append({"kind": "pulse", "receiver_id": STATION, "seq": seq, "t": _z(t),
                        "channel": 7, "freq_hz": 216200000, "bracelet_id": f"{BRACELET:04X}",
                        "status": {"seq": seq % 32, "test": False, "strap_open": False,
                                   "low_battery": False},
                        "rssi_dbm": -68.0, "snr_db": 31.0})  # fmt: skip
            seq += 1
        if int((t - start).total_seconds()) % 30 == 0:
            out.append({"kind": "status", "receiver_id": STATION, "seq": seq, "t": _z(t),
                        "lat_deg": HOME[0], "lon_deg": HOME[1], "gps_fix": False,
                        "gain_db": 28.0, "noise_dbm": -131.0, "clipping": False,
                        "battery_v": None, "lo_error_ppm": None})  # fmt: skip
            seq += 1
        t += timedelta(seconds=1)
    return out


def rose_at_home(db_url: str, seeded: Seeded, mailbox: Mailbox, client: TestClient,
                 csrf: str) -> str:  # fmt: skip
    """Rose enrolled with consent, wearing 4B10; the station's token; the program's target."""
    made = client.post("/api/v1/clients", headers={"X-CSRF-Token": csrf},
                       json={"first_name": "Rose", "last_name": "Hill",
                             "date_of_birth": "1940-03-03", "consent_home_alerts": True,
                             "consent_given_by": "Mary Hill (daughter, guardian)"})  # fmt: skip
    assert made.status_code == 201, made.text
    rose = str(made.json()["id"])
    engine = make_engine(db_url)
    with Session(engine) as session, session.begin():
        staff = Actor(seeded.users["staff"], Role.PROGRAM_STAFF)
        add_bracelet(session, staff, BRACELET, 7)
        assign_from_inventory(session, staff, BRACELET, rose)
        session.add(ReceiverToken(receiver_id=STATION, token_sha256=token_digest(TOKEN),
                                  created_at=datetime.now(UTC)))  # fmt: skip
        add_target(session, Actor(seeded.users["admin"], Role.ADMIN), "program", "Program office",
                   mail_url(mailbox.port, "office@example.org"))  # fmt: skip
    engine.dispose()
    return rose


def test_a_station_that_stops_hearing_raises_the_alert_and_one_click_opens_the_search(
    db_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    seeded = seed(db_url)
    app = _app(tmp_path, db_url)
    with TestClient(app) as staff, TestClient(app) as dispatch, TestClient(app) as family:
        csrf = login(staff, "staff")
        rose = rose_at_home(db_url, seeded, mailbox, staff, csrf)
        put = staff.put(f"/api/v1/clients/{rose}/home-station", headers={"X-CSRF-Token": csrf},
                        json={"receiver_id": STATION, "lat_deg": HOME[0], "lon_deg": HOME[1],
                              "wander_after_min": 2})  # fmt: skip
        assert put.status_code == 200, put.text
        assert put.json()["wander_after_min_in_force"] == 2
        bad = staff.put(f"/api/v1/clients/{rose}/home-station", headers={"X-CSRF-Token": csrf},
                        json={"receiver_id": STATION, "lat_deg": 91, "lon_deg": 0,
                              "quiet_from": "22:00"})  # fmt: skip
        assert bad.status_code == 422
        assert "latitude within -90..90" in bad.text
        assert "both its start and its end" not in bad.text  # one message per problem
        login(family, "family")  # Walter's family: not Rose's
        assert family.get(f"/api/v1/clients/{rose}/home-station").status_code == 403

        now = datetime.now(UTC).replace(microsecond=0)
        left = now - timedelta(minutes=3)  # out of range three minutes ago; the station reports
        auth = {"Authorization": f"Bearer {TOKEN}"}
        body = station_reports(now - timedelta(minutes=6), now, heard_until=left)
        started = time.perf_counter()
        posted = staff.post("/api/v1/reports", json=body, headers=auth)
        assert posted.status_code == 200, posted.text
        assert posted.json()["rejected"] == []
        mailbox.wait_for(1, timeout_s=15)
        mail_s = time.perf_counter() - started
        (mail,) = mailbox.to("office@example.org")
        assert mail["Subject"] == "Wander alert: Rose Hill may have left home"
        assert f"The home station {STATION} keeps reporting" in text_of(mail)
        print(f"wander alert mailed {mail_s:.2f} s after the station's post")

        dcsrf = login(dispatch, "dispatcher")
        (alert,) = dispatch.get("/api/v1/home-alerts").json()
        assert alert["kind"] == "wander"
        assert alert["name"] == "Rose Hill"
        last_heard = datetime.fromisoformat(alert["last_heard_at"])
        assert abs((last_heard - (left - timedelta(seconds=1))).total_seconds()) < 1.5
        page = dispatch.get("/home-alerts", headers=HTML).text
        assert "Rose Hill may have left home" in page
        assert "Start a search from home" in page
        clicked = dispatch.post(f"/home-alerts/{alert['id']}/search",
                                data={"csrf": dcsrf}, headers=HTML,
                                follow_redirects=False)  # fmt: skip
        assert clicked.status_code == 303
        search_id = clicked.headers["location"].rsplit("/", 1)[1]
        search = dispatch.get(f"/api/v1/searches/{search_id}").json()
        assert (search["last_known"]["lat_deg"], search["last_known"]["lon_deg"]) == HOME
        assert datetime.fromisoformat(search["last_known"]["at"]) == last_heard
        again = dispatch.post(f"/api/v1/home-alerts/{alert['id']}/search",
                              headers={"X-CSRF-Token": dcsrf})  # fmt: skip
        assert again.status_code == 201
        assert again.json()["search_id"] == search_id  # one click, one search
        forged = dispatch.post(f"/home-alerts/{alert['id']}/search", data={"csrf": "nope"},
                               headers=HTML)  # fmt: skip
        assert forged.status_code == 403
        # The station's hearing was the day's test: by the station, heard, with its RSSI.
        engine = make_engine(db_url)
        with Session(engine) as session:
            (test,) = session.scalars(select(DailyTest))
            assert test.tested_by == f"home station {STATION}"
            assert test.passed
            assert test.rssi_dbm == -68.0
        engine.dispose()
    app.state.safetynet.engine.dispose()


def test_the_alert_page_on_a_desktop_and_a_phone(
    browser: Any, tmp_path: Path, mailbox: Mailbox
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seeded = seed(url)
    app = _app(tmp_path, url)
    with TestClient(app) as staff:
        csrf = login(staff, "staff")
        rose = rose_at_home(url, seeded, mailbox, staff, csrf)
        staff.put(f"/api/v1/clients/{rose}/home-station", headers={"X-CSRF-Token": csrf},
                  json={"receiver_id": STATION, "lat_deg": HOME[0], "lon_deg": HOME[1],
                        "wander_after_min": 2})  # fmt: skip
        now = datetime.now(UTC).replace(microsecond=0)
        body = station_reports(now - timedelta(minutes=5), now, now - timedelta(minutes=3))
        posted = staff.post("/api/v1/reports", json=body,
                            headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        assert posted.status_code == 200
    with running_server(app) as base:
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = browser.new_context(viewport=viewport)
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill('input[name="username"]', "dispatcher")
            page.fill('input[name="password"]', "correct horse battery")
            page.click('button[type="submit"]')
            page.wait_for_url(re.compile(r".*/$"))
            page.goto(f"{base}/home-alerts")
            assert "Rose Hill may have left home" in page.inner_text("main")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"the page is {width} px wide on a {name}"
            page.screenshot(path=str(SHOTS / f"home-alert-{name}.png"), full_page=True)
            assert _serious(page) == []
            if name == "phone":
                page.click("text=Start a search from home")
                page.wait_for_url(re.compile(r".*/searches/[0-9a-f]{32}$"))
            context.close()
    app.state.safetynet.engine.dispose()


def test_the_family_sets_the_home_station_and_its_quiet_window_on_the_record_page(
    tmp_path: Path, browser: Any
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed(url)
    app = _app(tmp_path, url)
    with TestClient(app) as family:
        csrf = login(family, "family")
        made = family.post("/api/v1/clients", headers={"X-CSRF-Token": csrf},
                           json={"first_name": "Rose", "last_name": "Hill",
                                 "date_of_birth": "1940-03-03"})  # fmt: skip
        rose = made.json()["id"]
        page = family.get(f"/clients/{rose}", headers=HTML).text
        assert "No consent to home-station alerts is recorded" in page
        assert 'id="home-station-form"' not in page
        version = family.get(f"/api/v1/clients/{rose}").json()["version"]
        consented = family.patch(f"/api/v1/clients/{rose}", headers={"X-CSRF-Token": csrf},
                                 json={"version": version, "changes": {
                                     "consent_home_alerts": True,
                                     "consent_given_by": "Mary Hill (daughter)"}})  # fmt: skip
        assert consented.status_code == 200, consented.text
        form = {"csrf": csrf, "receiver_id": STATION, "lat_deg": "42.30555",
                "lon_deg": "north", "wander_after_min": "12", "quiet_from": "22:30",
                "quiet_until": ""}  # fmt: skip
        refused = family.post(f"/clients/{rose}/home-station", data=form, headers=HTML)
        assert refused.status_code == 200  # back on the record page, the message on it
        assert "longitude within -180..180" in refused.text
        assert "both its start and its end" not in refused.text  # one problem at a time here
        form.update(lon_deg="-71.06012", quiet_until="07:00")
        saved = family.post(f"/clients/{rose}/home-station", data=form, headers=HTML)
        assert f"Home station {STATION} saved." in saved.text
        assert (
            "An alert after <strong>12 minutes</strong> unheard, never between 22:30 and 07:00"
            in (saved.text)
        )
        got = family.get(f"/api/v1/clients/{rose}/home-station").json()
        assert (got["quiet_from"], got["quiet_until"], got["wander_after_min"]) == (
            "22:30", "07:00", 12)  # fmt: skip
    with running_server(app) as base:
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = browser.new_context(viewport=viewport)
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill('input[name="username"]', "family")
            page.fill('input[name="password"]', "correct horse battery")
            page.click('button[type="submit"]')
            page.wait_for_url(re.compile(r".*/$"))
            page.goto(f"{base}/clients/{rose}#home-station")
            section = page.locator("#home-station")
            assert "12 minutes" in section.inner_text()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"the page is {width} px wide on a {name}"
            section.screenshot(path=str(SHOTS / f"home-station-{name}.png"))
            page.locator("#consent").screenshot(path=str(SHOTS / f"consent-{name}.png"))
            context.close()
    app.state.safetynet.engine.dispose()


def test_fleet_sightings_through_the_api_are_sealed_until_the_search_opens(
    db_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    seeded = seed(db_url)
    app = _app(tmp_path, db_url)
    with TestClient(app) as staff, TestClient(app) as dispatch:
        csrf = login(staff, "staff")
        rose = rose_at_home(db_url, seeded, mailbox, staff, csrf)
        version = staff.get(f"/api/v1/clients/{rose}").json()["version"]
        fleet = {"consent_fleet_sightings": True}
        staff.patch(f"/api/v1/clients/{rose}", headers={"X-CSRF-Token": csrf},
                    json={"version": version, "changes": fleet})  # fmt: skip
        now = datetime.now(UTC).replace(microsecond=0)
        heard = {"kind": "pulse", "receiver_id": "ROOF-1", "seq": 77, "t": _z(now),
                 "channel": 7, "freq_hz": 216200000, "bracelet_id": f"{BRACELET:04X}",
                 "rssi_dbm": -104.0, "snr_db": 9.0, "lat_deg": 42.3101,
                 "lon_deg": -71.0601}  # fmt: skip
        posted = staff.post("/api/v1/reports", json=[heard],
                            headers={"Authorization": f"Bearer {TOKENS['ROOF-1']}"})  # fmt: skip
        assert posted.json()["accepted"] == 1, posted.text
        dcsrf = login(dispatch, "dispatcher")
        sealed = dispatch.get(f"/api/v1/clients/{rose}/sightings", params={"reason": "x"})
        assert sealed.status_code == 403
        assert "sealed" in sealed.text
        opened = dispatch.post("/api/v1/searches", headers={"X-CSRF-Token": dcsrf},
                               json={"client_id": rose, "lat_deg": HOME[0], "lon_deg": HOME[1],
                                     "last_seen": _z(now - timedelta(minutes=10))})  # fmt: skip
        assert opened.status_code == 201, opened.text
        search_id = opened.json()["id"]
        shown = dispatch.get(f"/api/v1/searches/{search_id}/sightings",
                             params={"reason": "search opened"})  # fmt: skip
        assert shown.status_code == 200, shown.text
        (row,) = shown.json()
        assert row["receiver_id"] == "ROOF-1"
        assert row["text"].startswith(f"heard by ROOF-1 at {now:%H:%M} UTC, ")
        assert staff.get(f"/api/v1/searches/{search_id}/sightings",
                         params={"reason": "x"}).status_code == 403  # fmt: skip
    app.state.safetynet.engine.dispose()
