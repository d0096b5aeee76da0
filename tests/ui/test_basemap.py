"""The base map in the field: when tiles cannot come, the map says so in words, and stops asking.

Three servers, each with the dispatcher's live map in Debian's chromium: one whose tile server
does not answer (nothing listens on its port), one with tiles off, and one serving an offline
MBTiles file that covers only the tile the search starts in.
"""

from __future__ import annotations

import io
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from PIL import Image

from tests.ui_support import (
    ARTIFACTS,
    ORIGIN,
    free_port,
    running_server,
    seed,
    settings_for,
    sign_in,
)
from ui.app import create_app

SHOTS = ARTIFACTS / "screenshots"


def _map_page(browser: Any, base: str, search_id: str, requests: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    sign_in(page, base, "dispatcher")
    page.goto(f"{base}/searches/{search_id}")
    return page


def _pan(page: Any, dx: int) -> None:
    name = page.get_attribute("#search", "data-map-name")
    page.evaluate("([n, dx]) => window[n].panBy([dx, 0], { animate: false })", [name, dx])


def test_a_tile_server_that_does_not_answer_is_named_and_no_longer_asked(
    browser: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seeded = seed(url)
    dead = free_port()  # nothing listens here: every tile is refused
    app = create_app(settings_for(tmp_path, url).model_copy(
        update={"tile_url": f"http://127.0.0.1:{dead}/{{z}}/{{x}}/{{y}}.png"}))  # fmt: skip
    requests: list[str] = []
    with running_server(app) as base:
        page = _map_page(browser, base, seeded.search_id, requests)
        notice = page.wait_for_selector(".basemap-notice", timeout=15000)
        assert "the map tiles cannot be fetched" in notice.inner_text()
        page.screenshot(path=str(SHOTS / "map-tiles-unreachable-desktop.png"))
        asked = [u for u in requests if f":{dead}/" in u]
        assert len(asked) >= 8
        _pan(page, 900)
        _pan(page, -1800)
        time.sleep(1.0)
        assert len([u for u in requests if f":{dead}/" in u]) == len(asked)  # it stopped asking
        page.click("text=Try the street map again")
        page.wait_for_selector(".basemap-notice", timeout=15000)  # asked again, failed again
        assert len([u for u in requests if f":{dead}/" in u]) > len(asked)
        page.context.close()
    app.state.safetynet.engine.dispose()


def test_tiles_off_says_so_and_asks_nobody(browser: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seeded = seed(url)
    app = create_app(settings_for(tmp_path, url))  # tile_url "": tiles off
    requests: list[str] = []
    with running_server(app) as base:
        page = _map_page(browser, base, seeded.search_id, requests)
        notice = page.wait_for_selector(".basemap-notice", timeout=15000)
        assert "tiles are off on this server" in notice.inner_text()
        # Read once, it can be hidden (on a phone it would cover the search).
        page.click(".basemap-notice button.basemap-hide")
        page.wait_for_selector(".basemap-notice", state="detached")
        assert all(u.startswith((base, "data:", "blob:", "ws://127.0.0.1")) for u in requests)
        page.context.close()
    app.state.safetynet.engine.dispose()


def _tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_an_offline_map_that_does_not_cover_the_view_says_that_not_that_it_failed(
    browser: Any, tmp_path: Path
) -> None:
    tiles = tmp_path / "area.mbtiles"
    png = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 220, 200)).save(png, "PNG")
    z = 15
    x, y = _tile_of(*ORIGIN, z)
    with sqlite3.connect(tiles) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute(
            "CREATE TABLE tiles (zoom_level INT, tile_column INT, tile_row INT, tile_data BLOB)"
        )
        db.executemany(
            "INSERT INTO metadata VALUES (?, ?)", [("format", "png"), ("attribution", "County GIS")]
        )
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                           (z, x + dx, (2**z - 1) - (y + dy), png.getvalue()))  # fmt: skip
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seeded = seed(url)
    app = create_app(settings_for(tmp_path, url, tiles_file=tiles))
    requests: list[str] = []
    with running_server(app) as base:
        page = _map_page(browser, base, seeded.search_id, requests)
        page.wait_for_selector(".leaflet-tile-loaded", timeout=15000)
        _pan(page, 6000)  # far east of the file's nine tiles
        notice = page.wait_for_selector(".basemap-notice", timeout=15000)
        assert "does not cover this area" in notice.inner_text()
        assert "cannot be fetched" not in notice.inner_text()
        _pan(page, -6000)
        page.wait_for_selector(".basemap-notice", state="detached", timeout=15000)
        page.context.close()
    app.state.safetynet.engine.dispose()
