"""Array bearings: per-pulse directions of arrival turned into compass bearing reports.

For every pulse heard on the array's reference channel, :class:`ArrayDirectionFinder` takes
the pulse's window from every calibrated channel, estimates its direction in the array's frame
(:mod:`receiver.doa`), adds the vehicle's heading and reports a ``bearing`` with
``method = "array"``. Its ``sigma_deg`` is the root sum of squares of the pulse's Cramér–Rao
bound at its measured SNR, the heading's own sigma and ``CAL_SIGMA_DEG`` (what the calibration
and the roof mount leave).

**Heading** (:class:`HeadingTracker`): a moving vehicle's heading is its GPS course, the
direction between two fixes at least ``COURSE_BASELINE_M`` apart straddling the pulse (on a
straight road the car points where it goes); its sigma is the cross-track change of the GPS
error between the two fixes over their distance, the error a first-order Gauss–Markov process
(σ, τ) as GPS receivers show. Slower than ``MIN_COURSE_SPEED_MPS`` (stopped at a light, a fixed
site), or turning (a step between fixes of that chord points elsewhere by more than three of
its sigmas), the compass is used, with its own sigma.

**Weak pulses**: below ``MIN_ESN0_DB`` of energy over noise density per element (about −5 dB
of SNR in 10 kHz), the estimate leaves the bound's regime (outliers), or the pulse was noise;
it gives no bearing. **Multipath**: a pulse whose spatial spectrum the test of
:func:`receiver.doa.estimate` flags (competing peaks, or a misfit no single wave explains)
gives no bearing; it is counted. **A drive's other bearings**: a pulse that looks like one clean
wave may still be a reflection that took all the power; one the drive's recent bearings
disagree with (:mod:`receiver.drive_consistency`) gives no bearing either, and a consistent one
is sent with its sigma widened by the window's excess scatter (not on a fixed site: one place,
whose reflections the tracker's place hypothesis weighs).

**Thinning** for the uplink: per bracelet, at most one bearing every ``thin_s`` seconds: the one
with the smallest sigma among the pulses of that window (0: one per pulse).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from receiver.doa import DoaEstimate, estimate, pulse_snapshots
from receiver.drive_consistency import DriveChecks
from receiver.sdr import SdrReceiver
from safetynet.angles import angle_diff_deg, bearing_of_enu, wrap_360
from safetynet.arrays import ArrayGeometry
from safetynet.reports import Bearing, Pulse, Report
from safetynet.sntx import FRAME_S

log = logging.getLogger(__name__)

CAL_SIGMA_DEG = 0.3
COURSE_BASELINE_M = 40.0
COURSE_WINDOW_S = 10.0
MIN_COURSE_SPEED_MPS = 2.0
THIN_S = 2.0
COMPASS_MAX_AGE_S = 0.5
KEEP_S = 120.0
MIN_ESN0_DB = 20.0  # below, a pulse's estimate leaves the bound's regime (or is noise)
WINDOW_MARGIN_S = 1.5e-3  # either side of the 28 ms of bits: the ramps and the start's error


@dataclass(frozen=True)
class ArrayDirectionFinder:
    """One pulse's direction from the array's calibrated channels around it."""

    geometry: ArrayGeometry
    sample_rate_hz: float
    center_hz: float

    @property
    def window_s(self) -> tuple[float, float]:
        """(before the pulse's start, total length) of the window it needs, seconds."""
        return WINDOW_MARGIN_S, FRAME_S + 2 * WINDOW_MARGIN_S

    def estimate(self, x: NDArray[np.complex64], freq_hz: float) -> DoaEstimate | None:
        """``x``: N × m samples of the window; ``freq_hz`` the pulse's carrier as heard."""
        snaps = pulse_snapshots(x, self.sample_rate_hz, freq_hz - self.center_hz)
        if snaps is None:
            return None
        return estimate(snaps, self.geometry, freq_hz)


@dataclass(frozen=True)
class HeadingFix:
    heading_deg: float  # compass, [0, 360)
    sigma_deg: float
    source: str  # "course", "compass" or "fixed"


@dataclass
class HeadingTracker:
    """The vehicle's heading at any moment, from its GPS fixes (east, north m) and compass.

    Readings are added in time order; those older than ``keep_s`` before the latest are
    forgotten."""

    gps_sigma_m: float = 3.0
    gps_tau_s: float = 60.0
    compass_sigma_deg: float = 2.5
    keep_s: float = KEEP_S
    _fix_t: list[float] = field(default_factory=list)
    _fix_en: list[tuple[float, float]] = field(default_factory=list)
    _compass_t: list[float] = field(default_factory=list)
    _compass_deg: list[float] = field(default_factory=list)

    def add_fix(self, t_s: float, east_m: float, north_m: float) -> None:
        self._fix_t.append(t_s)
        self._fix_en.append((east_m, north_m))
        _trim(self._fix_t, self._fix_en, self.keep_s)

    def add_compass(self, t_s: float, heading_deg: float) -> None:
        self._compass_t.append(t_s)
        self._compass_deg.append(heading_deg)
        _trim(self._compass_t, self._compass_deg, self.keep_s)

    def course_sigma_deg(self, dt_s: float, distance_m: float) -> float:
        """Cross-track GPS error change over ``dt_s`` against the baseline, as an angle."""
        step_m = self.gps_sigma_m * math.sqrt(2.0 * (1.0 - math.exp(-dt_s / self.gps_tau_s)))
        return math.degrees(math.atan2(step_m, distance_m))

    def at(self, t_s: float) -> HeadingFix | None:
        course = self._course(t_s)
        if course is not None:
            return course
        i = bisect.bisect_left(self._compass_t, t_s)
        near = [k for k in (i - 1, i) if 0 <= k < len(self._compass_t)]
        if not near:
            return None
        k = min(near, key=lambda k: abs(self._compass_t[k] - t_s))
        if abs(self._compass_t[k] - t_s) > COMPASS_MAX_AGE_S:
            return None
        return HeadingFix(wrap_360(self._compass_deg[k]), self.compass_sigma_deg, "compass")

    def _course(self, t_s: float) -> HeadingFix | None:
        times, en = self._fix_t, self._fix_en
        i = bisect.bisect_right(times, t_s)  # times[:i] <= t_s < times[i:]
        for k in range(int(COURSE_WINDOW_S) + 1):
            a, b = i - 1 - k, i + k
            if a < 0 or b >= len(times) or times[b] - times[a] > 2 * COURSE_WINDOW_S:
                return None
            de, dn = en[b][0] - en[a][0], en[b][1] - en[a][1]
            dt, dist = times[b] - times[a], math.hypot(de, dn)
            if dist < COURSE_BASELINE_M or dt <= 0:
                continue
            if dist / dt < MIN_COURSE_SPEED_MPS:
                return None
            heading = float(bearing_of_enu(de, dn))
            # Turning: a step of the chord points elsewhere than the chord, beyond its noise.
            for p, q in zip(range(a, b), range(a + 1, b + 1), strict=True):
                se, sn = en[q][0] - en[p][0], en[q][1] - en[p][1]
                step_m = math.hypot(se, sn)
                if step_m < 1.0:
                    continue
                limit = 3.0 * self.course_sigma_deg(times[q] - times[p], step_m)
                if abs(angle_diff_deg(float(bearing_of_enu(se, sn)), heading)) > limit:
                    return None
            return HeadingFix(heading, self.course_sigma_deg(dt, dist), "course")
        return None


def _trim(times: list[float], values: list[Any], keep_s: float) -> None:
    if times[-1] - times[0] > 2 * keep_s:
        cut = bisect.bisect_left(times, times[-1] - keep_s)
        del times[:cut]
        del values[:cut]


@dataclass
class ArrayBearings:
    """Pulses with their array estimates in, thinned ``bearing`` reports out."""

    receiver_id: str
    next_seq: Callable[[], int]
    thin_s: float = THIN_S
    pulses: int = 0
    flagged: int = 0
    weak: int = 0
    no_heading: int = 0
    inconsistent: int = 0  # single-wave pulses the drive's other bearings disagree with
    emitted: int = 0
    drive: DriveChecks = field(default_factory=DriveChecks)
    _held: dict[str, tuple[datetime, Bearing]] = field(default_factory=dict)

    def add(
        self, pulse: Pulse, est: DoaEstimate | None, heading: HeadingFix | None
    ) -> list[Bearing]:
        """The bearings due once ``pulse`` (with its estimate and heading) is counted."""
        self.pulses += 1
        out = self._due(pulse.t)
        if est is None:
            return out
        if est.esn0_db < MIN_ESN0_DB:
            self.weak += 1
            return out
        key = pulse.bracelet_id or f"ch{pulse.channel}"
        if est.multipath:
            self.flagged += 1
            self.drive.flagged(key, pulse.t)
            return out
        if heading is None or pulse.lat_deg is None or pulse.lon_deg is None:
            self.no_heading += 1
            return out
        sigma = math.sqrt(est.crb_sigma_deg**2 + heading.sigma_deg**2 + CAL_SIGMA_DEG**2)
        bearing_deg = round(wrap_360(est.relative_bearing_deg + heading.heading_deg), 2) % 360.0
        if heading.source != "fixed":  # a fixed site is one place: the tracker's to judge
            judged = self.drive.check(
                key, pulse.t, pulse.lat_deg, pulse.lon_deg, bearing_deg, sigma
            )
            if not judged.send:
                self.inconsistent += 1
                return out
            sigma = judged.sigma_deg
        bearing = Bearing(
            receiver_id=self.receiver_id, seq=0, t=pulse.t, bracelet_id=pulse.bracelet_id,
            channel=pulse.channel, lat_deg=pulse.lat_deg, lon_deg=pulse.lon_deg,
            bearing_deg=bearing_deg, sigma_deg=round(min(max(sigma, 0.1), 90.0), 2),
            method="array", n_pulses=1,
        )  # fmt: skip
        if self.thin_s <= 0:
            return [*out, self._send(bearing)]
        held = self._held.get(key)
        if held is None:
            self._held[key] = (pulse.t, bearing)
        elif bearing.sigma_deg < held[1].sigma_deg:
            self._held[key] = (held[0], bearing)
        return out

    def flush(self) -> list[Bearing]:
        out = [self._send(b) for _, b in sorted(self._held.values(), key=lambda v: v[1].t)]
        self._held.clear()
        return out

    def _due(self, now: datetime) -> list[Bearing]:
        due = [k for k, (t0, _) in self._held.items() if (now - t0).total_seconds() >= self.thin_s]
        return [self._send(self._held.pop(k)[1]) for k in sorted(due)]

    def _send(self, bearing: Bearing) -> Bearing:
        self.emitted += 1
        return bearing.model_copy(update={"seq": self.next_seq()})


class ArrayWindows(Protocol):
    """What the array's source offers besides the reference channel (see receiver.kraken)."""

    sample_rate_hz: float
    center_hz: float

    def window(self, start: datetime, length_s: float) -> NDArray[np.complex64] | None: ...


@dataclass
class ArrayReceiver:
    """The single-channel receiver on the array's reference channel, plus a bearing per pulse.

    ``heading(t)`` gives the array's heading at a moment (None: unknown, no bearing)."""

    receiver: SdrReceiver
    source: ArrayWindows
    finder: ArrayDirectionFinder
    heading: Callable[[datetime], HeadingFix | None]
    bearings: ArrayBearings

    def run(self, stop: Callable[[], bool] | None = None) -> Iterator[Report]:
        for report in self.receiver.run(stop=stop):
            yield report
            if isinstance(report, Pulse):
                yield from self.bearings_for(report)
        yield from self.bearings.flush()

    def bearings_for(self, pulse: Pulse) -> list[Bearing]:
        return self.bearings.add(pulse, self.estimate_for(pulse), self.heading(pulse.t))

    def estimate_for(self, pulse: Pulse) -> DoaEstimate | None:
        """The array's estimate of ``pulse``, from the window the source still holds."""
        before_s, length_s = self.finder.window_s
        x = self.source.window(pulse.t - timedelta(seconds=before_s), length_s)
        return None if x is None else self.finder.estimate(x, float(pulse.freq_hz))
