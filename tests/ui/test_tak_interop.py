"""SafetyNet and real TAK software: the taky TAK server (from the package index, in its own
virtualenv; tests/ui/tak_server.py says why taky) with TLS and client certificates, our feed
connected to it as a real server process runs it, and a separate TAK client made with pytak
connected to the same server.

- The client receives our fix with a ``ce`` consistent with the fix's ellipse, each bearing as
  a range-and-bearing line, the teams, the areas, with the right types and stale times, every
  event valid against the CoT event schema even after the server has re-written it.
- A position (PLI) and a range-and-bearing line sent by that client through the server arrive
  in our search as the team's position and a manual bearing, once each however often sent.
- taky stopped and started again: the client has our current picture within 10 s of the server
  being back, and ingest takes as long while it is away as while it is there (figures printed).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
import xmlschema
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.db import make_engine
from registry.models import StoredReport
from safetynet.reports import format_time, parse_time, report_to_obj
from tests.ui.tak_server import PytakClient, TakyServer
from tests.ui_support import TOKENS, login, running_server, scenario_reports, seed, settings_for
from ui import cot
from ui.app import create_app

pytestmark = pytest.mark.slow
XSD = Path(__file__).resolve().parents[1] / "data" / "cot" / "Event.xsd"
ALPHA = "ALPHA1"


@pytest.fixture(scope="module")
def taky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TakyServer]:
    server = TakyServer(tmp_path_factory.mktemp("taky") / "server")
    server.start()
    yield server
    server.stop()


class Live:
    """Our server, its feed to taky, a dispatcher's HTTP client and the TAK client."""

    def __init__(self, base: str, app: Any, search_id: str, tak: PytakClient, db_url: str):
        self.base, self.app, self.search_id, self.tak, self.db_url = (
            base,
            app,
            search_id,
            tak,
            db_url,
        )
        self.http = httpx.Client(base_url=base, timeout=20)
        self.csrf = login(self.http, "dispatcher")

    def state(self) -> dict[str, Any]:
        answer = self.http.get(f"/api/v1/searches/{self.search_id}/state")
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def post(self, receiver_id: str, items: list[dict[str, Any]]) -> float:
        """Post reports as their receiver; returns how long the answer took (s)."""
        t0 = time.perf_counter()
        answer = self.http.post(
            "/api/v1/reports", json=items,
            headers={"Authorization": f"Bearer {TOKENS[receiver_id]}"},
        )  # fmt: skip
        took = time.perf_counter() - t0
        assert answer.status_code == 200, answer.text[:300]
        return took

    def uid(self, *parts: str) -> str:
        return cot.uid_of(self.search_id, *parts)


@pytest.fixture
def live(taky: TakyServer, tmp_path: Path) -> Iterator[Live]:
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    now = datetime.now(UTC)
    seeded = seed(db_url, now)
    ours = taky.client_credentials("safetynet")
    settings = settings_for(
        tmp_path, db_url, ingest_requests_per_s=1000, cot_url=f"tls://127.0.0.1:{taky.port}",
        cot_tls_cert=ours.cert, cot_tls_key=ours.key, cot_tls_ca=taky.ca,
    )  # fmt: skip
    app = create_app(settings)
    tak = PytakClient(taky.port, taky.client_credentials("alpha1"), taky.ca)
    # The TAK user is on the server before our feed starts, so that it hears the search's
    # first chat line ("search under way" is said once, when the feed first sees the search).
    tak.connect()
    with contextlib.closing(tak), running_server(app) as base:
        live = Live(base, app, seeded.search_id, tak, db_url)
        # The dispatcher puts the TAK user on a team: its receiver is TAK-<callsign>.
        answer = live.http.post(
            f"/api/v1/searches/{seeded.search_id}/teams",
            json={"name": "TAK 1", "receiver_ids": [f"TAK-{ALPHA}"]},
            headers={"X-CSRF-Token": live.csrf},
        )
        assert answer.status_code == 200, answer.text
        tak.send(pli(42.3031, -71.0571, now))  # the client says who it is
        reports = scenario_reports(now - timedelta(seconds=200), 190.0)
        for receiver_id in TOKENS:
            items = [report_to_obj(r) for r in reports if r.receiver_id == receiver_id]
            for i in range(0, len(items), 500):
                live.post(receiver_id, items[i : i + 500])
        try:
            yield live
        finally:
            live.http.close()
    app.state.safetynet.engine.dispose()


def pli(lat: float, lon: float, t: datetime, callsign: str = ALPHA) -> bytes:
    """A position as ATAK sends it."""
    stamp = format_time(t)
    stale = format_time(t + timedelta(minutes=2))
    return (
        f'<event version="2.0" uid="ANDROID-{callsign}" type="a-f-G-U-C" time="{stamp}" '
        f'start="{stamp}" stale="{stale}" how="m-g"><point lat="{lat}" lon="{lon}" hae="10.0" '
        'ce="4.9" le="9999999.0"/><detail><takv os="34" version="4.10.0" device="PIXEL" '
        f'platform="ATAK-CIV"/><contact endpoint="*:-1:stcp" callsign="{callsign}"/>'
        '<__group role="Team Member" name="Cyan"/><status battery="80"/></detail></event>'
    ).encode()


def range_bearing(uid: str, lat: float, lon: float, bearing_deg: float, t: datetime,
                  callsign: str = ALPHA) -> bytes:  # fmt: skip
    """A range-and-bearing line as ATAK sends it when a searcher draws one."""
    stamp = format_time(t)
    stale = format_time(t + timedelta(days=1))
    return (
        f'<event version="2.0" uid="{uid}" type="u-rb-a" time="{stamp}" start="{stamp}" '
        f'stale="{stale}" how="h-e"><point lat="{lat}" lon="{lon}" hae="9999999.0" '
        'ce="9999999.0" le="9999999.0"/><detail><range value="800.0"/>'
        f'<bearing value="{bearing_deg}"/><inclination value="0.0"/><rangeUnits value="1"/>'
        '<bearingUnits value="0"/><northRef value="1"/><strokeColor value="-65536"/>'
        '<strokeWeight value="3.0"/><contact callsign="R&amp;B 1"/><remarks/><archive/>'
        f'<link uid="ANDROID-{callsign}" production_time="{stamp}" type="a-f-G-U-C" '
        f'parent_callsign="{callsign}" relation="p-p"/><labels_on value="false"/>'
        "</detail></event>"
    ).encode()


def _point(ev: ET.Element) -> ET.Element:
    point = ev.find("point")
    assert point is not None
    return point


def _value(ev: ET.Element, path: str) -> float:
    elm = ev.find(path)
    assert elm is not None, path
    return float(elm.get("value", "nan"))


def _seconds(ev: ET.Element, a: str, b: str) -> float:
    return (parse_time(ev.get(b)) - parse_time(ev.get(a))).total_seconds()


def test_a_tak_client_receives_the_search_through_a_real_tak_server(live: Live) -> None:
    schema = xmlschema.XMLSchema(XSD)
    state = live.state()
    fix = state["fix"]
    assert fix is not None
    fix_start = parse_time(fix["t"])

    def complete(latest: dict[str, ET.Element]) -> bool:
        got = latest.get(live.uid("fix"))
        return (
            got is not None
            and abs((parse_time(got.get("start")) - fix_start).total_seconds()) < 0.002
            and live.uid("area90", "0") in latest
            and all(live.uid("rx", r) in latest for r in TOKENS)
        )

    latest = live.tak.wait_for(complete, timeout_s=30)
    assert complete(latest), sorted(latest)
    for _, _, raw in live.tak.events():
        if b"SafetyNet." in raw:  # ours, as the server re-wrote it
            schema.validate(raw.decode())

    # The fix: a-n-G, machine-fused, ce the one-sigma error along the 95 % ellipse's major axis.
    ev = latest[live.uid("fix")]
    assert (ev.get("type"), ev.get("how")) == ("a-n-G", "m-f")
    ellipse = fix["ellipse95"]
    assert float(_point(ev).get("ce", "nan")) == pytest.approx(
        ellipse["semi_major_m"] / 2.4477, abs=0.06
    )  # taky writes ce to 0.1 m
    shape = ev.find("detail/shape/ellipse")
    assert shape is not None
    assert float(shape.get("major", "nan")) == pytest.approx(ellipse["semi_major_m"], abs=0.06)
    assert float(shape.get("minor", "nan")) == pytest.approx(ellipse["semi_minor_m"], abs=0.06)
    assert float(_point(ev).get("lat", "nan")) == pytest.approx(fix["lat_deg"], abs=1e-6)
    assert _seconds(ev, "time", "stale") == pytest.approx(cot.FEED_STALE_S, abs=0.01)
    assert latest[live.uid("ellipse95")].get("type") == "u-d-c-e"

    # Each bearing not yet faded: a range-and-bearing line from its receiver, stale as it fades.
    sent_at = parse_time(ev.get("time"))
    fresh = [b for b in state["bearings"]
             if parse_time(b["t"]) > sent_at - timedelta(seconds=cot.BEARING_FADES_S)]  # fmt: skip
    assert fresh
    for b in fresh:
        line = latest[live.uid("bearing", b["receiver_id"], str(b["seq"]))]
        assert line.get("type") == "u-rb-a"
        assert _value(line, "detail/bearing") == pytest.approx(b["bearing_deg"], abs=0.005)
        assert float(_point(line).get("lat", "nan")) == pytest.approx(b["lat_deg"], abs=1e-6)
        expected = min(
            parse_time(b["t"]) + timedelta(seconds=cot.BEARING_FADES_S),
            parse_time(line.get("time")) + timedelta(seconds=cot.FEED_STALE_S),
        )
        assert abs((parse_time(line.get("stale")) - expected).total_seconds()) < 0.002

    # The teams by kind, at their positions; the TAK user's own position is not echoed.
    by_receiver = {r["receiver_id"]: r for r in state["receivers"]}
    kinds = {"HH-07": "a-f-G-U-C-I", "HH-12": "a-f-G-U-C-I", "ROOF-1": "a-f-G-E-S"}
    for receiver_id, cot_type in kinds.items():
        team = latest[live.uid("rx", receiver_id)]
        assert team.get("type") == cot_type
        assert float(_point(team).get("lon", "nan")) == pytest.approx(
            by_receiver[receiver_id]["lon_deg"], abs=1e-6
        )
        assert _seconds(team, "time", "stale") == pytest.approx(cot.FEED_STALE_S, abs=0.01)
    assert live.uid("rx", f"TAK-{ALPHA}") not in latest

    # The areas: closed polygons, the 50 % one inside the 90 % one's extent.
    for share in ("50", "90"):
        area = latest[live.uid(f"area{share}", "0")]
        assert area.get("type") == "u-d-f"
        links = [ln.get("point", "") for ln in area.findall("detail/link")]
        assert len(links) >= 4
        assert links[0] == links[-1]
    assert latest[live.uid("lkp")].get("type") == "b-m-p-s-m"
    chats = [e for e in latest.values() if e.get("type") == "b-t-f"]
    assert any("Search under way" in (e.findtext("detail/remarks") or "") for e in chats)
    assert any("First fix" in (e.findtext("detail/remarks") or "") for e in chats)


def _tak_reports(live: Live, kind: str) -> int:
    engine = make_engine(live.db_url)
    with Session(engine) as session:
        count = session.scalar(
            select(func.count())
            .select_from(StoredReport)
            .where(StoredReport.receiver_id == f"TAK-{ALPHA}", StoredReport.kind == kind)
        )
    engine.dispose()
    return int(count or 0)


def _wait(check: Any, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = check()
        if out:
            return out
        time.sleep(0.1)
    return check()


def test_a_tak_user_s_position_and_range_and_bearing_line_arrive_in_the_search(
    live: Live,
) -> None:
    now = datetime.now(UTC)
    live.tak.send(pli(42.30411, -71.05811, now))

    def alpha() -> dict[str, Any] | None:
        for r in live.state()["receivers"]:
            if r["receiver_id"] == f"TAK-{ALPHA}" and r["lat_deg"] == 42.30411:
                return r  # type: ignore[no-any-return]
        return None

    view = _wait(alpha)
    assert view is not None, "the TAK user's position did not arrive"
    assert (view["team"], view["lon_deg"]) == ("TAK 1", -71.05811)

    line = range_bearing("rb-0001", 42.30411, -71.05811, 123.4, now)
    live.tak.send(line)

    def manual() -> list[dict[str, Any]]:
        return [b for b in live.state()["bearings"] if b["receiver_id"] == f"TAK-{ALPHA}"]

    bearings = _wait(manual)
    assert len(bearings) == 1
    (b,) = bearings
    assert (b["method"], b["bearing_deg"], b["sigma_deg"]) == ("manual", 123.4, 15.0)
    assert (b["bracelet_id"], b["channel"]) == ("3A7F", 19)
    # when it was drawn, to the millisecond the server passes on
    assert abs((parse_time(b["t"]) - now).total_seconds()) < 0.001
    live.tak.send(line)  # the same line again (a resend, a reconnect): stored once
    live.tak.send(range_bearing("rb-0002", 42.30411, -71.05811, 10.0, now - timedelta(days=3)))
    live.tak.send(range_bearing("rb-0003", 42.30411, -71.05811, 20.0, now, callsign="CHARLIE9"))
    time.sleep(2.0)
    assert len(manual()) == 1  # three days old (outside the window), or of no team: refused
    assert _tak_reports(live, "bearing") == 1
    assert _tak_reports(live, "status") >= 2
    assert all(b["receiver_id"] != "TAK-CHARLIE9" for b in live.state()["bearings"])


def _latencies(live: Live, seq0: int, n: int = 25) -> list[float]:
    """Ingest answer times (s) of ``n`` status reports posted one by one."""
    out = []
    for k in range(n):
        report = {"kind": "status", "receiver_id": "ROOF-1", "seq": seq0 + k,
                  "t": format_time(datetime.now(UTC)), "lat_deg": 42.2995, "lon_deg": -71.0545,
                  "gps_fix": True, "clipping": False}  # fmt: skip
        out.append(live.post("ROOF-1", [report]))
        time.sleep(0.02)
    return out


def test_a_tak_server_back_from_an_outage_has_the_picture_within_ten_seconds(
    live: Live, taky: TakyServer
) -> None:
    feed = live.app.state.tak_feed
    assert _wait(feed.connected.is_set)
    present = _latencies(live, 10_000_000)
    taky.stop()
    assert _wait(lambda: not feed.connected.is_set(), 10)
    away = _latencies(live, 20_000_000)
    time.sleep(3.0)  # the feed tries and backs off meanwhile
    away += _latencies(live, 30_000_000)
    back_at = taky.start()
    live.tak.connect()
    live.tak.send(pli(42.3031, -71.0571, datetime.now(UTC)))
    fix_uid, area_uid = live.uid("fix"), live.uid("area90", "0")
    latest = live.tak.wait_for(
        lambda got: fix_uid in got and area_uid in got and live.uid("rx", "HH-07") in got,
        timeout_s=20, since_s=back_at,
    )  # fmt: skip
    arrived = [t for t, ev, _ in live.tak.events(back_at) if ev.get("uid") == fix_uid]
    assert arrived, "no picture after the server came back"
    picture_s = arrived[0] - back_at
    assert area_uid in latest
    median_present, median_away = statistics.median(present), statistics.median(away)
    print(
        f"\nTAK server back -> current picture at the client: {picture_s:.2f} s "
        f"(feed reconnects so far: {feed.connects})\n"
        f"ingest answer, median / max of {len(present)}: with the TAK server "
        f"{median_present * 1000:.1f} / {max(present) * 1000:.1f} ms; away "
        f"{median_away * 1000:.1f} / {max(away) * 1000:.1f} ms ({len(away)} posts)"
    )
    assert picture_s < 10.0
    assert feed.connects >= 2
    # Away, ingest is no slower than with the server there (a generous bound on a shared
    # machine: the medians within a factor of two and 20 ms).
    assert median_away <= 2 * median_present + 0.020


def test_a_p12_client_certificate_with_its_password_connects_too(
    taky: TakyServer, tmp_path: Path
) -> None:
    """TAK servers hand out client certificates as PKCS#12 files (taky's default password)."""
    from registry.db import upgrade
    from ui.hub import LiveHub
    from ui.tak import TakFeed

    taky.client_credentials("p12user")
    (p12,) = taky.root.glob("p12user-*.p12")
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(db_url)
    engine = make_engine(db_url)
    settings = settings_for(
        tmp_path, db_url, cot_url=f"tls://127.0.0.1:{taky.port}", cot_tls_cert=p12,
        cot_tls_password="atakatak", cot_tls_ca=taky.ca,
    )  # fmt: skip
    feed = TakFeed(LiveHub(engine), settings, lambda: Session(engine))
    feed.start()
    try:
        assert feed.connected.wait(20), "the feed did not connect with its .p12 certificate"
    finally:
        feed.stop()
        engine.dispose()
    wrong = settings.model_copy(update={"cot_tls_cert": taky.ca})  # not a client certificate
    feed = TakFeed(LiveHub(make_engine(db_url)), wrong, lambda: Session(engine))
    feed.start()
    try:
        assert not feed.connected.wait(3)
    finally:
        feed.stop()
