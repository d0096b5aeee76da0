"""Every request body is bounded before a route's parser reads it: announced or not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ui_support import login, seed, settings_for
from ui.app import create_app
from ui.body_limit import MAX_OTHER_BYTES


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    seed(url)
    app = create_app(settings_for(tmp_path, url))
    with TestClient(app) as c:
        yield c
    app.state.safetynet.engine.dispose()


def test_a_body_too_large_is_refused_before_it_is_read(client: Any) -> None:
    csrf = login(client, "family")
    before = client.get("/api/v1/clients").json()
    big = b'{"first_name": "' + b"x" * (MAX_OTHER_BYTES + 10) + b'"}'
    headers = {"content-type": "application/json", "X-CSRF-Token": csrf}
    answer = client.post("/api/v1/clients", content=big, headers=headers)
    assert answer.status_code == 413
    assert answer.json()["error"] == "body_too_large"
    # Sent without a length (chunked): read up to the bound, then refused the same way.
    chunks = (b"x" * 65536 for _ in range(MAX_OTHER_BYTES // 65536 + 2))
    answer = client.post("/api/v1/clients", content=chunks, headers=headers)
    assert answer.status_code == 413
    # A small chunked body still goes through to the route.
    small = iter([b'{"first_name": "Al", "last_name": "Ba", ', b'"date_of_birth": "1950-01-01"}'])
    answer = client.post("/api/v1/clients", content=small, headers=headers)
    assert answer.status_code == 201, answer.text
    assert len(client.get("/api/v1/clients").json()) == len(before) + 1
    answer = client.post("/api/v1/clients", content=b"{}",
                         headers={**headers, "content-length": "ten"})  # fmt: skip
    assert answer.status_code == 400
