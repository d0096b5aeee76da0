"""``GET /metrics``: Prometheus's own parser reads it, only the operators' token opens it, and
its counts move as the simulated search's reports are posted (counted against what was sent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from safetynet.reports import report_to_obj
from tests.ui_support import TOKENS, login, scenario_reports, seed, settings_for
from ui.app import create_app

METRICS_TOKEN = "metrics-" + "m" * 30
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_need_the_operators_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed(url)
    with TestClient(create_app(settings_for(tmp_path, url))) as client:
        assert client.get("/metrics").status_code == 404  # no token set: no metrics at all
    app = create_app(settings_for(tmp_path, url, metrics_token=SecretStr(METRICS_TOKEN)))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        wrong = {"Authorization": "Bearer " + "x" * 38}
        assert client.get("/metrics", headers=wrong).status_code == 401
        receiver = {"Authorization": f"Bearer {TOKENS['HH-07']}"}  # a receiver is no operator
        assert client.get("/metrics", headers=receiver).status_code == 401
        assert client.get("/metrics", headers=SCRAPE).status_code == 200


def test_counts_move_as_reports_are_posted(db_url: str, tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(seconds=200)
    seeded = seed(db_url, now=start + timedelta(seconds=30))
    reports = scenario_reports(start, 150)
    settings = settings_for(
        tmp_path, db_url, ingest_requests_per_s=10_000, metrics_token=SecretStr(METRICS_TOKEN)
    )
    app = create_app(settings)
    ingested = ("safetynet_reports_ingested_total", (("via", "http"),))
    duplicate = ("safetynet_reports_duplicate_total", (("via", "http"),))

    def refused(reason: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return ("safetynet_reports_refused_total", (("reason", reason), ("via", "http")))

    latency_count = ("safetynet_fix_latency_seconds_count", ())
    with TestClient(app) as client:
        before = _samples(client)
        assert before[ingested] == 0
        assert before[latency_count] == 0
        by_receiver: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(reports), 50):  # in time order, each receiver with its own token
            chunk: dict[str, list[dict[str, Any]]] = {}
            for r in reports[i : i + 50]:
                chunk.setdefault(r.receiver_id, []).append(report_to_obj(r))
            for receiver_id, items in chunk.items():
                by_receiver.setdefault(receiver_id, []).extend(items)
                answer = client.post(
                    "/api/v1/reports",
                    json=items,
                    headers={"Authorization": f"Bearer {TOKENS[receiver_id]}"},
                )
                assert answer.status_code == 200
                assert answer.json()["rejected"] == []
        middle = _samples(client)
        assert middle[ingested] == len(reports)
        login(client, "dispatcher")
        fixes = client.get(f"/api/v1/searches/{seeded.search_id}/state").json()["track"]
        assert len(fixes) >= 5
        # One latency per batch that moved the fix; each batch's ingest is well under 5 s.
        assert 1 <= middle[latency_count] <= len(fixes)
        assert (
            middle[("safetynet_fix_latency_seconds_bucket", (("le", "5.0"),))]
            == middle[latency_count]
        )
        # The same reports again: duplicates, nothing ingested; then three bad ones, each
        # refused for its own reason, and a body that is not JSON at all.
        hh07 = {"Authorization": f"Bearer {TOKENS['HH-07']}"}
        again = by_receiver["HH-07"][:10]
        client.post("/api/v1/reports", json=again, headers=hh07)
        good = dict(by_receiver["HH-07"][0])
        bad = [
            {**good, "seq": 10**9, "lat_deg": 142.0},
            {**good, "seq": 10**9 + 1, "receiver_id": "HH-12"},
            {**good, "seq": 10**9 + 2, "t": "2001-01-01T00:00:00Z"},
        ]
        answer = client.post("/api/v1/reports", json=bad, headers=hh07)
        assert len(answer.json()["rejected"]) == 3
        not_json = client.post(
            "/api/v1/reports",
            content=b"{{{",
            headers={**hh07, "Content-Type": "application/json"},
        )
        assert not_json.status_code == 400
        after = _samples(client)
    app.state.safetynet.engine.dispose()
    assert after[ingested] == len(reports)
    assert after[duplicate] == middle[duplicate] + len(again)
    for reason in ("invalid", "not_allowed", "out_of_window", "unreadable"):
        assert after[refused(reason)] == middle[refused(reason)] + 1, reason
    assert after[("safetynet_ingest_queue_depth", (("via", "http"),))] == 0


def test_health_tells_anyone_it_answers_and_only_operators_what_it_holds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seeded = seed(url)
    app = create_app(settings_for(tmp_path, url, metrics_token=SecretStr(METRICS_TOKEN)))
    with TestClient(app) as client:
        login(client, "dispatcher")
        assert client.get(f"/api/v1/searches/{seeded.search_id}/state").status_code == 200
        client.cookies.clear()
        public = client.get("/api/v1/health")
        assert public.status_code == 200
        assert public.json() == {
            "status": "ok",
            "database": {"ok": True},
            "broker": {"kind": "in-process", "ok": True},
        }
        operator = client.get("/api/v1/health", headers=SCRAPE).json()
        assert seeded.search_id in operator["owns"]
        receiver = {"Authorization": f"Bearer {TOKENS['HH-07']}"}
        assert "owns" not in client.get("/api/v1/health", headers=receiver).json()
