"""The server through its real app (ASGI, real SQLite and PostgreSQL): logins, CSRF, the ingest
API of spec/reports.md, the live push and its rebuild after a restart, exports, pages by role."""

from __future__ import annotations

import json
import math
import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.searches import category_of
from safetynet.errors import ConfigError
from safetynet.geodesy import inverse
from safetynet.reports import report_to_obj
from safetynet.settings import Settings
from tests.ui_support import TOKENS, login, scenario_reports, seed, settings_for, walker_truth
from ui.app import create_app
from ui.security import RateLimiter
from ui.usng import parse_usng

# Reports lie within the server's time window (ui/clock.py): a minute before the test runs —
# each test's own minute (:func:`_reports_a_minute_old`), not the one the suite was collected in:
# a slow machine reaches these tests half an hour later, when such a report is rightly late.


def _a_minute_ago() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.123Z")


PULSE = {
    "kind": "pulse",
    "receiver_id": "HH-07",
    "seq": 1,
    "t": _a_minute_ago(),
    "channel": 19,
    "freq_hz": 216462612,
    "bracelet_id": "3A7F",
    "status": {"seq": 5, "test": False, "strap_open": False, "low_battery": True},
    "rssi_dbm": -97.4,
    "snr_db": 18.2,
    "gain_db": 28.0,
    "lat_deg": 42.30206,
    "lon_deg": -71.05761,
    "alt_m": 12.0,
    "heading_deg": 131.5,
    "antenna": "yagi3",
}
AUTH = {"Authorization": f"Bearer {TOKENS['HH-07']}"}


@pytest.fixture(autouse=True)
def _reports_a_minute_old() -> None:
    PULSE["t"] = _a_minute_ago()


@pytest.fixture
def app_env(db_url: str, tmp_path: Path) -> Any:
    seeded = seed(db_url)
    app = create_app(settings_for(tmp_path, db_url, ingest_requests_per_s=1000))
    with TestClient(app) as client:
        yield client, seeded
    app.state.safetynet.engine.dispose()


def test_refuses_the_default_secret_outside_demo_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(Settings(data_dir=tmp_path))
    create_app(Settings(data_dir=tmp_path, demo=True))  # the demo may


def test_login_cookies_rate_limit_and_csrf(app_env: Any) -> None:
    client, _ = app_env
    assert (
        client.get("/", headers={"accept": "text/html"}, follow_redirects=False).status_code == 303
    )
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    form = {"username": "dispatcher", "password": "wrong", "login_csrf": token.group(1)}
    # Without the login form's token the login is refused (login CSRF).
    assert "expired" in client.post("/login", data={**form, "login_csrf": "forged"}).text
    for _ in range(5):
        assert client.post("/login", data=form).status_code == 401
    limited = client.post("/login", data={**form, "password": "correct horse battery"})
    assert limited.status_code == 429
    assert "Too many failed logins" in limited.text
    assert int(limited.headers["Retry-After"]) > 0
    client.app.state.safetynet.login_failures.reset("user:dispatcher")
    client.app.state.safetynet.login_failures.reset("ip:testclient")
    csrf = login(client, "dispatcher")
    cookie = next(c for c in client.cookies.jar if c.name == "safetynet_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite", "").lower() == "strict"
    # Unsafe API calls need the CSRF header.
    body = {"text": "hello"}
    search_id = client.get("/api/v1/searches").json()[0]["id"]
    assert client.post(f"/api/v1/searches/{search_id}/notes", json=body).status_code == 403
    odd = {"X-CSRF-Token": "é".encode()}  # a header that is not ASCII
    assert (
        client.post(f"/api/v1/searches/{search_id}/notes", json=body, headers=odd).status_code
        == 403
    )
    ok = client.post(
        f"/api/v1/searches/{search_id}/notes", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 201
    page = client.get("/")
    assert "script-src 'self' 'nonce-" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_ingest_is_idempotent_partial_and_checks_who_sends(app_env: Any) -> None:
    client, _ = app_env
    assert client.post("/api/v1/reports", json=[PULSE]).status_code == 401
    assert (
        client.post(
            "/api/v1/reports", json=[PULSE], headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    bad = {**PULSE, "seq": 2, "rssi_dbm": 99.0}
    foreign = {**PULSE, "seq": 3, "receiver_id": "HH-12"}
    fix = {
        "kind": "fix",
        "bracelet_id": "3A7F",
        "t": "2026-11-28T14:03:20.000Z",
        "lat_deg": 42.3,
        "lon_deg": -71.05,
        "cov_enu_m2": [[1.0, 0.0], [0.0, 1.0]],
        "ellipse95": {"semi_major_m": 3.0, "semi_minor_m": 2.0, "orientation_deg": 0.0},
        "velocity_enu_mps": None,
        "n_bearings": 2,
        "n_pulses": 0,
        "method": "ekf",
    }
    answer = client.post(
        "/api/v1/reports", json=[PULSE, bad, foreign, fix, {**PULSE, "x": 1}], headers=AUTH
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4]
    assert rejected[1]["field"] == "rssi_dbm"
    assert "99" in rejected[1]["message"]
    assert "HH-07" in rejected[2]["message"]
    # Sent again (a retry after a lost answer): stored once.
    again = client.post("/api/v1/reports", json=[PULSE], headers=AUTH).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    # JSON Lines, with one line that is not JSON.
    lines = json.dumps({**PULSE, "seq": 10}) + "\n{oops\n" + json.dumps({**PULSE, "seq": 11})
    nd = client.post(
        "/api/v1/reports", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    ).json()
    assert nd["accepted"] == 2
    assert nd["rejected"][0]["index"] == 1
    too_many = [{**PULSE, "seq": 100 + i} for i in range(1001)]
    assert client.post("/api/v1/reports", json=too_many, headers=AUTH).status_code == 413
    assert (
        client.post(
            "/api/v1/reports", content="{}", headers={**AUTH, "Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/v1/reports", content="x", headers={**AUTH, "Content-Type": "text/plain"}
        ).status_code
        == 415
    )


class _OneInstant:
    """The app's own ingest limit asked as if every request came at the instant this was made,
    on the limiter's clock (monotonic in memory, wall-clock in PostgreSQL): six posts are six
    posts within one second however slowly a loaded machine sends them."""

    def __init__(self, limiter: Any) -> None:
        self.limiter = limiter
        self.now_s = time.monotonic() if isinstance(limiter, RateLimiter) else time.time()

    def acquire(self, key: str) -> float:
        return float(self.limiter.acquire(key, self.now_s))


def test_ingest_rate_limit_says_when_to_retry(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    app = create_app(settings_for(tmp_path, db_url, ingest_requests_per_s=3))
    state = app.state.safetynet
    state.ingest_limit = _OneInstant(state.ingest_limit)
    with TestClient(app) as client:
        codes = [
            client.post("/api/v1/reports", json=[{**PULSE, "seq": i}], headers=AUTH)
            for i in range(6)
        ]
        assert [c.status_code for c in codes] == [200, 200, 200, 429, 429, 429]
        # All at one instant: the first leaves the one-second window a second later.
        assert [c.headers["Retry-After"] for c in codes[3:]] == ["1", "1", "1"]
    state.engine.dispose()


def test_a_login_sends_only_manual_reports_under_its_own_id_while_on_a_team(app_env: Any) -> None:
    client, _ = app_env
    csrf = login(client, "team1")
    manual = {
        "kind": "bearing",
        "receiver_id": "WEB-team1",
        "seq": 1,
        "t": _a_minute_ago(),
        "bracelet_id": "3A7F",
        "channel": 19,
        "lat_deg": 42.302,
        "lon_deg": -71.057,
        "bearing_deg": 131.0,
        "sigma_deg": 15.0,
        "method": "manual",
    }
    headers = {"X-CSRF-Token": csrf}
    answer = client.post(
        "/api/v1/reports",
        headers=headers,
        json=[
            manual,
            {**manual, "seq": 2, "method": "sweep"},
            {**manual, "seq": 3, "receiver_id": "HH-07"},
        ],
    ).json()
    assert answer["accepted"] == 1
    assert [r["index"] for r in answer["rejected"]] == [1, 2]
    client.cookies.clear()
    csrf = login(client, "loner")  # a searcher on no team
    answer = client.post(
        "/api/v1/reports",
        headers={"X-CSRF-Token": csrf},
        json=[{**manual, "receiver_id": "WEB-loner"}],
    ).json()
    assert answer["accepted"] == 0
    assert "team" in answer["rejected"][0]["message"]


def _drain(ws: Any, until: Any, limit: int = 5000) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        message = ws.receive_json()
        seen.extend(message["messages"] if message["type"] == "batch" else [message])
        if until(message, seen):
            break
    return seen


def test_reports_become_fixes_on_the_socket_and_survive_a_restart(
    db_url: str, tmp_path: Path
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=240)
    seeded = seed(db_url, now=start + timedelta(seconds=30))
    reports = scenario_reports(start, 200)
    settings = settings_for(tmp_path, db_url, ingest_requests_per_s=10_000)
    app = create_app(settings)
    with TestClient(app) as client:
        login(client, "dispatcher")
        with client.websocket_connect(f"/api/v1/searches/{seeded.search_id}/live") as ws:
            first = ws.receive_json()
            assert first["type"] == "snapshot"
            assert first["fix"] is None
            assert first["bracelet_id"] == "3A7F"
            for i in range(0, len(reports), 50):
                chunk = reports[i : i + 50]
                by_token: dict[str, list[dict[str, Any]]] = {}
                for r in chunk:
                    by_token.setdefault(r.receiver_id, []).append(report_to_obj(r))
                for receiver_id, items in by_token.items():
                    client.post(
                        "/api/v1/reports",
                        json=items,
                        headers={"Authorization": f"Bearer {TOKENS[receiver_id]}"},
                    )
            state = client.get(f"/api/v1/searches/{seeded.search_id}/state").json()
            # Every fix the state holds was pushed to the socket, in order.
            n = len(state["track"])
            pushed = _drain(ws, lambda m, s: sum(x["type"] == "fix" for x in s) >= n)
            fixes = [m["fix"] for m in pushed if m["type"] == "fix"]
    app.state.safetynet.engine.dispose()
    assert len(fixes) >= 10
    assert [[f["lat_deg"], f["lon_deg"], f["t"]] for f in fixes] == state["track"]
    # Each fix against the walker's true position at its time: the 95 % ellipse holds the
    # truth most of the time, and the last fix is within a few tens of metres.
    world = walker_truth(start, 200)
    inside = 0
    for fix in fixes:
        t_s = (datetime.fromisoformat(fix["t"].replace("Z", "+00:00")) - start).total_seconds()
        lat, lon = world.frame.to_lat_lon(*world.bracelets[0].position(t_s))
        d = inverse(fix["lat_deg"], fix["lon_deg"], lat, lon).distance_m
        inside += d <= fix["ellipse95"]["semi_major_m"]
    assert inside / len(fixes) >= 0.8
    # A new server process on the same database rebuilds the same state from the stored reports.
    app2 = create_app(settings)
    with TestClient(app2) as client2:
        login(client2, "dispatcher")
        rebuilt = client2.get(f"/api/v1/searches/{seeded.search_id}/state").json()
    app2.state.safetynet.engine.dispose()
    assert len(rebuilt["track"]) == len(state["track"])
    last, last2 = state["fix"], rebuilt["fix"]
    assert math.isclose(last["lat_deg"], last2["lat_deg"], abs_tol=1e-6)
    assert math.isclose(last["lon_deg"], last2["lon_deg"], abs_tol=1e-6)
    assert {r["receiver_id"] for r in rebuilt["receivers"]} == {"HH-07", "HH-12", "ROOF-1"}


def test_exports_parse_and_hold_the_search(app_env: Any) -> None:
    client, seeded = app_env
    login(client, "dispatcher")
    bearing = {
        "kind": "bearing",
        "receiver_id": "HH-07",
        "seq": 7,
        "t": _a_minute_ago(),
        "bracelet_id": "3A7F",
        "channel": 19,
        "lat_deg": 42.305,
        "lon_deg": -71.06,
        "bearing_deg": 131.0,
        "sigma_deg": 6.0,
        "method": "sweep",
        "n_pulses": 14,
    }
    client.post("/api/v1/reports", json=[bearing], headers=AUTH)
    base = f"/api/v1/searches/{seeded.search_id}/export"
    geo = client.get(f"{base}.geojson")
    assert geo.headers["content-type"].startswith("application/geo+json")
    kinds = [f["properties"]["kind"] for f in geo.json()["features"]]
    assert "last_known_point" in kinds
    assert "bearing" in kinds
    lkp = next(f for f in geo.json()["features"] if f["properties"]["kind"] == "last_known_point")
    # The reference of the point's own 1 m square: read back, within its half-diagonal.
    lat, lon, _ = parse_usng(lkp["properties"]["usng"])
    assert inverse(42.30206, -71.05761, lat, lon).distance_m < 0.71
    assert lkp["properties"]["usng"].startswith("19T CG ")
    assert "Walter" not in geo.text  # no personal detail leaves in an export
    kml = ET.fromstring(client.get(f"{base}.kml").content)
    names = [e.text for e in kml.iter("{http://www.opengis.net/kml/2.2}name")]
    assert "Last known point" in names
    descriptions = [e.text for e in kml.iter("{http://www.opengis.net/kml/2.2}description")]
    assert f"USNG {lkp['properties']['usng']}" in descriptions
    gpx = ET.fromstring(client.get(f"{base}.gpx").content)
    wpt = gpx.find("{http://www.topografix.com/GPX/1/1}wpt")
    assert wpt is not None
    assert float(wpt.attrib["lat"]) == pytest.approx(42.30206)
    assert client.get(f"{base}.shp").status_code == 422


def test_pages_and_records_by_role(app_env: Any) -> None:
    client, seeded = app_env
    search_page = f"/searches/{seeded.search_id}"
    csrf = login(client, "family2")
    assert client.get(f"/clients/{seeded.client_id}").status_code == 403
    assert client.get(search_page).status_code == 403
    assert client.get(f"/api/v1/clients/{seeded.client_id}").status_code == 403
    assert client.get("/program").status_code == 403
    # A family enrols through the form; the name is shown as text, never as markup.
    form = {
        "csrf": csrf,
        "first_name": "<img src=x onerror=alert(1)>",
        "last_name": "Doe",
        "date_of_birth": "2015-03-02",
        "caregiver_name_0": "Pat Doe",
        "caregiver_phone_0": "+1 617 555 0100",
    }
    enrolled = client.post(
        "/clients/new", data=form, files={"photo": ("p.png", b"GIF89a", "image/png")}
    )
    assert enrolled.status_code == 422
    assert "JPEG or PNG" in enrolled.text
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    done = client.post(
        "/clients/new",
        data=form,
        files={"photo": ("p.png", png, "image/png")},
        follow_redirects=False,
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<img src=x" not in page.text
    assert client.post("/clients/new", data={**form, "csrf": "forged"}).status_code == 403
    client.cookies.clear()
    login(client, "team1")
    view = client.get(search_page)
    assert view.status_code == 200
    assert "clinical-panel" not in view.text
    assert client.get(f"{search_page}/team").status_code == 200
    client.cookies.clear()
    login(client, "dispatcher")
    view = client.get(search_page)
    assert "clinical-panel" in view.text
    assert "speak softly" in view.text
    client.cookies.clear()
    login(client, "staff")
    program = client.get("/program")
    assert program.status_code == 200
    assert "3A7F" in program.text


def test_concurrent_edits_through_the_api_conflict(app_env: Any) -> None:
    client, seeded = app_env
    csrf = login(client, "family")
    url = f"/api/v1/clients/{seeded.client_id}"
    version = client.get(url).json()["version"]
    headers = {"X-CSRF-Token": csrf}
    first = client.patch(
        url, json={"version": version, "changes": {"hair": "grey"}}, headers=headers
    )
    assert first.status_code == 200
    second = client.patch(
        url, json={"version": version, "changes": {"hair": "white"}}, headers=headers
    )
    assert second.status_code == 409
    assert "changed by someone else" in second.json()["detail"]
    assert client.get(url).json()["hair"] == "grey"


def test_an_offline_tile_file_is_served_as_the_base_map(db_url: str, tmp_path: Path) -> None:
    import sqlite3

    tiles = tmp_path / "area.mbtiles"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    with sqlite3.connect(tiles) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute(
            "CREATE TABLE tiles (zoom_level INT, tile_column INT, tile_row INT, tile_data BLOB)"
        )
        db.executemany(
            "INSERT INTO metadata VALUES (?, ?)", [("format", "png"), ("attribution", "County GIS")]
        )
        # Tile z=15, x=9723, y=12119 (XYZ) is stored at TMS row 2**15 - 1 - 12119.
        db.execute("INSERT INTO tiles VALUES (15, 9723, ?, ?)", (2**15 - 1 - 12119, png))
    seeded = seed(db_url)
    app = create_app(settings_for(tmp_path, db_url, tiles_file=tiles))
    with TestClient(app) as client:
        tile = client.get("/tiles/15/9723/12119.png")
        assert tile.status_code == 200
        assert tile.content == png
        assert tile.headers["content-type"] == "image/png"
        assert client.get("/tiles/15/9723/12120.png").status_code == 404
        assert client.get("/tiles/99/0/0.png").status_code == 404
        login(client, "dispatcher")
        page = client.get(f"/searches/{seeded.search_id}")
        assert "/tiles/{z}/{x}/{y}.png" in page.text
        assert "County GIS" in page.text
        assert "openstreetmap" not in page.text
    app.state.safetynet.engine.dispose()
    bad = tmp_path / "bad.mbtiles"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ConfigError, match="MBTiles"):
        create_app(settings_for(tmp_path, db_url, tiles_file=bad))


def test_receiver_tokens_from_the_api_and_the_command_line(
    app_env: Any, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = app_env
    csrf = login(client, "dispatcher")
    body = {"receiver_id": "HH-99", "label": "spare handheld"}
    assert (
        client.post(
            "/api/v1/receivers/tokens", json=body, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 403
    )
    client.cookies.clear()
    csrf = login(client, "admin")
    made = client.post("/api/v1/receivers/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    token = made.json()["token"]
    client.cookies.clear()
    answer = client.post(
        "/api/v1/reports",
        json=[{**PULSE, "receiver_id": "HH-99"}],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.json()["accepted"] == 1
    # The same from the command line, on the same database.
    from safetynet.cli import main
    from safetynet.settings import override_settings

    override_settings(settings_for(tmp_path, db_url))
    monkeypatch.setenv("SAFETYNET_NEW_PASSWORD", "a long enough password")
    try:
        assert main(["user", "add", "rivera", "--role", "dispatcher"]) == 0
        assert main(["user", "add", "rivera", "--role", "dispatcher"]) == 1  # taken
        assert main(["token", "create", "bad id!"]) == 1
        assert main(["token", "create", "CAR-9", "--label", "cruiser 9"]) == 0
    finally:
        override_settings(None)
    csrf = login(client, "rivera", "a long enough password")
    assert csrf


def test_a_family_logs_battery_changes_and_daily_tests_from_the_record_page(
    app_env: Any,
) -> None:
    client, seeded = app_env
    csrf = login(client, "family")
    page = client.get(f"/clients/{seeded.client_id}").text
    bracelet = re.search(r'name="bracelet" value="([0-9a-f]{32})"', page)
    assert bracelet is not None
    form = {"csrf": csrf, "bracelet": bracelet.group(1), "by": "Ann Brown"}
    today = datetime.now(UTC).date()
    future = (today + timedelta(days=2)).isoformat()
    refused = client.post(
        f"/clients/{seeded.client_id}/battery",
        data={**form, "changed_on": future},
        follow_redirects=False,
    )
    assert "future" in refused.headers["location"]
    done = client.post(
        f"/clients/{seeded.client_id}/battery",
        data={**form, "changed_on": (today - timedelta(days=1)).isoformat()},
        follow_redirects=False,
    )
    assert done.headers["location"].startswith(f"/clients/{seeded.client_id}?notice=Battery")
    assert (
        client.post(
            f"/clients/{seeded.client_id}/test",
            data={**form, "result": "pass"},
            follow_redirects=False,
        ).status_code
        == 303
    )
    assert (
        client.post(
            f"/clients/{seeded.client_id}/test", data={**form, "csrf": "forged", "result": "pass"}
        ).status_code
        == 403
    )
    client.cookies.clear()
    csrf = login(client, "staff")
    due = client.get("/api/v1/program/batteries-due?within_days=200").json()
    assert due[0]["days_remaining"] == 180 - 1  # the new battery, changed yesterday
    missed = client.get("/api/v1/program/missed-tests").json()
    assert missed == []  # tested today


def test_probability_guides_a_team_that_hears_to_close_in(app_env: Any) -> None:
    client, seeded = app_env
    now = datetime.now(UTC)
    pulse = {
        **PULSE,
        "t": (now - timedelta(seconds=5)).isoformat(),
        "lat_deg": 42.3040,
        "lon_deg": -71.0560,
        "rssi_dbm": -80.0,
    }
    assert client.post("/api/v1/reports", json=[pulse], headers=AUTH).status_code == 200
    login(client, "dispatcher")
    answer = client.get(f"/api/v1/searches/{seeded.search_id}/probability")
    assert answer.status_code == 200
    body = answer.json()
    (guided,) = [g for g in body["guidance"] if g["receiver_id"] == "HH-07"]
    assert guided["mode"] == "close in"
    # A strong pulse (−80 dBm): the person is within a few hundred metres of the team.
    distance = inverse(42.3040, -71.0560, guided["lat_deg"], guided["lon_deg"]).distance_m
    assert distance < 600.0
    assert 0 < body["area50_km2"] < body["area90_km2"]
    assert body["category"] == "dementia"  # Walter's record names no autism
    state = client.app.state.safetynet.hub.state(seeded.search_id)
    assert state.receivers["HH-07"].hears_at is not None
    silence = {
        "kind": "silence",
        "receiver_id": "HH-07",
        "seq": 2,
        "t": now.isoformat(),
        "channel": 19,
        "lat_deg": 42.3040,
        "lon_deg": -71.0560,
        "window_s": 10.0,
        "noise_dbm": -130.0,
        "antenna": "yagi3",
    }
    assert client.post("/api/v1/reports", json=[silence], headers=AUTH).status_code == 200
    assert state.receivers["HH-07"].hears_at is None


@pytest.mark.parametrize(
    ("diagnoses", "category"),
    [
        ("Autism spectrum disorder; nonverbal", "autism"),
        ("ASD, elopes toward water", "autism"),
        ("autistic", "autism"),
        ("Alzheimer's disease (moderate)", "dementia"),
        ("Jasdeep's notes", "dementia"),
        (None, "dementia"),
    ],
)
def test_the_map_starts_from_the_category_the_client_record_names(
    diagnoses: str | None, category: str
) -> None:
    assert category_of(diagnoses) == category


def test_a_fault_after_storing_reports_never_keeps_them_off_the_live_map(
    app_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The home-station step after ingest may fail (a bug, a race): the reports are stored,
    answered and on the search's live map all the same."""
    from registry import home_stations

    client, seeded = app_env

    def broken(*_: Any) -> None:
        raise RuntimeError("a fault in the home-station step")

    monkeypatch.setattr(home_stations, "heard", broken)
    answer = client.post("/api/v1/reports", json=[PULSE], headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    snapshot = client.app.state.safetynet.hub.snapshot(seeded.search_id)
    assert snapshot is not None
    heard = {r["receiver_id"]: r.get("last_report_t") for r in snapshot["receivers"]}
    assert heard["HH-07"] is not None
    assert snapshot["heard"], "the pulse is not on the map"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_socket_resuming_from_a_bogus_event_id_is_refused_or_given_a_snapshot(
    db_url: str, tmp_path: Path
) -> None:
    from starlette.websockets import WebSocketDisconnect

    seeded = seed(db_url, now=datetime.now(UTC))
    with TestClient(create_app(settings_for(tmp_path, db_url))) as client:
        login(client, "dispatcher")
        live = f"/api/v1/searches/{seeded.search_id}/live"
        # Not an event id: a superscript two is a digit to Python but no integer, and 19
        # digits could pass a 64-bit id; each is refused before the socket opens.
        for after in ("\u00b2", "1" * 19, "-1", "12a"):
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                client.websocket_connect(f"{live}?after={after}"),
            ):
                pass
            assert refused.value.code == 1008, after
        # An id this server never gave (one process numbers no events): a fresh snapshot.
        with client.websocket_connect(f"{live}?after={'9' * 18}") as ws:
            assert ws.receive_json()["type"] == "snapshot"
