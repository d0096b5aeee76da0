"""API bodies are taken as JSON says them: ``false`` is not a longitude, ``1.0`` is not a
version, ``"0.0"`` is not a whole number of days; each is refused with 422 naming the field, and
nothing stored changes. Bracelet rules through the API: each refusal clear, nothing changed.
Both on SQLite and PostgreSQL (the ``db_url`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ui_support import login, seed, settings_for
from ui.app import create_app


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Any:
    seeded = seed(db_url)
    app = create_app(settings_for(tmp_path, db_url))
    with TestClient(app) as client:
        yield client, seeded
    app.state.safetynet.engine.dispose()


def _field(answer: Any) -> str:
    body = answer.json()
    return str(body.get("errors") or body.get("detail"))


def test_bool_and_float_are_not_numbers_of_another_kind(env: Any) -> None:
    client, seeded = env
    csrf = {"X-CSRF-Token": login(client, "dispatcher")}
    searches_before = client.get("/api/v1/searches").json()
    seen = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    staff_csrf = None
    for body, field in (
        ({"client_id": seeded.client_id, "lat_deg": 42.3, "lon_deg": False, "last_seen": seen},
         "lon_deg"),
        ({"client_id": seeded.client_id, "lat_deg": "42.3", "lon_deg": -71.0, "last_seen": seen},
         "lat_deg"),
        ({"client_id": seeded.client_id, "lat_deg": 42.3, "lon_deg": -71.0, "last_seen": 1e9},
         "last_seen"),
    ):  # fmt: skip
        answer = client.post("/api/v1/searches", json=body, headers=csrf)
        assert answer.status_code == 422, (body, answer.text)
        assert field in _field(answer)
    assert client.get("/api/v1/searches").json() == searches_before
    status = {"status": "suspended", "version": 1.0}
    answer = client.post(f"/api/v1/searches/{seeded.search_id}/status", json=status, headers=csrf)
    assert answer.status_code == 422
    assert "version" in _field(answer)
    answer = client.post(f"/api/v1/searches/{seeded.search_id}/status",
                         json={"status": "suspended", "version": True}, headers=csrf)  # fmt: skip
    assert answer.status_code == 422
    assert client.get(f"/api/v1/searches/{seeded.search_id}").json()["status"] == "active"
    staff_csrf = {"X-CSRF-Token": login(client, "staff")}
    for days in ("0.0", "1e1", "-1", "99999", "true"):
        answer = client.get(f"/api/v1/program/batteries-due?within_days={days}")
        assert answer.status_code == 422, days
        assert "within_days" in _field(answer)
    assert client.get("/api/v1/program/batteries-due?within_days=0").status_code == 200
    bracelet = {"bracelet_id": "4C00", "channel": 7.0}
    answer = client.post("/api/v1/program/bracelets", json=bracelet, headers=staff_csrf)
    assert answer.status_code == 422
    assert "channel" in _field(answer)


def test_bracelet_rules_through_the_api(env: Any) -> None:
    client, _ = env
    csrf = {"X-CSRF-Token": login(client, "staff")}

    def inventory() -> Any:
        return client.get("/api/v1/program/bracelets").json()

    answer = client.post("/api/v1/program/bracelets", json={"bracelet_id": "4C01", "channel": 9},
                         headers=csrf)  # fmt: skip
    assert answer.status_code == 201, answer.text
    answer = client.post("/api/v1/clients", headers=csrf,
                         json={"first_name": "Ida", "last_name": "Mae",
                               "date_of_birth": "1950-01-01"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    ida = answer.json()["id"]
    gaps = client.get("/api/v1/program/gaps").json()
    assert ida in [c["id"] for c in gaps["clients_without_bracelet"]]
    assert "4C01" in [b["bracelet_id"] for b in gaps["bracelets_without_client"]]
    before = inventory()
    # Walter's bracelet is worn: refused, nothing changed.
    answer = client.post(f"/api/v1/clients/{ida}/bracelet", json={"bracelet_id": "3A7F"},
                         headers=csrf)  # fmt: skip
    assert answer.status_code == 409
    assert "3A7F" in answer.json()["detail"]
    # An unknown ID.
    answer = client.post(f"/api/v1/clients/{ida}/bracelet", json={"bracelet_id": "0BAD"},
                         headers=csrf)  # fmt: skip
    assert answer.status_code in (404, 409, 422)
    assert "0BAD" in str(answer.json())
    assert inventory() == before
    # Retired, then refused.
    answer = client.post("/api/v1/program/bracelets/4C01/retire", json={"reason": "dropped"},
                         headers=csrf)  # fmt: skip
    assert answer.status_code == 200
    retired = inventory()
    answer = client.post(f"/api/v1/clients/{ida}/bracelet", json={"bracelet_id": "4C01"},
                         headers=csrf)  # fmt: skip
    assert answer.status_code == 409
    assert "retired" in answer.json()["detail"]
    assert inventory() == retired
    # A good one goes on, and the client leaves the gaps list.
    client.post("/api/v1/program/bracelets", json={"bracelet_id": "4C02", "channel": 11},
                headers=csrf)  # fmt: skip
    answer = client.post(f"/api/v1/clients/{ida}/bracelet", json={"bracelet_id": "4C02"},
                         headers=csrf)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["client_id"] == ida
    gaps = client.get("/api/v1/program/gaps").json()
    assert ida not in [c["id"] for c in gaps["clients_without_bracelet"]]
    # A dispatcher may not give bracelets.
    dispatcher = {"X-CSRF-Token": login(client, "dispatcher")}
    answer = client.post(f"/api/v1/clients/{ida}/bracelet/swap", json={"bracelet_id": "4C01"},
                         headers=dispatcher)  # fmt: skip
    assert answer.status_code == 403
