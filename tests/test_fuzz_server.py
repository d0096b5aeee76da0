"""Fuzzing the server in-process (its ASGI app through the test client, a real SQLite registry):
the ingest, every API body, every query and path parameter and every form, logged in as an
admin (who may do the most) with the right CSRF token, so that input gets past the door and
into the checks. No answer may be a server error (5xx) and no exception may escape; an ingest
answer of 200 accounts for every item.

Inputs are drawn from the report schema of spec/reports.md (each field's valid values mixed with
mutants: wrong types, booleans for numbers, integers past 64 bits, times of 0001, 1980, 2036 and
9999, missing and unknown fields), request bodies keyed by each operation's documented fields
with values of every JSON type, forms keyed by each form's fields, plain bytes, and a corpus of
the cases that once gave 500s or stalled the server (4,301-digit integers, ``seq`` ≥ 2^63,
nesting thousands deep, bool-as-number, far times, NaN, bad UTF-8, 1,001 reports).

Counts are fixed per test so that a run's total is known: with tests/test_fuzz_field.py's 6,200
field-side cases, a run makes more than 10,000.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from registry.models import Client
from safetynet.reports import format_time
from tests.conftest import fuzz
from tests.ui_support import TOKENS, login, seed, settings_for
from ui.app import create_app
from ui.routes import client_pages, record_pages

INGEST_EXAMPLES = 2000
INGEST_BYTES_EXAMPLES = 300
API_EXAMPLES_PER_OPERATION = 100  # x the operations with a body (about 17)
FORM_EXAMPLES_PER_FORM = 60  # x the forms (about 12)
LOGIN_EXAMPLES = 60
CASES: Counter[str] = Counter()
ANSWERS: Counter[str] = Counter()  # what the cases got: statuses, reports accepted
NOW = datetime.now(UTC)


@pytest.fixture(scope="module", autouse=True)
def count() -> Iterator[None]:
    """The cases this module made, printed at its end (the field side adds 6,200)."""
    yield
    print(f"\nserver fuzz cases: {dict(CASES)}; total {sum(CASES.values())}; answers: "
          f"{dict(sorted(ANSWERS.items()))}")  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz-server")
    url = f"sqlite:///{tmp / 'registry.db'}"
    seeded = seed(url)
    app = create_app(settings_for(tmp, url, ingest_requests_per_s=1_000_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        csrf = login(client, "admin")
        yield {"client": client, "csrf": csrf, "seeded": seeded, "app": app}
    app.state.safetynet.engine.dispose()


def no_server_error(answer: Any, what: str, body: object) -> None:
    ANSWERS[str(answer.status_code)] += 1
    if answer.status_code == 401:
        ANSWERS[f"401 {what}"] += 1
    assert answer.status_code < 500, f"{what} -> {answer.status_code}: {body!r:.600}"


# --- values -----------------------------------------------------------------------------------
FAR_TIMES = [
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "1980-01-06T00:00:00Z",
    "2036-02-07T06:28:16Z",
    "2099-08-22T00:00:00Z",
    "2026-13-45T25:61:61Z",
    "2026-11-28T14:03:05.123",  # no zone
    "2026-11-28T23:59:60Z",  # a leap second
    "2026-11-28T14:03:05.123+14:00",
    "+275760-09-13T00:00:00Z",
    "",
]
BIG_INTS = [2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, -1, 0]
MUTANT = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(-(2**70), 2**70),
    st.sampled_from(BIG_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(FAR_TIMES),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
)


def recent_time() -> st.SearchStrategy[str]:
    return st.integers(0, 7200).map(lambda s: format_time(NOW - timedelta(seconds=s)))


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False)


CHANNEL = st.one_of(st.just(19), st.integers(1, 40))
POSITION = {"lat_deg": floats(42.28, 42.32), "lon_deg": floats(-71.08, -71.03)}
COMMON = {
    "receiver_id": st.sampled_from(["HH-07", "HH-07", "HH-07", "HH-12", "WEB-admin"]),
    "seq": st.one_of(st.integers(0, 2**40), st.integers(0, 2**64)),
    "t": recent_time(),
}
# Each kind's fields with the values spec/reports.md allows (report() then mutates some).
BY_KIND: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "pulse": {
        **COMMON,
        **POSITION,
        "channel": CHANNEL,
        "freq_hz": st.integers(216_000_000, 217_000_000),
        "bracelet_id": st.sampled_from(["3A7F", "3A7F", "1B2C", None]),
        "status": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "seq": st.integers(0, 31),
                    "test": st.booleans(),
                    "strap_open": st.booleans(),
                    "low_battery": st.booleans(),
                }
            ),
        ),
        "rssi_dbm": floats(-140, -30),
        "snr_db": floats(0, 60),
        "gain_db": floats(0, 50),
        "alt_m": st.one_of(floats(-100, 3000), st.none()),
        "heading_deg": st.one_of(floats(0, 359.9), st.none()),
        "antenna": st.sampled_from(["yagi3", "omni"]),
    },
    "bearing": {
        **COMMON,
        **POSITION,
        "bracelet_id": st.sampled_from(["3A7F", None]),
        "channel": CHANNEL,
        "bearing_deg": floats(0, 359.9),
        "sigma_deg": floats(1, 60),
        "method": st.sampled_from(["sweep", "array", "manual"]),
        "n_pulses": st.integers(0, 100),
    },
    "silence": {
        **COMMON,
        **POSITION,
        "channel": CHANNEL,
        "window_s": floats(1, 600),
        "noise_dbm": floats(-180, -60),
        "antenna": st.sampled_from(["yagi3", "omni"]),
    },
    "status": {
        **COMMON,
        **POSITION,
        "gps_fix": st.booleans(),
        "gain_db": floats(0, 50),
        "noise_dbm": floats(-180, -60),
        "clipping": st.booleans(),
        "battery_v": st.one_of(floats(3, 5), st.none()),
        "lo_error_ppm": st.one_of(floats(-100, 100), st.none()),
    },
    "fix": {  # the locator's output: always refused as input
        "bracelet_id": st.just("3A7F"),
        "t": recent_time(),
        **POSITION,
        "cov_enu_m2": st.just([[1.0, 0.0], [0.0, 1.0]]),
        "method": st.just("ekf"),
    },
}


@st.composite
def report(draw: st.DrawFn) -> dict[str, Any]:
    """A report of spec/reports.md, valid, then a few of its fields mutated, left out or added."""
    kind = draw(st.sampled_from([*BY_KIND, "pulse", "pulse", "pulse", "bearing", "gnss"]))
    fields = BY_KIND.get(kind or "", BY_KIND["pulse"])
    out: dict[str, Any] = {"kind": kind}
    for name, values in fields.items():
        out[name] = draw(values)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 4]))):
        name = draw(st.sampled_from(sorted(fields)))
        change = draw(st.integers(0, 9))
        if change == 0:
            out.pop(name, None)  # a field left out
        elif change == 1:
            out[draw(st.text(max_size=8))] = draw(MUTANT)  # a field the spec does not have
        else:
            out[name] = draw(st.sampled_from(FAR_TIMES) if name == "t" else MUTANT)
    return out


# --- the corpus of the cases -----------------------------------------------------------
PULSE = (
    '{"kind":"pulse","receiver_id":"HH-07","seq":%s,"t":"%s","channel":19,"freq_hz":216462612,'
    '"bracelet_id":"3A7F","status":{"seq":5,"test":false,"strap_open":false,"low_battery":true},'
    '"rssi_dbm":%s,"snr_db":18.2,"gain_db":28.0,"lat_deg":%s,"lon_deg":-71.05761,"alt_m":12.0,'
    '"heading_deg":131.5,"antenna":"yagi3"}'
)


def pulse(seq: str = "1", t: str | None = None, rssi: str = "-97.4", lat: str = "42.30206") -> str:
    return PULSE % (seq, t or format_time(NOW - timedelta(seconds=30)), rssi, lat)


DIGITS = "9" * 4301
CORPUS: list[bytes] = [
    f"[{pulse(seq=DIGITS)}]".encode(),
    f"[{pulse(rssi=DIGITS)}, {pulse(seq='2')}]".encode(),
    f"[{pulse(rssi='-' + DIGITS)}]".encode(),
    f"[{pulse(rssi='1e' + DIGITS)}]".encode(),
    f"[{DIGITS}]".encode(),
    f"[{pulse(seq=str(2**63))}, {pulse(seq=str(2**64))}, {pulse(seq='-1')}]".encode(),
    f"[{pulse(seq=str(2**63 - 1))}]".encode(),
    f"[{pulse(seq='1.0')}, {pulse(seq='1e3')}, {pulse(seq='true')}]".encode(),
    f"[{pulse(lat='false')}, {pulse(lat='true')}, {pulse(rssi='false')}]".encode(),
    f"[{pulse(rssi='NaN')}, {pulse(rssi='Infinity')}, {pulse(rssi='-Infinity')}]".encode(),
    f"[{pulse(rssi='1e400')}, {pulse(lat='1e-400')}]".encode(),
    *(f"[{pulse(seq=str(10 + i), t=t)}]".encode() for i, t in enumerate(FAR_TIMES)),
    b"[" * 10_000 + b"]" * 10_000,
    b"[" * 1025 + b"]" * 1025,
    b"[" + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"]",
    ("[" + pulse().replace('"seq":5', '"seq":' + "[" * 500 + "]" * 500) + "]").encode(),
    b'["\xff\xfe"]',
    b"\xef\xbb\xbf[]",
    b"",
    b"null",
    b"{}",
    b"[]",
    b"[,]",
    b"[1,]",
    b'[{"kind":"pulse"},]',
    b'["' + b"x" * 900_000 + b'"]',
    ("[" + ",".join(pulse(seq=str(i)) for i in range(1001)) + "]").encode(),
    b'[{"kind":"pulse", "kind":"bearing"}]',
    b'[{"\\ud800":1}]',
    b'["\\u0000"]',
    ("\n".join([pulse(seq="20"), "", "not json", "[", pulse(seq=DIGITS)]) + "\n").encode(),
]
CONTENT_TYPES = [
    "application/json",
    "application/x-ndjson",
    "text/plain",
    "",
    "application/json; charset=latin-1",
]


def test_ingest_survives_the_corpus(server: dict[str, Any]) -> None:
    client = server["client"]
    auth = {"Authorization": f"Bearer {TOKENS['HH-07']}"}
    for body in CORPUS:
        for content_type in CONTENT_TYPES:
            CASES["ingest corpus"] += 1
            answer = client.post(
                "/api/v1/reports", content=body, headers={**auth, "Content-Type": content_type}
            )
            no_server_error(answer, f"ingest ({content_type})", body)
    # Still answering, and answering well.
    good = client.post("/api/v1/reports", content=f"[{pulse(seq='777')}]", headers={**auth,
                       "Content-Type": "application/json"})  # fmt: skip
    assert good.status_code == 200
    assert good.json()["accepted"] + good.json()["duplicates"] == 1


@fuzz(INGEST_EXAMPLES)
@given(items=st.lists(report(), min_size=1, max_size=4), jsonl=st.integers(0, 5))
def test_ingest_answers_every_report(server: dict[str, Any], items: list[dict[str, Any]],
                                     jsonl: int) -> None:  # fmt: skip
    CASES["ingest reports"] += 1
    client = server["client"]
    if jsonl == 0:  # one in six bodies as JSON Lines
        body = "\n".join(json.dumps(item) for item in items)
        content_type = "application/x-ndjson"
    else:
        body = json.dumps(items)
        content_type = "application/json"
    answer = client.post("/api/v1/reports", content=body, headers={
        "Authorization": f"Bearer {TOKENS['HH-07']}", "Content-Type": content_type})  # fmt: skip
    no_server_error(answer, "ingest", body)
    if answer.status_code == 200:
        out = answer.json()
        assert out["accepted"] + out["duplicates"] + len(out["rejected"]) == len(items), out
        ANSWERS["reports accepted"] += out["accepted"]
        ANSWERS["reports rejected"] += len(out["rejected"])
        for rejected in out["rejected"]:
            assert rejected["message"], rejected


@fuzz(INGEST_BYTES_EXAMPLES)
@given(body=st.binary(max_size=300), content_type=st.sampled_from(CONTENT_TYPES))
def test_ingest_survives_any_bytes(server: dict[str, Any], body: bytes, content_type: str) -> None:
    CASES["ingest bytes"] += 1
    answer = server["client"].post("/api/v1/reports", content=body, headers={
        "Authorization": f"Bearer {TOKENS['HH-07']}", "Content-Type": content_type})  # fmt: skip
    no_server_error(answer, "ingest bytes", body)


# --- every API body ----------------------------------------------------------------------------
def _properties(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The field names a request body schema documents (following one $ref)."""
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return sorted(schema.get("properties", {}))


def api_operations(app: Any, seeded: Any) -> list[tuple[str, str, list[str]]]:
    """(method, path with its ids filled in, documented body fields) of every JSON body."""
    document = app.openapi()
    ids = {"search_id": seeded.search_id, "client_id": seeded.client_id, "bracelet_id": "3A7F"}
    out = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content or path == "/api/v1/reports":
                continue
            fields = _properties(document, content["application/json"].get("schema", {}))
            out.append((method.upper(), path.format(**ids), fields))
    return out


VALUE = st.recursive(
    st.one_of(MUTANT, recent_time(), st.floats(-1e6, 1e6, allow_nan=False), st.text(max_size=30)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def api_case(client: TestClient, csrf: str, method: str, path: str, fields: list[str]) -> Any:
    """The fuzz test of one operation: bodies keyed by its documented fields, or any JSON."""

    @fuzz(API_EXAMPLES_PER_OPERATION)
    @given(
        body=st.one_of(
            st.dictionaries(st.sampled_from([*fields, "extra"]), VALUE, max_size=len(fields) + 1),
            VALUE,
        )
    )
    def run(body: Any) -> None:
        CASES["api bodies"] += 1
        text = json.dumps(body)
        answer = client.request(method, path, content=text, headers={
            "X-CSRF-Token": csrf, "Content-Type": "application/json"})  # fmt: skip
        no_server_error(answer, f"{method} {path}", text)

    return run


def test_every_api_body(server: dict[str, Any]) -> None:
    client, csrf = server["client"], server["csrf"]
    operations = api_operations(server["app"], server["seeded"])
    assert len(operations) >= 15
    before = CASES["api bodies"]
    for method, path, fields in operations:
        api_case(client, csrf, method, path, fields)()
        for raw in CORPUS[:12] + CORPUS[-16:-3]:  # the body corpus too, on every operation
            CASES["api corpus"] += 1
            answer = client.request(method, path, content=raw, headers={
                "X-CSRF-Token": csrf, "Content-Type": "application/json"})  # fmt: skip
            no_server_error(answer, f"{method} {path}", raw)
    assert CASES["api bodies"] - before >= 0.9 * API_EXAMPLES_PER_OPERATION * len(operations)


PARAMETER_CORPUS = [DIGITS, "-" + DIGITS, "1e400", "NaN", "9999-12-31T23:59:59Z",
                    "0001-01-01T00:00:00Z", "\x00", "x" * 10_000, "true", "0.0", "-1"]  # fmt: skip


def test_every_query_and_path_parameter(server: dict[str, Any]) -> None:
    """Each documented query and path parameter of every operation, alone, with each value of
    the corpus (the others as the seeded search, client and bracelet)."""
    client, csrf, seeded = server["client"], server["csrf"], server["seeded"]
    ids = {"search_id": seeded.search_id, "client_id": seeded.client_id, "bracelet_id": "3A7F",
           "fmt": "geojson"}  # fmt: skip
    errors: list[str] = []
    for path, item in server["app"].openapi()["paths"].items():
        for method, operation in item.items():
            parameters = operation.get("parameters", [])
            for value in PARAMETER_CORPUS:
                for parameter in parameters:
                    CASES["parameters"] += 1
                    name, where = parameter["name"], parameter["in"]
                    url = path.format(**{**ids, name: quote(value, safe="")} if where == "path"
                                      else ids)  # fmt: skip
                    query = {name: value} if where == "query" else None
                    answer = client.request(method.upper(), url, params=query,
                                            headers={"X-CSRF-Token": csrf})  # fmt: skip
                    ANSWERS[str(answer.status_code)] += 1
                    if answer.status_code >= 500:
                        errors.append(
                            f"{method} {path} {name}={value[:20]!r} -> {answer.status_code}"
                        )
    assert CASES["parameters"] >= 200
    assert not errors, "\n".join(errors)


# --- every form --------------------------------------------------------------------------------
CLIENT_FIELDS = sorted(c.name for c in Client.__table__.columns if c.name != "id")


def forms(seeded: Any) -> list[tuple[str, list[str]]]:
    """(path with its ids filled in, field names) of every form a page posts (not the login's
    and the logout's, fuzzed apart)."""
    ids = {"client_id": seeded.client_id}
    out = []
    for module in (client_pages, record_pages):
        for route in module.router.routes:
            if "POST" not in getattr(route, "methods", ()):
                continue
            fields = [p.name for p in route.dependant.body_params] or [
                *CLIENT_FIELDS, "caregiver_name_0", "caregiver_phone_0", "place_kind_0",
                "place_address_0", "version", "checkboxes_shown", "not_duplicate",
            ]  # fmt: skip
            out.append((route.path.format(**ids), fields))
    return out


FORM_VALUE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "3A7F",
            "FFFF",
            "2026-11-28",
            "0001-01-01",
            "9999-12-31",
            "true",
            "on",
            "pass",
            "fail",
            "9" * 400,  # 4,301 digits are the corpus's, posted to every field
            "1e400",
            "NaN",
        ]
    ),
    st.integers(-(2**70), 2**70).map(str),
)


def form_case(client: TestClient, csrf: str, path: str, fields: list[str]) -> Any:
    """The fuzz test of one form: its fields (and one it does not have) with any text."""

    @fuzz(FORM_EXAMPLES_PER_FORM)
    @given(data=st.dictionaries(st.sampled_from([*fields, "zz"]), FORM_VALUE, max_size=8),
           with_csrf=st.integers(0, 9))  # fmt: skip
    def run(data: dict[str, str], with_csrf: int) -> None:
        CASES["forms"] += 1
        if with_csrf:  # mostly with the right token, so that the fields are read
            data = {**data, "csrf": csrf}
        answer = client.post(path, data=data, headers={"accept": "text/html"},
                             follow_redirects=False)  # fmt: skip
        no_server_error(answer, f"POST {path}", data)

    return run


# Found by this suite and mended: a number field of the enrolment form was converted with
# int(), and 4,301 digits raised ValueError (a 500). Kept as a regression check.
ONCE_SERVER_ERRORS = {("/clients/new", "height_cm"), ("/program/bracelets", "channel")}
FORM_CORPUS = [DIGITS, "-" + DIGITS, "1e400", "NaN", "-1", "9999-12-31", "0001-01-01", "\x00",
               "x" * 100_000]  # fmt: skip


def test_every_form(server: dict[str, Any]) -> None:
    client, csrf = server["client"], server["csrf"]
    pages = forms(server["seeded"])
    assert len(pages) >= 10
    before = CASES["forms"]
    errors: list[str] = []  # every server error of the corpus, all listed at the end
    for path, fields in pages:
        for field in fields:  # every field of every form with each of the corpus's values
            for value in FORM_CORPUS:
                CASES["forms corpus"] += 1
                headers = {"accept": "text/html"}
                data = {field: value, "csrf": csrf}
                answer = client.post(path, data=data, headers=headers, follow_redirects=False)
                ANSWERS[str(answer.status_code)] += 1
                if answer.status_code >= 500:
                    errors.append(f"POST {path} {field}={value[:20]!r}… -> {answer.status_code}")
    assert not errors, "\n".join(errors)
    for path, fields in pages:
        form_case(client, csrf, path, fields)()
    assert CASES["forms"] - before >= 0.9 * FORM_EXAMPLES_PER_FORM * len(pages)


def test_the_server_errors_once_found_stay_mended(server: dict[str, Any]) -> None:
    """Each server error this suite once found, posted again: a refusal, never a 500."""
    for path, field in sorted(ONCE_SERVER_ERRORS):
        data = {field: DIGITS, "csrf": server["csrf"]}
        answer = server["client"].post(
            path, data=data, headers={"accept": "text/html"}, follow_redirects=False
        )
        assert answer.status_code < 500, f"POST {path} {field}=<4,301 digits>"


@fuzz(LOGIN_EXAMPLES)
@given(
    username=st.one_of(
        st.sampled_from(["admin", "dispatcher", "ADMIN", ""]), st.text(max_size=120)
    ),
    password=st.one_of(st.text(max_size=40), st.just("x" * 1001)),
    next_=st.one_of(st.just("/"), st.text(max_size=50), st.just("//evil.example")),
    right_token=st.booleans(),
)
def test_the_login_form(server: dict[str, Any], username: str, password: str, next_: str,
                        right_token: bool) -> None:  # fmt: skip
    CASES["login form"] += 1
    with TestClient(server["app"], raise_server_exceptions=False,
                    client=("192.0.2.77", 5000)) as stranger:  # fmt: skip
        page = stranger.get("/login")
        token = page.text.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
        data = {"username": username, "password": password, "next": next_,
                "login_csrf": token if right_token else "forged"}  # fmt: skip
        answer = stranger.post("/login", data=data, follow_redirects=False)
        no_server_error(answer, "POST /login", data)
        if answer.status_code == 303:
            assert answer.headers["location"].startswith("/")
            assert not answer.headers["location"].startswith("//")
