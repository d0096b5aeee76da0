"""The agency's local time: what people type into the pages and read on them.

Times are stored and sent as aware UTC; a person reads and types the agency's wall clock
(``SAFETYNET_TIME_ZONE``, the server machine's own zone when unset). A time typed without an
offset (a ``datetime-local`` field) is read in that zone, daylight saving included.
"""

from __future__ import annotations

import contextlib
import functools
import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from safetynet.settings import Settings


def agency_zone(settings: Settings) -> tzinfo:
    if settings.time_zone:
        return ZoneInfo(settings.time_zone)
    return machine_zone()


@functools.cache
def machine_zone() -> tzinfo:
    """The server machine's zone with its rules (daylight saving included): ``TZ``, else what
    ``/etc/localtime`` links to, else ``/etc/timezone``; a fixed offset only when none names one."""
    names = [os.environ.get("TZ", "").removeprefix(":")]
    with contextlib.suppress(OSError):
        target = str(Path("/etc/localtime").resolve())
        names.append(target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else "")
    with contextlib.suppress(OSError):
        names.append(Path("/etc/timezone").read_text().strip())
    for name in names:
        if name:
            with contextlib.suppress(ValueError, OSError, KeyError):  # not a zone's name
                return ZoneInfo(name)
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else UTC


def as_aware(t: datetime, zone: tzinfo) -> datetime:
    """``t`` with its offset; a naive time is the agency's wall clock."""
    return t if t.tzinfo is not None else t.replace(tzinfo=zone)


def zone_label(zone: tzinfo, at: datetime | None = None) -> str:
    """The zone as people name it now (``EST``, ``UTC+01:00``)."""
    name = (at or datetime.now(UTC)).astimezone(zone).tzname() or "local"
    return name if name.isalpha() else f"UTC{name}"


def local_text(value: str | datetime | None, zone: tzinfo) -> str:
    """An ISO time (or datetime) as the agency's wall clock, ``2026-12-02 03:10 EST``."""
    if value is None or value == "":
        return "—"
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    t = (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(zone)
    return f"{t:%Y-%m-%d %H:%M} {zone_label(zone, t)}"
