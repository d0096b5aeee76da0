"""A search's picture as Cursor-on-Target (CoT) events, for TAK (ATAK, WinTAK, iTAK, TAK Server).

Pure: a :class:`Picture` (plain data read from a search's live state) and the time ``now`` in,
CoT ``<event>`` elements out (the public CoT event schema: ``event`` with ``uid``, ``type``,
``time``, ``start``, ``stale``, ``how``; ``point`` with ``lat``, ``lon``, ``hae``, ``ce``,
``le``; ``detail`` with TAK's own elements). No socket, no clock: :mod:`ui.tak` sends them.

What goes out, each with a uid that stays the same for the search (``SafetyNet.<search>.…``),
so a TAK map moves an object instead of piling up copies:

=====================  =============  ========================================================
the current fix        ``a-n-G``      ``ce`` from the covariance (below), the 95 % ellipse as a
                                      ``shape`` in its detail, the track's speed if known
the 95 % ellipse       ``u-d-c-e``    the same ellipse drawn on its own (TAK draws shapes of a
                                      drawing type, not of a unit's marker)
each bearing           ``u-rb-a``     a range-and-bearing line from its receiver, true north;
                                      stale when the bearing is :data:`BEARING_FADES_S` old
each team, vehicle,    ``a-f-G-U-C-I`` on foot, ``a-f-G-E-V-C`` a vehicle, ``a-f-G-E-S`` a
station                               fixed station; at its last position
the last known point   ``b-m-p-s-m``  a spot marker, "LKP"
the 50 % and 90 %      ``u-d-f``      closed polygons (each island of the area its own)
areas
next listening points  ``b-m-p-w``    a waypoint per guided team
search events          ``b-t-f``      GeoChat to All Chat Rooms (opened, heard, fix, found)
a thing gone           ``t-x-d-d``    a delete of its uid
=====================  =============  ========================================================

**CE and LE from the covariance.** CoT's ``ce`` is a circular one-sigma error (metres). The
fix carries an east/north covariance ``C`` (m²) whose eigenvalues ``λ1 ≥ λ2`` are the variances
along the ellipse's axes; its 95 % ellipse has semi-axes ``√(χ²₂(0.95) λ)``, ``χ²₂(0.95) =
5.991``. We send ``ce = √λ1 = semi_major_95 / 2.4477``: the one-sigma error along the major
axis. A circle of that radius holds the one-sigma ellipse, so it never claims more precision
than the fix has (√((λ1+λ2)/2), the usual circular sigma, would shrink a long, thin ellipse
to a small circle). The fix is on the ground and we estimate no height: ``hae`` and ``le`` are
CoT's "unknown", 9999999.

**Stale times.** Everything of the current picture is stale :data:`FEED_STALE_S` after it was
sent, and :mod:`ui.tak` sends it again every :data:`PICTURE_EVERY_S` (and on every change):
while the feed is alive nothing ages, and a feed that died visibly ages on every TAK map within
two minutes (TAK greys or drops stale objects). A bearing is stale :data:`BEARING_FADES_S`
after it was taken, feed alive or not: old bearings fade from the map as they do from ours.

The client is "Missing person" unless the deployment allows the TAK side to see the name (and
a link to the photo behind our login); nothing clinical goes out, ever.
"""

from __future__ import annotations

import io
import math
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from locator.fixes import CHI2_2DOF_95
from safetynet.reports import format_time, parse_time

COT_VERSION = "2.0"
UNKNOWN_M = 9999999.0  # CoT's value for a height or an error not known
SIGMA_PER_95 = math.sqrt(CHI2_2DOF_95)  # 2.4477: a 95 % semi-axis over its one-sigma
FEED_STALE_S = 120.0  # the current picture is stale this long after it was sent
FIX_MAX_AGE_S = 600.0  # ... and an estimate this long after its time (no evidence since)
POSITION_MAX_AGE_S = 300.0  # ... and a team's position this long after it was taken
PICTURE_EVERY_S = 30.0  # ... and sent again this often, so a live feed never ages
BEARING_FADES_S = 300.0  # a bearing is stale this long after it was taken
BEARING_RANGE_M = 3000.0  # how far a bearing line reaches (the map's own lines reach as far)
DELETE_STALE_S = 20.0
UID_PREFIX = "SafetyNet."
ANONYMOUS = "Missing person"  # the person's name on the TAK side unless the deployment allows
CHATROOM = "All Chat Rooms"

# ATAK colours are ARGB packed in a signed 32-bit integer.
RED, ORANGE, YELLOW, CYAN, MAGENTA = 0xFFFF0000, 0xFFFF8800, 0xFFFFDD00, 0xFF00FFFF, 0xFFFF00FF


def argb(colour: int, alpha: int = 0xFF) -> str:
    """A colour as TAK writes it: ARGB in a signed 32-bit integer."""
    value = (colour & 0x00FFFFFF) | (alpha << 24)
    return str(value - (1 << 32) if value >= 1 << 31 else value)


@dataclass(frozen=True)
class Area:
    """The smallest area holding ``share`` of the probability: its islands as closed rings of
    (lat, lon), largest first, and its size."""

    share: float
    rings: list[list[tuple[float, float]]]
    area_km2: float


@dataclass(frozen=True)
class Picture:
    """What a search shows on a TAK map, as plain data (read from its live state).

    ``fix``, ``bearings``, ``receivers`` and ``guidance`` are the live state's own objects
    (:meth:`ui.live.SearchState.snapshot`, :meth:`~ui.live.SearchState.guidance`); each
    receiver carries ``kind``: ``foot``, ``vehicle`` or ``fixed``."""

    search_id: str
    label: str  # how the person is named on the TAK side (:data:`ANONYMOUS` unless allowed)
    last_known: tuple[float, float, datetime]
    fix: dict[str, Any] | None = None
    bearings: list[dict[str, Any]] = field(default_factory=list)
    receivers: list[dict[str, Any]] = field(default_factory=list)
    areas: list[Area] = field(default_factory=list)
    guidance: list[dict[str, Any]] = field(default_factory=list)
    photo_url: str | None = None  # only where the TAK side may see the photo


def uid_of(search_id: str, *parts: str) -> str:
    """The stable uid of one of a search's objects."""
    return ".".join([UID_PREFIX + search_id, *parts])


def is_ours(uid: str) -> bool:
    """Whether ``uid`` names one of our own objects (one that came back through the server)."""
    return uid.startswith(UID_PREFIX) or uid.startswith(f"GeoChat.{UID_PREFIX}")


def cot_time(moment: datetime) -> str:
    """A time as CoT writes it: UTC to the millisecond, ``Z`` (what every TAK parser takes)."""
    return format_time(moment.replace(microsecond=moment.microsecond // 1000 * 1000))


def _num(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def event(
    uid: str,
    cot_type: str,
    how: str,
    lat_deg: float,
    lon_deg: float,
    now: datetime,
    stale: datetime,
    start: datetime | None = None,
    ce_m: float = UNKNOWN_M,
) -> tuple[ET.Element, ET.Element]:
    """A CoT event and its (empty) detail element. ``start`` is when what it says became
    true (a bearing's time, a fix's), never after ``stale``."""
    begin = now if start is None else min(start, stale)
    ev = ET.Element(
        "event",
        {
            "version": COT_VERSION,
            "uid": uid,
            "type": cot_type,
            "how": how,
            "time": cot_time(now),
            "start": cot_time(begin),
            "stale": cot_time(stale),
        },
    )
    ET.SubElement(
        ev,
        "point",
        {
            "lat": _num(lat_deg, 7),
            "lon": _num(lon_deg, 7),
            "hae": _num(UNKNOWN_M),
            "ce": _num(ce_m),
            "le": _num(UNKNOWN_M),
        },
    )
    return ev, ET.SubElement(ev, "detail")


def _sub(parent: ET.Element, tag: str, /, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, tag, attrs)


def _contact(detail: ET.Element, callsign: str, remarks: str | None = None) -> None:
    _sub(detail, "contact", callsign=callsign)
    if remarks is not None:
        ET.SubElement(detail, "remarks").text = remarks


def ce_of(cov_enu_m2: list[list[float]]) -> float:
    """CoT's ``ce`` of a fix: the one-sigma error along its major axis, √λmax of the
    east/north covariance (m; see the module's docstring)."""
    (ee, en), (_, nn) = cov_enu_m2
    half_trace = (ee + nn) / 2.0
    lam_max = half_trace + math.sqrt(max(((ee - nn) / 2.0) ** 2 + en * en, 0.0))
    return math.sqrt(max(lam_max, 0.0))


def _stale(now: datetime, at: datetime | None = None, max_age_s: float | None = None) -> datetime:
    """When what is sent now goes stale on TAK maps: :data:`FEED_STALE_S` on, or as soon as
    what it shows is ``max_age_s`` old (an estimate or a position of long ago is greyed out,
    however often it is sent again; a second on, when it already is)."""
    stale = now + timedelta(seconds=FEED_STALE_S)
    if at is not None and max_age_s is not None:
        aged = max(at + timedelta(seconds=max_age_s), now + timedelta(seconds=1))
        stale = min(stale, aged)
    return stale


def _ellipse_shape(detail: ET.Element, e: dict[str, Any]) -> None:
    """The 95 % ellipse as a CoT shape: semi-axes in metres, the major axis's bearing in
    degrees clockwise from true north."""
    _sub(
        _sub(detail, "shape"),
        "ellipse",
        major=_num(e["semi_major_m"]),
        minor=_num(e["semi_minor_m"]),
        angle=_num(e["orientation_deg"]),
    )


def fix_events(picture: Picture, now: datetime) -> list[ET.Element]:
    """The current fix (``a-n-G``, machine-fused) with its ellipse, and the ellipse drawn."""
    fix = picture.fix
    if fix is None:
        return []
    e = fix["ellipse95"]
    at = parse_time(fix["t"])
    ce = ce_of(fix["cov_enu_m2"])
    ev, detail = event(
        uid_of(picture.search_id, "fix"),
        "a-n-G",
        "m-f",
        fix["lat_deg"],
        fix["lon_deg"],
        now,
        _stale(now, at, FIX_MAX_AGE_S),
        start=at,
        ce_m=ce,
    )
    size = f"{e['semi_major_m']:.0f} × {e['semi_minor_m']:.0f} m"
    remarks = (
        f"SafetyNet search {picture.search_id}: estimated position at {fix['t']}, "
        f"95 % ellipse {size} (semi-axes), from {fix['n_bearings']} bearings and "
        f"{fix['n_pulses']} pulses."
    )
    if picture.photo_url:
        remarks += f" Photo: {picture.photo_url}"
    _contact(detail, f"{picture.label} (estimate)", remarks)
    _ellipse_shape(detail, e)
    velocity = fix.get("velocity_enu_mps")
    if velocity:
        east, north = velocity
        course = math.degrees(math.atan2(east, north)) % 360.0
        _sub(detail, "track", course=_num(course), speed=_num(math.hypot(east, north), 2))
    _sub(detail, "precisionlocation", geopointsrc="Calculated", altsrc="???")
    if picture.photo_url:
        _sub(detail, "link", url=picture.photo_url, relation="r-u", remarks="Photo")
    drawn, d = event(
        uid_of(picture.search_id, "ellipse95"),
        "u-d-c-e",
        "h-e",
        fix["lat_deg"],
        fix["lon_deg"],
        now,
        _stale(now),
        start=at,
        ce_m=ce,
    )
    _contact(d, f"{picture.label}: 95 % ellipse", f"95 % ellipse of the fix at {fix['t']}")
    _ellipse_shape(d, e)
    _sub(d, "strokeColor", value=argb(RED))
    _sub(d, "strokeWeight", value="3.0")
    _sub(d, "fillColor", value=argb(RED, 0x30))
    _sub(d, "labels_on", value="false")
    return [ev, drawn]


def bearing_events(picture: Picture, now: datetime) -> list[ET.Element]:
    """Each bearing not yet faded as a range-and-bearing line from its receiver (``u-rb-a``),
    true north, stale when it is :data:`BEARING_FADES_S` old."""
    out = []
    for b in picture.bearings:
        taken = parse_time(b["t"])
        fades = taken + timedelta(seconds=BEARING_FADES_S)
        if fades <= now:
            continue
        stale = min(fades, _stale(now))
        manual = b["method"] == "manual"
        ev, detail = event(
            uid_of(picture.search_id, "bearing", b["receiver_id"], str(b["seq"])),
            "u-rb-a",
            "h-e" if manual else "m-g",
            b["lat_deg"],
            b["lon_deg"],
            now,
            stale,
            start=taken,
        )
        _sub(detail, "range", value=_num(BEARING_RANGE_M))
        _sub(detail, "bearing", value=_num(b["bearing_deg"], 2))
        _sub(detail, "inclination", value="0.0")
        _sub(detail, "rangeUnits", value="1")
        _sub(detail, "bearingUnits", value="0")
        _sub(detail, "northRef", value="0")  # true north
        colour = MAGENTA if manual else CYAN
        _sub(detail, "strokeColor", value=argb(colour))
        _sub(detail, "strokeWeight", value="2.0")
        _sub(detail, "color", value=argb(colour))
        _contact(
            detail,
            f"{b['receiver_id']} {b['bearing_deg']:.0f}°",
            f"Bearing {b['bearing_deg']:.1f}° ± {b['sigma_deg']:.0f}° ({b['method']}) from "
            f"{b['receiver_id']} at {b['t']}",
        )
        _sub(detail, "labels_on", value="true")
        out.append(ev)
    return out


TEAM_TYPES = {"foot": "a-f-G-U-C-I", "vehicle": "a-f-G-E-V-C", "fixed": "a-f-G-E-S"}
KIND_WORDS = {"foot": "on foot", "vehicle": "vehicle", "fixed": "fixed station"}


def team_events(picture: Picture, now: datetime) -> list[ET.Element]:
    """Each team's receiver, vehicle and station at its last position. A TAK user's own
    position (``TAK-`` receivers) is on the TAK map already and is not sent back."""
    out = []
    for r in picture.receivers:
        if r["lat_deg"] is None or r["lon_deg"] is None or r["receiver_id"].startswith("TAK-"):
            continue
        kind = r.get("kind") or "fixed"
        at = parse_time(r["position_t"]) if r.get("position_t") else None
        ev, detail = event(
            uid_of(picture.search_id, "rx", r["receiver_id"]),
            TEAM_TYPES[kind],
            "m-g" if r.get("gps_fix") else "h-e",
            r["lat_deg"],
            r["lon_deg"],
            now,
            _stale(now, at, POSITION_MAX_AGE_S),
            start=at,
        )
        name = r["team"] or r["receiver_id"]
        callsign = name if name == r["receiver_id"] else f"{name} ({r['receiver_id']})"
        where = f"position at {r['position_t']}" if r.get("position_t") else "position"
        _contact(detail, callsign, f"{KIND_WORDS[kind]}, {where}")
        _sub(detail, "__group", name="Cyan", role="Team Member")
        out.append(ev)
    return out


def last_known_event(picture: Picture, now: datetime) -> ET.Element:
    """The last known point (a spot marker), from the time the person was last seen."""
    lat, lon, seen = picture.last_known
    ev, detail = event(
        uid_of(picture.search_id, "lkp"), "b-m-p-s-m", "h-e", lat, lon, now, _stale(now)
    )
    _contact(detail, "LKP", f"{picture.label}: last seen here at {format_time(seen)}")
    _sub(detail, "color", argb=argb(RED))
    return ev


def area_events(picture: Picture, now: datetime) -> list[ET.Element]:
    """The 50 % and 90 % areas, each island a closed polygon (``u-d-f``)."""
    out = []
    for area in picture.areas:
        pct = round(area.share * 100)
        colour = ORANGE if area.share <= 0.5 else YELLOW
        for k, ring in enumerate(area.rings):
            lat = sum(p[0] for p in ring[:-1]) / max(len(ring) - 1, 1)
            lon = sum(p[1] for p in ring[:-1]) / max(len(ring) - 1, 1)
            ev, detail = event(
                uid_of(picture.search_id, f"area{pct}", str(k)),
                "u-d-f",
                "m-f",
                lat,
                lon,
                now,
                _stale(now),
            )
            for p_lat, p_lon in ring:
                _sub(detail, "link", point=f"{p_lat:.7f},{p_lon:.7f}")
            _sub(detail, "strokeColor", value=argb(colour))
            _sub(detail, "strokeWeight", value="2.0")
            _sub(detail, "fillColor", value=argb(colour, 0x40))
            _contact(
                detail,
                f"{pct} % area" + (f" ({k + 1})" if len(area.rings) > 1 else ""),
                f"Smallest area holding {pct} % of the probability ({area.area_km2:.2f} km² in "
                "all)",
            )
            _sub(detail, "labels_on", value="false")
            out.append(ev)
    return out


def guidance_events(picture: Picture, now: datetime) -> list[ET.Element]:
    """Each guided team's next listening point (a waypoint)."""
    out = []
    for g in picture.guidance:
        ev, detail = event(
            uid_of(picture.search_id, "next", g["receiver_id"]),
            "b-m-p-w",
            "m-f",
            g["lat_deg"],
            g["lon_deg"],
            now,
            _stale(now),
        )
        name = g["team"] or g["receiver_id"]
        _contact(
            detail,
            f"Next: {name}",
            f"Next listening point for {name} ({g['mode']}): chance to hear the bracelet "
            f"{g['p_detect']:.0%}",
        )
        _sub(detail, "link", uid=uid_of(picture.search_id, "rx", g["receiver_id"]),
             relation="p-p", type="a-f-G-U-C-I")  # fmt: skip
        out.append(ev)
    return out


def picture_events(picture: Picture, now: datetime) -> list[ET.Element]:
    """The whole current picture of a search at ``now``."""
    return [
        last_known_event(picture, now),
        *area_events(picture, now),
        *fix_events(picture, now),
        *bearing_events(picture, now),
        *team_events(picture, now),
        *guidance_events(picture, now),
    ]


def chat_event(
    search_id: str,
    text: str,
    now: datetime,
    where: tuple[float, float],
    message_id: str | None = None,
) -> ET.Element:
    """A search event as a GeoChat line to All Chat Rooms, from the search's own sender."""
    sender = uid_of(search_id)
    message_id = message_id or uuid.uuid4().hex
    ev, detail = event(
        f"GeoChat.{sender}.{CHATROOM}.{message_id}",
        "b-t-f",
        "h-g-i-g-o",
        where[0],
        where[1],
        now,
        now + timedelta(days=1),
    )
    chat = _sub(
        detail,
        "__chat",
        parent="RootContactGroup",
        groupOwner="false",
        chatroom=CHATROOM,
        id=CHATROOM,
        senderCallsign=f"SafetyNet {search_id[:8]}",
    )
    _sub(chat, "chatgrp", uid0=sender, uid1=CHATROOM, id=CHATROOM)
    _sub(detail, "link", uid=sender, type="a-f-G-U-C", relation="p-p")
    remarks = _sub(detail, "remarks", source=f"BAO.F.SafetyNet.{sender}", to=CHATROOM,
                   time=cot_time(now))  # fmt: skip
    remarks.text = text
    return ev


def delete_event(uid: str, now: datetime) -> ET.Element:
    """Remove the object ``uid`` from TAK maps (it left the picture)."""
    ev, detail = event(
        f"{uid}.delete", "t-x-d-d", "h-g-i-g-o", 0.0, 0.0, now,
        now + timedelta(seconds=DELETE_STALE_S),
    )  # fmt: skip
    _sub(detail, "link", uid=uid, relation="none", type="none")
    _sub(detail, "__forcedelete")
    return ev


def to_bytes(ev: ET.Element) -> bytes:
    """One event as it goes on the wire (UTF-8, no XML declaration)."""
    return bytes(ET.tostring(ev, encoding="utf-8", xml_declaration=False))


def document(events: list[ET.Element]) -> bytes:
    """The events as one CoT XML file: ``<events>`` around them, as TAK Server answers a
    query for several."""
    root = ET.Element("events")
    root.extend(events)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


def data_package(name: str, package_uid: str, events: list[ET.Element]) -> bytes:
    """A TAK data package (a .zip a TAK user imports): each event as its own ``.cot`` file and
    ``MANIFEST/manifest.xml`` (MissionPackageManifest version 2) listing them."""
    manifest = ET.Element("MissionPackageManifest", {"version": "2"})
    config = _sub(manifest, "Configuration")
    _sub(config, "Parameter", name="uid", value=package_uid)
    _sub(config, "Parameter", name="name", value=name)
    contents = _sub(manifest, "Contents")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for ev in events:
            uid = ev.get("uid", "")
            folder = "".join(c if c.isalnum() or c in "._-" else "_" for c in uid)
            entry = f"{folder}/{folder}.cot"
            zf.writestr(entry, ET.tostring(ev, encoding="utf-8", xml_declaration=True))
            content = _sub(contents, "Content", ignore="false", zipEntry=entry)
            _sub(content, "Parameter", name="uid", value=uid)
        zf.writestr(
            "MANIFEST/manifest.xml",
            ET.tostring(manifest, encoding="utf-8", xml_declaration=True),
        )
    return buffer.getvalue()
