"""schemathesis against our own OpenAPI: generated requests to every operation, logged in as an
admin (who may do the most), must never get a server error (5xx)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.ui_support import PASSWORD, running_server, seed, settings_for
from ui.app import create_app

EXAMPLES = 60


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    url = f"sqlite:///{tmp / 'registry.db'}"
    seed(url)
    app = create_app(settings_for(tmp, url, ingest_requests_per_s=100_000))
    with running_server(app) as base:
        session = requests.Session()
        page = session.get(f"{base}/login")
        token = page.text.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
        session.post(f"{base}/login", data={"username": "admin", "password": PASSWORD,
                                            "login_csrf": token})  # fmt: skip
        home = session.get(f"{base}/")
        csrf = home.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        assert csrf
        yield {"base": base, "session": session, "csrf": csrf}
    app.state.safetynet.engine.dispose()


def test_no_server_errors(served: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_url(f"{served['base']}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises here
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case: Any) -> None:
            response = case.call(base_url=served["base"], session=served["session"],
                                 headers={"X-CSRF-Token": served["csrf"]})  # fmt: skip
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {case.as_curl_command()}")  # fmt: skip

        run()
    assert operations >= 20
    assert not failures, "\n".join(failures[:10])
