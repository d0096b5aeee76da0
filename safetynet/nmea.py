"""NMEA 0183 framing and fields, shared by the handheld reader (SNHH-1), the live GNSS reader
(:mod:`receiver.gnss`) and the simulator's emulators of both.

``$<talker+type>,<fields>*<HH>\\r\\n``: ``HH`` is the XOR of every byte between ``$`` and ``*``,
as two upper-case hex digits.

Dates: RMC carries ``ddmmyy`` with a two-digit year, read with a pivot (``80``–``99`` → 19yy,
``00``–``79`` → 20yy), the rule gpsd and most GNSS software follow, so a cold-start receiver's
``050180`` (the GPS epoch, 1980) and a week-rollover ``220899`` read as the receiver says them
(1980, 1999) instead of 2080 and 2099. Like gpsd, the reader keeps the date the receiver gives:
it does not guess a rollover correction. A sentence without a date (GGA, the unit's own) takes
the date of the last one that had it, a day later only when it lies just past midnight from it
(:func:`day_offset`).

Positions: ``ddmm.mmmm`` / ``dddmm.mmmm`` with a hemisphere letter (:func:`nmea_angle`, and
:func:`lat_field` / :func:`lon_field` to write them). :func:`rmc_fields` and :func:`gga_fields`
read the two fix sentences once for every reader. :class:`LineFramer` cuts a byte stream into
lines the way a port delivers them (a partial first line, noise with no line end);
:class:`ArrivalClock` maps a line's host arrival time to the unit's UTC, for sentences that carry
no time (``HDT``, ``HDG``).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce

TWO_DIGIT_YEAR_PIVOT = 80  # yy at or above: 19yy; below: 20yy
DAY_S = 86_400.0
MIDNIGHT_WINDOW_S = 900.0  # a sentence this close after (or before) midnight from the dated one
_HHMMSS_RE = re.compile(r"^\d{6}(\.\d+)?$")
_DDMMYY_RE = re.compile(r"^\d{6}$")
KNOT_MPS = 1852.0 / 3600.0
MAX_LINE = 256  # NMEA says 82 characters; units' own sentences run longer, none this long
ANCHORS = 20  # timed arrivals in the fit of UTC against host time
TIME_BACK_TOLERANCE_S = 1.0  # the unit's time going back more than this: a new timeline


def checksum(body: str) -> int:
    """XOR of the bytes of ``body`` (the text between ``$`` and ``*``)."""
    return reduce(lambda acc, byte: acc ^ byte, body.encode("ascii"), 0)


def sentence(*fields: str) -> str:
    """A complete sentence with checksum and CRLF from its fields (the first is the address)."""
    body = ",".join(fields)
    return f"${body}*{checksum(body):02X}\r\n"


def split_sentence(line: str) -> list[str] | None:
    """The fields of a sentence whose checksum is right, or None.

    ``line`` may end with ``\\r\\n`` or ``\\n``; a sentence without ``*HH`` is refused.
    """
    text = line.rstrip("\r\n")
    if not text.startswith("$") or len(text) < 5 or text[-3] != "*":
        return None
    body, given = text[1:-3], text[-2:]
    try:
        expected = int(given, 16)
    except ValueError:
        return None
    if any(not 32 <= ord(ch) < 127 for ch in body) or checksum(body) != expected:
        return None
    return body.split(",")


def time_of_day_s(hhmmss: str) -> float | None:
    """Seconds since midnight of an ``hhmmss[.sss]`` field; None when empty or malformed."""
    if not _HHMMSS_RE.match(hhmmss):
        return None
    hours, minutes, seconds = int(hhmmss[0:2]), int(hhmmss[2:4]), float(hhmmss[4:])
    if hours > 23 or minutes > 59 or seconds >= 61.0:  # 60.x: a leap second
        return None
    return hours * 3600 + minutes * 60 + seconds


def rmc_date(ddmmyy: str) -> date | None:
    """The date of an RMC ``ddmmyy`` field (two-digit year by the pivot); None when empty,
    malformed (such as ``2208-1``) or not a calendar date."""
    if not _DDMMYY_RE.match(ddmmyy):
        return None
    yy = int(ddmmyy[4:6])
    year = (1900 if yy >= TWO_DIGIT_YEAR_PIVOT else 2000) + yy
    try:
        return date(year, int(ddmmyy[2:4]), int(ddmmyy[0:2]))
    except ValueError:
        return None


def day_offset(time_of_day_s: float, dated_time_of_day_s: float) -> int:
    """Days to add to the last known date for a sentence at ``time_of_day_s``, the date having
    come with a sentence at ``dated_time_of_day_s``: +1 just past midnight after it, −1 just
    before midnight ahead of it (a sentence stamped 23:59:59.9 read after 00:00:00's date), 0
    otherwise — also when time jumps (a cold start, a second session): the date stays the
    receiver's until it says another."""
    if time_of_day_s + DAY_S - dated_time_of_day_s <= MIDNIGHT_WINDOW_S:
        return 1
    if dated_time_of_day_s + DAY_S - time_of_day_s <= MIDNIGHT_WINDOW_S:
        return -1
    return 0


def zda_date(f: list[str]) -> date | None:
    """The date of a ZDA's fields (day, month, four-digit year); None when a field is empty or
    it is not a calendar date."""
    if not (f[2] and f[3] and f[4]):
        return None
    try:
        return date(int(f[4]), int(f[3]), int(f[2]))
    except (ValueError, OverflowError):  # not a calendar date, or a year of 20 digits
        return None


def utc_seconds(on: date, dated_time_of_day_s: float, time_of_day_s: float) -> float:
    """Seconds since the epoch of a sentence at ``time_of_day_s``, the last date given being
    ``on`` (with a sentence at ``dated_time_of_day_s``): a day later just past midnight from
    it, a day earlier just before (:func:`day_offset`)."""
    day = datetime(on.year, on.month, on.day, tzinfo=UTC)
    offset = day_offset(time_of_day_s, dated_time_of_day_s)
    return day.timestamp() + time_of_day_s + DAY_S * offset


def nmea_angle(value: str, hemisphere: str, degree_digits: int) -> float | None:
    """Degrees of a ``ddmm.mmmm`` (``degree_digits`` = 2) or ``dddmm.mmmm`` (3) field with its
    hemisphere (S and W negative); None when empty or malformed."""
    if not value or hemisphere not in ("N", "S", "E", "W"):
        return None
    try:
        degrees = float(value[:degree_digits])
        minutes = float(value[degree_digits:])
    except ValueError:
        return None
    if not 0.0 <= minutes < 60.0 or degrees < 0:
        return None
    angle = degrees + minutes / 60.0
    return -angle if hemisphere in ("S", "W") else angle


def lat_field(lat_deg: float) -> tuple[str, str]:
    """``ddmm.mmmm`` and N/S of a latitude."""
    lat = abs(lat_deg)
    deg = int(lat)
    return f"{deg:02d}{(lat - deg) * 60:07.4f}", "N" if lat_deg >= 0 else "S"


def lon_field(lon_deg: float) -> tuple[str, str]:
    """``dddmm.mmmm`` and E/W of a longitude."""
    lon = abs(lon_deg)
    deg = int(lon)
    return f"{deg:03d}{(lon - deg) * 60:07.4f}", "E" if lon_deg >= 0 else "W"


@dataclass(frozen=True)
class FixFields:
    """What an RMC or a GGA says: its time of day, and a position only when it is a fix."""

    time_of_day_s: float | None
    valid: bool
    lat_deg: float | None
    lon_deg: float | None
    alt_m: float | None = None  # GGA: height above the ellipsoid (MSL + geoid separation)
    speed_mps: float | None = None  # RMC: speed over ground
    course_deg: float | None = None  # RMC: course over ground, true
    variation_deg: float | None = None  # RMC: magnetic variation, east positive
    date: date | None = None  # RMC


def _float_or_none(value: str) -> float | None:
    return float(value) if value else None


def rmc_fields(f: list[str]) -> FixFields:
    """An RMC's fields (``f[0]`` the address). A fix when its status is ``A`` (as gpsd reads
    it). Raises ValueError or IndexError on a malformed numeric field."""
    tod = time_of_day_s(f[1])
    valid = f[2] == "A"
    lat = nmea_angle(f[3], f[4], 2) if valid else None
    lon = nmea_angle(f[5], f[6], 3) if valid else None
    speed_kn = _float_or_none(f[7])
    course = _float_or_none(f[8])
    if course is not None and not 0.0 <= course <= 360.0:
        raise ValueError(f"course {course} outside 0..360")
    variation = _float_or_none(f[10]) if len(f) > 11 else None
    if variation is not None:
        if f[11][:1] not in ("E", "W") or not 0.0 <= variation <= 180.0:
            raise ValueError(f"magnetic variation {f[10]!r} {f[11]!r}")
        variation = -variation if f[11].startswith("W") else variation
    valid = valid and lat is not None and lon is not None
    return FixFields(
        tod, valid, lat if valid else None, lon if valid else None,
        speed_mps=None if speed_kn is None else speed_kn * KNOT_MPS,
        course_deg=None if course is None else course % 360.0,
        variation_deg=variation, date=rmc_date(f[9]),
    )  # fmt: skip


def gga_fields(f: list[str]) -> FixFields:
    """A GGA's fields: a fix when its quality is not 0 and it has satellites (a "fix" from none
    is none, as gpsd says)."""
    tod = time_of_day_s(f[1])
    quality = int(f[6] or 0)
    satellites = int(f[7]) if f[7] else None
    valid = quality > 0 and satellites != 0
    lat = nmea_angle(f[2], f[3], 2) if valid else None
    lon = nmea_angle(f[4], f[5], 3) if valid else None
    alt = float(f[9]) + float(f[11] or 0) if valid and f[9] else None  # MSL + geoid = HAE
    valid = valid and lat is not None and lon is not None
    return FixFields(tod, valid, lat if valid else None, lon if valid else None,
                     alt if valid else None)  # fmt: skip


@dataclass
class LineFramer:
    """Bytes as a port delivers them in, lines out.

    The first line after (re)opening is dropped unless it starts with ``$`` (it was in flight);
    a line longer than ``MAX_LINE`` and noise that never ends a line are dropped and counted.
    """

    dropped: int = 0
    _buffer: bytes = b""
    _first: bool = True

    def restart(self) -> None:
        """The port was opened again: whatever comes first may be a partial line."""
        self._buffer, self._first = b"", True

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > 4 * MAX_LINE:  # noise with no line end
            self.dropped += 1
            self._buffer = b""
        out: list[str] = []
        for raw in lines:
            if self._first:
                self._first = False
                if not raw.startswith(b"$"):
                    continue
            if len(raw) > MAX_LINE:
                self.dropped += 1
                continue
            out.append(raw.decode("ascii", errors="replace"))
        return out


@dataclass
class ArrivalClock:
    """The unit's UTC at a host arrival time: a running fit of the timed sentences' UTC against
    their arrivals (so a unit replayed faster than real time still lines up)."""

    _anchors: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=ANCHORS))

    def anchor(self, arrival_s: float, utc_s: float) -> bool:
        """Add a timed sentence; False when the unit's time went back (the fit starts afresh)."""
        back = bool(self._anchors) and utc_s < self._anchors[-1][1] - TIME_BACK_TOLERANCE_S
        if back:
            self._anchors.clear()
        self._anchors.append((arrival_s, utc_s))
        return not back

    @property
    def last_utc_s(self) -> float | None:
        return self._anchors[-1][1] if self._anchors else None

    def clear(self) -> None:
        self._anchors.clear()

    def utc_of_arrival(self, arrival_s: float) -> float | None:
        if not self._anchors:
            return None
        a0, u0 = self._anchors[0]
        a, u = self._anchors[-1]
        span = a - a0
        rate = (u - u0) / span if len(self._anchors) > 1 and span > 0 else 1.0
        return u + (arrival_s - a) * rate
