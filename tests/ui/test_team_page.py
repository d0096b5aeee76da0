"""The search team's phone page in Debian's chromium, as a searcher meets it in the field.

A server runs in a thread with a seeded search (Team 1 is the searcher ``team1`` with handheld
HH-07; Team 2 has HH-12; the roof station ROOF-1 is its own team), fed the demo scenario's
reports by its receivers. The tests check:

- the map follows the estimate (fix and ellipse in view) until the user drags it, and again
  from the Follow button;
- with the phone's location denied, direction and distance come from the handheld's GPS
  position in the live state, said in words, against a geodesic computed here;
- bearings and heard / not heard made without coverage (``context.set_offline``) wait on the
  phone ("3 waiting to send"), reach the dispatcher once back online, and once only when the
  phone sends them again;
- the page reloads without coverage from its service worker, under the page's own CSP;
- desktop and 390 × 844 phone screenshots (location allowed and denied) go to
  ``test-artifacts/screenshots``; on the phone every control is at least 44 px.

The offline tests keep the page's Content-Security-Policy (the worker and the manifest must pass
it), so they wait with locators, never ``wait_for_function`` (which the CSP would refuse).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import mgrs  # type: ignore[import-untyped]
import pytest
from playwright.sync_api import expect

from safetynet.geodesy import inverse
from tests.ui_support import (
    ARTIFACTS,
    fed_server,
    login,
    sign_in,
)

SHOTS = ARTIFACTS / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WHERE_I_AM = (42.3035, -71.0600)  # the phone's location, when it is allowed
TAP_PX = 44
TAPPABLE = "header a, header button, #team button, #team input, #team summary, .leaflet-bar a"
DIRECTION = re.compile(r"([\d.,]+) (m|km) ([NESW]{1,2}) \((\d+)°\)")
COMPASS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running server with an active search being fed its receivers' reports."""
    with fed_server(tmp_path_factory.mktemp("team"), 900, speed=10.0) as live:
        yield live


@pytest.fixture(scope="module")
def dispatcher(live: dict[str, Any]) -> Iterator[httpx.Client]:
    """The dispatcher's side, through the API: what the live map shows and the search's log."""
    with httpx.Client(base_url=live["base"], timeout=10) as client:
        login(client, "dispatcher")
        yield client


def _settle(live: dict[str, Any], dispatcher: httpx.Client) -> None:
    """Once the search has a fix and HH-07 a position, the receivers stop reporting: the live
    state stays as it is (the tests after this one need no moving estimate)."""
    search_id = live["seeded"].search_id

    def ready() -> bool:
        state = dispatcher.get(f"/api/v1/searches/{search_id}/state").json()
        hh07 = [r for r in state["receivers"] if r["receiver_id"] == "HH-07"]
        return state["fix"] is not None and bool(hh07) and hh07[0]["lat_deg"] is not None

    _until(ready, 90, "a fix and a position of HH-07")
    live["feeder"].stop()
    time.sleep(1.0)  # the last reports' pushes reach the pages


def _team_page(
    browser: Any,
    base: str,
    search_id: str,
    screen: dict[str, int],
    located: bool,
    csp: bool,
    user: str = "team1",
) -> tuple[Any, Any, list[str]]:
    """A searcher's browser on the team page: (context, page, the page's script errors)."""
    options: dict[str, Any] = {"viewport": screen, "bypass_csp": not csp}
    if screen is PHONE:
        options |= {"is_mobile": True, "has_touch": True, "device_scale_factor": 2}
    if located:
        options |= {"geolocation": {"latitude": WHERE_I_AM[0], "longitude": WHERE_I_AM[1],
                                    "accuracy": 8}, "permissions": ["geolocation"]}  # fmt: skip
    context = browser.new_context(**options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, base, user)
    page.goto(f"{base}/searches/{search_id}/team")
    return context, page, errors


def _ellipse_in_view(page: Any) -> dict[str, Any] | None:
    """Whether the estimate's ellipse lies inside the map's view, its centre and the view's."""
    out: dict[str, Any] | None = page.evaluate(
        """([name]) => {
          const m = window[name];
          let e = null;
          m.eachLayer(l => { if (l.options && l.options.className === "estimate-ellipse") e = l; });
          if (!e) return null;
          const b = e.getBounds(), c = b.getCenter(), v = m.getCenter();
          const inside = m.getBounds().contains(b);
          return { inside, centre: [c.lat, c.lng], view: [v.lat, v.lng] };
        }""",
        [page.get_attribute("#team", "data-map-name")],
    )
    return out


def _until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = check()
        if out:
            return out
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def _distance_m(text: str) -> tuple[float, str, float]:
    """The page's "1.25 km SE (147°)" as (metres, compass point, bearing in degrees)."""
    found = DIRECTION.fullmatch(text)
    assert found, text
    value = float(found.group(1).replace(",", ""))
    return value * (1000.0 if found.group(2) == "km" else 1.0), found.group(3), float(found[4])


def _estimate_moved(page: Any, since: dict[str, Any], what: str) -> dict[str, Any]:
    """The view once the estimate's ellipse has moved from where it was in ``since``."""

    def moved() -> dict[str, Any] | None:
        now = _ellipse_in_view(page)
        return now if now is not None and now["centre"] != since["centre"] else None

    out: dict[str, Any] = _until(moved, 60, what)
    return out


def test_the_map_follows_the_estimate_until_dragged_and_again_from_the_button(
    browser: Any, live: dict[str, Any]
) -> None:
    context, page, errors = _team_page(browser, live["base"], live["seeded"].search_id, DESKTOP,
                                       located=True, csp=False)  # fmt: skip
    expect(page.locator("#to-target")).to_have_text(DIRECTION, timeout=60_000)
    follow = page.locator("#follow")
    expect(follow).to_have_attribute("aria-pressed", "true")
    first = _until(lambda: _ellipse_in_view(page), 10, "the ellipse drawn")
    assert first["inside"], first
    # The estimate moves and the map keeps it in view.
    moved = _estimate_moved(page, first, "the estimate moving")
    assert moved["inside"], moved
    # A drag is the user's: following stops, and the map stays where they put it.
    box = page.locator(".mapbox.small").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 420, y + 260, steps=12)
    page.mouse.up()
    page.wait_for_timeout(1500)  # the drag's inertia comes to rest
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(follow).to_have_text("Follow the estimate")
    dragged = _ellipse_in_view(page)
    assert dragged is not None
    later = _estimate_moved(page, dragged, "the estimate moving again")
    assert later["view"] == dragged["view"], "the map moved while not following"
    # The button brings it back, and it follows again as the estimate moves.
    follow.click()
    expect(follow).to_have_attribute("aria-pressed", "true")
    back = _ellipse_in_view(page)
    assert back is not None
    assert back["inside"], back
    again = _estimate_moved(page, back, "the estimate moving once more")
    assert again["inside"], again
    assert not errors, errors
    context.close()


def test_with_location_off_the_handhelds_gps_gives_direction_and_distance(
    browser: Any, live: dict[str, Any], dispatcher: httpx.Client
) -> None:
    base, search_id = live["base"], live["seeded"].search_id
    context, page, errors = _team_page(browser, base, search_id, PHONE, located=False, csp=False)
    note = page.locator("#my-position")
    words = (
        r"^Your location is off: using your handheld HH-07's GPS \(\d+ s ago\)\. "
        r"19T [A-Z]{2} \d{5} \d{5} · 42\.\d{5}, -71\.\d{5}\.$"
    )
    expect(note).to_have_text(re.compile(words), timeout=60_000)
    expect(page.locator("#to-target")).to_have_text(DIRECTION, timeout=60_000)
    expect(page.locator("#target-from")).to_have_text("from your handheld HH-07")
    # The receivers stop: what the page shows and the live state then stay as they are.
    _settle(live, dispatcher)
    page.reload()
    state = dispatcher.get(f"/api/v1/searches/{search_id}/state").json()
    (hh07,) = (r for r in state["receivers"] if r["receiver_id"] == "HH-07")
    fix = state["fix"]
    truth = inverse(hh07["lat_deg"], hh07["lon_deg"], fix["lat_deg"], fix["lon_deg"])
    expect(page.locator("#to-target")).to_have_text(DIRECTION, timeout=30_000)
    shown_m, point, shown_deg = _distance_m(page.inner_text("#to-target"))
    # Shown to 1 m below a kilometre and to 10 m above; the page's sphere against the ellipsoid
    # here differs by well under 0.5 %.
    assert abs(shown_m - truth.distance_m) <= 0.005 * truth.distance_m + 6.0, (shown_m, truth)
    off = (shown_deg - truth.azimuth1_deg + 180.0) % 360.0 - 180.0
    assert abs(off) <= 1.0, (shown_deg, truth.azimuth1_deg)
    assert point == COMPASS[round(shown_deg / 45.0) % 8]
    # The team's own handheld is "me", the other teams' receivers carry their team's names.
    expect(page.locator(".leaflet-tooltip.own")).to_have_text(["me (HH-07)"])
    expect(page.locator(".leaflet-tooltip.last-seen")).to_have_text(["last seen"])
    others = page.locator(".leaflet-tooltip.rx-label:not(.own):not(.last-seen)").all_inner_texts()
    assert sorted(others) == ["Roof", "Team 2"], others
    assert not errors, errors
    context.close()


def test_screenshots_desktop_and_phone_with_location_on_and_off(
    browser: Any, live: dict[str, Any]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for screen, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        for located in (True, False):
            context, page, errors = _team_page(browser, live["base"], live["seeded"].search_id,
                                               screen, located=located, csp=True)  # fmt: skip
            expect(page.locator("#to-target")).to_have_text(DIRECTION, timeout=60_000)
            expect(page.locator("#offline-ready")).to_have_text(re.compile("^Kept on this phone"))
            expected = "Me: 19T" if located else "Your location is off: using your handheld HH-07"
            expect(page.locator("#my-position")).to_contain_text(expected)
            page.wait_for_timeout(600)  # tiles are off: the map draws at once; labels settle
            shot = SHOTS / f"team-{name}-location-{'on' if located else 'off'}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if screen is PHONE:
                small = page.evaluate(
                    """([px, what]) => [...document.querySelectorAll(what)]
                        .filter(e => e.offsetParent !== null)
                        .map(e => [e.id || e.textContent.trim() || e.name,
                                   e.getBoundingClientRect()])
                        .filter(([, r]) => r.height < px || r.width < px)
                        .map(([n, r]) => `${n}: ${Math.round(r.width)}x${Math.round(r.height)}`)""",
                    [TAP_PX, TAPPABLE],
                )
                assert small == [], small
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"the page scrolls sideways: {width} px"
            assert not errors, errors
            context.close()


def test_with_no_location_and_no_handheld_it_says_what_to_do_and_takes_a_typed_usng(
    browser: Any, live: dict[str, Any], dispatcher: httpx.Client
) -> None:
    """A searcher on no team ("loner") has no handheld; their location is off."""
    base, search_id = live["base"], live["seeded"].search_id
    _settle(live, dispatcher)  # the estimate stays where it is: the direction is checked below
    context, page, errors = _team_page(browser, base, search_id, PHONE, located=False, csp=True,
                                       user="loner")  # fmt: skip
    note = page.locator("#my-position")
    expect(note).to_have_text(re.compile(
        r"^Your location is off and you are on no team of this search, so no handheld gives a "
        r"position\. Turn on location for this site in the browser's settings, or type where you "
        r'are under "Type where I am": a USNG reference such as 19T [A-Z]{2} \d{4} \d{4}, or '
        r"lat, lon\.$"), timeout=30_000)  # fmt: skip
    expect(page.locator("#place-box")).to_have_attribute("open", "")
    expect(page.locator("#to-target")).to_have_text(
        "Which way: needs your position", timeout=30_000
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "team-phone-no-position.png"), full_page=True)
    # A reference that cannot be is refused in words, by the field.
    page.fill("#place", "19T JA 1234 5678")
    page.click('#place-form button[type="submit"]')
    expect(page.locator("#place-error")).to_have_text(re.compile("not used in zone 19"))
    expect(page.locator("#place")).to_have_attribute("aria-invalid", "true")
    # A reference to the metre, from the mgrs package (GEOTRANS), is where I am.
    point = (42.3010, -71.0620)
    reference = mgrs.MGRS().toMGRS(*point, MGRSPrecision=5)
    page.fill("#place", reference.lower())
    page.click('#place-form button[type="submit"]')
    expect(page.locator("#place-error")).to_have_text("")
    expect(note).to_have_text(re.compile(
        r"^Using the position you typed \d+ s ago: 19T CG \d{5} \d{5} · 42\.3010\d, -71\.0620\d"
        ))  # fmt: skip
    expect(page.locator("#target-from")).to_have_text("from the position you typed")
    expect(page.locator(".leaflet-tooltip.own")).to_have_text(["me (typed)"])
    fix = dispatcher.get(f"/api/v1/searches/{search_id}/state").json()["fix"]
    lat, lon = mgrs.MGRS().toLatLon(reference)
    truth = inverse(lat, lon, fix["lat_deg"], fix["lon_deg"])
    expect(page.locator("#to-target")).to_have_text(DIRECTION)
    shown_m, _, shown_deg = _distance_m(page.inner_text("#to-target"))
    assert abs(shown_m - truth.distance_m) <= 0.005 * truth.distance_m + 6.0, (shown_m, truth)
    assert abs((shown_deg - truth.azimuth1_deg + 180.0) % 360.0 - 180.0) <= 1.0
    # Cleared, the page says again what to do.
    page.click("#clear-place")
    expect(note).to_have_text(re.compile("^Your location is off and you are on no team"))
    assert not errors, errors
    context.close()


def _dispatcher_sees(dispatcher: httpx.Client, search_id: str, bearing_deg: float,
                     silence_t: str, key: str) -> tuple[int, int, int]:  # fmt: skip
    """How many of the phone's bearing, silence and heard report the dispatcher's side holds."""
    state = dispatcher.get(f"/api/v1/searches/{search_id}/state").json()
    bearings = [b for b in state["bearings"]
                if b["receiver_id"] == "WEB-team1" and b["bearing_deg"] == bearing_deg]  # fmt: skip
    silences = [s for s in state["silences"]
                if datetime.fromisoformat(s[2]) == datetime.fromisoformat(silence_t)]  # fmt: skip
    events = dispatcher.get(f"/api/v1/searches/{search_id}/events").json()
    heard = [e for e in events if e["kind"] == "heard" and e["body"].get("key") == key]
    return len(bearings), len(silences), len(heard)


def test_reports_made_without_coverage_reach_the_dispatcher_once(
    browser: Any, live: dict[str, Any], dispatcher: httpx.Client
) -> None:
    base, search_id = live["base"], live["seeded"].search_id
    context, page, errors = _team_page(browser, base, search_id, PHONE, located=True, csp=True)
    expect(page.locator("#connection")).to_have_text(re.compile("^Live"), timeout=30_000)
    expect(page.locator("#my-position")).to_contain_text("Me: 19T")
    context.set_offline(True)
    page.fill('input[name="bearing_deg"]', "213.5")
    page.click('#bearing-form button[type="submit"]')
    one = r"^1 waiting to send \(bearing 213\.5°\)\. No coverage: it goes as soon as"
    expect(page.locator("#outbox-count")).to_have_text(re.compile(one))
    page.click("#heard")
    page.click("#not-heard")
    three = r"^3 waiting to send \(bearing 213\.5°, heard here, not heard here\)\. No coverage"
    expect(page.locator("#outbox-count")).to_have_text(re.compile(three))
    expect(page.locator("#connection")).to_have_text(re.compile("^No connection to the server"))
    waiting = page.evaluate("localStorage.getItem('safetynet.outbox.WEB-team1')")
    items = json.loads(waiting)
    assert [i["type"] for i in items] == ["report", "heard", "report"]
    silence_t, key = items[2]["body"]["t"], items[1]["body"]["key"]
    assert _dispatcher_sees(dispatcher, search_id, 213.5, silence_t, key) == (0, 0, 0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "team-phone-offline-waiting.png"), full_page=True)
    # Back in coverage: sent by themselves, and the dispatcher has each once.
    context.set_offline(False)
    expect(page.locator("#outbox-state")).to_be_hidden(timeout=60_000)
    expect(page.locator("#team-message")).to_have_text(re.compile("^Sent: "))
    expect(page.locator("#connection")).to_have_text(re.compile("^Live"), timeout=40_000)
    _until(lambda: _dispatcher_sees(dispatcher, search_id, 213.5, silence_t, key) == (1, 1, 1),
           20, "the bearing, the silence and the heard report at the dispatcher's")  # fmt: skip
    # The phone sends them again (its answers lost on the way): still once each.
    page.evaluate("(items) => localStorage.setItem('safetynet.outbox.WEB-team1', items)", waiting)
    page.reload()
    expect(page.locator("#outbox-state")).to_be_hidden(timeout=60_000)
    expect(page.locator("#team-message")).to_have_text(re.compile("^Sent: "), timeout=30_000)
    assert page.evaluate("localStorage.getItem('safetynet.outbox.WEB-team1')") == "[]"
    time.sleep(1.0)
    assert _dispatcher_sees(dispatcher, search_id, 213.5, silence_t, key) == (1, 1, 1)
    assert not errors, errors
    context.close()


def test_the_page_reloads_without_coverage_from_its_service_worker(
    browser: Any, live: dict[str, Any], dispatcher: httpx.Client
) -> None:
    base, search_id = live["base"], live["seeded"].search_id
    context, page, errors = _team_page(browser, base, search_id, PHONE, located=True, csp=True)
    expect(page.locator("#offline-ready")).to_have_text(
        "Kept on this phone: this page opens without coverage.", timeout=30_000
    )
    expect(page.locator("#to-target")).to_have_text(DIRECTION, timeout=30_000)
    context.set_offline(True)
    answer = page.reload()
    assert answer is not None
    assert answer.from_service_worker
    # The page, its scripts and the last state the server sent are all there.
    expect(page.locator("#to-target")).to_have_text(DIRECTION, timeout=15_000)
    expect(page.locator("#connection")).to_have_text(
        re.compile(r"^No connection to the server\. Showing what it sent by ")
    )
    expect(page.locator(".leaflet-tooltip.own").first).to_be_visible()
    expect(page.locator("#person summary")).to_contain_text("Looking for Walter Brown")
    # A bearing typed now waits, and reaches the dispatcher once the phone is back.
    page.fill('input[name="bearing_deg"]', "77")
    page.click('#bearing-form button[type="submit"]')
    expect(page.locator("#outbox-count")).to_have_text(
        re.compile(r"^1 waiting to send \(bearing 77°\)")
    )
    page.screenshot(path=str(SHOTS / "team-phone-reloaded-offline.png"), full_page=True)
    context.set_offline(False)
    expect(page.locator("#outbox-state")).to_be_hidden(timeout=60_000)

    def at_dispatcher() -> int:
        state = dispatcher.get(f"/api/v1/searches/{search_id}/state").json()
        return len([b for b in state["bearings"]
                    if b["receiver_id"] == "WEB-team1" and b["bearing_deg"] == 77.0])  # fmt: skip

    assert _until(at_dispatcher, 20, "the bearing at the dispatcher's") == 1
    # Logged out from another page, the kept copy of the page and the photo goes too.
    kept = "names => names.filter(n => n.endsWith(':page'))"
    assert page.evaluate(f"caches.keys().then({kept})")
    page.goto(f"{base}/")
    page.click("form.logout button")
    page.wait_for_url(re.compile(r".*/login.*"))
    page.wait_for_function(f"caches.keys().then({kept}).then(k => k.length === 0)")
    assert not errors, errors
    context.close()


def test_the_app_can_be_installed_from_its_manifest(live: dict[str, Any]) -> None:
    """The manifest names the team page, its scope and icons that are PNGs of their size."""
    search_id = live["seeded"].search_id
    with httpx.Client(base_url=live["base"], timeout=10) as client:
        answer = client.get(f"/searches/{search_id}/team.webmanifest")
        assert answer.headers["content-type"].startswith("application/manifest+json")
        manifest = answer.json()
        assert manifest["start_url"] == f"/searches/{search_id}/team"
        assert manifest["scope"] == f"/searches/{search_id}/"
        assert manifest["display"] == "standalone"
        for icon in manifest["icons"]:
            png = client.get(icon["src"])
            assert png.status_code == 200
            assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = int.from_bytes(png.content[16:20]), int.from_bytes(png.content[20:24])
            assert f"{width}x{height}" == icon["sizes"]
        worker = client.get(f"/searches/{search_id}/team-sw.js")
        assert worker.headers["content-type"].startswith("text/javascript")
        shell = re.search(r"^const SHELL = (\[.*\]);$", worker.text, re.M)
        assert shell is not None
        for url in json.loads(shell.group(1)):
            assert client.get(url).status_code == 200, url
        assert client.get("/searches/not a search/team-sw.js").status_code == 404
        assert client.get("/icons/team-64.png").status_code == 404
