"""Several bracelets at once: reports in, fix reports out.

:class:`Locator` takes field reports in arrival order and keeps one
:class:`~locator.particle.ParticleTrack` per bracelet (by ID, or by channel for bearings whose
ID was not decoded). A track starts at the first evidence — a decoded pulse with a position
(the bracelet is somewhere within hearing of that receiver: ``HEARD_WITHIN_M``, farther from
the air) or a bearing (its wedge out to the same distance) — and every later bearing and every
place measurement of signal strength weighs it:

- bearings through :mod:`locator.bearing_model` (reported sigma, the bias shared by bearings
  from one place, the chance that a place's bearings come off a reflector, a small uniform
  share for single outliers);
- pulses gathered per receiver and place (:class:`~locator.ranging.PlaceCollector`) into one
  measurement each, with level and exponent unknown and the shadowing shared by a place.

Each bearing or place measurement used yields a ``fix`` report once the cloud's spread (the 95 %
ellipse of its second moment) is under ``FIX_MAJOR_M`` — the ellipse the fix carries holds 95 %
of the cloud, a far second hypothesis included (:meth:`ParticleTrack.point`) — and between
them at most one fix per ``PULSE_FIX_EVERY_S`` as pulses arrive, predicted to their time — the
dot moves with the walker. Reports that arrive late (store and forward) weigh each particle where
it was when they were taken (:meth:`~locator.particle.ParticleTrack.positions_at`, for
``TRAIL_LAG_S``); older ones, at the track's time with the uncertainty the walk since adds.
:meth:`Locator.trail` gives the smoothed trail of the last minutes.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from locator.bearing_model import PLACE_BIAS_DEG, PlaceMemory, own_sigma_rad, place_sigma
from locator.fixes import CHI2_2DOF_95, make_fix
from locator.link import LinkBudget
from locator.motion import MAX_SPEED_MPS
from locator.particle import (
    MAX_PARTICLES,
    TRAIL_LAG_S,
    ParticleTrack,
    TrailPoint,
    disc_positions,
    wedge_positions,
)
from locator.prior import check_category, point_weights
from locator.ranging import (
    AIR_SCATTER_DB,
    AIR_SHARED_DB,
    RECEIVER_SHADOWING_DB,
    SHADOW_MEMORY_S,
    SILENCE_REPEAT_S,
    PlaceCollector,
    PlaceMeasurement,
    PulseObs,
    height_above_m,
    place_measurement,
)
from locator.triangulate import BearingObs, triangulate
from safetynet.errors import InputError
from safetynet.geodesy import LocalFrame, check_lat_lon
from safetynet.reports import Bearing, Fix, Pulse, Report, Silence

HEARD_WITHIN_M = 3000.0  # a bracelet is heard to about a mile on the ground (DOMAIN.md)
HEARD_FROM_AIR_M = 10_000.0
FIX_MAJOR_M = 1500.0
PULSE_FIX_EVERY_S = 1.0
LATE_LIMIT_S = 600.0  # older reports than this, behind the track, are not used
METHOD = "pf"
SILENCE_LINK = LinkBudget()  # the probability map's detection floor, so the two agree
SILENCE_GAIN_DBI = 0.0  # a Yagi that heard nothing swept all ways or walked: no main lobe assumed
PULSE_PERIOD_S = 1.0


def key_of(bracelet_id: str | None, channel: int) -> str:
    return bracelet_id if bracelet_id is not None else f"ch{channel}"


@dataclass
class _Bracelet:
    """A bracelet's track and what its evidence so far needs remembered."""

    track: ParticleTrack
    bearing_places: PlaceMemory = field(default_factory=PlaceMemory)
    rss_places: PlaceMemory = field(default_factory=lambda: PlaceMemory(SHADOW_MEMORY_S))
    air_passes: PlaceMemory = field(default_factory=lambda: PlaceMemory(SHADOW_MEMORY_S))
    silence_places: PlaceMemory = field(default_factory=lambda: PlaceMemory(SILENCE_REPEAT_S))
    collectors: dict[str, PlaceCollector] = field(default_factory=dict)
    n_bearings: int = 0
    n_pulses: int = 0
    last_fix_s: float = -math.inf


@dataclass(frozen=True)
class LastKnown:
    """Where and when the person was last seen and what kind of person they are: a track that
    starts weighs its first particles by the lost-person prior (:mod:`locator.prior`), as the
    probability map does. Without it a track knows only the radio evidence: a bracelet heard by
    one team along one line could be anywhere on that line."""

    lat_deg: float
    lon_deg: float
    t: datetime
    category: str = "dementia"

    def __post_init__(self) -> None:
        check_category(self.category)
        check_lat_lon(self.lat_deg, self.lon_deg)
        if self.t.tzinfo is None:
            raise InputError("last seen: a time with its zone (UTC offset) is needed")


@dataclass
class Locator:
    frame: LocalFrame | None = None
    bracelets: dict[str, _Bracelet] = field(default_factory=dict)
    last_known: LastKnown | None = None
    _channels: dict[int, set[str]] = field(default_factory=dict)  # bracelet IDs heard per channel

    def _new_track(self, positions: NDArray[np.float64], t_s: float, seed: int) -> ParticleTrack:
        """A track from its first particles, weighed by the last known point if there is one."""
        track = ParticleTrack(positions, t_s, seed)
        lk = self.last_known
        if lk is not None and self.frame is not None:
            east, north = self.frame.to_en(lk.lat_deg, lk.lon_deg)
            track.weigh_prior(
                point_weights(
                    positions[:, 0] - east, positions[:, 1] - north, lk.category,
                    t_s - lk.t.timestamp(),
                )
            )  # fmt: skip
            track.set_last_seen(east, north, lk.t.timestamp())
        return track

    def _frame_for(self, lat: float, lon: float) -> LocalFrame:
        if self.frame is None:
            self.frame = LocalFrame(lat, lon)
        return self.frame

    def add(self, report: Report) -> list[Fix]:
        if isinstance(report, Pulse) and report.bracelet_id is not None:
            self._channels.setdefault(report.channel, set()).add(report.bracelet_id)
        if isinstance(report, Bearing):
            return self._bearing(report)
        if isinstance(report, Pulse):
            return self._pulse(report)
        if isinstance(report, Silence):
            return self._silence(report)
        return []

    def trail(self, bracelet_id: str) -> list[TrailPoint]:
        """The smoothed trail of a bracelet's last minutes (east/north m in :attr:`frame`)."""
        b = self.bracelets.get(bracelet_id)
        return [] if b is None else b.track.trail()

    # --- bearings -----------------------------------------------------------------------------
    def _bearing(self, r: Bearing) -> list[Fix]:
        frame = self._frame_for(r.lat_deg, r.lon_deg)
        rx = frame.to_en(r.lat_deg, r.lon_deg)
        bracelet_id = r.bracelet_id
        if bracelet_id is None and len(self._channels.get(r.channel, ())) == 1:
            # Not decoded, but only one bracelet is heard on its channel: it is that one's.
            (bracelet_id,) = self._channels[r.channel]
        key = key_of(bracelet_id, r.channel)
        t_s = r.t.timestamp()
        b = self.bracelets.get(key)
        bearing_rad = math.radians(r.bearing_deg)
        if b is None:
            sigma = math.hypot(own_sigma_rad(r.sigma_deg), math.radians(PLACE_BIAS_DEG))
            seed = zlib.crc32(key.encode())
            track = self._new_track(
                wedge_positions(np.random.default_rng(seed), MAX_PARTICLES, rx, bearing_rad,
                                sigma, HEARD_WITHIN_M),
                t_s, seed,
            )  # fmt: skip
            b = self.bracelets[key] = _Bracelet(track)
            b.bearing_places.place(r.receiver_id, rx[0], rx[1], t_s)
            b.n_bearings = 1
            return self._maybe_fix(key, b, bracelet_id, t_s)
        place, _ = b.bearing_places.place(r.receiver_id, rx[0], rx[1], t_s)
        sigma = own_sigma_rad(r.sigma_deg)
        late_s = b.track.t_s - t_s
        if late_s > LATE_LIMIT_S:
            return []
        taken_s = None
        if 0 < late_s <= TRAIL_LAG_S:
            taken_s = t_s  # weighed where each particle was when it was taken
        elif late_s > 0:
            sigma = math.hypot(sigma, self._walked_rad(b, rx, late_s))
        b.track.predict(t_s)
        b.track.update_bearing(rx, bearing_rad, sigma, place, HEARD_WITHIN_M, taken_s)
        b.n_bearings += 1
        return self._maybe_fix(key, b, bracelet_id, t_s, force=True)

    @staticmethod
    def _walked_rad(b: _Bracelet, rx: tuple[float, float], late_s: float) -> float:
        """The angle the person may have walked, seen from ``rx``, in ``late_s`` seconds."""
        mean, _, _, _ = b.track.estimate()
        range_m = max(math.hypot(mean[0] - rx[0], mean[1] - rx[1]), 50.0)
        return min(MAX_SPEED_MPS * late_s / range_m, math.pi)

    # --- pulses -------------------------------------------------------------------------------
    def _pulse(self, p: Pulse) -> list[Fix]:
        if p.lat_deg is None or p.lon_deg is None:
            return []
        key_id = p.bracelet_id
        if key_id is None:
            # Not decoded (too weak for the ID, strong enough to measure): like an undecoded
            # bearing, it is the pulse of the one bracelet heard on its channel, if only one is.
            heard = self._channels.get(p.channel, set())
            if len(heard) != 1 or next(iter(heard)) not in self.bracelets:
                return []
            (key_id,) = heard
        frame = self._frame_for(p.lat_deg, p.lon_deg)
        east, north = frame.to_en(p.lat_deg, p.lon_deg)
        t_s = p.t.timestamp()
        height = height_above_m(p.alt_m, frame.alt0_m)
        key = key_id
        b = self.bracelets.get(key)
        if b is None:
            seed = zlib.crc32(key.encode())
            radius = HEARD_FROM_AIR_M if height > 0 else HEARD_WITHIN_M
            positions = disc_positions(
                np.random.default_rng(seed), MAX_PARTICLES, (east, north), radius
            )
            b = self.bracelets[key] = _Bracelet(self._new_track(positions, t_s, seed))
        b.n_pulses += 1
        obs = PulseObs(t_s, east, north, height, p.rssi_dbm, p.heading_deg, p.antenna)
        collector = b.collectors.setdefault(p.receiver_id, PlaceCollector())
        finished = [(p.receiver_id, collector.add(obs))]
        finished += [(rid, c.stale(t_s)) for rid, c in b.collectors.items() if c is not collector]
        used = False
        for receiver_id, pulses in finished:
            if pulses:
                used |= self._place(b, receiver_id, place_measurement(pulses), t_s)
        return self._maybe_fix(key, b, key, t_s, force=used)

    def _place(self, b: _Bracelet, receiver_id: str, m: PlaceMeasurement, now_s: float) -> bool:
        if b.track.t_s - m.t_s > LATE_LIMIT_S:
            return False
        centre = m.centre_en
        if m.airborne:
            # A pass from the air shares what is near the person (body, roof, trees): one
            # place for the whole pass, whatever its length.
            k = b.air_passes.count(receiver_id, 0.0, 0.0, m.t_s)
            own = math.hypot(m.independent_db, AIR_SCATTER_DB / math.sqrt(m.rssi_dbm.size))
            sigma_db = place_sigma(own, AIR_SHARED_DB, k)
        else:
            k = b.rss_places.count(receiver_id, centre[0], centre[1], m.t_s)
            sigma_db = place_sigma(m.independent_db, RECEIVER_SHADOWING_DB, k)
        b.track.predict(now_s)
        b.track.update_place(m, sigma_db)
        return True

    # --- silences ----------------------------------------------------------------------------
    def _silence(self, r: Silence) -> list[Fix]:
        frame = self._frame_for(r.lat_deg, r.lon_deg)
        rx = frame.to_en(r.lat_deg, r.lon_deg)
        t_s = r.t.timestamp()
        noise = SILENCE_LINK.noise_dbm if r.noise_dbm is None else r.noise_dbm
        fixes: list[Fix] = []
        for key in sorted(self._channels.get(r.channel, ())):
            b = self.bracelets.get(key)
            if b is None or b.track.t_s - t_s > LATE_LIMIT_S:
                continue
            _, k = b.silence_places.place(r.receiver_id, rx[0], rx[1], t_s)
            if k > 1:
                continue  # the place's shadowing is the same: its silence was counted
            b.track.predict(t_s)
            b.track.update_silence(
                rx, noise + SILENCE_LINK.snr_min_db, SILENCE_GAIN_DBI,
                max(round(r.window_s / PULSE_PERIOD_S), 1), t_s - 0.5 * r.window_s,
            )  # fmt: skip
            fixes += self._maybe_fix(key, b, key, t_s, force=True)
        return fixes

    # --- fixes --------------------------------------------------------------------------------
    def _maybe_fix(
        self, key: str, b: _Bracelet, bracelet_id: str | None, t_s: float, force: bool = False
    ) -> list[Fix]:
        if not force and t_s - b.last_fix_s < PULSE_FIX_EVERY_S:
            return []
        b.track.predict(t_s)
        _, spread, velocity, _ = b.track.estimate()
        major = math.sqrt(CHI2_2DOF_95 * float(np.linalg.eigvalsh(spread)[-1]))
        if major > FIX_MAJOR_M:
            return []
        mean, cov = b.track.point()
        b.last_fix_s = t_s
        assert self.frame is not None
        return [
            make_fix(
                self.frame, bracelet_id, datetime.fromtimestamp(b.track.t_s, UTC), mean, cov,
                METHOD, b.n_bearings, b.n_pulses, velocity,
            )
        ]  # fmt: skip


def batch_fixes(reports: Sequence[Report]) -> list[Fix]:
    """One fix per bracelet from all of its bearings (the person taken as stationary)."""
    bearings = [r for r in reports if isinstance(r, Bearing)]
    if not bearings:
        return []
    frame = LocalFrame(bearings[0].lat_deg, bearings[0].lon_deg)
    groups: dict[str, list[Bearing]] = {}
    for b in bearings:
        groups.setdefault(key_of(b.bracelet_id, b.channel), []).append(b)
    fixes = []
    for group in groups.values():
        obs = [
            BearingObs(
                *frame.to_en(b.lat_deg, b.lon_deg), b.bearing_deg, b.sigma_deg, b.receiver_id
            )
            for b in group
        ]
        result = triangulate(obs)
        if not result.ok or result.position_en is None or result.cov_en_m2 is None:
            continue
        pulses = sum(b.n_pulses for b in group)
        fixes.append(
            make_fix(
                frame,
                group[0].bracelet_id,
                max(b.t for b in group),
                result.position_en,
                result.cov_en_m2,
                "batch",
                int(result.inliers.sum()),
                pulses,
            )
        )
    return fixes
