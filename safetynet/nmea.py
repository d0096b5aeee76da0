"""NMEA 0183 framing and fields, shared by the handheld emulator and the handheld reader (SNHH-1).

``$<talker+type>,<fields>*<HH>\\r\\n``: ``HH`` is the XOR of every byte between ``$`` and ``*``,
as two upper-case hex digits.

Dates: RMC carries ``ddmmyy`` with a two-digit year, read with a pivot (``80``–``99`` → 19yy,
``00``–``79`` → 20yy), the rule gpsd and most GNSS software follow, so a cold-start receiver's
``050180`` (the GPS epoch, 1980) and a week-rollover ``220899`` read as the receiver says them
(1980, 1999) instead of 2080 and 2099. Like gpsd, the reader keeps the date the receiver gives:
it does not guess a rollover correction. A sentence without a date (GGA, the unit's own) takes
the date of the last one that had it, a day later only when it lies just past midnight from it
(:func:`day_offset`).
"""

from __future__ import annotations

import re
from datetime import date
from functools import reduce

TWO_DIGIT_YEAR_PIVOT = 80  # yy at or above: 19yy; below: 20yy
DAY_S = 86_400.0
MIDNIGHT_WINDOW_S = 900.0  # a sentence this close after (or before) midnight from the dated one
_HHMMSS_RE = re.compile(r"^\d{6}(\.\d+)?$")
_DDMMYY_RE = re.compile(r"^\d{6}$")


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
