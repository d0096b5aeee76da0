"""The TAK side of the server without a TAK server: the CoT export and data package through the
real app (SQLite and PostgreSQL), what the TAK side sees of the person, the settings, the demo,
and the feed over a real UDP socket. The interop with a real TAK server is in
tests/ui/test_tak_interop.py."""

from __future__ import annotations

import io
import socket
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy.orm import Session

from registry.db import make_engine
from registry.models import Client, Search
from safetynet.reports import report_to_obj
from safetynet.settings import Settings
from tests.ui_support import TOKENS, login, scenario_reports, seed, settings_for
from ui import cot
from ui.app import create_app
from ui.demo import demo_settings
from ui.tak import TakFeed, person_on_tak, pytak_config

XSD = Path(__file__).resolve().parents[1] / "data" / "cot" / "Event.xsd"


@pytest.fixture
def app_env(db_url: str, tmp_path: Path) -> Any:
    now = datetime.now(UTC)
    seeded = seed(db_url, now)
    app = create_app(settings_for(tmp_path, db_url, ingest_requests_per_s=1000))
    with TestClient(app) as client:
        login(client, "dispatcher")
        posted = 0
        reports = scenario_reports(now - timedelta(seconds=200), 190.0)
        for receiver_id in TOKENS:
            items = [report_to_obj(r) for r in reports if r.receiver_id == receiver_id]
            for i in range(0, len(items), 500):
                answer = client.post(
                    "/api/v1/reports",
                    json=items[i : i + 500],
                    headers={"Authorization": f"Bearer {TOKENS[receiver_id]}"},
                )
                assert answer.status_code == 200, answer.text[:300]
                posted += answer.json()["accepted"]
        assert posted == len(reports)
        yield client, seeded
    app.state.safetynet.engine.dispose()


def test_the_cot_export_is_the_current_picture_in_valid_events(app_env: Any) -> None:
    client, seeded = app_env
    schema = xmlschema.XMLSchema(XSD)
    base = f"/api/v1/searches/{seeded.search_id}/export"
    answer = client.get(f"{base}.cot")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert f"search-{seeded.search_id}.cot" in answer.headers["content-disposition"]
    root = ET.fromstring(answer.content)
    assert root.tag == "events"
    for ev in root:
        schema.validate(ET.tostring(ev, encoding="unicode"))
    by_uid = {ev.get("uid"): ev for ev in root}
    state = client.get(f"/api/v1/searches/{seeded.search_id}/state").json()
    fix = by_uid[cot.uid_of(seeded.search_id, "fix")]
    point = fix.find("point")
    assert point is not None
    assert float(point.get("ce", "0")) * 2.4477 == pytest.approx(
        state["fix"]["ellipse95"]["semi_major_m"], rel=1e-3
    )
    assert cot.uid_of(seeded.search_id, "lkp") in by_uid
    assert cot.uid_of(seeded.search_id, "area50", "0") in by_uid
    assert cot.uid_of(seeded.search_id, "area90", "0") in by_uid
    assert {cot.uid_of(seeded.search_id, "rx", r) for r in TOKENS} <= set(by_uid)
    assert "Walter" not in answer.text  # the TAK side is not told the name unless allowed
    assert "sirens" not in answer.text


def test_the_tak_data_package_holds_the_same_events_and_a_manifest(app_env: Any) -> None:
    client, seeded = app_env
    base = f"/api/v1/searches/{seeded.search_id}/export"
    answer = client.get(f"{base}.zip")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as zf:
        manifest = ET.fromstring(zf.read("MANIFEST/manifest.xml"))
        uids = [p.get("value") for p in manifest.iter("Parameter") if p.get("name") == "uid"]
        assert uids[0] == cot.uid_of(seeded.search_id, "package")
        assert cot.uid_of(seeded.search_id, "fix") in uids
        assert len(zf.namelist()) == len(uids)  # each event and the manifest


def test_the_exports_follow_the_search_rules(app_env: Any) -> None:
    client, seeded = app_env
    base = f"/api/v1/searches/{seeded.search_id}/export"
    login(client, "family")
    assert client.get(f"{base}.cot").status_code == 403
    login(client, "dispatcher")
    assert client.get("/api/v1/searches/nosuchsearch/export.cot").status_code == 404


def test_the_person_is_named_on_tak_only_where_allowed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    seeded = seed(url)
    engine = make_engine(url)
    with Session(engine) as session:
        none = settings_for(tmp_path)
        assert person_on_tak(session, none, seeded.search_id) == ("Missing person", None)
        named = settings_for(tmp_path, cot_person="name")
        assert person_on_tak(session, named, seeded.search_id) == ("Walter Brown", None)
        link = "https://sn.example.org"
        photo = settings_for(tmp_path, cot_person="name_and_photo", cot_link_url=link)
        assert person_on_tak(session, photo, seeded.search_id) == ("Walter Brown", None)
        search = session.get(Search, seeded.search_id)
        assert search is not None
        client = session.get(Client, search.client_id)
        assert client is not None
        client.photo, client.photo_type = b"\xff\xd8\xff", "image/jpeg"
        session.flush()
        assert person_on_tak(session, photo, seeded.search_id) == (
            "Walter Brown",
            f"{link}/clients/{client.id}/photo",
        )
    engine.dispose()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cot_url": "http://tak:8087"}, "must start with tcp://, tls:// or udp://"),
        ({"cot_url": "tcp://tak"}, "needs a host and a port"),
        ({"cot_url": "tls://tak:8089"}, "needs SAFETYNET_COT_TLS_CERT"),
        ({"cot_tls_cert": "/no/such/cert.pem"}, "SAFETYNET_COT_TLS_CERT: no such file"),
        ({"cot_person": "name_and_photo"}, "needs SAFETYNET_COT_LINK_URL"),
        ({"cot_person": "everything"}, "cot_person"),
    ],
)
def test_tak_settings_that_cannot_work_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(secret_key=SecretStr("s" * 40), **values)


def test_the_tls_settings_become_pytak_s(tmp_path: Path) -> None:
    cert, ca = tmp_path / "me.pem", tmp_path / "ca.pem"
    cert.write_text("x")
    ca.write_text("x")
    settings = Settings(
        secret_key=SecretStr("s" * 40),
        cot_url="tls://tak.example.org:8089",
        cot_tls_cert=cert,
        cot_tls_ca=ca,
        cot_tls_password=SecretStr("atakatak"),
    )
    config = pytak_config(settings)
    assert config["COT_URL"] == "tls://tak.example.org:8089"
    assert config["PYTAK_TLS_CLIENT_CERT"] == config["PYTAK_TLS_CLIENT_KEY"] == str(cert)
    assert config["PYTAK_TLS_CLIENT_CAFILE"] == str(ca)
    assert config["PYTAK_TLS_CLIENT_PASSWORD"] == "atakatak"
    assert "PYTAK_TLS_DONT_VERIFY" not in config  # the TAK server's certificate is checked


def test_the_demo_honours_the_tak_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFETYNET_COT_URL", "udp://239.2.3.1:6969")
    settings = demo_settings(tmp_path, "127.0.0.1", 8080)
    assert settings.cot_url == "udp://239.2.3.1:6969"
    assert settings.demo
    app = create_app(settings)
    assert isinstance(app.state.tak_feed, TakFeed)
    monkeypatch.delenv("SAFETYNET_COT_URL")
    assert create_app(demo_settings(tmp_path, "127.0.0.1", 8080)).state.tak_feed is None


def test_the_feed_sends_the_picture_over_udp_and_ends_it_when_found(
    db_url: str, tmp_path: Path
) -> None:
    """Over UDP (as to multicast SA, here to a unicast loopback socket: this machine routes no
    multicast): the whole picture arrives, each datagram one valid event; when the person is
    found, a chat line says so (where, never in what condition) and the picture is deleted."""
    schema = xmlschema.XMLSchema(XSD)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.5)
    port = sink.getsockname()[1]
    now = datetime.now(UTC)
    seeded = seed(db_url, now)
    settings = settings_for(tmp_path, db_url, cot_url=f"udp://127.0.0.1:{port}")
    app = create_app(settings)
    received: list[ET.Element] = []

    def until(done: Any, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done():
            try:
                data, _ = sink.recvfrom(65536)
            except TimeoutError:
                continue
            schema.validate(data.decode())
            received.append(ET.fromstring(data))

    def uids() -> set[str]:
        return {ev.get("uid", "") for ev in received}

    fix_uid = cot.uid_of(seeded.search_id, "fix")
    with TestClient(app) as client:
        reports = scenario_reports(now - timedelta(seconds=200), 190.0)
        for receiver_id in TOKENS:
            items = [report_to_obj(r) for r in reports if r.receiver_id == receiver_id]
            answer = client.post(
                "/api/v1/reports",
                json=items[-900:],
                headers={"Authorization": f"Bearer {TOKENS[receiver_id]}"},
            )
            assert answer.status_code == 200
        until(lambda: {fix_uid, cot.uid_of(seeded.search_id, "area90", "0")} <= uids())
        assert app.state.tak_feed.connects >= 1
        csrf = login(client, "dispatcher")
        # A team changes: the live state is dropped and rebuilt; TAK maps keep the search (no
        # delete, no second "search under way").
        answer = client.post(
            f"/api/v1/searches/{seeded.search_id}/teams",
            json={"name": "Team 5", "receiver_ids": ["HH-55"], "members": []},
            headers={"X-CSRF-Token": csrf},
        )
        assert answer.status_code in (200, 201), answer.text
        until(lambda: False, 4.0)  # the feed's next rounds
        assert not [ev for ev in received if ev.get("type") == "t-x-d-d"]
        (row,) = client.get("/api/v1/searches?active=true").json()
        found = {"lat_deg": 42.3041, "lon_deg": -71.0561, "condition": "cold, confused, sirens"}
        answer = client.post(
            f"/api/v1/searches/{seeded.search_id}/status",
            json={"status": "found", "version": row["version"], "found": found},
            headers={"X-CSRF-Token": csrf},
        )
        assert answer.status_code == 200, answer.text

        def deleted() -> set[str]:
            return {
                link.get("uid", "")
                for ev in received
                if ev.get("type") == "t-x-d-d"
                for link in ev.findall("detail/link")
            }

        def chat() -> list[str]:
            return [ev.findtext("detail/remarks") or "" for ev in received
                    if ev.get("type") == "b-t-f"]  # fmt: skip

        until(lambda: fix_uid in deleted() and any("FOUND" in c for c in chat()), 30.0)
    sink.close()
    app.state.safetynet.engine.dispose()
    fix = next(ev for ev in received if ev.get("uid") == fix_uid)
    assert fix.get("type") == "a-n-G"
    assert len([c for c in chat() if "Search under way" in c]) == 1
    (said,) = [c for c in chat() if "FOUND" in c]
    assert "42.30410, -71.05610" in said
    assert "cold" not in said  # the condition stays in the registry
    assert fix_uid in deleted()
    assert cot.uid_of(seeded.search_id, "area90", "0") in deleted()
