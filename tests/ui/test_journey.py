"""A program's whole day through the pages, in a real browser, on a desktop and on a phone.

A family enrols a second client with a photo and caregivers (a refusal in the browser and one by
the server both keep what was typed, the photo included); program staff add a bracelet to the
inventory and give it to the client; the family logs a battery change and a daily test; a
dispatcher opens a search from the home page and reads the caregivers' numbers on the map's
panel; a clinician's read of the record is in the audit log; the admin exports the record and
its photo comes back byte for byte; a second record with the same name and date of birth is
asked about, made, soft-deleted by staff and restored.

Truth is independent of the pages: the photo's bytes are the ones the test made, the audit
entries and records are read from the database, the phone number's display is the national
format of the number typed. Screenshots of every step go to ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.db import make_engine
from registry.models import AuditEntry, Bracelet, Client, Search, User
from tests.ui_support import (
    ARTIFACTS,
    ORIGIN,
    running_server,
    seed,
    settings_for,
    sign_in,
)
from ui.app import create_app

SHOTS = ARTIFACTS / "screenshots"
ZONE = ZoneInfo("America/New_York")  # the agency's time zone in this test
VIEWPORTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 2},
}  # fmt: skip
# Per viewport, a different person and bracelet, so that both runs share one server.
PEOPLE = {"desktop": ("Rosa", "Delgado", "1951-03-14", "4B10", 7),
          "phone": ("Arthur", "Pennington", "1939-11-02", "4B11", 8)}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("journey")
    url = f"sqlite:///{tmp / 'registry.db'}"
    seeded = seed(url, now=datetime.now(UTC))
    app = create_app(settings_for(tmp, url, time_zone=ZONE.key))
    with running_server(app) as base:
        yield {"base": base, "url": url, "seeded": seeded}
    app.state.safetynet.engine.dispose()


def _photo(tmp: Path) -> tuple[Path, bytes]:
    """A real JPEG, made here: its bytes are the truth the export is checked against."""
    buf = io.BytesIO()
    Image.new("RGB", (120, 160), (180, 120, 90)).save(buf, "JPEG", quality=90)
    path = tmp / "portrait.jpg"
    path.write_bytes(buf.getvalue())
    return path, buf.getvalue()


WIDEST = """limit => Array.from(document.querySelectorAll("body *"))
  .filter(e => e.getBoundingClientRect().right > limit)
  .slice(0, 6)
  .map(e => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)"""


class Steps:
    """Screenshots named by viewport and step, in order."""

    def __init__(self, page: Any, kind: str) -> None:
        self.page, self.kind, self.n = page, kind, 0
        SHOTS.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        self.n += 1
        path = SHOTS / f"journey-{self.kind}-{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)

    def fits(self) -> None:
        """Nothing on the page is wider than the screen (no sideways scrolling on a phone)."""
        width = self.page.evaluate("document.documentElement.scrollWidth")
        limit = self.page.viewport_size["width"] + 1
        wide = self.page.evaluate(WIDEST, limit) if width > limit else []
        assert width <= limit, f"{self.page.url} is {width} px wide: {wide}"


def _login(page: Any, base: str, username: str) -> None:
    page.context.clear_cookies()
    sign_in(page, base, username)


def _db(server: dict[str, Any]) -> Session:
    return Session(make_engine(server["url"]))


@pytest.mark.parametrize("kind", list(VIEWPORTS))
def test_the_programs_day_through_the_pages(
    browser: Any, server: dict[str, Any], kind: str, tmp_path: Path
) -> None:
    base = server["base"]
    first, last, born, bracelet_id, channel = PEOPLE[kind]
    photo_path, photo_bytes = _photo(tmp_path)
    context = browser.new_context(**VIEWPORTS[kind], accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    steps = Steps(page, kind)

    # 1. The family enrols a second client. A name far too long is caught in the browser.
    _login(page, base, "family")
    page.goto(f"{base}/clients/new")
    steps.fits()
    page.fill('input[name="first_name"]', "R" * 500)
    page.fill('input[name="last_name"]', last)
    page.fill('input[name="date_of_birth"]', born)
    page.set_input_files('input[name="photo"]', str(photo_path))
    page.fill('textarea[name="scars_marks"]', "hearing aid, left ear")
    page.fill('textarea[name="usual_clothing"]', "red cardigan, grey slacks")
    page.fill('textarea[name="approach_and_calm"]', "speak slowly, say her daughter sent you")
    page.fill('input[name="caregiver_name_0"]', "Ann Delgado")
    page.fill('input[name="caregiver_relation_0"]', "daughter")
    page.fill('input[name="caregiver_phone_0"]', "617 555 0142")
    page.check('input[name="caregiver_247_0"]')
    page.fill('input[name="caregiver_name_1"]', "Luis Delgado")
    page.fill('input[name="caregiver_phone_1"]', "call luis")
    page.click('#client-form button[type="submit"]')
    assert "/clients/new" in page.url  # nothing was sent
    assert "at most 100" in page.inner_text("#err-first_name")
    assert "in digits" in page.inner_text("#err-caregiver_phone_1")
    steps.shot("refused-in-browser")
    steps.fits()

    # The name fixed; a number the browser cannot judge (too short for any US number) goes
    # to the server, which refuses it next to the field and keeps everything, the photo too.
    page.fill('input[name="first_name"]', first)
    page.fill('input[name="caregiver_phone_1"]', "555 0199")
    page.click('#client-form button[type="submit"]')
    page.wait_for_selector("#err-caregiver_phone_1[role=alert]")
    assert page.input_value('input[name="first_name"]') == first
    assert page.input_value('textarea[name="scars_marks"]') == "hearing aid, left ear"
    assert page.input_value('input[name="caregiver_name_0"]') == "Ann Delgado"
    assert page.locator("img.thumb").count() == 1  # the photo chosen is kept
    assert "phone" in page.inner_text("#err-caregiver_phone_1").lower()
    steps.shot("refused-by-server-kept")
    page.fill('input[name="caregiver_phone_1"]', "(617) 555-0199")
    page.click('#client-form button[type="submit"]')
    page.wait_for_url(re.compile(r".*/clients/[0-9a-f]{32}\?notice=.*"))
    client_url = page.url.split("?")[0]
    client_id = client_url.rsplit("/", 1)[1]
    assert "Enrolled" in page.inner_text(".notice")
    on_file = page.inner_text("#on-file")
    assert "On file, visible to dispatchers and clinicians" in on_file
    assert "approach" in on_file
    assert "speak slowly" not in page.content()  # the family does not read it back
    steps.shot("enrolled")
    steps.fits()
    with _db(server) as db:
        client = db.get(Client, client_id)
        assert client is not None
        assert client.photo == photo_bytes
        assert sorted(c.phone for c in client.caregivers) == ["+16175550142", "+16175550199"]

    # 2. Program staff: a bracelet into the inventory (a second with the same ID is refused,
    # nothing changed), then onto the client from the record page.
    _login(page, base, "staff")
    page.goto(f"{base}/program")
    assert f"{first} {last}" in page.inner_text("#no-bracelet")
    page.fill('#add-bracelet input[name="bracelet_id"]', bracelet_id)
    page.fill('#add-bracelet input[name="channel"]', str(channel))
    page.click('#add-bracelet button[type="submit"]')
    page.wait_for_selector(".notice")
    assert bracelet_id in page.inner_text("#in-stock")
    page.fill('#add-bracelet input[name="bracelet_id"]', "3A7F")  # Walter's
    page.fill('#add-bracelet input[name="channel"]', "5")
    page.click('#add-bracelet button[type="submit"]')
    page.wait_for_selector("p.error")
    assert "3A7F" in page.inner_text("p.error")
    steps.shot("program-refused-duplicate-id")
    steps.fits()
    page.click(f'#no-bracelet a[href^="/clients/{client_id}"]')
    page.select_option('#assign-form select[name="bracelet_id"]', bracelet_id)
    page.click("#assign-form button")
    page.wait_for_selector(".notice")
    assert f"Bracelet {bracelet_id} assigned" in page.inner_text(".notice")
    steps.shot("bracelet-assigned")
    steps.fits()
    with _db(server) as db:
        worn = db.scalar(select(Bracelet).where(Bracelet.client_id == client_id))
        assert worn is not None
        assert f"{worn.bracelet_id:04X}" == bracelet_id
        assert worn.channel == channel

    # 3. The family logs a battery change and the day's test from the record page.
    _login(page, base, "family")
    page.goto(client_url)
    page.click('form[action$="/battery"] button')
    page.wait_for_selector(".notice")
    assert "Battery change" in page.inner_text(".notice")
    page.select_option('form[action$="/test"] select[name="result"]', "pass")
    page.click('form[action$="/test"] button')
    page.wait_for_selector(".notice")
    assert "heard (pass)" in page.inner_text(".notice")
    steps.shot("family-logged-test")

    # 4. The dispatcher opens a search from the home page, in the agency's local time.
    _login(page, base, "dispatcher")
    page.select_option('#open-search select[name="client_id"]', client_id)
    page.fill('#open-search input[name="lat_deg"]', "42.3601")
    page.fill('#open-search input[name="lon_deg"]', "-71.0589")
    seen_local = (datetime.now(UTC) - timedelta(minutes=20)).astimezone(ZONE)
    page.fill('#open-search input[name="last_seen"]', seen_local.strftime("%Y-%m-%dT%H:%M"))
    page.fill('#open-search input[name="clothing"]', "blue raincoat")
    steps.shot("open-search")
    page.click('#open-search button[type="submit"]')
    page.wait_for_url(re.compile(r".*/searches/[0-9a-f]{32}$"))
    panel = page.inner_text("#client-panel")
    assert "Ann Delgado" in panel
    assert "617-555-0142" in panel
    assert "24/7" in panel
    assert "hearing aid" in panel
    assert "blue raincoat" in panel
    assert bracelet_id in page.inner_text("#bracelet-line")
    search_id = page.url.rsplit("/", 1)[1]
    page.wait_for_timeout(500)
    steps.shot("dispatcher-panel")
    steps.fits()
    with _db(server) as db:
        search = db.get(Search, search_id)
        assert search is not None
        stored = search.last_known_at.replace(tzinfo=search.last_known_at.tzinfo or UTC)
        assert abs(stored - seen_local.replace(second=0, microsecond=0)) < timedelta(seconds=1)

    # 5. A clinician reads the record: told so on the page, and it is in the audit log.
    _login(page, base, "clinician")
    page.goto(client_url)
    assert "audit log" in page.inner_text(".audit-notice")
    steps.shot("clinician-read")
    with _db(server) as db:
        clinician = db.scalar(select(User).where(User.username == "clinician"))
        assert clinician is not None
        reads = db.scalars(select(AuditEntry).where(
            AuditEntry.entity_id == client_id, AuditEntry.user_id == clinician.id,
            AuditEntry.action == "read")).all()  # fmt: skip
        assert reads
        assert "diagnoses" in reads[-1].fields

    # 6. The admin exports the record: a JSON file whose photo is the one the family chose.
    _login(page, base, "admin")
    page.goto(client_url)
    page.fill('#export-form input[name="reason"]', "records request 2026-114")
    with page.expect_download() as download:
        page.click('#export-form button[value="json"]')
    record = json.loads(Path(download.value.path()).read_text())
    assert base64.b64decode(record["photo_base64"]) == photo_bytes
    page.fill('#export-form input[name="reason"]', "hand-over to the state police")
    page.click('#export-form button[value="page"]')
    page.wait_for_selector("h1")
    assert f"{first}" in page.inner_text("main")
    printed = page.inner_text("main")
    assert "Ann Delgado" in printed
    assert born in printed
    assert "hearing aid, left ear" in printed
    assert "speak slowly" in printed  # the health detail an admin hands over
    steps.shot("export-printable")
    steps.fits()
    with _db(server) as db:
        exports = db.scalars(select(AuditEntry).where(
            AuditEntry.entity_id == client_id, AuditEntry.action == "export")).all()  # fmt: skip
        assert [e.reason for e in exports][-2:] == [
            "records request 2026-114", "hand-over to the state police"]  # fmt: skip

    # 7. A second record with the same name and date of birth: asked about before it is made.
    _login(page, base, "family")
    page.goto(f"{base}/clients/new")
    page.fill('input[name="first_name"]', first)
    page.fill('input[name="last_name"]', last)
    page.fill('input[name="date_of_birth"]', born)
    page.click('#client-form button[type="submit"]')
    page.wait_for_selector("#duplicate")
    steps.shot("possible-duplicate")
    page.check('#duplicate input[name="not_duplicate"]')
    page.click('#client-form button[type="submit"]')
    page.wait_for_url(re.compile(r".*/clients/[0-9a-f]{32}\?notice=.*"))
    twin_id = page.url.split("?")[0].rsplit("/", 1)[1]
    assert twin_id != client_id

    # Staff soft-deletes the duplicate, then restores it.
    _login(page, base, "staff")
    page.goto(f"{base}/clients/{twin_id}")
    steps.fits()
    page.click("#keeping details summary")
    page.fill('#delete-form input[name="reason"]', "duplicate of the first record")
    page.click("#delete-form button")
    page.wait_for_url(re.compile(r".*/program\?notice=.*"))
    assert f"{first} {last}" in page.inner_text("#deleted")
    gone = page.goto(f"{base}/clients/{twin_id}")
    assert gone is not None
    assert gone.status == 404
    page.goto(f"{base}/program")
    steps.shot("deleted-listed")
    steps.fits()
    page.fill(f'#deleted form[action="/clients/{twin_id}/restore"] input[name="reason"]',
              "needed after all")  # fmt: skip
    page.click(f'#deleted form[action="/clients/{twin_id}/restore"] button')
    page.wait_for_url(re.compile(rf".*/clients/{twin_id}\?notice=.*"))
    assert "restored" in page.inner_text(".notice")
    steps.shot("restored")
    with _db(server) as db:
        twin = db.get(Client, twin_id)
        assert twin is not None
        assert twin.deleted_at is None
    assert errors == []
    context.close()


def test_a_place_is_set_by_tapping_the_map(browser: Any, tmp_path: Path) -> None:
    """Staff set a place Walter often visits by tapping the map: the map opens on the last
    search's last known point, so a tap at its centre is that point (the truth), and the
    stored place is there. The tiles' address answers nothing: no request leaves the machine."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seeded = seed(url, now=datetime.now(UTC))
    settings = settings_for(tmp_path, url).model_copy(
        update={"tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png"}
    )
    app = create_app(settings)
    with running_server(app) as base:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        _login(page, base, "staff")
        answer = page.goto(f"{base}/clients/{seeded.client_id}")
        assert answer is not None
        assert answer.status == 200, page.inner_text("main")
        page.fill('input[name="place_label_0"]', "Bakery on Main Street")
        page.click('.set-on-map[data-row="0"]')
        box = page.locator("#place-map")
        assert "picking" in (box.get_attribute("class") or "")
        size = box.bounding_box()
        assert size is not None
        page.mouse.click(size["x"] + size["width"] / 2, size["y"] + size["height"] / 2)
        lat = float(page.input_value('input[name="place_lat_0"]'))
        lon = float(page.input_value('input[name="place_lon_0"]'))
        assert abs(lat - ORIGIN[0]) < 1e-4
        assert abs(lon - ORIGIN[1]) < 1e-4
        page.click('#client-form button[type="submit"]')
        page.wait_for_url(re.compile(r".*\?notice=Saved.*"))
        Steps(page, "desktop").shot("place-on-map")
        context.close()
    with _db({"url": url}) as db:
        client = db.get(Client, seeded.client_id)
        assert client is not None
        places = [(p.label, p.lat_deg, p.lon_deg) for p in client.places]
    app.state.safetynet.engine.dispose()
    assert len(places) == 1
    assert places[0][0] == "Bakery on Main Street"  # the label typed
    stored_lat, stored_lon = places[0][1], places[0][2]
    assert stored_lat is not None
    assert stored_lon is not None
    assert abs(stored_lat - ORIGIN[0]) < 1e-4
    assert abs(stored_lon - ORIGIN[1]) < 1e-4


def test_opening_a_search_for_a_client_without_a_bracelet_warns_first(
    browser: Any, server: dict[str, Any]
) -> None:
    """The dispatcher is told plainly, before the map, that the radio cannot find this person;
    the map's panel says it again."""
    base = server["base"]
    context = browser.new_context(**VIEWPORTS["desktop"])
    page = context.new_page()
    _login(page, base, "family")
    csrf = page.get_attribute('meta[name="csrf-token"]', "content") or ""
    made = page.request.post(f"{base}/api/v1/clients", headers={"X-CSRF-Token": csrf},
                             data={"first_name": "Nell", "last_name": "Okafor",
                                   "date_of_birth": "1948-08-08"})  # fmt: skip
    assert made.status == 201, made.text()
    nell = made.json()["id"]
    _login(page, base, "dispatcher")
    option = page.inner_text(f'#open-search option[value="{nell}"]')
    assert "NO BRACELET" in option
    page.select_option('#open-search select[name="client_id"]', nell)
    page.fill('#open-search input[name="lat_deg"]', "42.35")
    page.fill('#open-search input[name="lon_deg"]', "-71.06")
    page.click('#open-search button[type="submit"]')
    page.wait_for_selector("#open-search-warning:not([hidden])")
    warning = page.inner_text("#open-search-warning")
    assert "no bracelet" in warning.lower()
    assert "/searches/" not in page.url  # not sent to the map before reading it
    Steps(page, "desktop").shot("no-bracelet-warning")
    page.click("#open-search-go")
    page.wait_for_url(re.compile(r".*/searches/[0-9a-f]{32}$"))
    assert "No bracelet on file" in page.inner_text("#bracelet-line")
    assert "no bracelet" in page.inner_text("#client-panel .warning").lower()
    context.close()
