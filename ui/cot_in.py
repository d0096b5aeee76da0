"""Cursor-on-Target from TAK, read as what SafetyNet takes: positions and bearings.

Pure: bytes of one CoT ``<event>`` in (from a TAK server, so from outside: bounded in size, no
DTD or entities, every number checked), a typed :class:`Pli` or :class:`RangeBearing` out, or
None for the many kinds we do not take (chat, markers, drawings, pings, our own objects coming
back). :func:`status_report` and :func:`bearing_report` turn them into the field reports of
spec/reports.md, which then go through the ingest's own validation like any other report.

Who a TAK user is: the receiver ``TAK-<callsign>`` (the callsign's letters, digits, ``.``,
``_`` and ``-``; anything else becomes ``-``). A dispatcher puts that receiver id in a team
(``POST /api/v1/searches/{id}/teams``) to have the TAK user's position (PLI) be the team's and
the range-and-bearing lines that user draws be the team's manual bearings. TAK users on no team
of an active search are ignored: their positions are not ours to keep.

**Idempotent.** A report's ``seq`` is made from the event itself: a PLI's from its time in
milliseconds, a range-and-bearing line's from a hash of its uid and time. A TAK server that
sends the same event again (on reconnect, or to a second subscriber) gives the same
``(receiver_id, seq)``, stored once. A line edited in ATAK is sent again with a new time: a new
bearing. The bearing of an ATAK range-and-bearing line is the true azimuth from its anchor to
its end; ``northRef`` says only how ATAK labels it.

Errors: :class:`CotError` (an :class:`~safetynet.errors.InputError`) says what was wrong.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from safetynet.errors import InputError
from safetynet.reports import format_time, parse_time
from ui.cot import is_ours

MAX_EVENT_BYTES = 64 * 1024  # a TAK event is a few hundred bytes; a drawing a few thousand
MANUAL_SIGMA_DEG = 15.0  # the team page's default for a bearing taken by hand
TAK_RECEIVER_PREFIX = "TAK-"
PLI_TYPES = ("a-f-G", "a-n-G", "a-u-G")  # a TAK user's own position: an atom on the ground
MAX_INT63 = (1 << 63) - 1


class CotError(InputError):
    """A CoT event that cannot be read: says what was wrong and what is valid."""


@dataclass(frozen=True)
class Pli:
    """A TAK user's position (Position Location Information)."""

    uid: str
    callsign: str
    t: datetime
    lat_deg: float
    lon_deg: float
    ce_m: float | None
    gps: bool  # the position came from the device's GPS (``how`` m-g)


@dataclass(frozen=True)
class RangeBearing:
    """An ATAK range-and-bearing line (``u-rb-a``): from its anchor, a true bearing."""

    uid: str
    author_callsign: str
    author_uid: str | None
    t: datetime
    lat_deg: float
    lon_deg: float
    bearing_deg: float
    range_m: float | None


def receiver_id_of(callsign: str) -> str:
    """The receiver id of a TAK user (``TAK-`` and the callsign, made safe, 64 at most)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in callsign)
    return f"{TAK_RECEIVER_PREFIX}{safe}"[:64]


def _number(elm: ET.Element, attr: str, lo: float, hi: float, where: str) -> float:
    raw = elm.get(attr)
    if raw is None:
        raise CotError(f"{where}: {attr} is missing")
    try:
        value = float(raw)
    except ValueError:
        raise CotError(f"{where}: {attr} must be a number, got {raw[:40]!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise CotError(f"{where}: {attr} must be within {lo:g}..{hi:g}, got {raw[:40]!r}")
    return value


def _time(ev: ET.Element, attr: str) -> datetime:
    raw = ev.get(attr)
    if raw is None:
        raise CotError(f"event: {attr} is missing")
    try:
        return parse_time(raw)
    except ValueError as err:
        raise CotError(f"event: {attr} {err}") from None


def read_event(data: bytes) -> ET.Element:
    """One CoT ``<event>`` element from ``data``, read safely (no DTD, no entities, bounded)."""
    if len(data) > MAX_EVENT_BYTES:
        raise CotError(f"event: {len(data)} bytes, over the limit of {MAX_EVENT_BYTES}")
    # Read as UTF-8 text first (CoT is UTF-8): a document in another encoding (UTF-16 with a
    # byte-order mark) would hide a DTD from a search of its bytes and bring in its entities.
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise CotError(f"event: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if text.startswith("\ufeff") or "\x00" in text:
        raise CotError("event: a byte-order mark or a NUL is not taken (CoT is UTF-8 text)")
    if text.startswith("<?xml"):
        end = text.find("?>")
        text = text[end + 2 :].lstrip() if end >= 0 else text
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise CotError("event: a DTD or an entity declaration is not taken")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise CotError(f"event: not well-formed XML ({err})") from None
    if root.tag != "event":
        raise CotError(f"expected an <event>, got <{root.tag[:40]}>")
    return root


def parse_event(data: bytes) -> Pli | RangeBearing | None:
    """What SafetyNet takes from one CoT event (see the module's docstring); None for the
    kinds it does not take."""
    ev = read_event(data)
    uid = ev.get("uid") or ""
    cot_type = ev.get("type") or ""
    if not uid or not cot_type:
        raise CotError("event: uid and type are required")
    if is_ours(uid):
        return None
    point = ev.find("point")
    detail = ev.find("detail")
    if point is None:
        raise CotError("event: <point> is missing")
    lat = _number(point, "lat", -90.0, 90.0, "point")
    lon = _number(point, "lon", -180.0, 180.0, "point")
    t = _time(ev, "time")
    if cot_type == "u-rb-a":
        return _range_bearing(uid, t, lat, lon, detail)
    if cot_type.startswith(PLI_TYPES) and detail is not None:
        contact = detail.find("contact")
        callsign = contact.get("callsign") if contact is not None else None
        if not callsign or (detail.find("takv") is None and detail.find("__group") is None):
            return None  # a marker someone dropped, not a TAK user's own position
        ce = _number(point, "ce", 0.0, 1e8, "point")
        return Pli(
            uid=uid,
            callsign=callsign,
            t=t,
            lat_deg=lat,
            lon_deg=lon,
            ce_m=None if ce >= 9999999.0 else ce,
            gps=(ev.get("how") or "").startswith("m-g"),
        )
    return None


def _range_bearing(
    uid: str, t: datetime, lat: float, lon: float, detail: ET.Element | None
) -> RangeBearing:
    if detail is None:
        raise CotError("u-rb-a: <detail> is missing")
    bearing = detail.find("bearing")
    if bearing is None:
        raise CotError("u-rb-a: <bearing> is missing")
    bearing_deg = _number(bearing, "value", -360.0, 360.0, "u-rb-a bearing") % 360.0
    units = detail.find("bearingUnits")
    if units is not None and units.get("value", "0") != "0":
        raise CotError(
            f"u-rb-a: bearingUnits {units.get('value')!r} (mils?) is not taken; degrees (0) are"
        )
    rng = detail.find("range")
    range_m = None if rng is None else _number(rng, "value", 0.0, 1e7, "u-rb-a range")
    author_cs, author_uid = None, None
    creator = detail.find("creator")
    if creator is not None:
        author_cs, author_uid = creator.get("callsign"), creator.get("uid")
    for link in detail.findall("link"):
        if link.get("relation") == "p-p":
            author_cs = author_cs or link.get("parent_callsign")
            author_uid = author_uid or link.get("uid")
    if not author_cs:
        raise CotError("u-rb-a: who drew it is not said (no creator or p-p link callsign)")
    return RangeBearing(
        uid=uid,
        author_callsign=author_cs,
        author_uid=author_uid,
        t=t,
        lat_deg=lat,
        lon_deg=lon,
        bearing_deg=0.0 if bearing_deg >= 360.0 else bearing_deg,
        range_m=range_m,
    )


def _seq_of(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAX_INT63


def status_report(pli: Pli) -> dict[str, Any]:
    """A TAK user's position as the status report (spec/reports.md, as JSON) of its receiver
    ``TAK-<callsign>``; the ingest validates it like any other."""
    return {
        "kind": "status",
        "receiver_id": receiver_id_of(pli.callsign),
        "seq": int(pli.t.timestamp() * 1000),
        "t": format_time(pli.t),
        "lat_deg": pli.lat_deg,
        "lon_deg": pli.lon_deg,
        "gps_fix": pli.gps,
        "clipping": False,
    }


def bearing_report(rb: RangeBearing, bracelet_id: str | None, channel: int) -> dict[str, Any]:
    """A range-and-bearing line as a manual bearing (spec/reports.md, as JSON) of its author's
    receiver, on the search's bracelet and channel; a manual bearing has no pulses."""
    report: dict[str, Any] = {
        "kind": "bearing",
        "receiver_id": receiver_id_of(rb.author_callsign),
        "seq": _seq_of(rb.uid, format_time(rb.t)),
        "t": format_time(rb.t),
        "channel": channel,
        "lat_deg": rb.lat_deg,
        "lon_deg": rb.lon_deg,
        "bearing_deg": rb.bearing_deg,
        "sigma_deg": MANUAL_SIGMA_DEG,
        "method": "manual",
        "n_pulses": 0,
    }
    if bracelet_id is not None:
        report["bracelet_id"] = bracelet_id
    return report
