"""US National Grid references (the civil form of MGRS on WGS 84) beside decimal degrees.

The pages convert in the browser (``ui/static/where.js``, so that a team page without coverage
still reads and takes references); the server writes them into exported files and the pages it
renders, through the ``mgrs`` package (GEOTRANS). Both give "18S UJ 23480 06470": the zone
without a leading zero, then the band, the 100 km square and the digits, truncated to the square
the point lies in. Latitudes beyond 80° S and 84° N (the polar UPS grid) have no reference here.
"""

from __future__ import annotations

import re

import mgrs  # type: ignore[import-untyped]

from safetynet.errors import InputError

_GRID = mgrs.MGRS()
_REFERENCE = re.compile(r"^(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z][A-HJ-NP-V])(\d*)$")


def usng(lat_deg: float, lon_deg: float, digits: int = 5) -> str | None:
    """The reference of a point to ``digits`` digits each way (5: 1 m ... 0: 100 km)."""
    if not (-80.0 <= lat_deg <= 84.0 and -180.0 <= lon_deg <= 180.0):
        return None
    packed = _GRID.toMGRS(lat_deg, lon_deg, MGRSPrecision=digits)
    if isinstance(packed, bytes):
        packed = packed.decode()
    m = _REFERENCE.match(packed)
    if m is None:  # pragma: no cover - GEOTRANS always answers in this form within the grid
        raise ValueError(f"unexpected MGRS form {packed!r}")
    zone, band, square, numbers = m.groups()
    half = len(numbers) // 2
    head = f"{int(zone)}{band} {square}"
    return f"{head} {numbers[:half]} {numbers[half:]}" if numbers else head


def parse_usng(text: str) -> tuple[float, float, float]:
    """A typed reference as (lat, lon) of the centre of the square it names, and the square's
    size in metres; :class:`InputError` saying what is wrong otherwise."""
    packed = re.sub(r"[\s,]+", "", text).upper()
    m = _REFERENCE.match(packed)
    if m is None:
        raise InputError(
            f"{text.strip()!r} is not a USNG reference: it reads zone, band, two square letters, "
            "then digits, such as 18S UJ 23480 06470"
        )
    zone, band, square, numbers = m.groups()
    if not 1 <= int(zone) <= 60:
        raise InputError(f"zone {int(zone)} does not exist: zones run 1 to 60")
    if len(numbers) % 2 or len(numbers) > 10:
        raise InputError(
            "a USNG reference has as many easting digits as northing digits, at most 5 each"
        )
    try:
        lat, lon = _GRID.toLatLon(f"{int(zone):02d}{band}{square}{numbers}")
    except mgrs.core.MGRSError as err:
        raise InputError(f"{text.strip()!r} names no place on the grid ({err})") from None
    return float(lat), float(lon), 10.0 ** (5 - len(numbers) // 2)
