"""Several bracelets at once: reports in, fix reports out.

:class:`Locator` takes field reports in arrival order. Bearings are kept per bracelet (by ID,
or by channel when only the channel is known); once they triangulate to a fix whose 95 %
ellipse is under ``START_MAJOR_M``, a :class:`~locator.kalman.Track` starts there, and every
later bearing — and the signal strength of every decoded pulse with a position — updates it.
Each update that is used yields a ``fix`` report (at most one per second from pulses).

Signal strength (:mod:`locator.ranging`): ``rssi = level − 10·n·log10(r) + G``, the level and
exponent learned per bracelet as the search goes, ``G`` the antenna's gain toward the estimate
when its heading is known; its sigma (10 dB until learned) covers shadowing, fading and the
unknown EIRP, so it is a secondary cue far out and the main one close in. One pulse per receiver
per ``RSS_EVERY_S`` is used: nearby pulses share their shadowing and are not independent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from locator.fixes import make_fix
from locator.kalman import Measurement, Track
from locator.ranging import PathLossModel
from locator.triangulate import BearingObs, triangulate
from safetynet.angles import bearing_of_enu
from safetynet.antennas import PATTERNS
from safetynet.geodesy import LocalFrame
from safetynet.reports import Bearing, Fix, Pulse, Report

START_MAJOR_M = 3000.0
AIRBORNE_M = 30.0
RSS_EVERY_S = 10.0  # per receiver: shadowing is shared by nearby pulses, they are not independent
PULSE_FIX_EVERY_S = 1.0
RESTART_AFTER_GATED = 3
RECENT_BEARINGS = 8


def key_of(bracelet_id: str | None, channel: int) -> str:
    return bracelet_id if bracelet_id is not None else f"ch{channel}"


@dataclass
class Locator:
    frame: LocalFrame | None = None
    tracks: dict[str, Track] = field(default_factory=dict)
    pending: dict[str, list[tuple[float, BearingObs]]] = field(default_factory=dict)
    models: dict[str, PathLossModel] = field(default_factory=dict)  # per bracelet
    _last_pulse_fix: dict[str, float] = field(default_factory=dict)
    _last_rss: dict[tuple[str, str], float] = field(default_factory=dict)
    _recent: dict[str, list[tuple[float, BearingObs]]] = field(default_factory=dict)
    _gated_run: dict[str, int] = field(default_factory=dict)

    def _frame_for(self, lat: float, lon: float) -> LocalFrame:
        if self.frame is None:
            self.frame = LocalFrame(lat, lon)
        return self.frame

    def add(self, report: Report) -> list[Fix]:
        if isinstance(report, Bearing):
            return self._bearing(report)
        if isinstance(report, Pulse):
            return self._pulse(report)
        return []

    def _bearing(self, b: Bearing) -> list[Fix]:
        frame = self._frame_for(b.lat_deg, b.lon_deg)
        east, north = frame.to_en(b.lat_deg, b.lon_deg)
        key = key_of(b.bracelet_id, b.channel)
        t_s = b.t.timestamp()
        obs = BearingObs(east, north, b.bearing_deg, b.sigma_deg, b.receiver_id)
        recent = self._recent.setdefault(key, [])
        recent.append((t_s, obs))
        del recent[:-RECENT_BEARINGS]
        track = self.tracks.get(key)
        if track is None:
            self.pending.setdefault(key, []).append((t_s, obs))
            return self._try_start(key, b.bracelet_id)
        m = Measurement(t_s, "bearing", b.receiver_id, east, north,
                        math.radians(b.bearing_deg), math.radians(b.sigma_deg))  # fmt: skip
        if track.add(m):
            self._gated_run[key] = 0
            return [self._fix(key, b.bracelet_id)]
        # Bearings that keep disagreeing with the track mean the track is lost (the person
        # moved more than it allowed for): start again from the recent bearings.
        self._gated_run[key] = self._gated_run.get(key, 0) + 1
        if self._gated_run[key] >= RESTART_AFTER_GATED:
            self.pending[key] = list(recent)
            del self.tracks[key]
            self._gated_run[key] = 0
            return self._try_start(key, b.bracelet_id)
        return []

    def _try_start(self, key: str, bracelet_id: str | None) -> list[Fix]:
        items = self.pending[key]
        if len(items) < 2:
            return []
        result = triangulate([o for _, o in items])
        if not result.ok or result.position_en is None or result.cov_en_m2 is None:
            return []
        major = math.sqrt(5.991 * float(np.linalg.eigvalsh(result.cov_en_m2)[-1]))
        if major > START_MAJOR_M:
            return []
        t0 = max(t for t, _ in items)
        self.tracks[key] = Track(result.position_en, result.cov_en_m2, t0)
        del self.pending[key]
        return [self._fix(key, bracelet_id, n_bearings=len(items))]

    def _pulse(self, p: Pulse) -> list[Fix]:
        if p.bracelet_id is None or p.lat_deg is None or p.lon_deg is None:
            return []
        track = self.tracks.get(p.bracelet_id)
        if track is None:
            return []
        t_s = p.t.timestamp()
        if t_s - self._last_rss.get((p.bracelet_id, p.receiver_id), -math.inf) < RSS_EVERY_S:
            return []
        self._last_rss[(p.bracelet_id, p.receiver_id)] = t_s
        frame = self._frame_for(p.lat_deg, p.lon_deg)
        east, north = frame.to_en(p.lat_deg, p.lon_deg)
        x, cov, _ = track.estimate
        gain = 0.0
        if p.heading_deg is not None:
            toward = bearing_of_enu(float(x[0]) - east, float(x[1]) - north)
            gain = float(PATTERNS[p.antenna].gain_dbi(toward - p.heading_deg))
        model = self.models.setdefault(p.bracelet_id, PathLossModel())
        height_m = max((p.alt_m or 0.0) - (self.frame.alt0_m if self.frame else 0.0), 0.0)
        height_m = height_m if height_m > AIRBORNE_M else 0.0  # a person's own height aside
        range_m = math.hypot(float(x[0]) - east, float(x[1]) - north, height_m)
        model.observe(range_m, math.sqrt(float(np.trace(cov[:2, :2]))), p.rssi_dbm - gain)
        m = Measurement(
            t_s, "rss", p.receiver_id, east, north, p.rssi_dbm, model.sigma_db,
            model.level_1m_dbm + gain, model.exponent, height_m,
        )  # fmt: skip
        if not track.add(m):
            return []
        if t_s - self._last_pulse_fix.get(p.bracelet_id, -math.inf) < PULSE_FIX_EVERY_S:
            return []
        self._last_pulse_fix[p.bracelet_id] = t_s
        return [self._fix(p.bracelet_id, p.bracelet_id)]

    def _fix(self, key: str, bracelet_id: str | None, n_bearings: int | None = None) -> Fix:
        track = self.tracks[key]
        x, p, _ = track.estimate
        assert self.frame is not None
        bearings, pulses = track.counts
        return make_fix(
            self.frame, bracelet_id, datetime.fromtimestamp(track.t_s, UTC), x[:2], p[:2, :2],
            "imm", n_bearings if n_bearings is not None else bearings, pulses, x[2:],
        )  # fmt: skip


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
