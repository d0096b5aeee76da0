"""``POST /api/v1/searches/{id}/heard`` (real SQLite and PostgreSQL): a searcher's "heard it
here", sent again by a phone that came back into coverage, is stored once; its time is when it
was heard, within the reports' window."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ui_support import login, seed, settings_for
from ui.app import create_app

HERE = {"lat_deg": 42.3031, "lon_deg": -71.0571}


@pytest.fixture
def team1(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, str, str]]:
    """A client logged in as the searcher ``team1``, its CSRF token and the search's id."""
    seeded = seed(db_url)
    app = create_app(settings_for(tmp_path, db_url))
    with TestClient(app) as client:
        csrf = login(client, "team1")
        yield client, csrf, seeded.search_id
    app.state.safetynet.engine.dispose()


def _heard_events(client: TestClient, search_id: str) -> list[dict[str, Any]]:
    events = client.get(f"/api/v1/searches/{search_id}/events").json()
    return [e for e in events if e["kind"] == "heard"]


def test_the_same_key_sent_twice_is_stored_once(team1: tuple[TestClient, str, str]) -> None:
    client, csrf, search_id = team1
    url, headers = f"/api/v1/searches/{search_id}/heard", {"X-CSRF-Token": csrf}
    heard_at = datetime.now(UTC) - timedelta(minutes=3)  # heard without coverage, sent now
    body = {**HERE, "key": "9f1c2d3e-aaaa-bbbb-cccc-0123456789ab", "t": heard_at.isoformat()}
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post(url, json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    events = _heard_events(client, search_id)
    assert len(events) == 1
    assert events[0]["body"]["key"] == body["key"]
    assert events[0]["body"]["receiver_id"] == "WEB-team1"
    assert datetime.fromisoformat(events[0]["at"]) == heard_at  # when heard, not when sent
    # Another report (another key), and one without a key, are each new.
    other = client.post(url, json={**body, "key": "another-key-0001"}, headers=headers)
    assert other.status_code == 201
    assert client.post(url, json=HERE, headers=headers).status_code == 201
    assert len(_heard_events(client, search_id)) == 3


def test_the_same_key_sent_at_once_from_two_threads_is_stored_once(
    team1: tuple[TestClient, str, str],
) -> None:
    client, csrf, search_id = team1
    url, headers = f"/api/v1/searches/{search_id}/heard", {"X-CSRF-Token": csrf}
    body = {**HERE, "key": "raced-key-0123456789"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: client.post(url, json=body, headers=headers), range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(_heard_events(client, search_id)) == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"key": "short"}, "key", "should match pattern"),
        ({"key": "has space in it"}, "key", "should match pattern"),
        ({"key": 12345678}, "key", "string"),
        ({"t": 1733000000}, "t", "RFC 3339"),
        ({"t": "yesterday"}, "t", "datetime"),
    ],
)
def test_a_bad_key_or_time_is_refused_with_its_field(
    team1: tuple[TestClient, str, str], change: dict[str, Any], field: str, words: str
) -> None:
    client, csrf, search_id = team1
    answer = client.post(f"/api/v1/searches/{search_id}/heard", json={**HERE, **change},
                         headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert field in answer.text
    assert words in answer.text
    assert _heard_events(client, search_id) == []


def test_a_time_outside_the_reports_window_is_refused(team1: tuple[TestClient, str, str]) -> None:
    client, csrf, search_id = team1
    url, headers = f"/api/v1/searches/{search_id}/heard", {"X-CSRF-Token": csrf}
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = client.post(url, json={**HERE, "t": ahead}, headers=headers)
    assert answer.status_code == 422
    assert "ahead of the server's clock" in answer.json()["detail"]
    long_before = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    answer = client.post(url, json={**HERE, "t": long_before}, headers=headers)
    assert answer.status_code == 422
    assert "too old" in answer.json()["detail"]
    assert _heard_events(client, search_id) == []
