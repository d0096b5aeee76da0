"""A moving receiver's track: where it was and where it pointed at any moment of its reports.

:class:`NavTrack` holds the GNSS fixes and compass headings a reader (:mod:`receiver.gnss`)
adds from its own thread, and answers the receiver's thread (it is locked).

**Position at a report's time** ``t`` (UTC seconds):

- between two fixes at most ``MAX_FIX_GAP_S`` apart, both valid and next to each other: the
  straight line between them, at ``t``;
- else the nearest valid fix at most ``MAX_FIX_AGE_S`` away, moved by its speed and course over
  ground (RMC) for the time between, when it has them (held where it was when it has not);
- else none: a fix older than that is stale, and a no-fix sentence (RMC ``V``, GGA quality 0)
  between the fix and ``t`` means the receiver knew it had none. A report then carries no
  position (``lat_deg`` null, ``gps_fix`` false) and an array pulse gives no bearing.

**Heading at** ``t``: the compass (``HDT``, or ``HDG`` made true) interpolated between the
readings either side when they are at most ``COMPASS_MAX_AGE_S`` from ``t`` (the nearest one
otherwise, within that age); without a compass reading, the GPS course from
:class:`~receiver.array_bearings.HeadingTracker` (fixes ``COURSE_BASELINE_M`` apart straddling
``t``, moving faster than ``MIN_COURSE_SPEED_MPS`` and not turning); else none (no bearing).

:class:`NavigatedRun` gives a receiver's reports their positions and an array's pulses their
bearings, each report held (``NAV_WAIT_S`` at most) until the fix after it has come.

**Time**: the GNSS's UTC against the reports' (the KrakenSDR's host clock). A fix whose time goes
back more than ``TIME_BACK_TOLERANCE_S`` (a second session, a cold start) starts a new track.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from receiver.array_bearings import ArrayReceiver, HeadingFix, HeadingTracker
from receiver.doa import DoaEstimate
from receiver.sdr import SdrReceiver
from safetynet.angles import angle_diff_deg, wrap_360
from safetynet.geodesy import LocalFrame
from safetynet.nmea import TIME_BACK_TOLERANCE_S
from safetynet.reports import Pulse, Report, Status

log = logging.getLogger(__name__)

MAX_FIX_AGE_S = 2.0  # a report never carries a position older (or newer) than this
MAX_FIX_GAP_S = 2.5  # fixes interpolated between only this close together
COMPASS_MAX_AGE_S = 0.5
SAME_EPOCH_S = 0.005  # RMC and GGA of one epoch
KEEP_S = 120.0
NAV_WAIT_S = 1.5  # a report waits this long (at most) for the fix after it
COURSE_WAIT_S = 3.0  # ... an array pulse without a compass, for the fixes its course needs
HDT_SIGMA_DEG = 0.5  # a dual-antenna GNSS compass (0.1–0.5° on a 0.5–2 m baseline)
HDG_SIGMA_DEG = 3.0  # a magnetic compass in a car (the body's steel, the engine)


@dataclass(frozen=True)
class NavFix:
    """One GNSS epoch: UTC seconds, and a position only when it was a fix."""

    utc_s: float
    valid: bool
    lat_deg: float | None = None
    lon_deg: float | None = None
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None


@dataclass(frozen=True)
class Position:
    lat_deg: float
    lon_deg: float
    alt_m: float | None


@dataclass
class NavTrack:
    """Fixes and compass readings in time order; positions and headings at any moment."""

    hdt_sigma_deg: float = HDT_SIGMA_DEG
    hdg_sigma_deg: float = HDG_SIGMA_DEG
    gps_sigma_m: float = 3.0
    keep_s: float = KEEP_S
    restarts: int = 0
    history: list[NavFix] | None = None  # every epoch as merged, when a list is given (tests)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _fixes: list[NavFix] = field(default_factory=list)
    _fix_t: list[float] = field(default_factory=list)
    _compass_t: list[float] = field(default_factory=list)
    _compass: list[tuple[float, float]] = field(default_factory=list)  # unwrapped deg, sigma
    _course: HeadingTracker = field(init=False)
    _frame: LocalFrame | None = None

    def __post_init__(self) -> None:
        self._course = HeadingTracker(gps_sigma_m=self.gps_sigma_m, keep_s=self.keep_s)

    # --- from the reader ----------------------------------------------------------------------
    def add_fix(self, fix: NavFix) -> None:
        with self._lock:
            if self._fixes and fix.utc_s < self._fixes[-1].utc_s - TIME_BACK_TOLERANCE_S:
                log.warning("GNSS time went back %.1f s: a new track",
                            self._fixes[-1].utc_s - fix.utc_s)  # fmt: skip
                self._restart()
            if self._fixes and abs(fix.utc_s - self._fixes[-1].utc_s) <= SAME_EPOCH_S:
                fix = _merge(self._fixes[-1], fix)
                self._fixes[-1] = fix
                self._fix_t[-1] = fix.utc_s
                if self.history is not None:
                    self.history[-1] = fix
                return  # the course already has this epoch's position (from its first sentence)
            if self._fixes and fix.utc_s < self._fixes[-1].utc_s:
                return  # out of order within the tolerance: ignored
            self._fixes.append(fix)
            self._fix_t.append(fix.utc_s)
            if self.history is not None:
                self.history.append(fix)
            if fix.valid and fix.lat_deg is not None and fix.lon_deg is not None:
                if self._frame is None:
                    self._frame = LocalFrame(fix.lat_deg, fix.lon_deg)
                self._course.add_fix(fix.utc_s, *self._frame.to_en(fix.lat_deg, fix.lon_deg))
            self._trim()

    def add_heading(self, utc_s: float, heading_deg: float, magnetic: bool) -> None:
        """A compass reading, true heading (a magnetic one already corrected to true)."""
        sigma = self.hdg_sigma_deg if magnetic else self.hdt_sigma_deg
        with self._lock:
            if self._compass_t and utc_s < self._compass_t[-1]:
                if utc_s < self._compass_t[-1] - TIME_BACK_TOLERANCE_S:
                    self._compass_t.clear()
                    self._compass.clear()
                else:
                    return
            if self._compass:
                last = self._compass[-1][0]
                heading_deg = last + angle_diff_deg(heading_deg, wrap_360(last))  # unwrap
            self._compass_t.append(utc_s)
            self._compass.append((heading_deg, sigma))
            cut = bisect.bisect_left(self._compass_t, utc_s - self.keep_s)
            if cut > len(self._compass_t) // 2:
                del self._compass_t[:cut]
                del self._compass[:cut]

    def _restart(self) -> None:
        self.restarts += 1
        self._fixes.clear()
        self._fix_t.clear()
        self._compass_t.clear()
        self._compass.clear()
        self._course = HeadingTracker(gps_sigma_m=self.gps_sigma_m, keep_s=self.keep_s)
        self._frame = None

    def _trim(self) -> None:
        cut = bisect.bisect_left(self._fix_t, self._fix_t[-1] - self.keep_s)
        if cut > len(self._fix_t) // 2:
            del self._fix_t[:cut]
            del self._fixes[:cut]

    # --- for the receiver ---------------------------------------------------------------------
    @property
    def latest_utc_s(self) -> float | None:
        """The time of the newest fix (None before the first)."""
        with self._lock:
            return self._fix_t[-1] if self._fix_t else None

    def position_at(self, utc_s: float) -> Position | None:
        with self._lock:
            return self._position_at(utc_s)

    def _position_at(self, t: float) -> Position | None:
        fixes, times = self._fixes, self._fix_t
        i = bisect.bisect_right(times, t)  # times[:i] <= t < times[i:]
        before = fixes[i - 1] if i > 0 else None
        after = fixes[i] if i < len(fixes) else None
        if (
            before is not None and after is not None and before.valid and after.valid
            and after.utc_s - before.utc_s <= MAX_FIX_GAP_S
        ):  # fmt: skip
            return _between(before, after, t)
        near = [f for f in (before, after) if f is not None and abs(f.utc_s - t) <= MAX_FIX_AGE_S]
        near.sort(key=lambda f: abs(f.utc_s - t))
        if not near or not near[0].valid:
            return None  # stale, or the nearest epoch said it had no fix
        return _dead_reckoned(near[0], t)

    def heading_at(self, utc_s: float) -> HeadingFix | None:
        with self._lock:
            compass = self._compass_at(utc_s)
            if compass is not None:
                return compass
            course = self._course.at(utc_s)
            return course if course is not None and course.source == "course" else None

    def _compass_at(self, t: float) -> HeadingFix | None:
        times = self._compass_t
        i = bisect.bisect_right(times, t)
        a, b = i - 1, i
        if a >= 0 and b < len(times) and times[b] - times[a] <= 2 * COMPASS_MAX_AGE_S:
            (ha, sa), (hb, sb) = self._compass[a], self._compass[b]
            w = (t - times[a]) / (times[b] - times[a]) if times[b] > times[a] else 0.0
            return HeadingFix(wrap_360(ha + w * (hb - ha)) % 360.0, max(sa, sb), "compass")
        near = [k for k in (a, b) if 0 <= k < len(times) and abs(times[k] - t) <= COMPASS_MAX_AGE_S]
        if not near:
            return None
        k = min(near, key=lambda k: abs(times[k] - t))
        heading, sigma = self._compass[k]
        return HeadingFix(wrap_360(heading) % 360.0, sigma, "compass")


def _merge(first: NavFix, second: NavFix) -> NavFix:
    """RMC and GGA of one epoch: a fix only if neither says it is none; each one's extras."""
    valid = first.valid and second.valid

    def either(a: float | None, b: float | None) -> float | None:
        return (b if b is not None else a) if valid else None

    return NavFix(
        utc_s=first.utc_s, valid=valid,
        lat_deg=either(first.lat_deg, second.lat_deg),
        lon_deg=either(first.lon_deg, second.lon_deg),
        alt_m=either(first.alt_m, second.alt_m),
        speed_mps=second.speed_mps if second.speed_mps is not None else first.speed_mps,
        course_deg=second.course_deg if second.course_deg is not None else first.course_deg,
    )  # fmt: skip


def _between(a: NavFix, b: NavFix, t: float) -> Position:
    assert a.lat_deg is not None
    assert a.lon_deg is not None
    assert b.lat_deg is not None
    assert b.lon_deg is not None
    w = (t - a.utc_s) / (b.utc_s - a.utc_s) if b.utc_s > a.utc_s else 0.0
    alt = None
    if a.alt_m is not None and b.alt_m is not None:
        alt = a.alt_m + w * (b.alt_m - a.alt_m)
    return Position(
        a.lat_deg + w * (b.lat_deg - a.lat_deg), a.lon_deg + w * (b.lon_deg - a.lon_deg), alt
    )


def _dead_reckoned(fix: NavFix, t: float) -> Position:
    """``fix`` moved along its course at its speed to ``t`` (held when it has neither)."""
    assert fix.lat_deg is not None
    assert fix.lon_deg is not None
    if fix.speed_mps is None or fix.course_deg is None:
        return Position(fix.lat_deg, fix.lon_deg, fix.alt_m)
    frame = LocalFrame(fix.lat_deg, fix.lon_deg)
    distance_m = fix.speed_mps * (t - fix.utc_s)
    course = math.radians(fix.course_deg)
    lat, lon = frame.to_lat_lon(distance_m * math.sin(course), distance_m * math.cos(course))
    return Position(lat, lon, fix.alt_m)


@dataclass
class NavigatedRun:
    """A receiver's reports with their positions (and an array's bearings with their heading)
    from the live track.

    A report waits until the track holds a fix at or after its time, so that its position is
    interpolated: at most ``wait_s`` of host time, or until a report ``wait_s`` newer has come
    (a stream faster than real time); this is looked at whenever the receiver gives a report
    (a status at least every 5 s), so a silent GNSS delays reports but never stops them. An
    array pulse with no compass reading at its time waits for fixes ``course_wait_s`` after it,
    which the course needs (a chord of ``COURSE_BASELINE_M`` straddling it), as long again at
    most. Then it goes out as the track has it (dead-reckoned, or none). Reports keep their
    order. An array pulse's window is estimated as soon as the pulse is heard (the source holds
    only seconds of it)."""

    receiver: SdrReceiver
    track: NavTrack
    array: ArrayReceiver | None = None
    heading: Callable[[float], HeadingFix | None] | None = None  # default: the track's
    wait_s: float = NAV_WAIT_S
    course_wait_s: float = COURSE_WAIT_S
    clock: Callable[[], float] = time.monotonic
    no_position: int = 0
    _waiting: deque[tuple[Report, DoaEstimate | None, float]] = field(default_factory=deque)

    def run(self, stop: Callable[[], bool] | None = None) -> Iterator[Report]:
        for report in self.receiver.run(stop=stop):
            est = None
            if self.array is not None and isinstance(report, Pulse):
                est = self.array.estimate_for(report)
            self._waiting.append((report, est, self.clock()))
            yield from self._release(report.t.timestamp(), force=False)
        yield from self._release(math.inf, force=True)
        if self.array is not None:
            yield from self.array.bearings.flush()

    def _release(self, newest_s: float, force: bool) -> Iterator[Report]:
        now = self.clock()
        latest = self.track.latest_utc_s
        while self._waiting:
            report, est, queued = self._waiting[0]
            t = report.t.timestamp()
            wait = self.wait_s
            after = 0.0
            if est is not None and self.heading is None and self.track.heading_at(t) is None:
                wait = after = self.course_wait_s  # the course needs fixes after the pulse
            ready = (
                force or (latest is not None and latest >= t + after)
                or now - queued >= wait or newest_s - t >= wait
            )  # fmt: skip
            if not ready:
                return
            self._waiting.popleft()
            yield from self._placed(report, est)

    def _placed(self, report: Report, est: DoaEstimate | None) -> Iterator[Report]:
        t = report.t.timestamp()
        pos = self.track.position_at(t)
        if pos is None:
            self.no_position += 1
        where = {
            "lat_deg": None if pos is None else round(pos.lat_deg, 7),
            "lon_deg": None if pos is None else round(pos.lon_deg, 7),
        }
        if isinstance(report, Pulse):
            where["alt_m"] = None if pos is None or pos.alt_m is None else round(pos.alt_m, 1)
            placed: Report = report.model_copy(update=where)
        elif isinstance(report, Status):
            placed = report.model_copy(update={**where, "gps_fix": pos is not None})
        else:
            placed = report
        yield placed
        if self.array is not None and isinstance(placed, Pulse):
            heading = (self.heading or self.track.heading_at)(t)
            yield from self.array.bearings.add(placed, est, heading)
