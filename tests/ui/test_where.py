"""Positions and distances as people read and type them: USNG beside decimal degrees, in the
agency's units.

The pages' converter (ui/static/where.js, Krüger's series written here) is checked against the
``mgrs`` package (GEOTRANS, written elsewhere) on seeded random points over the whole UTM grid,
the Norway and Svalbard zone exceptions included, at every precision; the server's side
(ui/usng.py) is checked against hand-worked references and by round trips.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mgrs  # type: ignore[import-untyped]
import pytest
from geographiclib.geodesic import Geodesic
from sqlalchemy.orm import Session

from registry.db import make_engine
from registry.models import Role
from registry.service import Actor, enrol
from safetynet.errors import ConfigError, InputError
from safetynet.settings import _from_environment
from tests.ui_support import ORIGIN, login, running_server, seed, settings_for, sign_in
from ui.app import create_app
from ui.usng import parse_usng, usng

WHERE_JS = Path(__file__).resolve().parents[2] / "ui" / "static" / "where.js"
GEOTRANS = mgrs.MGRS()
WGS84 = Geodesic.WGS84
TRY = "rs => rs.map(r => { try { return CALL; } catch (e) { return e.message; } })"


def _points(seed_: int) -> list[tuple[float, float]]:
    rng = random.Random(seed_)
    pts = [(rng.uniform(-80, 84), rng.uniform(-180, 180)) for _ in range(1500)]
    pts += [(rng.uniform(55.5, 64.5), rng.uniform(2.0, 13.0)) for _ in range(200)]  # Norway
    pts += [(rng.uniform(71.5, 84.0), rng.uniform(-1.0, 43.0)) for _ in range(200)]  # Svalbard
    pts += [(rng.uniform(-1, 1), rng.choice([-1, 1]) * rng.uniform(179, 180)) for _ in range(50)]
    return pts


def _geotrans(lat: float, lon: float, digits: int) -> str:
    """GEOTRANS's packed form ("04QFJ1234") in USNG's spaced form ("4Q FJ 12 34")."""
    packed = GEOTRANS.toMGRS(lat, lon, MGRSPrecision=digits)
    zone, band, square, numbers = re.fullmatch(r"(\d\d)(\w)(\w\w)(\d*)", packed).groups()  # type: ignore[union-attr]
    half = len(numbers) // 2
    return " ".join(p for p in (f"{int(zone)}{band}", square, numbers[:half], numbers[half:]) if p)


@pytest.fixture(scope="module")
def page(browser: Any) -> Any:
    context = browser.new_context()
    p = context.new_page()
    p.set_content('<html lang="en"><body></body></html>')
    p.add_script_tag(path=str(WHERE_JS))
    yield p
    context.close()


@pytest.mark.parametrize("digits", [5, 4, 3, 2, 1, 0])
def test_the_pages_references_are_geotrans_references(page: Any, digits: int) -> None:
    pts = _points(digits)
    ours = page.evaluate("([pts, d]) => pts.map(([a, b]) => Where.usng(a, b, d))", [pts, digits])
    differ = [(p, o, _geotrans(*p, digits)) for p, o in zip(pts, ours, strict=True)
              if o != _geotrans(*p, digits)]  # fmt: skip
    # Two projections agree to well under a millimetre, so a point that close to a square's
    # edge may fall either side: such a difference must vanish 2 mm away (2e-8 degrees).
    nudges = [(dlat, dlon) for dlat in (-2e-8, 0, 2e-8) for dlon in (-2e-8, 0, 2e-8)]
    wrong = []
    for (lat, lon), o, theirs in differ:
        near = page.evaluate("([ps, d]) => ps.map(([a, b]) => Where.usng(a, b, d))",
                             [[(lat + a, lon + b) for a, b in nudges], digits])  # fmt: skip
        if theirs not in near:
            wrong.append(((lat, lon), o, theirs))
    assert not wrong, wrong[:5]
    assert len(differ) <= 3, differ  # of some 2,000 points


@pytest.mark.parametrize("digits", [5, 3, 1])
def test_a_typed_reference_reads_as_the_centre_of_its_square(page: Any, digits: int) -> None:
    refs = [_geotrans(lat, lon, digits) for lat, lon in _points(10 + digits)]
    ours = page.evaluate(
        "rs => rs.map(r => { const p = Where.parseUsng(r); return [p.lat, p.lon, p.size_m]; })",
        refs,
    )
    worst = 0.0
    for ref, (lat, lon, size) in zip(refs, ours, strict=True):
        truth = GEOTRANS.toLatLon(ref.replace(" ", ""))  # GEOTRANS answers the square's centre
        worst = max(worst, WGS84.Inverse(truth[0], truth[1], lat, lon)["s12"])
        assert size == 10.0 ** (5 - digits)
    assert worst < 0.01  # metres: two implementations of one projection agree


def test_a_bad_reference_says_what_is_wrong(page: Any) -> None:
    said = page.evaluate(
        TRY.replace("CALL", "Where.parseUsng(r)"),
        [
            "18S UJ 2348 064",
            "61S UJ 1 1",
            "18S IJ 1 1",
            "18S AJ 1 1",
            "hello",
            "18S UJ 123456 123456",
        ],
    )
    assert "as many of each" in said[0]
    assert "zones run 1 to 60" in said[1]
    assert "is not a USNG reference" in said[2]  # no I or O in the grid's letters
    assert "not used in zone 18" in said[3]
    assert "such as 18S UJ" in said[4]
    assert "at most 5 digits" in said[5]


def test_degrees_are_read_too_and_checked(page: Any) -> None:
    said = page.evaluate(
        TRY.replace("CALL", "(p => [p.lat, p.lon])(Where.parsePlace(r))"),
        ["42.3601, -71.0589", "42.3601 -71.0589", "91, 10", "10, 181", "4Q FJ 12345 67890"],
    )
    assert said[0] == [42.3601, -71.0589]
    assert said[1] == [42.3601, -71.0589]
    assert "outside -90..90" in said[2]
    assert "outside -180..180" in said[3]
    truth = GEOTRANS.toLatLon("04QFJ1234567890")
    assert WGS84.Inverse(truth[0], truth[1], *said[4])["s12"] < 0.01


def test_polar_points_have_degrees_only(page: Any) -> None:
    said = page.evaluate("() => [Where.usng(85, 10), Where.position(-81.5, 3.25)]")
    assert said == [None, "-81.50000, 3.25000"]
    assert usng(85.0, 10.0) is None


@pytest.mark.parametrize(
    ("units", "metres", "expected"),
    [
        ("metric", 12.4, "12 m"),
        ("metric", 999.0, "999 m"),
        ("metric", 1250.0, "1.25 km"),
        ("metric", 15100.0, "15.1 km"),
        ("imperial", 100.0, "328 ft"),
        ("imperial", 250.0, "820 ft"),
        ("imperial", 320.0, "0.20 mi"),  # 1,049.9 ft: miles from 1,000 ft
        ("imperial", 1000.0, "0.62 mi"),
        ("imperial", 20000.0, "12.4 mi"),
    ],
)
def test_distances_read_in_the_agencys_units(page: Any, units: str, metres: float,
                                             expected: str) -> None:  # fmt: skip
    said = page.evaluate(
        "([u, m]) => { document.documentElement.dataset.units = u; return Where.distance(m); }",
        [units, metres],
    )
    assert said == expected


@pytest.mark.parametrize(
    ("units", "km2", "expected"),
    [
        ("metric", 0.0123, "1.2 ha"),
        ("metric", 0.5, "50 ha"),
        ("metric", 3.2, "3.20 km²"),
        ("imperial", 0.0123, "3.0 acres"),
        ("imperial", 0.5, "124 acres"),
        ("imperial", 5.0, "1.93 sq mi"),
    ],
)
def test_areas_read_in_the_agencys_units(page: Any, units: str, km2: float, expected: str) -> None:
    said = page.evaluate(
        "([u, a]) => { document.documentElement.dataset.units = u; return Where.area(a); }",
        [units, km2],
    )
    assert said == expected


def test_the_servers_references_match_worked_examples() -> None:
    # USNG's own documents name the White House 18S UJ 2337 0739: its rounded published
    # coordinates (38.8977, -77.0365) fall 20 m east of that square.
    lat, lon, size = parse_usng("18s uj 2337 0739")
    assert size == 10.0
    assert WGS84.Inverse(lat, lon, 38.8977, -77.0365)["s12"] < 30
    assert usng(38.8977, -77.0365, 4) == "18S UJ 2339 0739"
    assert usng(-33.8568, 151.2153, 0) == "56H LH"  # Sydney: the southern false northing


def test_the_servers_round_trip_stays_in_the_metre_square() -> None:
    for lat, lon in _points(99)[:400]:
        ref = usng(lat, lon)
        assert ref is not None
        back = parse_usng(ref)
        assert WGS84.Inverse(lat, lon, back[0], back[1])["s12"] <= 0.5 * 2**0.5 + 1e-3


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("18S UJ 2337 073", "as many easting digits"),
        ("0S UJ 11", "zones run 1 to 60"),
        ("18S UI 11", "not a USNG reference"),
        ("18S AJ 11", "names no place"),
        ("", "not a USNG reference"),
    ],
)
def test_the_server_refuses_a_bad_reference_in_words(text: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        parse_usng(text)


def test_a_wrong_units_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFETYNET_DISTANCE_UNITS", "furlongs")
    _from_environment.cache_clear()
    try:
        words = "SAFETYNET_DISTANCE_UNITS: Input should be 'metric' or 'imperial'"
        with pytest.raises(ConfigError, match=words):
            _from_environment()
    finally:
        monkeypatch.delenv("SAFETYNET_DISTANCE_UNITS")
        _from_environment.cache_clear()


def test_a_dispatcher_opens_a_search_at_a_typed_reference(browser: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seeded = seed(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        rosa = {"first_name": "Rosa", "last_name": "Diaz", "date_of_birth": "1950-02-03"}
        other = enrol(session, Actor(seeded.users["admin"], Role.ADMIN), rosa)
        other_id = other.id
    engine.dispose()
    app = create_app(settings_for(tmp_path, url, distance_units="imperial"))
    reference = _geotrans(ORIGIN[0] + 0.01, ORIGIN[1] + 0.01, 4)  # 10 m squares
    with running_server(app) as base:
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        sign_in(page, base, "dispatcher")
        page.select_option('select[name="client_id"]', other_id)
        page.fill("#open-search-place", "19T ZZ 1 1")
        assert "Not a place" in page.inner_text("#open-search-place-read")
        page.fill("#open-search-place", reference)
        said = page.inner_text("#open-search-place-read")
        assert said.startswith(f"= {reference[:8]}")
        assert "33 ft square" in said  # imperial: a 10 m square
        page.click("#open-search button[type=submit]")
        page.click("#open-search-go")  # Rosa has no bracelet: the page warns first
        page.wait_for_url(re.compile(r".*/searches/[^/]+$"))
        search_id = page.url.rsplit("/", 1)[1]
        context.close()
        with httpx.Client(base_url=base) as api:
            login(api, "dispatcher")
            got = api.get(f"/api/v1/searches/{search_id}").json()
    app.state.safetynet.engine.dispose()
    truth = GEOTRANS.toLatLon(reference.replace(" ", ""))
    lkp = got["last_known"]
    assert WGS84.Inverse(truth[0], truth[1], lkp["lat_deg"], lkp["lon_deg"])["s12"] < 0.5
    assert datetime.fromisoformat(lkp["at"]) > datetime.now(UTC) - timedelta(hours=1)
