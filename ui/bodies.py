"""Strict reading of request bodies: JSON with limits, and the typed fields the API's models use.

Every body goes through orjson, with three limits a stdlib ``json.loads`` does not have:

- **size**: the caller's byte limit, checked before parsing (413);
- **depth**: orjson refuses nesting beyond 1,024 levels (no ``RecursionError``); a value deeper
  than ``max_depth`` is refused here, with the path where it went too deep;
- **integers**: none beyond 64 bits (orjson reads a 4,300-digit integer as an error, not a
  ``ValueError`` from Python's int conversion), and every integer within the signed 64-bit
  range the database stores — ``seq`` of 2^63 or more is refused before it reaches an insert.

NaN and Infinity are not JSON and are refused by the parser. Booleans are never numbers: the
typed fields below are strict (``"lon_deg": false`` is refused, not stored as 0), an integer
field takes no float (``0.0`` is refused for a count of days), and times are RFC 3339 with a
time zone and a year the system can have seen (:data:`EARLIEST_TIME`).

Ingest (:func:`report_items`) answers per item, as spec/reports.md promises: a JSON array whose
one element cannot be parsed is split at its top-level commas and each element parsed alone, so
the good reports in a batch are stored and the bad one is listed with its index. JSON Lines are
read line by line. Other bodies (:func:`read_json`) are refused whole with a message that says
what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BeforeValidator, ConfigDict, PlainSerializer, Strict

from safetynet.errors import BodyError, BodyTooLargeError, MediaTypeError
from safetynet.reports import parse_time

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_REPORTS = 1000
MAX_REPORTS_BYTES = 1_000 * 1_024  # 1,000 reports of about 400 bytes, with room to spare
MAX_BODY_BYTES = 2 * 1_024 * 1_024  # an enrollment with its photo is the largest other body
REPORT_MAX_DEPTH = 4  # array → report → status object → value
BODY_MAX_DEPTH = 16
JSON_TYPES = ("application/json",)
JSON_LINES_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
# The earliest time any record of this system can carry: years before it (year 0001, an
# unset GNSS clock's 1980) are refused rather than stored and then refused by the readers.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(minutes=5)  # a "when it happened" time may run this far ahead


@dataclass(frozen=True)
class Unreadable:
    """An item of an ingest body that could not be read; ``field`` names where, if known."""

    message: str
    field: str = ""


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, lower case, without parameters."""
    return (content_type or "").split(";", maxsplit=1)[0].strip().lower()


def check_size(length: int, limit: int) -> None:
    if length > limit:
        raise BodyTooLargeError(f"body of {length} bytes is over the limit of {limit} bytes")


def problem(value: Any, max_depth: int, path: str = "") -> tuple[str, str] | None:
    """Why a decoded JSON value breaks the limits — ``(field, message)`` — or None.

    Walks the value without recursion: nesting deeper than ``max_depth`` levels, or an integer
    outside the signed 64-bit range, is a problem."""
    stack: list[tuple[Any, str, int]] = [(value, path, 1)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                return where, (
                    f"integer {item} is out of range; integers must be within "
                    f"{INT64_MIN}..{INT64_MAX}"
                )
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return where, f"nested more than {max_depth} levels deep"
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                stack.append((child, f"{where}.{key}" if where else str(key), depth + 1))
    return None


def _loads(data: bytes) -> Any:
    return orjson.loads(data)


def _not_json(err: orjson.JSONDecodeError) -> str:
    if "infinity" in str(err):  # orjson's words for a number past a double's range
        return (
            f"a number too large ({err}); integers must be within {INT64_MIN}..{INT64_MAX} "
            "and other numbers finite"
        )
    return str(err)


def read_json(
    body: bytes,
    content_type: str | None,
    *,
    limit: int = MAX_BODY_BYTES,
    max_depth: int = BODY_MAX_DEPTH,
) -> Any:
    """A JSON body decoded under the limits. Raises :class:`BodyTooLargeError` (413),
    :class:`MediaTypeError` (415) or :class:`BodyError` (400) saying what was wrong."""
    check_size(len(body), limit)
    if media_type(content_type) not in JSON_TYPES:
        raise MediaTypeError("Content-Type must be application/json")
    try:
        value = _loads(body)
    except orjson.JSONDecodeError as err:
        raise BodyError(f"body is not JSON: {_not_json(err)}") from None
    found = problem(value, max_depth)
    if found is not None:
        where, message = found
        raise BodyError(f"{where or 'body'}: {message}")
    return value


# A JSON string, or one structural character: enough to find an array's top-level commas.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


def _split_array(body: bytes) -> list[bytes] | None:
    """The raw elements of a top-level JSON array (None: the body is not shaped as one)."""
    text = body.strip()
    if not text.startswith(b"[") or not text.endswith(b"]"):
        return None
    inner = text[1:-1]
    if not inner.strip():
        return []
    parts: list[bytes] = []
    depth = 0
    start = 0
    for token in _TOKEN.finditer(inner):
        mark = token.group()
        if mark in (b"[", b"{"):
            depth += 1
        elif mark in (b"]", b"}"):
            depth -= 1
            if depth < 0:
                return None
        elif mark == b"," and depth == 0:
            parts.append(inner[start : token.start()])
            start = token.end()
    parts.append(inner[start:])
    return parts


def _item(raw: bytes, label: str) -> Any:
    try:
        value = _loads(raw)
    except orjson.JSONDecodeError as err:
        return Unreadable(f"{label}: not JSON: {_not_json(err)}")
    found = problem(value, REPORT_MAX_DEPTH - 1)
    if found is not None:
        return Unreadable(found[1], found[0])
    return value


def report_items(body: bytes, content_type: str | None) -> list[Any]:
    """The items of an ingest body, each a decoded JSON value or an :class:`Unreadable`.

    A JSON array (``application/json``) or JSON Lines (``application/x-ndjson``) of at most
    :data:`MAX_REPORTS` items and :data:`MAX_REPORTS_BYTES` bytes. Raises :class:`BodyError`
    when the body as a whole cannot be read (over the limits, another media type, not an array).
    """
    check_size(len(body), MAX_REPORTS_BYTES)
    kind = media_type(content_type)
    items: list[Any]
    if kind in JSON_LINES_TYPES:
        lines = [(n, line) for n, line in enumerate(body.splitlines(), 1) if line.strip()]
        if len(lines) > MAX_REPORTS:
            raise BodyTooLargeError(f"{len(lines)} reports in one body; at most {MAX_REPORTS}")
        items = [_item(line, f"line {number}") for number, line in lines]
    elif kind in JSON_TYPES:
        try:
            whole = _loads(body)
        except orjson.JSONDecodeError as err:
            parts = _split_array(body)
            if parts is None:
                raise BodyError(f"body is not a JSON array of reports: {_not_json(err)}") from None
            if len(parts) > MAX_REPORTS:
                raise BodyTooLargeError(
                    f"{len(parts)} reports in one body; at most {MAX_REPORTS}"
                ) from None
            return [_item(part, f"item {index}") for index, part in enumerate(parts)]
        if not isinstance(whole, list):
            raise BodyError("body must be a JSON array of reports")
        if len(whole) > MAX_REPORTS:
            raise BodyTooLargeError(f"{len(whole)} reports in one body; at most {MAX_REPORTS}")
        items = []
        for value in whole:
            found = problem(value, REPORT_MAX_DEPTH - 1)
            items.append(value if found is None else Unreadable(found[1], found[0]))
    else:
        raise MediaTypeError(
            "Content-Type must be application/json (an array) or application/x-ndjson"
        )
    return items


# --- strict typed fields for the API's models ----------------------------------------------------

# The models of request bodies: unknown fields refused, no NaN or Infinity, nothing coerced.
STRICT_BODY = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def _finite_range(lo: float, hi: float, unit: str) -> AfterValidator:
    def check(value: float) -> float:
        if not lo <= value <= hi:  # False for NaN as well
            raise ValueError(f"must be within {lo:g}..{hi:g} {unit}, got {value!r}")
        return value

    return AfterValidator(check)


def _number(value: object) -> object:
    """Integers are numbers too (``42`` for 42.0); booleans are not."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not a boolean, got {value!r}")
    if isinstance(value, int):
        return float(value)
    return value


LatDeg = Annotated[float, BeforeValidator(_number), Strict(), _finite_range(-90.0, 90.0, "degrees")]
LonDeg = Annotated[
    float, BeforeValidator(_number), Strict(), _finite_range(-180.0, 180.0, "degrees")
]
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]


def _parse_moment(value: object) -> datetime:
    # Bounded before parsing: a time is never longer than 40 characters.
    if isinstance(value, str) and len(value) > 40:
        raise ValueError(f"must be an RFC 3339 time string, got {value[:40]!r}…")
    return parse_time(value)


def _happened(moment: datetime) -> datetime:
    latest = datetime.now(UTC) + FUTURE_SLACK
    if not EARLIEST_TIME <= moment <= latest:
        raise ValueError(
            f"must lie between {EARLIEST_TIME:%Y-%m-%d} and now (with "
            f"{FUTURE_SLACK.total_seconds() / 60:.0f} minutes of clock slack), "
            f"got {moment.isoformat()}"
        )
    return moment


def _parse_day(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a date such as '2026-11-28', got {value!r}") from None
    else:
        raise ValueError(f"must be a date string such as '2026-11-28', got {value!r}")
    today = datetime.now(UTC).date()
    if not EARLIEST_TIME.date() <= day <= today + timedelta(days=1):
        raise ValueError(f"must lie between {EARLIEST_TIME:%Y-%m-%d} and today, got {value!r}")
    return day


# A time that has happened (last seen, found at): RFC 3339 with a zone, 2000 .. now + 5 min.
PastTime = Annotated[
    datetime,
    BeforeValidator(_parse_moment),
    AfterValidator(_happened),
    PlainSerializer(lambda t: t.isoformat()),
]
# A day that has come (an encounter's date): 2000-01-01 .. tomorrow (time zones ahead of UTC).
PastDay = Annotated[date, BeforeValidator(_parse_day), PlainSerializer(lambda d: d.isoformat())]


def _query_int(value: object) -> object:
    """A query parameter's integer: digits only (``14``), never ``14.0`` or ``1e1``."""
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]{1,18}", value):
            raise ValueError(f"must be a whole number written in digits, got {value!r}")
        return int(value)
    return value


QueryInt = Annotated[int, BeforeValidator(_query_int), Strict()]
