"""A live GNSS receiver and compass for ``safetynet receive --gps``: NMEA 0183 in, a track out.

Sources (:func:`parse_gps_source`):

- ``tcp://HOST:PORT``: a TCP stream of sentences (a phone app's NMEA server, ``gpspipe -r`` fed
  to a port, the simulator's ``sim kraken --gps-port``);
- ``gpsd://HOST[:PORT]``: a gpsd (port 2947 by default), asked for its devices' sentences with
  ``?WATCH={"enable":true,"nmea":true}`` (its JSON lines, such as the banner, are skipped);
- ``serial:/dev/ttyUSB0`` (or a path under ``/dev/``), at ``--gps-baud``: a receiver on a serial
  port (pyserial);
- ``file:PATH``: a log replayed at the pace of its own time stamps (for trials).

:class:`GnssParser` is the pure part; the sentences are cut and checked by
:mod:`safetynet.nmea` (checksum, the fix sentences' fields, dates). It reads ``RMC`` (position,
speed and course over ground, date, magnetic variation), ``GGA`` (position, fix quality,
height), ``ZDA`` (date), ``HDT`` (true heading, a GNSS compass) and ``HDG`` (magnetic heading).
``HDG`` is made true with its own deviation and variation; without a variation in it, with the
latest RMC's, else with ``--magnetic-variation-deg``; with none of them it is **not used**
(counted in ``hdg_without_variation``, warned once): a magnetic heading taken as true would put
every bearing off by the local variation, up to 20° and more. Dates come with RMC or ZDA (read
as :mod:`safetynet.nmea` says); a GGA before the first of them has no date and is not used (a
receiver set to send GGA alone needs RMC or ZDA turned on). Headings carry no time: each is
timed by its arrival (:class:`~safetynet.nmea.ArrivalClock`). Lines with a bad checksum, garbage,
or impossible values (a heading outside [0, 360), a course or variation out of range) are
dropped and counted (a position field that is no angle makes its epoch a no-fix); fixes go
into a :class:`~receiver.navigation.NavTrack`, which keeps what a report may use (stale fixes,
no-fix epochs and time jumps are its rules).

:class:`GnssReader` runs in its own thread: it opens the source, reads without blocking the
receiver, and when the source closes, fails, or stays silent ``SILENT_S`` it closes it and opens
it again (backing off from 0.5 s to 5 s); :meth:`GnssReader.stop` ends it within
``POLL_S``. It compares each fix's UTC with the host's clock and warns when they differ by more
than the track's age limit (then the KrakenSDR's time stamps and the fixes do not meet, and
reports go without positions).
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from receiver.navigation import MAX_FIX_AGE_S, NavFix, NavTrack
from safetynet.errors import InputError
from safetynet.nmea import (
    DAY_S,
    ArrivalClock,
    LineFramer,
    gga_fields,
    rmc_fields,
    split_sentence,
    time_of_day_s,
    utc_seconds,
    zda_date,
)

log = logging.getLogger(__name__)

SILENT_S = 3.0  # nothing from the source this long: closed and opened again
POLL_S = 0.2
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 5.0
CONNECT_TIMEOUT_S = 1.0
HEADING_REACH_S = 1.5  # a heading is timed by arrival only this long after a timed sentence
CLOCK_WARN_EVERY_S = 60.0
CalendarDate = date  # the parser has a field named ``date``
GPSD_PORT = 2947
GPSD_WATCH = b'?WATCH={"enable":true,"nmea":true};\n'
BAUDS = (4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800)


@dataclass(frozen=True)
class GpsSource:
    kind: Literal["tcp", "gpsd", "serial", "file"]
    target: str  # host, device or path
    port: int = 0
    baud: int = 9600


def parse_gps_source(text: str, baud: int = 9600) -> GpsSource:
    """``tcp://HOST:PORT``, ``gpsd://HOST[:PORT]``, ``serial:DEVICE`` (or ``/dev/...``) or
    ``file:PATH``."""
    if baud not in BAUDS:
        raise InputError(f"--gps-baud must be one of {', '.join(map(str, BAUDS))}, got {baud}")
    if text.startswith(("tcp://", "gpsd://")):
        url = urlsplit(text)
        kind: Literal["tcp", "gpsd"] = "tcp" if url.scheme == "tcp" else "gpsd"
        try:
            port = url.port if url.port is not None or kind == "tcp" else GPSD_PORT
        except ValueError as err:
            raise InputError(f"--gps {text!r}: the port must be 1..65535") from err
        if not url.hostname or port is None or port == 0 or url.path not in ("", "/"):
            raise InputError(f"--gps {text!r}: give {kind}://HOST:PORT")
        return GpsSource(kind, url.hostname, port)
    if text.startswith("serial:") or text.startswith("/dev/"):
        device = text.removeprefix("serial:")
        if not device:
            raise InputError("--gps serial:DEVICE: the device is missing")
        return GpsSource("serial", device, baud=baud)
    if text.startswith("file:"):
        path = Path(text.removeprefix("file:"))
        if not path.is_file():
            raise InputError(f"--gps {text!r}: no such file")
        return GpsSource("file", str(path))
    raise InputError(
        f"--gps {text!r}: give tcp://HOST:PORT, gpsd://HOST, serial:/dev/ttyUSB0 (or a /dev "
        "path) or file:PATH"
    )


@dataclass
class GnssParser:
    """One GNSS/compass stream's state; fixes and headings go to ``track``."""

    track: NavTrack = field(default_factory=NavTrack)
    variation_deg: float | None = None  # magnetic variation (east +) when the stream gives none
    date: date | None = None
    date_time_of_day_s: float = 0.0
    lines: int = 0
    fixes: int = 0
    no_fix: int = 0
    headings: int = 0
    bad_lines: int = 0
    unknown: int = 0
    undated: int = 0
    hdg_without_variation: int = 0
    _rmc_variation_deg: float | None = None
    _clock: ArrivalClock = field(default_factory=ArrivalClock)

    def feed(self, arrival_s: float, line: str) -> None:
        """One line (with or without its line end) that arrived at host time ``arrival_s``."""
        if not line.strip():
            return
        self.lines += 1
        if line.startswith("{"):  # gpsd's JSON (its banner, its answer to the watch)
            self.unknown += 1
            return
        fields = split_sentence(line)
        if fields is None:
            self.bad_lines += 1
            return
        kind = fields[0][2:] if len(fields[0]) == 5 else fields[0]
        handler = {"RMC": self._rmc, "GGA": self._gga, "ZDA": self._zda,
                   "HDT": self._hdt, "HDG": self._hdg}.get(kind)  # fmt: skip
        if handler is None:
            self.unknown += 1
            return
        try:
            handler(arrival_s, fields)
        except (ValueError, IndexError, OverflowError) as err:
            log.debug("dropping malformed %s: %s", fields[0], err)
            self.bad_lines += 1

    # --- time ---------------------------------------------------------------------------------
    def _utc_s(self, tod_s: float) -> float | None:
        if self.date is None:
            return None
        return utc_seconds(self.date, self.date_time_of_day_s, tod_s)

    def _set_date(self, when: CalendarDate | None, tod_s: float | None) -> None:
        if when is not None and tod_s is not None:
            self.date, self.date_time_of_day_s = when, tod_s

    # --- sentences ----------------------------------------------------------------------------
    def _rmc(self, arrival_s: float, f: list[str]) -> None:
        rmc = rmc_fields(f)
        self._set_date(rmc.date, rmc.time_of_day_s)
        if rmc.variation_deg is not None:
            self._rmc_variation_deg = rmc.variation_deg
        speed = rmc.speed_mps if rmc.valid else None
        course = rmc.course_deg if rmc.valid and speed is not None else None
        self._fix(arrival_s, rmc.time_of_day_s, rmc.valid, rmc.lat_deg, rmc.lon_deg, None,
                  speed, course)  # fmt: skip

    def _gga(self, arrival_s: float, f: list[str]) -> None:
        gga = gga_fields(f)
        self._fix(arrival_s, gga.time_of_day_s, gga.valid, gga.lat_deg, gga.lon_deg, gga.alt_m,
                  None, None)  # fmt: skip

    def _zda(self, arrival_s: float, f: list[str]) -> None:
        tod = time_of_day_s(f[1])
        self._set_date(zda_date(f), tod)
        utc = None if tod is None else self._utc_s(tod)
        if utc is not None:
            self._anchor(arrival_s, utc)

    def _fix(
        self,
        arrival_s: float,
        tod: float | None,
        valid: bool,
        lat: float | None,
        lon: float | None,
        alt: float | None,
        speed: float | None,
        course: float | None,
    ) -> None:
        if tod is None:
            return
        utc = self._utc_s(tod)
        if utc is None:
            self.undated += 1  # a GGA before any date: no time to put it at
            return
        self._anchor(arrival_s, utc)
        if valid:
            self.fixes += 1
        else:
            self.no_fix += 1
        self.track.add_fix(NavFix(utc, valid, lat, lon, alt, speed, course))

    def _anchor(self, arrival_s: float, utc_s: float) -> None:
        if not self._clock.anchor(arrival_s, utc_s):
            log.info("GNSS time went back: the arrival clock starts afresh")

    def _heading_utc(self, arrival_s: float) -> float | None:
        utc = self._clock.utc_of_arrival(arrival_s)
        last = self._clock.last_utc_s
        if utc is None or last is None or utc - last > HEADING_REACH_S:
            return None  # no timed sentence lately: no way to say when this heading was
        return utc

    def _hdt(self, arrival_s: float, f: list[str]) -> None:
        if not f[1]:
            return  # a compass without its solution yet
        heading = _heading(f[1])
        utc = self._heading_utc(arrival_s)
        if utc is not None:
            self.headings += 1
            self.track.add_heading(utc, heading, magnetic=False)

    def _hdg(self, arrival_s: float, f: list[str]) -> None:
        if not f[1]:
            return
        magnetic = _heading(f[1])
        deviation = _signed(f[2], f[3]) or 0.0
        variation = _signed(f[4], f[5])
        if variation is None:
            variation = (
                self._rmc_variation_deg
                if self._rmc_variation_deg is not None
                else self.variation_deg
            )
        if variation is None:
            if self.hdg_without_variation == 0:
                log.warning(
                    "HDG without a magnetic variation (none in it, in RMC, or given with "
                    "--magnetic-variation-deg): magnetic headings not used"
                )
            self.hdg_without_variation += 1
            return
        utc = self._heading_utc(arrival_s)
        if utc is not None:
            self.headings += 1
            self.track.add_heading(utc, (magnetic + deviation + variation) % 360.0, magnetic=True)


def _heading(value: str) -> float:
    heading = float(value)
    if not 0.0 <= heading < 360.0:
        raise ValueError(f"heading {heading} outside [0, 360)")
    return heading


def _signed(value: str, direction: str) -> float | None:
    """A deviation or variation field with its E/W (east positive); None when empty."""
    if not value:
        return None
    degrees = float(value)
    if not 0.0 <= degrees <= 180.0 or direction not in ("E", "W"):
        raise ValueError(f"magnetic correction {value!r} {direction!r}")
    return -degrees if direction == "W" else degrees


class GnssReader:
    """Reads a :class:`GpsSource` into a :class:`GnssParser` on its own thread, reconnecting."""

    def __init__(self, source: GpsSource, parser: GnssParser, silent_s: float = SILENT_S) -> None:
        self.source = source
        self.parser = parser
        self.silent_s = silent_s
        self.reconnects = 0
        self.silences = 0
        self.finished = threading.Event()  # a file replayed to its end
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock_warned_s = -math.inf

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gnss", daemon=True)
        self._thread.start()

    def stop(self, join_s: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_s)

    # --- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.source.kind == "file":
                self._replay(Path(self.source.target))
            else:
                self._live()
        except Exception:  # the receiver goes on without positions, loudly
            log.exception("the GNSS reader stopped")
        finally:
            self.finished.set()

    def _live(self) -> None:
        backoff = BACKOFF_MIN_S
        framer = LineFramer()
        while not self._stop.is_set():
            try:
                for data in self._chunks():
                    backoff = BACKOFF_MIN_S
                    self._lines(framer, data)
            except OSError as err:
                log.warning("GNSS %s: %s; opening it again", self._name, err)
            if self._stop.wait(backoff):
                return
            backoff = min(2 * backoff, BACKOFF_MAX_S)
            self.reconnects += 1
            framer.restart()

    @property
    def _name(self) -> str:
        s = self.source
        return f"{s.kind}://{s.target}:{s.port}" if s.kind in ("tcp", "gpsd") else s.target

    def _chunks(self) -> Iterator[bytes]:
        """Bytes as they come, until the source closes, fails or stays silent (then returns)."""
        if self.source.kind in ("tcp", "gpsd"):
            yield from self._tcp_chunks()
        else:
            yield from self._serial_chunks()

    def _tcp_chunks(self) -> Iterator[bytes]:
        s = self.source
        with socket.create_connection((s.target, s.port), timeout=CONNECT_TIMEOUT_S) as sock:
            if s.kind == "gpsd":
                sock.sendall(GPSD_WATCH)
            sock.settimeout(POLL_S)
            log.info("GNSS %s connected", self._name)
            heard = time.monotonic()
            while not self._stop.is_set():
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    if time.monotonic() - heard > self.silent_s:
                        self._silent()
                        return
                    continue
                if not data:
                    log.warning("GNSS %s closed the connection", self._name)
                    return
                heard = time.monotonic()
                yield data

    def _serial_chunks(self) -> Iterator[bytes]:
        import serial  # pyserial; imported here so the rest of the package does not need it

        try:
            handle = serial.Serial(self.source.target, self.source.baud, timeout=POLL_S)
        except (serial.SerialException, ValueError) as err:
            raise OSError(f"cannot open: {err}") from err
        log.info("GNSS %s open at %d baud", self.source.target, self.source.baud)
        with handle:
            heard = time.monotonic()
            while not self._stop.is_set():
                try:
                    data = handle.read(4096)
                except serial.SerialException as err:
                    raise OSError(f"went away: {err}") from err
                if not data:
                    if time.monotonic() - heard > self.silent_s:
                        self._silent()
                        return
                    continue
                heard = time.monotonic()
                yield data

    def _silent(self) -> None:
        self.silences += 1
        log.warning("GNSS %s silent for %.0f s; opening it again", self._name, self.silent_s)

    def _lines(self, framer: LineFramer, data: bytes) -> None:
        now = time.monotonic()
        dropped = framer.dropped
        lines = framer.feed(data)
        self.parser.bad_lines += framer.dropped - dropped
        for line in lines:
            fixes = self.parser.fixes + self.parser.no_fix
            self.parser.feed(now, line)
            if self.parser.fixes + self.parser.no_fix != fixes:
                self._check_clock(now)

    def _check_clock(self, now_s: float) -> None:
        latest = self.parser.track.latest_utc_s
        if latest is None or now_s - self._clock_warned_s < CLOCK_WARN_EVERY_S:
            return
        offset_s = time.time() - latest
        if abs(offset_s) > MAX_FIX_AGE_S + 1.0:  # a fix takes up to a second to arrive
            self._clock_warned_s = now_s
            log.warning("the GNSS's time and this computer's clock differ by %.1f s: if the "
                        "reports' time stamps follow this clock, they will find no position",
                        offset_s)  # fmt: skip

    def _replay(self, path: Path) -> None:
        """A log's lines, each timed sentence when its time has come (from the first one's)."""
        framer = LineFramer()
        first: tuple[float, float] | None = None  # (monotonic, time of day)
        with path.open("rb") as handle:
            for raw in handle:
                if self._stop.is_set():
                    return
                if raw.startswith(b"#"):
                    continue
                fields = split_sentence(raw.decode("ascii", errors="replace"))
                tod = time_of_day_s(fields[1]) if fields and len(fields) > 1 else None
                if tod is not None and fields is not None and fields[0][2:] in ("RMC", "GGA"):
                    if first is None:
                        first = (time.monotonic(), tod)
                    wait = first[0] + (tod - first[1]) % DAY_S - time.monotonic()
                    if 0 < wait <= BACKOFF_MAX_S and self._stop.wait(wait):
                        return
                    if wait > BACKOFF_MAX_S:  # the log's time jumps: go on from here
                        first = (time.monotonic(), tod)
                self._lines(framer, raw if raw.endswith(b"\n") else raw + b"\n")
        log.info("GNSS replay of %s finished", path)
