"""Reading a handheld search receiver (SNHH-1) over a serial port, and turning it into reports.

:class:`SnhhParser` is the pure part: it is fed lines with the host time they arrived at and
returns ``pulse`` and ``status`` reports. It keeps the unit's identity (``$PSNID``), the GNSS
fix and date (``RMC``, ``GGA``, ``ZDA`` from any talker), and the heading stream (``HDT``), and
gives each pulse the position of the latest fix and the heading interpolated at the pulse's time
(across the wrap at 360°). ``HDT`` carries no time of its own: each is stamped with its arrival,
mapped to UTC through the arrivals of the timed sentences (a running fit of UTC against host
time, so a unit replayed faster than real time still lines up). A pulse waits for the first
heading after it (at most ``HEADING_WAIT_S``) so that its heading is interpolated, not
extrapolated.

It survives what SNHH-1 says it must: bad checksums, truncated lines, line noise, a partial first
line, ``\\n`` without ``\\r``, lines past 256 characters (dropped and counted), unknown sentences
(ignored), and no GNSS fix (pulses kept, position ``null``).

:class:`HandheldReader` opens the port with pyserial and reconnects, without losing what it has
read, when the unit is unplugged and plugged back in.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from safetynet.angles import angle_diff_deg, wrap_360
from safetynet.nmea import split_sentence
from safetynet.reports import Pulse, PulseStatus, Report, Status

log = logging.getLogger(__name__)

MAX_LINE = 256
HEADING_WAIT_S = 0.5
HEADING_KEEP_S = 5.0


@dataclass(frozen=True)
class GnssFix:
    """A position (or its absence) from RMC or GGA."""

    time: datetime | None  # None until the date is known
    time_of_day_s: float
    lat_deg: float | None
    lon_deg: float | None
    alt_m: float | None
    valid: bool


def _nmea_angle(value: str, hemisphere: str, degree_digits: int) -> float | None:
    if not value or not hemisphere:
        return None
    try:
        degrees = float(value[:degree_digits])
        minutes = float(value[degree_digits:])
    except ValueError:
        return None
    angle = degrees + minutes / 60.0
    return -angle if hemisphere in ("S", "W") else angle


def _time_of_day(text: str) -> float | None:
    try:
        return int(text[0:2]) * 3600 + int(text[2:4]) * 60 + float(text[4:])
    except (ValueError, IndexError):
        return None


@dataclass
class SnhhParser:
    """State of one handheld unit's stream."""

    receiver_id: str | None = None
    next_seq: Callable[[], int] = field(default_factory=lambda: iter(range(10**18)).__next__)
    unit_id: str | None = None
    antenna: str = "yagi3"
    date: date | None = None
    fix: GnssFix | None = None
    gain_db: float | None = None
    bad_lines: int = 0
    unknown: int = 0
    fixes: list[GnssFix] = field(default_factory=list)
    keep_fixes: bool = False
    _headings: deque[tuple[float, float]] = field(default_factory=deque)  # (utc_s, deg unwrapped)
    _anchors: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=20))
    _waiting: list[tuple[Pulse, float]] = field(default_factory=list)  # pulse, utc_s
    _clipped: bool = False

    # --- time ---------------------------------------------------------------------------------
    def _anchor(self, arrival_s: float, utc_s: float) -> None:
        self._anchors.append((arrival_s, utc_s))

    def _utc_of_arrival(self, arrival_s: float) -> float | None:
        if not self._anchors:
            return None
        if len(self._anchors) < 2:
            a, u = self._anchors[-1]
            return u + (arrival_s - a)
        arr = np.array(self._anchors)
        span = arr[-1, 0] - arr[0, 0]
        rate = (arr[-1, 1] - arr[0, 1]) / span if span > 0 else 1.0
        a, u = self._anchors[-1]
        return float(u + (arrival_s - a) * rate)

    def _utc_s(self, time_of_day_s: float) -> float | None:
        """Seconds since the epoch of a time of day, on the known date (across midnight)."""
        if self.date is None:
            return None
        day = datetime(self.date.year, self.date.month, self.date.day, tzinfo=UTC)
        utc = day.timestamp() + time_of_day_s
        if self.fix is not None and self.fix.time is not None:
            last = self.fix.time.timestamp()
            if utc < last - 43_200:  # past midnight, before the next RMC brings the new date
                utc += 86_400
        return utc

    # --- lines --------------------------------------------------------------------------------
    def feed(self, arrival_s: float, line: str) -> list[Report]:
        """One line (with or without its line end); returns the reports it completes."""
        if len(line) > MAX_LINE:
            self.bad_lines += 1
            return []
        fields = split_sentence(line)
        if fields is None:
            if line.strip():
                self.bad_lines += 1
            return self._release(arrival_s, force=False)
        address = fields[0]
        kind = address[2:] if len(address) == 5 else address
        handler = {
            "RMC": self._rmc, "GGA": self._gga, "ZDA": self._zda, "HDT": self._hdt,
            "PSNID": self._psnid, "PSNPD": self._psnpd, "PSNST": self._psnst,
        }.get(address if address.startswith("PSN") else kind)  # fmt: skip
        if handler is None:
            self.unknown += 1
            return self._release(arrival_s, force=False)
        try:
            reports = handler(arrival_s, fields)
        except (ValueError, IndexError) as err:
            log.debug("dropping malformed %s: %s", address, err)
            self.bad_lines += 1
            reports = []
        return reports + self._release(arrival_s, force=False)

    def flush(self) -> list[Report]:
        """Release the pulses still waiting for a heading (end of stream)."""
        return self._release(float("inf"), force=True)

    def _rmc(self, arrival_s: float, f: list[str]) -> list[Report]:
        tod = _time_of_day(f[1])
        if f[9] and len(f[9]) == 6:
            self.date = date(2000 + int(f[9][4:6]), int(f[9][2:4]), int(f[9][0:2]))
        if tod is None:
            return []
        valid = f[2] == "A"
        lat = _nmea_angle(f[3], f[4], 2) if valid else None
        lon = _nmea_angle(f[5], f[6], 3) if valid else None
        self._set_fix(arrival_s, tod, lat, lon, self.fix.alt_m if self.fix else None, valid)
        return []

    def _gga(self, arrival_s: float, f: list[str]) -> list[Report]:
        tod = _time_of_day(f[1])
        if tod is None:
            return []
        quality = int(f[6] or 0)
        satellites = int(f[7]) if f[7] else None
        valid = quality > 0 and satellites != 0  # a "fix" from no satellites is none (as gpsd)
        lat = _nmea_angle(f[2], f[3], 2) if valid else None
        lon = _nmea_angle(f[4], f[5], 3) if valid else None
        alt = float(f[9]) + float(f[11] or 0) if valid and f[9] else None  # MSL + geoid = HAE
        self._set_fix(arrival_s, tod, lat, lon, alt, valid)
        return []

    def _zda(self, arrival_s: float, f: list[str]) -> list[Report]:
        if f[2] and f[3] and f[4]:
            self.date = date(int(f[4]), int(f[3]), int(f[2]))
        tod = _time_of_day(f[1])
        utc = None if tod is None else self._utc_s(tod)
        if utc is not None:
            self._anchor(arrival_s, utc)
        return []

    def _set_fix(
        self,
        arrival_s: float,
        tod: float,
        lat: float | None,
        lon: float | None,
        alt: float | None,
        valid: bool,
    ) -> None:
        utc = self._utc_s(tod)
        when = None if utc is None else datetime.fromtimestamp(utc, UTC)
        valid = valid and lat is not None and lon is not None
        self.fix = GnssFix(
            when, tod, lat if valid else None, lon if valid else None, alt if valid else None, valid
        )
        if self.keep_fixes:
            self.fixes.append(self.fix)
        if utc is not None:
            self._anchor(arrival_s, utc)

    def _hdt(self, arrival_s: float, f: list[str]) -> list[Report]:
        if not f[1]:
            return []
        heading = float(f[1])
        if not 0.0 <= heading < 360.0:
            raise ValueError(f"heading {heading} outside [0, 360)")
        utc = self._utc_of_arrival(arrival_s)
        if utc is None:
            return []
        if self._headings:
            last = self._headings[-1][1]
            heading = last + angle_diff_deg(heading, wrap_360(last))  # unwrap
        self._headings.append((utc, heading))
        while self._headings and self._headings[0][0] < utc - HEADING_KEEP_S:
            self._headings.popleft()
        return []

    def _psnid(self, arrival_s: float, f: list[str]) -> list[Report]:
        self.unit_id = f[1]
        if f[3] in ("yagi3", "omni"):
            self.antenna = f[3]
        return []

    def _psnpd(self, arrival_s: float, f: list[str]) -> list[Report]:
        tod = _time_of_day(f[1])
        utc = None if tod is None else self._utc_s(tod)
        if utc is None:
            log.debug("pulse before the date is known: dropped")
            return []
        channel = int(f[2])
        decoded = bool(f[4]) and bool(f[5])
        self.gain_db = float(f[8]) if f[8] else self.gain_db
        fix = self.fix if self.fix is not None and self.fix.valid else None
        pulse = Pulse(
            receiver_id=self.receiver_id or self.unit_id or "HANDHELD",
            seq=self.next_seq(),
            t=datetime.fromtimestamp(utc, UTC),
            channel=channel,
            freq_hz=int(f[3]),
            bracelet_id=f[4] if decoded else None,
            status=PulseStatus.from_byte(int(f[5], 16)) if decoded else None,
            rssi_dbm=float(f[6]),
            snr_db=float(f[7]),
            gain_db=self.gain_db,
            lat_deg=None if fix is None else fix.lat_deg,
            lon_deg=None if fix is None else fix.lon_deg,
            alt_m=None if fix is None else fix.alt_m,
            heading_deg=None,
            antenna="yagi3" if self.antenna == "yagi3" else "omni",
        )
        self._waiting.append((pulse, utc))
        return []

    def _psnst(self, arrival_s: float, f: list[str]) -> list[Report]:
        tod = _time_of_day(f[1])
        utc = None if tod is None else self._utc_s(tod)
        if utc is None:
            return []
        self._anchor(arrival_s, utc)
        fix = self.fix if self.fix is not None and self.fix.valid else None
        return [
            Status(
                receiver_id=self.receiver_id or self.unit_id or "HANDHELD",
                seq=self.next_seq(),
                t=datetime.fromtimestamp(utc, UTC),
                lat_deg=None if fix is None else fix.lat_deg,
                lon_deg=None if fix is None else fix.lon_deg,
                gps_fix=fix is not None,
                gain_db=self.gain_db,
                noise_dbm=None,
                clipping=f[4] == "1",
                battery_v=float(f[2]) if f[2] else None,
                lo_error_ppm=None,
            )
        ]

    def _release(self, arrival_s: float, force: bool) -> list[Report]:
        """Pulses whose heading can now be interpolated (or that waited long enough)."""
        if not self._waiting:
            return []
        now = self._utc_of_arrival(arrival_s) if np.isfinite(arrival_s) else None
        out: list[Report] = []
        keep: list[tuple[Pulse, float]] = []
        latest = self._headings[-1][0] if self._headings else None
        for pulse, utc in self._waiting:
            ready = force or (latest is not None and latest >= utc)
            stale = now is not None and now - utc > HEADING_WAIT_S
            if ready or stale:
                heading = self._heading_at(utc)
                out.append(pulse.model_copy(update={"heading_deg": heading}))
            else:
                keep.append((pulse, utc))
        self._waiting = keep
        return out

    def _heading_at(self, utc: float) -> float | None:
        if not self._headings:
            return None
        times = np.array([t for t, _ in self._headings])
        values = np.array([h for _, h in self._headings])
        if utc < times[0] - 0.2 or utc > times[-1] + 0.2:
            return None  # no heading near that moment
        return round(wrap_360(float(np.interp(utc, times, values))), 1) % 360.0


class HandheldReader:
    """Reports from a handheld unit on a serial port, reconnecting when it goes away."""

    def __init__(
        self,
        port: str,
        parser: SnhhParser | None = None,
        baud: int = 115_200,
        retry_s: float = 0.5,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.port = port
        self.parser = parser or SnhhParser()
        self.baud = baud
        self.retry_s = retry_s
        self.stop = stop or (lambda: False)
        self.reconnects = 0

    def reports(self) -> Iterator[Report]:
        import serial  # pyserial; imported here so the rest of the package does not need it

        buffer = b""
        handle: serial.Serial | None = None
        first_line = True
        while not self.stop():
            if handle is None:
                try:
                    handle = serial.Serial(self.port, self.baud, timeout=0.2)
                except (serial.SerialException, OSError) as err:
                    log.debug("serial %s not there yet: %s", self.port, err)
                    time.sleep(self.retry_s)
                    continue
                log.info("serial %s open", self.port)
                buffer, first_line = b"", True
            try:
                data = handle.read(4096)
            except (serial.SerialException, OSError) as err:
                log.warning("serial %s went away (%s); waiting for it to come back", self.port, err)
                handle.close()
                handle = None
                self.reconnects += 1
                continue
            now = time.monotonic()
            if not data:
                yield from self.parser.feed(now, "")
                continue
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > 4 * MAX_LINE:  # noise with no line end: drop it
                self.parser.bad_lines += 1
                buffer = b""
            for raw in lines:
                if first_line:  # whatever was in flight when we opened: likely partial
                    first_line = False
                    if not raw.startswith(b"$"):
                        continue
                yield from self.parser.feed(now, raw.decode("ascii", errors="replace"))
        if handle is not None:
            handle.close()
        yield from self.parser.flush()
