"""A search as Cursor-on-Target (ui/cot.py) and CoT read back (ui/cot_in.py), without a network.

The picture comes from a real live state fed the demo scenario's reports; every document is
checked against the CoT base schema written into the tests (tests/data/cot/Event.xsd), ``ce``
against an eigen-decomposition of the fix's covariance, the areas against the probability map's
own count of cells, and incoming CoT against what ATAK writes.
"""

from __future__ import annotations

import io
import itertools
import math
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import xmlschema
from hypothesis import given
from hypothesis import strategies as st

from registry.searches import LiveSetup
from safetynet.reports import format_time, parse_time
from tests.conftest import fuzz
from tests.ui_support import ORIGIN, scenario_reports
from ui import cot
from ui.cot_in import (
    CotError,
    Pli,
    RangeBearing,
    bearing_report,
    parse_event,
    receiver_id_of,
    status_report,
)
from ui.live import SearchState
from ui.tak import _parts, areas_of

XSD = Path(__file__).resolve().parents[1] / "data" / "cot" / "Event.xsd"
START = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
TEAMS = {"HH-07": "Team 1", "HH-12": "Team 2", "ROOF-1": "Roof"}


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(XSD)


@pytest.fixture(scope="module")
def state() -> SearchState:
    setup = LiveSetup("s1", "3A7F", 19, ORIGIN[0], ORIGIN[1], START, START, "dementia", TEAMS)
    s = SearchState.start(setup)
    s.take(scenario_reports(START, 240.0))
    assert s.fixes
    assert s.bearings
    return s


def _picture(state: SearchState, label: str = cot.ANONYMOUS) -> cot.Picture:
    parts = _parts(state, True)
    p, frame, half_width_m, cell_m = parts["grid"]
    return cot.Picture(
        search_id=state.search_id,
        label=label,
        last_known=parts["last_known"],
        fix=parts["fix"],
        bearings=parts["bearings"],
        receivers=parts["receivers"],
        areas=areas_of(p, frame.to_lat_lon, half_width_m, cell_m),
        guidance=parts["guidance"],
    )


def _now(state: SearchState) -> datetime:
    return parse_time(state.fixes[-1]["t"]) + timedelta(seconds=5)


def _by_uid(events: list[ET.Element]) -> dict[str, ET.Element]:
    return {ev.get("uid", ""): ev for ev in events}


def test_every_document_validates_against_the_cot_event_schema(
    state: SearchState, schema: xmlschema.XMLSchema
) -> None:
    now = _now(state)
    events = cot.picture_events(_picture(state), now)
    events.append(cot.chat_event("s1", "Bracelet heard", now, ORIGIN))
    events.append(cot.delete_event(cot.uid_of("s1", "area50", "3"), now))
    for ev in events:
        schema.validate(cot.to_bytes(ev).decode())
    root = ET.fromstring(cot.document(events))
    assert root.tag == "events"
    assert len(root) == len(events)
    for child in root:
        schema.validate(ET.tostring(child, encoding="unicode"))
    kinds = {ev.get("type") for ev in events}
    assert {"a-n-G", "u-d-c-e", "u-rb-a", "u-d-f", "b-m-p-s-m", "b-t-f", "t-x-d-d"} <= kinds


def test_a_wrong_document_is_refused_by_the_schema(schema: xmlschema.XMLSchema) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    ev, _ = cot.event("x", "a-f-G", "m-g", 95.0, 0.0, now, now)  # latitude out of range
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(cot.to_bytes(ev).decode())


def test_ce_is_the_one_sigma_error_along_the_ellipse_major_axis(state: SearchState) -> None:
    now = _now(state)
    fix = state.fixes[-1]
    ev = _by_uid(cot.fix_events(_picture(state), now))[cot.uid_of("s1", "fix")]
    point = ev.find("point")
    assert point is not None
    ce = float(point.get("ce", "nan"))
    lam_max = float(np.linalg.eigvalsh(np.array(fix["cov_enu_m2"])).max())
    assert ce == pytest.approx(math.sqrt(lam_max), abs=0.05)
    # the 95 % ellipse's semi-major axis is √χ²₂(0.95) = 2.4477 of it
    assert ce * 2.4477 == pytest.approx(fix["ellipse95"]["semi_major_m"], rel=1e-3)
    shape = ev.find("detail/shape/ellipse")
    assert shape is not None
    assert float(shape.get("major", "0")) == pytest.approx(fix["ellipse95"]["semi_major_m"], 0.1)
    assert float(shape.get("minor", "0")) == pytest.approx(fix["ellipse95"]["semi_minor_m"], 0.1)
    assert float(shape.get("angle", "0")) == pytest.approx(fix["ellipse95"]["orientation_deg"], 0.1)
    assert point.get("le") == point.get("hae") == "9999999.0"  # no height estimate
    assert ev.get("how") == "m-f"
    assert abs(parse_time(ev.get("start")) - parse_time(fix["t"])) < timedelta(milliseconds=1)


def test_a_live_feed_never_ages_and_a_dead_one_ages_within_two_minutes(state: SearchState) -> None:
    now = _now(state)
    for ev in cot.picture_events(_picture(state), now):
        stale = parse_time(ev.get("stale")) - parse_time(ev.get("time"))
        if ev.get("type") == "u-rb-a":
            assert stale <= timedelta(seconds=cot.FEED_STALE_S)
        else:
            assert stale == timedelta(seconds=cot.FEED_STALE_S), ev.get("uid")
        # "start" is when what it says became true: never after "time" (when it was sent)
        assert parse_time(ev.get("start")) <= parse_time(ev.get("time"))
        assert parse_time(ev.get("start")) <= parse_time(ev.get("stale"))
    assert cot.PICTURE_EVERY_S * 3 <= cot.FEED_STALE_S  # three sends may be lost before it ages


def test_an_old_estimate_and_an_old_position_are_sent_already_aged(state: SearchState) -> None:
    """Sent again and again, a fix with no evidence for an hour (or a handheld dead for half an
    hour) must not look live on TAK: it is stale as soon as it is too old."""
    later = _now(state) + timedelta(hours=1)
    events = {ev.get("uid"): ev for ev in cot.picture_events(_picture(state), later)}
    fix = events[cot.uid_of(state.search_id, "fix")]
    assert parse_time(fix.get("stale")) - later <= timedelta(seconds=1)
    teams = [ev for uid, ev in events.items() if ".rx." in (uid or "")]
    assert teams
    for ev in teams:
        assert parse_time(ev.get("stale")) - later <= timedelta(seconds=1), ev.get("uid")


def test_each_bearing_is_a_range_and_bearing_line_that_fades(state: SearchState) -> None:
    now = _now(state)
    picture = _picture(state)
    lines = _by_uid(cot.bearing_events(picture, now))
    fresh = [b for b in picture.bearings if parse_time(b["t"]) > now - timedelta(seconds=300)]
    assert fresh
    assert len(lines) == len(fresh)
    for b in fresh:
        ev = lines[cot.uid_of("s1", "bearing", b["receiver_id"], str(b["seq"]))]
        assert ev.get("type") == "u-rb-a"
        point = ev.find("point")
        assert point is not None
        assert float(point.get("lat", "0")) == pytest.approx(b["lat_deg"], abs=1e-7)
        assert float(point.get("lon", "0")) == pytest.approx(b["lon_deg"], abs=1e-7)
        bearing = ev.find("detail/bearing")
        assert bearing is not None
        assert float(bearing.get("value", "nan")) == pytest.approx(b["bearing_deg"], abs=0.01)
        north = ev.find("detail/northRef")
        assert north is not None
        assert north.get("value") == "0"  # true north
        taken = parse_time(b["t"])
        expected = min(
            taken + timedelta(seconds=cot.BEARING_FADES_S),
            now + timedelta(seconds=cot.FEED_STALE_S),
        )
        assert abs(parse_time(ev.get("stale")) - expected) < timedelta(milliseconds=1)
        assert ev.get("stale", "").endswith("Z")
        assert len(ev.get("stale", "")) == len("2026-03-01T03:04:05.250Z")  # milliseconds
    later = max(parse_time(b["t"]) for b in picture.bearings) + timedelta(seconds=301)
    assert cot.bearing_events(picture, later) == []  # all faded


def test_teams_vehicles_and_stations_have_their_kinds_and_last_positions(
    state: SearchState,
) -> None:
    now = _now(state)
    events = _by_uid(cot.team_events(_picture(state), now))
    types = {uid.rsplit(".", 1)[-1]: ev.get("type") for uid, ev in events.items()}
    assert types == {"HH-07": "a-f-G-U-C-I", "HH-12": "a-f-G-U-C-I", "ROOF-1": "a-f-G-E-S"}
    roof = events[cot.uid_of("s1", "rx", "ROOF-1")]
    contact = roof.find("detail/contact")
    assert contact is not None
    assert contact.get("callsign") == "Roof (ROOF-1)"
    view = state.receivers["HH-07"]
    hh = events[cot.uid_of("s1", "rx", "HH-07")].find("point")
    assert hh is not None
    assert (float(hh.get("lat", "0")), float(hh.get("lon", "0"))) == pytest.approx(
        (view.lat_deg, view.lon_deg), abs=1e-7
    )


def test_a_tak_user_s_own_position_is_not_sent_back() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    receiver = {"receiver_id": "TAK-ALPHA1", "team": "Team 1", "lat_deg": 42.3, "lon_deg": -71.0,
                "position_t": format_time(now), "gps_fix": True, "kind": "foot"}  # fmt: skip
    picture = cot.Picture("s", cot.ANONYMOUS, (42.3, -71.0, now), receivers=[receiver])
    assert cot.team_events(picture, now) == []


def _ring_area_m2(ring: list[tuple[float, float]]) -> float:
    from safetynet.geodesy import LocalFrame

    frame = LocalFrame(ring[0][0], ring[0][1])
    pts = [frame.to_en(lat, lon) for lat, lon in ring]
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(pts)))


def test_the_areas_are_polygons_as_large_as_the_map_counts(state: SearchState) -> None:
    now = _now(state)
    picture = _picture(state)
    a50, a90 = state.probmap.areas_m2()
    by_share = {a.share: a for a in picture.areas}
    for share, expected in ((0.5, a50), (0.9, a90)):
        area = by_share[share]
        assert area.area_km2 == pytest.approx(expected / 1e6)
        drawn = sum(_ring_area_m2(r) for r in area.rings) / 2
        assert drawn == pytest.approx(expected, rel=0.15)
    polygons = _by_uid(cot.area_events(picture, now))
    ev = polygons[cot.uid_of("s1", "area50", "0")]
    points = [link.get("point", "") for link in ev.findall("detail/link")]
    assert len(points) >= 4
    assert points[0] == points[-1]  # closed
    fill = ev.find("detail/fillColor")
    assert fill is not None
    # ARGB in a signed 32-bit integer, as ATAK writes it: orange, a quarter opaque
    assert int(fill.get("value", "0")) & 0xFFFFFFFF == 0x40FF8800
    stroke = ev.find("detail/strokeColor")
    assert stroke is not None
    assert int(stroke.get("value", "0")) == 0xFFFF8800 - (1 << 32)


def test_next_listening_points_are_waypoints_per_team(state: SearchState) -> None:
    now = _now(state)
    picture = _picture(state)
    assert picture.guidance
    waypoints = cot.guidance_events(picture, now)
    assert {ev.get("type") for ev in waypoints} == {"b-m-p-w"}
    assert {ev.get("uid") for ev in waypoints} == {
        cot.uid_of("s1", "next", g["receiver_id"]) for g in picture.guidance
    }


def test_nothing_of_the_person_but_the_label_goes_out(state: SearchState) -> None:
    now = _now(state)
    text = b"".join(cot.to_bytes(ev) for ev in cot.picture_events(_picture(state), now)).decode()
    assert cot.ANONYMOUS in text
    for word in ("Walter", "Brown", "dementia", "Alzheimer", "diagnos", "medication"):
        assert word not in text
    named = _picture(state, label="Walter Brown")
    text = b"".join(cot.to_bytes(ev) for ev in cot.picture_events(named, now)).decode()
    assert "Walter Brown (estimate)" in text
    assert "dementia" not in text


def test_a_chat_line_is_geochat_to_all_chat_rooms() -> None:
    now = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    ev = cot.chat_event("s1", "Bracelet heard", now, ORIGIN, message_id="m1")
    assert ev.get("uid") == "GeoChat.SafetyNet.s1.All Chat Rooms.m1"
    chat = ev.find("detail/__chat")
    assert chat is not None
    assert chat.get("chatroom") == "All Chat Rooms"
    assert ev.findtext("detail/remarks") == "Bracelet heard"
    assert cot.is_ours(ev.get("uid", ""))


def test_the_data_package_lists_every_event_in_its_manifest(
    state: SearchState, schema: xmlschema.XMLSchema
) -> None:
    now = _now(state)
    events = cot.picture_events(_picture(state), now)
    package = cot.data_package("SafetyNet search s1", cot.uid_of("s1", "package"), events)
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        manifest = ET.fromstring(zf.read("MANIFEST/manifest.xml"))
        assert manifest.tag == "MissionPackageManifest"
        assert manifest.get("version") == "2"
        entries = [c.get("zipEntry", "") for c in manifest.iter("Content")]
        assert len(entries) == len(events)
        assert set(entries) | {"MANIFEST/manifest.xml"} == set(zf.namelist())
        uids = set()
        for entry in entries:
            text = zf.read(entry).decode()
            schema.validate(text)
            uids.add(ET.fromstring(text).get("uid"))
        assert uids == {ev.get("uid") for ev in events}


# --- CoT in --------------------------------------------------------------------------------------

ATAK_PLI = """<?xml version='1.0' encoding='UTF-8' standalone='yes'?>
<event version="2.0" uid="ANDROID-1f2e3d4c5b6a7988" type="a-f-G-U-C" time="{t}" start="{t}"
 stale="{t}" how="m-g"><point lat="42.30311" lon="-71.05702" hae="12.4" ce="4.9" le="9999999.0"/>
<detail><takv os="34" version="4.10.0" device="SAMSUNG SM-G991U" platform="ATAK-CIV"/>
<contact endpoint="*:-1:stcp" callsign="ALPHA1"/><uid Droid="ALPHA1"/>
<__group role="Team Member" name="Cyan"/><status battery="88"/>
<track course="90.0" speed="1.1"/></detail></event>"""

ATAK_RB = """<event version="2.0" uid="58df2fcd-e33e-414f-a718-b18b50cd3137" type="u-rb-a"
 time="{t}" start="{t}" stale="{t}" how="h-e"><point lat="42.30311" lon="-71.05702"
 hae="9999999.0" ce="9999999.0" le="9999999.0"/><detail><range value="886.1"/>
<bearing value="{bearing}"/><inclination value="0.0"/><rangeUnits value="1"/>
<bearingUnits value="0"/><northRef value="1"/><strokeColor value="-65536"/>
<contact callsign="R&amp;B 1"/><remarks/><archive/>
<link uid="ANDROID-1f2e3d4c5b6a7988" production_time="{t}" type="a-f-G-U-C"
 parent_callsign="ALPHA1" relation="p-p"/></detail></event>"""

T = "2026-03-01T03:04:05.250Z"


def test_a_tak_user_s_pli_becomes_a_status_report_of_its_receiver() -> None:
    pli = parse_event(ATAK_PLI.format(t=T).encode())
    assert isinstance(pli, Pli)
    assert (pli.callsign, pli.lat_deg, pli.lon_deg, pli.ce_m, pli.gps) == (
        "ALPHA1", 42.30311, -71.05702, 4.9, True,
    )  # fmt: skip
    report = status_report(pli)
    assert report == {
        "kind": "status", "receiver_id": "TAK-ALPHA1", "seq": 1772334245250, "t": T,
        "lat_deg": 42.30311, "lon_deg": -71.05702, "gps_fix": True, "clipping": False,
    }  # fmt: skip
    assert status_report(parse_event(ATAK_PLI.format(t=T).encode())) == report  # type: ignore[arg-type]


def test_an_atak_range_and_bearing_line_becomes_a_manual_bearing() -> None:
    rb = parse_event(ATAK_RB.format(t=T, bearing="45.6").encode())
    assert isinstance(rb, RangeBearing)
    assert (rb.author_callsign, rb.bearing_deg, rb.range_m) == ("ALPHA1", 45.6, 886.1)
    report = bearing_report(rb, "3A7F", 19)
    assert report["receiver_id"] == "TAK-ALPHA1"
    assert report["method"] == "manual"
    assert (report["bracelet_id"], report["channel"], report["bearing_deg"]) == ("3A7F", 19, 45.6)
    again = bearing_report(parse_event(ATAK_RB.format(t=T, bearing="45.6").encode()), "3A7F", 19)  # type: ignore[arg-type]
    assert again["seq"] == report["seq"]  # the same line sent again: the same report
    edited = parse_event(ATAK_RB.format(t="2026-03-01T03:05:00.000Z", bearing="50").encode())
    assert bearing_report(edited, "3A7F", 19)["seq"] != report["seq"]  # type: ignore[arg-type]


def test_our_own_bearing_line_reads_back_as_the_same_bearing(state: SearchState) -> None:
    now = _now(state)
    ev = cot.bearing_events(_picture(state), now)[0]
    ev.set("uid", "drawn-by-a-tak-user")  # not ours any more
    link = ET.SubElement(ev.find("detail"), "link")  # type: ignore[arg-type]
    link.attrib.update({"uid": "ANDROID-1", "parent_callsign": "BRAVO 2", "relation": "p-p"})
    rb = parse_event(cot.to_bytes(ev))
    assert isinstance(rb, RangeBearing)
    bearing = ev.find("detail/bearing")
    assert bearing is not None
    assert rb.bearing_deg == pytest.approx(float(bearing.get("value", "nan")))
    assert receiver_id_of(rb.author_callsign) == "TAK-BRAVO-2"


def test_what_we_do_not_take_is_passed_over() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_event(cot.to_bytes(cot.chat_event("s1", "hi", now, ORIGIN))) is None
    ev, _ = cot.event("SafetyNet.s1.fix", "a-n-G", "m-f", 42.0, -71.0, now, now)
    assert parse_event(cot.to_bytes(ev)) is None  # our own fix, back through the server
    marker, d = cot.event("marker-1", "a-f-G", "h-e", 42.0, -71.0, now, now)
    ET.SubElement(d, "contact", {"callsign": "a marker"})
    assert parse_event(cot.to_bytes(marker)) is None  # a dropped marker is not a TAK user


UTF16_ENTITIES = (
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><event uid="&a;"/>'
).encode("utf-16")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"<event", "not well-formed XML"),
        (b"<point lat='1'/>", "expected an <event>"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><event/>', "DTD or an entity"),
        # The same in UTF-16 (its bytes hide the DTD from a search of them; expat would read it)
        (UTF16_ENTITIES, "not UTF-8"),
        ("\ufeff<event/>".encode(), "byte-order mark"),
        (ATAK_PLI.format(t="yesterday").encode(), "time must be an RFC 3339 time"),
        (
            ATAK_PLI.format(t=T).replace('lat="42.30311"', 'lat="91"').encode(),
            "lat must be within -90..90",
        ),
        (ATAK_RB.format(t=T, bearing="north").encode(), "bearing: value must be a number"),
        (
            ATAK_RB.format(t=T, bearing="10").replace('parent_callsign="ALPHA1" ', "").encode(),
            "who drew it is not said",
        ),
        (
            ATAK_RB.format(t=T, bearing="10")
            .replace('<bearingUnits value="0"/>', '<bearingUnits value="1"/>')
            .encode(),
            "bearingUnits",
        ),
        (b"<event>" + b" " * 70_000 + b"</event>", "over the limit"),
    ],
)
def test_bad_cot_is_refused_saying_what_is_wrong(text: bytes, message: str) -> None:
    with pytest.raises(CotError, match=message):
        parse_event(text)


@fuzz(300)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_give_a_reading_none_or_a_cot_error(data: bytes) -> None:
    out: object
    try:
        out = parse_event(data)
    except CotError as err:
        out = str(err)  # says what was wrong
    assert out is None or isinstance(out, Pli | RangeBearing) or (isinstance(out, str) and out)


@fuzz(200)
@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    bearing=st.floats(0, 359.99),
    callsign=st.text(  # what XML can hold: no control characters
        st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=80
    ),
)
def test_a_line_s_report_always_passes_the_report_rules(
    lat: float, lon: float, bearing: float, callsign: str
) -> None:
    from safetynet.reports import parse_report

    ev, detail = cot.event("u", "u-rb-a", "h-e", lat, lon, START, START)
    ET.SubElement(detail, "bearing", {"value": f"{bearing:.2f}"})
    ET.SubElement(detail, "link", {"relation": "p-p", "uid": "A", "parent_callsign": callsign})
    rb = parse_event(cot.to_bytes(ev))
    assert isinstance(rb, RangeBearing)
    out: Any = parse_report(bearing_report(rb, "3A7F", 19))
    assert out.receiver_id.startswith("TAK-")
    assert 0 <= out.bearing_deg < 360
