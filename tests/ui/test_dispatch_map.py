"""The dispatcher's live map in a real browser, desktop and phone, through a search's first
minutes: before any report, at the first fix, and ten minutes in; its layer list and legend, the
heat under the fix, and the alerts a dispatcher cannot miss (seen, heard, acknowledged once for
everyone).

The tests run in order on one server: the feeder starts in the second test, and the last marks
the person found. Screenshots go to ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from registry.db import make_engine
from registry.models import ReceiverToken, Role
from registry.searches import assign_team
from registry.service import Actor
from tests.ui_support import (
    ARTIFACTS,
    Feeder,
    running_server,
    scenario_reports,
    seed,
    settings_for,
    sign_in,
)
from ui.app import create_app
from ui.security import token_digest

SHOTS = ARTIFACTS / "screenshots"
SCENARIO_S = 660.0  # ten minutes and a little: the "10 minutes in" screenshot
SPEED = 20.0
CAR_TOKEN = "tok-car3-" + "c" * 20
SLOW_TOKEN = "tok-car4-" + "s" * 20  # CAR-4: a receiver whose clock runs slow
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
# Counts the tones the page plays (oscillators started) without a sound card's help.
COUNT_TONES = """
window.__tones = 0;
const Ctx = window.AudioContext || window.webkitAudioContext;
if (Ctx) {
  const make = Ctx.prototype.createOscillator;
  Ctx.prototype.createOscillator = function () {
    const osc = make.call(this);
    const start = osc.start.bind(osc);
    osc.start = (...a) => { window.__tones += 1; return start(...a); };
    return osc;
  };
}
"""


@pytest.fixture(scope="module")
def live(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with an active search and no report yet; a fourth receiver (CAR-3, on a team
    of its own) that the tests post for by hand."""
    tmp = tmp_path_factory.mktemp("dispatch")
    url = f"sqlite:///{tmp / 'registry.db'}"
    start = datetime.now(UTC)
    seeded = seed(url, now=start)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        dispatcher = Actor(seeded.users["dispatcher"], Role.DISPATCHER)
        assign_team(session, dispatcher, seeded.search_id, "Car 3", ["CAR-3"])
        assign_team(session, dispatcher, seeded.search_id, "Car 4", ["CAR-4"])
        for receiver_id, token in (("CAR-3", CAR_TOKEN), ("CAR-4", SLOW_TOKEN)):
            digest = token_digest(token)
            session.add(
                ReceiverToken(receiver_id=receiver_id, token_sha256=digest, created_at=start)
            )
    engine.dispose()
    app = create_app(settings_for(tmp, url, ingest_requests_per_s=1000))
    with running_server(app) as base:
        state: dict[str, Any] = {"base": base, "seeded": seeded, "start": start, "feeder": None}
        yield state
        if state["feeder"] is not None:
            state["feeder"].stop()
    app.state.safetynet.engine.dispose()


def _login(context: Any, base: str, username: str = "dispatcher") -> Any:
    page = context.new_page()
    sign_in(page, base, username)
    return page


def _open(
    browser: Any, live: dict[str, Any], viewport: dict[str, int]
) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=viewport, bypass_csp=True)
    context.add_init_script(COUNT_TONES)
    page = _login(context, live["base"])
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live['base']}/searches/{live['seeded'].search_id}")
    page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
    return context, page, errors


def _fits(page: Any) -> None:
    """The page is the window: the map and the panel scroll inside it, the page never."""
    height, inner = page.evaluate("[document.documentElement.scrollHeight, window.innerHeight]")
    assert height <= inner, (height, inner)


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def _alert_keys(page: Any) -> list[str]:
    keys: list[str] = page.eval_on_selector_all(
        "#alerts .alert-item", "els => els.map(e => e.dataset.key)"
    )
    return keys


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_before_any_report(browser: Any, live: dict[str, Any], viewport: dict[str, int]) -> None:
    context, page, errors = _open(browser, live, viewport)
    # The empty fix box stays hidden (a display rule once overrode `hidden`).
    assert page.is_visible("#fix-none")
    assert not page.is_visible("#fix-info")
    assert page.eval_on_selector("#fix-info", "e => getComputedStyle(e).display") == "none"
    # The areas have a figure a person reads as soon as the map exists (the prior alone).
    page.wait_for_function(
        "!document.getElementById('prob-areas').textContent.startsWith('Computing')"
    )
    areas = page.inner_text("#prob-areas")
    found = re.findall(r"([\d.,]+) (ha|km²)", areas)
    assert len(found) == 2, areas
    assert all(float(v.replace(",", "")) > 0 for v, _ in found), areas
    # Until a gesture, the page says that sound is off.
    assert page.is_visible("#sound-on")
    assert page.evaluate("window.__tones") == 0
    # The layer list starts as an icon; it opens under the pointer (or a tap) and when the
    # keyboard reaches it, and Escape closes it.
    box = page.locator(".leaflet-control-layers")
    assert "leaflet-control-layers-expanded" not in (box.get_attribute("class") or "")
    assert not page.is_visible(".leaflet-control-layers-list")
    toggle = page.locator(".leaflet-control-layers-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    at = toggle.bounding_box()
    assert at is not None
    assert min(at["width"], at["height"]) >= 44  # a thumb's target
    page.mouse.move(at["x"] + at["width"] / 2, at["y"] + at["height"] / 2)
    page.wait_for_selector(".leaflet-control-layers-list", state="visible")
    assert toggle.get_attribute("aria-expanded") == "true"
    page.mouse.move(5, viewport["height"] - 5)
    page.wait_for_selector(".leaflet-control-layers-list", state="hidden")
    toggle.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(".leaflet-control-layers-list", state="visible")
    assert page.evaluate("document.activeElement.closest('.leaflet-control-layers-list') !== null")
    page.keyboard.press("Escape")
    page.wait_for_selector(".leaflet-control-layers-list", state="hidden")
    assert toggle.get_attribute("aria-expanded") == "false"
    # A key press or click turned sound on (and said so until then); no alert yet.
    assert not page.is_visible("#sound-on")
    assert _alert_keys(page) == []
    _fits(page)
    _shot(page, f"dispatcher-no-fix-{'phone' if viewport is PHONE else 'desktop'}.png")
    assert not errors, errors
    context.close()


def _legend_check(page: Any) -> None:
    """Every symbol drawn on the map has a legend swatch drawn with its colour."""
    drawn = page.evaluate(
        """() => {
      const map = window[document.getElementById('search').dataset.mapName];
      const out = [];
      map.eachLayer(l => {
        if (!(l instanceof L.Path) && !(l instanceof L.ImageOverlay)) return;
        const color = l instanceof L.Path ? l.options.color : null;
        out.push({ key: l.options.legend || null, color });
      });
      return out;
    }"""
    )
    swatches = page.evaluate(
        """() => Object.fromEntries(
          [...document.querySelectorAll('.legend [data-legend]')].map(s => [s.dataset.legend,
            [...s.querySelectorAll('[stroke]')].map(e => e.getAttribute('stroke'))]))"""
    )
    assert len(drawn) > 20
    unnamed = [d for d in drawn if d["key"] is None]
    assert unnamed == [], unnamed
    for d in drawn:
        assert d["key"] in swatches, (d, sorted(swatches))
        if d["color"] is not None:
            assert d["color"] in swatches[d["key"]], (d, swatches[d["key"]])
    words = page.inner_text(".legend")
    for name in ("fix", "ellipse", "Likely path", "Track", "Last known point", "Probability",
                 "Heard here", "Not heard here", "Bearing", "Team or vehicle",
                 "Next listening point", "HH-07 (Team 1)", "CAR-3 (Car 3)"):  # fmt: skip
        assert name in words, name


def test_first_fix_alerts_and_legend(browser: Any, live: dict[str, Any]) -> None:
    base, search_id = live["base"], live["seeded"].search_id
    # CAR-3 reports once, then falls silent: its last report is 150 s old.
    car = {"kind": "status", "receiver_id": "CAR-3", "seq": 1, "gps_fix": True, "clipping": False,
           "lat_deg": 42.3005, "lon_deg": -71.0590,
           "t": (datetime.now(UTC) - timedelta(seconds=150)).isoformat()}  # fmt: skip
    answer = httpx.post(f"{base}/api/v1/reports", json=[car],
                        headers={"Authorization": f"Bearer {CAR_TOKEN}"})  # fmt: skip
    assert answer.status_code in (200, 201, 207), answer.text
    context, page, errors = _open(browser, live, DESKTOP)
    page.locator("#fix-none").click()  # a gesture: sound on
    live["feeder"] = Feeder(base, scenario_reports(live["start"], SCENARIO_S), SPEED).start()

    # The silent receiver, the bracelet heard and the first fix each raise an alert, with a tone.
    page.wait_for_selector('#alerts [data-key^="silent:CAR-3:"]', timeout=30_000)
    page.wait_for_selector('#alerts [data-key="heard"]', timeout=60_000)
    page.wait_for_selector('#alerts [data-key="first-fix"]', timeout=60_000)
    assert page.get_attribute("#alerts", "role") == "alert"
    assert page.evaluate("window.__tones") >= 3 * 2  # three alerts, at least two beeps each
    assert page.is_visible("#receivers tr.quiet")
    assert page.title().startswith("(3) ")

    # The fix box: USNG beside degrees, sizes in the agency's units.
    assert re.fullmatch(r"19T [A-Z]{2} \d{5} \d{5} · 42\.\d{5}, -71\.\d{5}",
                        page.inner_text("#fix-latlon"))  # fmt: skip
    # The heat lies under the fix: the element at the fix's centre is the fix.
    page.wait_for_selector(".heat-image", state="attached", timeout=30_000)
    on_top = page.evaluate(
        """() => {
      const r = document.querySelector('.fix-marker').getBoundingClientRect();
      const el = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
      return el && (el.classList.contains('fix-marker') || el.outerHTML.slice(0, 200));
    }"""
    )
    assert on_top is True, on_top
    page.wait_for_timeout(1500)
    _legend_check(page)
    _fits(page)
    _shot(page, "dispatcher-first-fix-desktop.png")

    # Acknowledged once for everyone: it leaves this screen, goes into the log with who, and
    # is not shown on another dispatcher's screen or after a reload.
    page.click('#alerts [data-key="first-fix"] button.ack')
    page.wait_for_selector('#alerts [data-key="first-fix"]', state="detached")
    page.wait_for_function(
        "[...document.querySelectorAll('#timeline li')].some(li => "
        "li.textContent.includes('Alert acknowledged: first fix, by Dispatcher'))"
    )
    other_context, other, other_errors = _open(browser, live, PHONE)
    other.wait_for_selector('#alerts [data-key="heard"]', timeout=30_000)
    other.wait_for_timeout(1000)
    assert "first-fix" not in _alert_keys(other)
    _fits(other)
    _shot(other, "dispatcher-first-fix-phone.png")
    page.click('#alerts [data-key="heard"] button.ack')  # pushed to the other screen at once
    other.wait_for_selector('#alerts [data-key="heard"]', state="detached", timeout=10_000)
    page.reload()
    page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
    page.wait_for_timeout(1500)
    keys = _alert_keys(page)
    assert not {"first-fix", "heard"} & set(keys), keys

    # Through the API: a second acknowledgement answers the first; a strange key is refused.
    twice = page.evaluate(
        f"""async () => {{
      const url = '/api/v1/searches/{search_id}/alerts/acknowledged';
      const post = body => fetch(url, {{ method: 'POST', body: JSON.stringify(body),
        headers: {{ 'Content-Type': 'application/json',
                    'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content }} }});
      const a = await post({{ key: 'first-fix' }}), b = await post({{ key: 'lunch' }});
      return [a.status, (await a.json()).body.by, b.status, await b.text()];
    }}"""
    )
    assert twice[:2] == [200, "Dispatcher"], twice
    assert twice[2] == 422, twice
    assert '"key"' in twice[3], twice  # named, with the keys it takes
    assert "heard|first-fix|found|silent:" in twice[3], twice
    assert errors + other_errors == []
    other_context.close()
    context.close()


def test_a_silent_receiver_that_reports_again_is_said_to(
    browser: Any, live: dict[str, Any]
) -> None:
    context, page, errors = _open(browser, live, DESKTOP)
    page.wait_for_selector('#alerts [data-key^="silent:CAR-3:"]', timeout=30_000)
    car = {"kind": "status", "receiver_id": "CAR-3", "seq": 2, "gps_fix": True, "clipping": False,
           "lat_deg": 42.3006, "lon_deg": -71.0591, "t": datetime.now(UTC).isoformat()}  # fmt: skip
    answer = httpx.post(f"{live['base']}/api/v1/reports", json=[car],
                        headers={"Authorization": f"Bearer {CAR_TOKEN}"})  # fmt: skip
    assert answer.status_code in (200, 201, 207), answer.text
    page.wait_for_selector("#alerts .alert-silent.resolved", timeout=20_000)
    assert "Reporting again" in page.inner_text("#alerts .alert-silent.resolved")
    page.click("#alerts .alert-silent.resolved button.ack")
    page.wait_for_selector("#alerts .alert-silent", state="detached")
    # A receiver whose clock runs three minutes slow, reporting every few seconds, is not silent:
    # its reports arrive (once it was an alert with a beep at every report).
    for seq in (1, 2, 3):
        slow = {**car, "receiver_id": "CAR-4", "seq": seq,
                "t": (datetime.now(UTC) - timedelta(minutes=3)).isoformat()}  # fmt: skip
        answer = httpx.post(f"{live['base']}/api/v1/reports", json=[slow],
                            headers={"Authorization": f"Bearer {SLOW_TOKEN}"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        page.wait_for_timeout(6000)  # longer than the page's silence check
        assert page.locator("#alerts .alert-silent").count() == 0
    assert not page.is_visible("#receivers tr.quiet")
    assert not errors, errors
    context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_ten_minutes_in(browser: Any, live: dict[str, Any], viewport: dict[str, int]) -> None:
    feeder = live["feeder"]
    deadline = time.monotonic() + SCENARIO_S / SPEED + 60
    while feeder.posted < len(feeder.reports) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert feeder.posted == len(feeder.reports)
    context, page, errors = _open(browser, live, viewport)
    page.wait_for_selector("#fix-info:not([hidden])", timeout=30_000)
    # The likely path of the last minutes is drawn, over the raw track of live fixes.
    page.wait_for_selector("path.smoothed-trail", state="attached", timeout=30_000)
    # The timeline groups fixes: far fewer logged than made.
    fixes = int(page.inner_text("#fix-count"))
    logged = page.eval_on_selector_all(
        "#timeline li", "els => els.filter(e => e.textContent.includes('Fix ±')).length"
    )
    assert fixes > 50, fixes
    assert logged <= fixes / 5, (fixes, logged)

    # "Where to look" follows the fix: its map is of the same moment, give or take a report.
    def seconds(text: str) -> int:
        found = re.search(r"(\d\d):(\d\d):(\d\d)", text)
        assert found is not None, text
        h, m, s = map(int, found.groups())
        return h * 3600 + m * 60 + s

    page.wait_for_function("document.getElementById('prob-areas').textContent.includes('as of')")
    page.wait_for_timeout(6000)  # a refresh after the last fix
    lag = seconds(page.inner_text("#fix-time")) - seconds(page.inner_text("#prob-areas"))
    assert -5 <= lag <= 15, (page.inner_text("#fix-time"), page.inner_text("#prob-areas"))
    # The next listening points are given in USNG beside degrees.
    page.wait_for_selector("#guidance li", timeout=30_000)
    assert re.search(r"go to 19T [A-Z]{2} \d{5} \d{5} · 42\.\d{5}", page.inner_text("#guidance"))
    if viewport is PHONE:
        assert page.evaluate("document.querySelector('.legend').open") is False
    _fits(page)
    page.wait_for_timeout(1000)
    _shot(page, f"dispatcher-10min-{'phone' if viewport is PHONE else 'desktop'}.png")
    assert not errors, errors
    context.close()


def test_each_action_answers_under_its_button(browser: Any, live: dict[str, Any]) -> None:
    context, page, errors = _open(browser, live, PHONE)
    page.get_by_label("Note for the search's log").fill("Team 2 checked the school yard")
    page.click("#note-form button")
    page.wait_for_selector("#note-form .act-msg.done")
    assert page.inner_text("#note-form .act-msg").startswith("Added to the log at ")
    assert page.input_value("#note-form input[name=text]") == ""
    page.wait_for_function(
        "[...document.querySelectorAll('#timeline li')].some(li => "
        "li.textContent.includes('Team 2 checked the school yard'))"
    )
    # Refused: said why, under the button, and what was typed stays.
    page.get_by_label("Team name").fill("Team 4")
    page.get_by_label("Receivers").fill("HH 07 <b>")
    page.click("#team-form button")
    page.wait_for_selector("#team-form .act-msg.error")
    assert page.inner_text("#team-form .act-msg").startswith("Not saved: ")
    assert page.input_value("#team-form input[name=name]") == "Team 4"
    # Every field has a label a person reads (no placeholder stands in for one).
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('.actions input, .actions select')]
          .filter(e => !e.closest('label')).map(e => e.name)"""
    )
    assert unlabelled == []
    assert errors == []
    context.close()


def test_the_person_found_is_an_alert_and_ends_the_live_map(
    browser: Any, live: dict[str, Any]
) -> None:
    context, page, errors = _open(browser, live, DESKTOP)
    search_id = live["seeded"].search_id
    status = page.evaluate(
        f"""async () => {{
      const view = await (await fetch('/api/v1/searches/{search_id}')).json();
      const r = await fetch('/api/v1/searches/{search_id}/status', {{ method: 'POST',
        headers: {{ 'Content-Type': 'application/json',
                    'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content }},
        body: JSON.stringify({{ status: 'found', version: view.version,
          found: {{ lat_deg: 42.3001, lon_deg: -71.0601,
                    condition: 'well, a little cold' }} }}) }});
      return r.status;
    }}"""
    )
    assert status == 200
    page.wait_for_selector('#alerts [data-key="found"]', timeout=20_000)
    words = page.inner_text('#alerts [data-key="found"]')
    assert "Walter Brown found" in words, words
    assert "well, a little cold" in words, words
    assert "19T" in words  # where, in USNG
    page.wait_for_function("document.getElementById('live-state').textContent === 'search found'")
    assert not errors, errors
    context.close()
