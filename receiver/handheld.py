"""Reading a handheld search receiver (SNHH-1) over a serial port, and turning it into reports.

:class:`SnhhParser` is the pure part: it is fed lines with the host time they arrived at and
returns ``pulse`` and ``status`` reports. It keeps the unit's identity (``$PSNID``), the GNSS
fix and date (``RMC``, ``GGA``, ``ZDA`` from any talker), and the heading stream (``HDT``), and
gives each pulse the position of the latest fix and the heading interpolated at the pulse's time
(across the wrap at 360°). ``HDT`` carries no time of its own: each is stamped with its arrival,
mapped to UTC through the arrivals of the timed sentences (a running fit of UTC against host
time, so a unit replayed faster than real time still lines up). A pulse waits for the first
heading after it (at most ``HEADING_WAIT_S``) so that its heading is interpolated, not
extrapolated; when the unit's time goes back (a second session, a cold start's clock), the
pulses still waiting are released with what is known and the heading history starts afresh.

Dates follow :mod:`safetynet.nmea`: RMC's two-digit year by the pivot (1980–2079), ZDA's
four-digit year as given, and a sentence without a date on the last date given, a day later
only when it lies just past midnight from it. The date the unit gives is kept as it gives it,
as gpsd does (a cold start's 1980 stays 1980 until the unit says otherwise).

It survives what SNHH-1 says it must: bad checksums, truncated lines, line noise, a partial first
line, ``\\n`` without ``\\r``, lines past 256 characters (dropped and counted), unknown sentences
(ignored), and no GNSS fix (pulses kept, position ``null``).

:class:`HandheldReader` opens the port with pyserial and reconnects, without losing what it has
read, when the unit is unplugged and plugged back in.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from safetynet.angles import angle_diff_deg, wrap_360
from safetynet.antennas import antenna_named
from safetynet.nmea import (
    MAX_LINE,
    ArrivalClock,
    LineFramer,
    gga_fields,
    rmc_fields,
    split_sentence,
    time_of_day_s,
    utc_seconds,
    zda_date,
)
from safetynet.reports import Antenna, Pulse, PulseStatus, Report, Status

log = logging.getLogger(__name__)

HEADING_WAIT_S = 0.5
HEADING_KEEP_S = 5.0
HEADING_REACH_S = 0.2  # a heading is interpolated only this near the sentences around it
UNDATED_WAIT_S = 2.0  # a pulse heard before the first date waits this long (host time) for one
MAX_WAITING = 256  # pulses waiting for a heading, at most (the oldest go out first)
CalendarDate = date  # the parser has a field named ``date``
_UNSET_TIME = datetime(1970, 1, 1, tzinfo=UTC)  # a pulse's time until its date is known


@dataclass(frozen=True)
class GnssFix:
    """A position (or its absence) from RMC or GGA."""

    time: datetime | None  # None until the date is known
    time_of_day_s: float
    lat_deg: float | None
    lon_deg: float | None
    alt_m: float | None
    valid: bool


@dataclass
class SnhhParser:
    """State of one handheld unit's stream."""

    receiver_id: str | None = None
    next_seq: Callable[[], int] = field(default_factory=lambda: iter(range(10**18)).__next__)
    unit_id: str | None = None
    antenna: Antenna = "yagi3"
    date: date | None = None
    date_time_of_day_s: float = 0.0  # the time of day of the sentence that gave ``date``
    fix: GnssFix | None = None
    gain_db: float | None = None
    bad_lines: int = 0
    unknown: int = 0
    fixes: list[GnssFix] = field(default_factory=list)
    keep_fixes: bool = False
    _headings: deque[tuple[float, float]] = field(default_factory=deque)  # (utc_s, deg unwrapped)
    _clock: ArrivalClock = field(default_factory=ArrivalClock)
    _waiting: list[tuple[Pulse, float]] = field(default_factory=list)  # pulse, utc_s
    _released: list[Report] = field(default_factory=list)  # let go early, to return next
    _undated: list[tuple[float, float, Pulse]] = field(default_factory=list)  # arrival, tod
    undated_dropped: int = 0
    _clipped: bool = False

    # --- time ---------------------------------------------------------------------------------
    def _anchor(self, arrival_s: float, utc_s: float) -> None:
        last = self._clock.last_utc_s
        if not self._clock.anchor(arrival_s, utc_s):
            log.info("the unit's time went back %.1f s: a new timeline", (last or 0.0) - utc_s)
            self._released += self._release(float("inf"), force=True)
            self._headings.clear()

    def _utc_of_arrival(self, arrival_s: float) -> float | None:
        return self._clock.utc_of_arrival(arrival_s)

    def _utc_s(self, tod_s: float) -> float | None:
        """Seconds since the epoch of a time of day, on the last date given (a day later just
        past midnight from it, a day earlier just before: :func:`safetynet.nmea.day_offset`)."""
        if self.date is None:
            return None
        return utc_seconds(self.date, self.date_time_of_day_s, tod_s)

    def _set_date(self, when: CalendarDate | None, tod_s: float | None) -> None:
        if when is None or tod_s is None:
            return
        self.date, self.date_time_of_day_s = when, tod_s

    def _date_the_undated(self) -> None:
        """The pulses heard before the first date, dated now that it is known (and placed at
        the fix that came with it when they had none)."""
        if self.date is None or not self._undated:
            return
        fix = self.fix if self.fix is not None and self.fix.valid else None
        undated, self._undated = self._undated, []
        for _, pulse_tod_s, heard in undated:
            utc = self._utc_s(pulse_tod_s)
            assert utc is not None
            placed = heard
            if heard.lat_deg is None and fix is not None:
                placed = heard.model_copy(
                    update={"lat_deg": fix.lat_deg, "lon_deg": fix.lon_deg, "alt_m": fix.alt_m}
                )
            self._released += self._wait_for_heading(placed, utc)

    def _expire_undated(self, arrival_s: float) -> None:
        """Pulses that waited ``UNDATED_WAIT_S`` for a date and got none are dropped (counted)."""
        while self._undated and (
            not math.isfinite(arrival_s) or arrival_s - self._undated[0][0] > UNDATED_WAIT_S
        ):
            self._undated.pop(0)
            self.undated_dropped += 1
            log.warning("a pulse heard before the unit knew the date: dropped")

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
            return self._end_of_line(arrival_s)
        address = fields[0]
        kind = address[2:] if len(address) == 5 else address
        handler = {
            "RMC": self._rmc, "GGA": self._gga, "ZDA": self._zda, "HDT": self._hdt,
            "PSNID": self._psnid, "PSNPD": self._psnpd, "PSNST": self._psnst,
        }.get(address if address.startswith("PSN") else kind)  # fmt: skip
        if handler is None:
            self.unknown += 1
            return self._end_of_line(arrival_s)
        try:
            reports = handler(arrival_s, fields)
        except (ValueError, IndexError) as err:
            log.debug("dropping malformed %s: %s", address, err)
            self.bad_lines += 1
            reports = []
        return reports + self._end_of_line(arrival_s)

    @property
    def waiting(self) -> int:
        """Pulses waiting for a heading or a date."""
        return len(self._waiting) + len(self._undated)

    def flush(self) -> list[Report]:
        """Release the pulses still waiting for a heading (end of stream); those that never got
        a date are dropped (counted in ``undated_dropped``)."""
        self._expire_undated(float("inf"))
        return self._take_released() + self._release(float("inf"), force=True)

    def _take_released(self) -> list[Report]:
        released, self._released = self._released, []
        return released

    def _end_of_line(self, arrival_s: float) -> list[Report]:
        self._expire_undated(arrival_s)
        return self._take_released() + self._release(arrival_s, force=False)

    def _rmc(self, arrival_s: float, f: list[str]) -> list[Report]:
        rmc = rmc_fields(f)
        self._set_date(rmc.date, rmc.time_of_day_s)
        if rmc.time_of_day_s is None:
            return []
        alt = self.fix.alt_m if self.fix else None
        self._set_fix(arrival_s, rmc.time_of_day_s, rmc.lat_deg, rmc.lon_deg, alt, rmc.valid)
        self._date_the_undated()
        return []

    def _gga(self, arrival_s: float, f: list[str]) -> list[Report]:
        gga = gga_fields(f)
        if gga.time_of_day_s is None:
            return []
        self._set_fix(arrival_s, gga.time_of_day_s, gga.lat_deg, gga.lon_deg, gga.alt_m, gga.valid)
        return []

    def _zda(self, arrival_s: float, f: list[str]) -> list[Report]:
        tod = time_of_day_s(f[1])
        self._set_date(zda_date(f), tod)
        utc = None if tod is None else self._utc_s(tod)
        if utc is not None:
            self._anchor(arrival_s, utc)
        self._date_the_undated()
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
        antenna = antenna_named(f[3])
        if antenna is not None:
            self.antenna = antenna
        return []

    def _psnpd(self, arrival_s: float, f: list[str]) -> list[Report]:
        tod = time_of_day_s(f[1])
        if tod is None:
            raise ValueError(f"pulse time {f[1]!r} is not hhmmss.sss")
        pulse = self._pulse(f)
        utc = self._utc_s(tod)
        if utc is None:  # no date yet: the pulse waits (briefly) for the first one
            self._undated.append((arrival_s, tod, pulse))
            return []
        return self._wait_for_heading(pulse, utc)

    def _pulse(self, f: list[str]) -> Pulse:
        """A pulse from ``$PSNPD`` fields, its time still to be set."""
        channel = int(f[2])
        decoded = bool(f[4]) and bool(f[5])
        self.gain_db = float(f[8]) if f[8] else self.gain_db
        fix = self.fix if self.fix is not None and self.fix.valid else None
        return Pulse(
            receiver_id=self.receiver_id or self.unit_id or "HANDHELD",
            seq=self.next_seq(),
            t=_UNSET_TIME,
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
            antenna=self.antenna,
        )

    def _wait_for_heading(self, pulse: Pulse, utc: float) -> list[Report]:
        pulse = pulse.model_copy(update={"t": datetime.fromtimestamp(utc, UTC)})
        self._waiting.append((pulse, utc))
        if len(self._waiting) > MAX_WAITING:
            oldest, oldest_utc = self._waiting.pop(0)
            return [oldest.model_copy(update={"heading_deg": self._heading_at(oldest_utc)})]
        return []

    def _psnst(self, arrival_s: float, f: list[str]) -> list[Report]:
        tod = time_of_day_s(f[1])
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
        if utc < times[0] - HEADING_REACH_S or utc > times[-1] + HEADING_REACH_S:
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

        framer = LineFramer()
        handle: serial.Serial | None = None
        while not self.stop():
            if handle is None:
                try:
                    handle = serial.Serial(self.port, self.baud, timeout=0.2)
                except (serial.SerialException, OSError) as err:
                    log.debug("serial %s not there yet: %s", self.port, err)
                    time.sleep(self.retry_s)
                    continue
                log.info("serial %s open", self.port)
                framer.restart()
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
            dropped = framer.dropped
            lines = framer.feed(data)
            self.parser.bad_lines += framer.dropped - dropped
            for line in lines:
                yield from self.parser.feed(now, line)
        if handle is not None:
            handle.close()
        yield from self.parser.flush()
