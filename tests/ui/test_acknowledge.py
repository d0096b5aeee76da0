"""``POST /api/v1/searches/{id}/alerts/acknowledged`` (real SQLite and PostgreSQL): an alert is
acknowledged once for everyone, even when two dispatchers click at the same moment."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.ui_support import login, seed, settings_for
from ui.app import create_app


def test_an_alert_acknowledged_at_once_from_many_screens_is_logged_once(
    db_url: str, tmp_path: Path
) -> None:
    seeded = seed(db_url)
    app = create_app(settings_for(tmp_path, db_url))
    with TestClient(app) as client:
        csrf = login(client, "dispatcher")
        url = f"/api/v1/searches/{seeded.search_id}/alerts/acknowledged"
        headers = {"X-CSRF-Token": csrf}

        def acknowledge(_: int) -> Any:
            return client.post(url, json={"key": "first-fix"}, headers=headers)

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(acknowledge, range(8)))
        assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
        assert len({a.json()["id"] for a in answers}) == 1
        logged = client.get(url).json()
        assert [e["body"]["key"] for e in logged] == ["first-fix"]
        assert logged[0]["body"]["text"] == "Alert acknowledged: first fix, by Dispatcher"
    app.state.safetynet.engine.dispose()
