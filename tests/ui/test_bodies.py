"""The strict body reader and the report-time window, checked against the cases of issue 16 and
the limits they promise (JSON's own grammar, the signed 64-bit range, the documented window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from safetynet.errors import BodyError, BodyTooLargeError, MediaTypeError
from ui.bodies import (
    INT64_MAX,
    MAX_REPORTS,
    MAX_REPORTS_BYTES,
    STRICT_BODY,
    LatDeg,
    PastDay,
    PastTime,
    QueryInt,
    StrictInt,
    Unreadable,
    read_json,
    report_items,
)
from ui.clock import BEFORE_LAST_SEEN, FUTURE_SLACK, MAX_AGE, report_window

GOOD = {"kind": "status", "receiver_id": "R1", "seq": 1, "t": "2026-11-28T14:00:00.000Z",
        "gps_fix": True, "clipping": False}  # fmt: skip
JSON = "application/json"


def body(*items: bytes) -> bytes:
    return b"[" + b",".join(items) + b"]"


def test_good_items_survive_beside_unreadable_ones_in_one_array() -> None:
    good = orjson.dumps(GOOD)
    cases = [
        b'{"seq": ' + b"9" * 5000 + b"}",  # a 4,300-digit integer: Python's int() refuses it
        b'{"seq": 9223372036854775808}',  # 2^63: the database's BIGINT overflows
        b"[" * 5000 + b"]" * 5000,  # deeper than any parser's recursion
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": "\\ud800"}',  # a lone surrogate: not text
    ]
    items = report_items(body(good, *cases, good), JSON)
    assert len(items) == len(cases) + 2
    assert items[0] == GOOD
    assert items[-1] == GOOD
    assert all(isinstance(item, Unreadable) for item in items[1:-1])
    assert items[2].field == "seq"
    assert "9223372036854775807" in items[2].message
    assert "too large" in items[1].message


def test_nesting_within_json_but_beyond_a_report_is_refused_per_item() -> None:
    deep = b'{"status": {"seq": {"x": {"y": 1}}}}'
    items = report_items(body(orjson.dumps(GOOD), deep), JSON)
    assert items[0] == GOOD
    assert isinstance(items[1], Unreadable)
    assert "nested" in items[1].message


def test_json_lines_are_read_line_by_line() -> None:
    lines = orjson.dumps(GOOD) + b"\n\n{not json\n" + b'{"a": [[[[1]]]]}\n'
    items = report_items(lines, "application/x-ndjson; charset=utf-8")
    assert items[0] == GOOD
    assert isinstance(items[1], Unreadable)
    assert items[1].message.startswith("line 3")
    assert isinstance(items[2], Unreadable)


@pytest.mark.parametrize(
    ("data", "kind", "error"),
    [
        (b"x" * (MAX_REPORTS_BYTES + 1), JSON, BodyTooLargeError),
        (body(*[b"1"] * (MAX_REPORTS + 1)), JSON, BodyTooLargeError),
        (b'{"kind": "status"}', JSON, BodyError),
        (b"not json at all", JSON, BodyError),
        (b"[]", "text/plain", MediaTypeError),
        (b"[]", "", MediaTypeError),
    ],
)
def test_bodies_unreadable_as_a_whole(data: bytes, kind: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        report_items(data, kind)


def test_read_json_limits() -> None:
    assert read_json(b'{"a": [1, 2]}', JSON) == {"a": [1, 2]}
    with pytest.raises(BodyError, match="nested"):
        read_json(b"[" * 20 + b"]" * 20, JSON)
    with pytest.raises(BodyError, match="out of range"):
        read_json(b'{"version": 9223372036854775808}', JSON)
    with pytest.raises(BodyError, match="too large"):
        read_json(b'{"version": 1' + b"0" * 400 + b"}", JSON)
    with pytest.raises(BodyTooLargeError):
        read_json(b"[" + b"0," * 100 + b"0]", JSON, limit=100)
    with pytest.raises(MediaTypeError):
        read_json(b"{}", "application/x-www-form-urlencoded")
    assert read_json(str(INT64_MAX).encode(), JSON) == INT64_MAX


class Spot(BaseModel):
    model_config = STRICT_BODY
    lat_deg: LatDeg
    days: StrictInt = 1
    at: PastTime | None = None
    on: PastDay | None = None


def test_strict_fields_refuse_coercion() -> None:
    assert Spot.model_validate({"lat_deg": 42}).lat_deg == 42.0
    for bad in (
        {"lat_deg": False},
        {"lat_deg": "42"},
        {"lat_deg": 91.0},
        {"lat_deg": 1.0, "days": 0.0},
        {"lat_deg": 1.0, "days": True},
        {"lat_deg": 1.0, "at": "0001-01-01T00:00:00Z"},
        {"lat_deg": 1.0, "at": "2026-11-28T14:00:00"},  # no zone
        {"lat_deg": 1.0, "at": "9999-12-31T23:59:59Z"},
        {"lat_deg": 1.0, "on": "0001-01-01"},
        {"lat_deg": 1.0, "extra": 1},
    ):
        with pytest.raises(ValidationError):
            Spot.model_validate(bad)
    at = Spot.model_validate({"lat_deg": 1.0, "at": "2026-11-28T15:00:00+01:00"}).at
    assert at == datetime(2026, 11, 28, 14, tzinfo=UTC)


class Query(BaseModel):
    within_days: QueryInt


def test_query_integers_are_digits() -> None:
    assert Query.model_validate({"within_days": "14"}).within_days == 14
    for bad in ("0.0", "1e1", "14 ", "", "true", "9" * 30):
        with pytest.raises(ValidationError):
            Query.model_validate({"within_days": bad})


NOW = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def test_report_window_ends() -> None:
    last_seen = NOW - timedelta(hours=2)
    window = report_window(NOW, [last_seen, NOW - timedelta(hours=1)])
    assert window.earliest == last_seen - BEFORE_LAST_SEEN
    assert window.latest == NOW + FUTURE_SLACK
    assert window.problem(NOW) is None
    assert window.problem(window.latest) is None
    assert window.problem(window.earliest) is None
    far_future = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert "ahead of the server's clock" in (window.problem(far_future) or "")
    assert "too old" in (window.problem(datetime(1, 1, 1, tzinfo=UTC)) or "")
    assert window.problem(window.latest + timedelta(milliseconds=1)) is not None
    assert window.problem(window.earliest - timedelta(milliseconds=1)) is not None
    orphan = report_window(NOW)
    assert orphan.earliest == NOW - MAX_AGE
    assert orphan.problem(NOW - timedelta(days=29)) is None
