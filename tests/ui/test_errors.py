"""One error tree, each kind one HTTP status (RFC 9110's meanings), one JSON body shape: through
the real app, a missing client and a missing search answer alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from safetynet import errors
from tests.ui_support import login, seed, settings_for
from ui.app import create_app
from ui.errors import ANSWERS, answer_of

# What each kind means in HTTP (RFC 9110 §15; 422 and 429 from RFC 9110 §15.5.21 and RFC 6585).
HTTP_MEANING = {
    errors.InputError: 422,  # Unprocessable Content: well-formed, but the values are refused
    errors.ReportError: 422,
    errors.ScenarioError: 422,
    errors.BodyError: 400,  # Bad Request: the body cannot be read at all
    errors.BodyTooLargeError: 413,  # Content Too Large
    errors.MediaTypeError: 415,  # Unsupported Media Type
    errors.NotAuthenticatedError: 401,  # Unauthorized: no valid credentials
    errors.ForbiddenError: 403,  # Forbidden: credentials, but not allowed
    errors.NotFoundError: 404,
    errors.ConflictError: 409,  # Conflict with the resource's current state
    errors.RateLimitError: 429,  # Too Many Requests
    errors.ConfigError: 500,  # the server's own settings: never the caller's fault
    errors.DeviceError: 500,
}
if hasattr(errors, "UnavailableError"):  # not ready yet: Service Unavailable, with Retry-After
    HTTP_MEANING[errors.UnavailableError] = 503


def _kinds() -> list[type[errors.SafetyNetError]]:
    out, todo = [], [errors.SafetyNetError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return [c for c in out if c.__module__ == "safetynet.errors" and c is not errors.SafetyNetError]


def _instance(cls: type[errors.SafetyNetError]) -> errors.SafetyNetError:
    if cls is errors.ReportError:
        return errors.ReportError("seq", -1, "must be 0 or more")
    try:
        return cls("something")
    except TypeError:  # a kind that says when to retry
        return cls("slow down", retry_after_s=2.0)  # type: ignore[call-arg]


def test_every_kind_of_the_tree_has_its_http_meaning() -> None:
    kinds = _kinds()
    assert set(kinds) == set(HTTP_MEANING), "a kind was added: give it its status in the test"
    for cls in kinds:
        assert answer_of(_instance(cls))[0] == HTTP_MEANING[cls], cls.__name__
    # Every kind in the table is one of the tree's, and each name is said once.
    assert all(issubclass(k, errors.SafetyNetError) for k in ANSWERS)
    names = [name for _, name in ANSWERS.values()]
    assert len(names) == len(set(names))


def test_the_tree_in_the_docstring_names_every_kind() -> None:
    doc = errors.__doc__ or ""
    for cls in _kinds():
        assert cls.__name__ in doc, cls.__name__


@pytest.fixture
def app_env(db_url: str, tmp_path: Path) -> Any:
    seeded = seed(db_url)
    app = create_app(settings_for(tmp_path, db_url, ingest_requests_per_s=1000))
    with TestClient(app) as client:
        yield client, seeded
    app.state.safetynet.engine.dispose()


def test_a_missing_client_and_a_missing_search_answer_alike(app_env: Any) -> None:
    client, seeded = app_env
    assert client.get("/api/v1/searches").json() == {
        "detail": "log in first",
        "error": "not_authenticated",
    }
    csrf = login(client, "dispatcher")
    for url, message in (
        ("/api/v1/clients/nobody", "client_id: no client 'nobody'"),
        ("/api/v1/searches/nowhere", "search_id: no search 'nowhere'"),
        ("/api/v1/searches/nowhere/state", "no active search 'nowhere'"),
        ("/clients/nobody", "client_id: no client 'nobody'"),
    ):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert answer.json() == {"detail": message, "error": "not_found"}, url
    # A search that exists but is no longer active: its live state is gone, the record is not.
    version = client.get(f"/api/v1/searches/{seeded.search_id}").json()["version"]
    closed = client.post(
        f"/api/v1/searches/{seeded.search_id}/status",
        json={"status": "closed", "version": version},
        headers={"X-CSRF-Token": csrf},
    )
    assert closed.status_code == 200
    assert client.get(f"/api/v1/searches/{seeded.search_id}/state").status_code == 404
    assert client.get(f"/api/v1/searches/{seeded.search_id}").status_code == 200
    # The same shape for refused values, a missing CSRF token and a stale version.
    refused = client.post(
        "/api/v1/searches",
        json={"client_id": seeded.client_id, "lat_deg": 142.0, "lon_deg": 0.0,
              "last_seen": "2026-11-28T14:00:00Z"},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == "invalid"
    assert "lat_deg" in body["errors"]
    assert body["detail"].startswith("lat_deg: ")
    forged = client.post(f"/api/v1/searches/{seeded.search_id}/notes", json={"text": "x"})
    assert forged.status_code == 403
    assert forged.json()["error"] == "forbidden"
    stale = client.post(
        f"/api/v1/searches/{seeded.search_id}/status",
        json={"status": "closed", "version": version},
        headers={"X-CSRF-Token": csrf},
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "conflict"


def test_a_page_that_needs_a_login_sends_the_browser_to_it(app_env: Any) -> None:
    client, seeded = app_env
    page = client.get(
        f"/searches/{seeded.search_id}", headers={"accept": "text/html"}, follow_redirects=False
    )
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=/searches/{seeded.search_id}"


def test_starlettes_own_errors_answer_in_the_one_shape(app_env: Any) -> None:
    client, _ = app_env
    for answer, status, kind in (
        (client.get("/api/v1/no-such-thing"), 404, "not_found"),
        (client.delete("/api/v1/health"), 405, "method_not_allowed"),
    ):
        assert answer.status_code == status
        assert answer.json() == {"detail": answer.json()["detail"], "error": kind}
        assert answer.json()["detail"]
    assert "GET" in client.delete("/api/v1/health").headers["allow"]


def test_the_openapi_document_gives_every_error_status_the_one_shape(app_env: Any) -> None:
    client, _ = app_env
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's array of errors is not what we send
    assert set(schemas["ErrorBody"]["required"]) == {"detail", "error"}
    documented: set[int] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if int(status) < 400:
                    continue
                documented.add(int(status))
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            if path != "/api/v1/health":
                assert {"401", "403", "404", "422"} <= set(operation["responses"]), (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(operation["responses"]), (method, path)
    # Every status the error tree answers with is documented somewhere.
    assert {status for status, _ in ANSWERS.values()} <= documented
    ingest = document["paths"]["/api/v1/reports"]["post"]["responses"]
    assert "Retry-After" in ingest["429"]["headers"]


HTML = {"accept": "text/html,application/xhtml+xml"}


def test_a_browser_meets_errors_as_pages_in_words_and_the_api_keeps_json(app_env: Any) -> None:
    client, _ = app_env
    login(client, "family")
    # A page the role may not see: a styled 403 page, no JSON, the reason in words.
    forbidden = client.get("/program", headers=HTML)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("text/html")
    assert "<h1>You may not open this page</h1>" in forbidden.text
    assert "The program&#39;s lists are for program staff." in forbidden.text
    assert '"detail"' not in forbidden.text
    assert 'href="/"' in forbidden.text
    # No such page, and no such record behind a page: a 404 page that says what to do.
    for url, said in (("/no-such-page", "Not Found"), ("/clients/nobody", "no client")):
        missing = client.get(url, headers=HTML)
        assert missing.status_code == 404, url
        assert "<h1>Nothing here</h1>" in missing.text, url
        assert said in missing.text, url
    # The same requests from a program (no text/html asked for) and every API path keep JSON.
    assert client.get("/program").json()["error"] == "forbidden"
    api = client.get("/api/v1/clients/nobody", headers=HTML)
    assert api.status_code == 404
    assert api.json() == {"detail": "client_id: no client 'nobody'", "error": "not_found"}


def test_a_bug_answers_500_without_a_trace_as_a_page_or_json(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    app = create_app(settings_for(tmp_path, db_url))

    async def broken() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_api_route("/broken-page", broken)
    app.add_api_route("/api/v1/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/broken-page", headers=HTML)
        assert page.status_code == 500
        assert "Something went wrong on the server" in page.text
        assert "secret internals" not in page.text
        api = client.get("/api/v1/broken")
        assert api.status_code == 500
        assert api.json() == {
            "detail": "an internal error; the server's log has the details",
            "error": "internal",
        }
    app.state.safetynet.engine.dispose()
