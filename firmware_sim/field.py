"""Receivers in the field: where each one is and where its antenna points, every moment.

Three kinds: a **handheld** team walking a route with a 3-element Yagi, which stops every so
often and sweeps — the turn a searcher makes: a full 360° clockwise in 5–15 s, then a pause
pointing at the loudest direction, then walks on with the antenna held forward; a **vehicle**
driving a route with a roof omni; a **fixed** station. Each motion is sampled at 10 Hz into a
:class:`PoseTrack` and interpolated. Each receiver reports its position with GPS error (a
first-order Gauss–Markov process, σ and correlation time configurable) and its heading with
compass error (a fixed bias plus white noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import bearing_of_enu, wrap_360

POSE_DT_S = 0.1


@dataclass(frozen=True)
class PoseTrack:
    """True pose every ``POSE_DT_S`` from t = 0: position (m) and heading (deg, unwrapped)."""

    east_m: NDArray[np.float64]
    north_m: NDArray[np.float64]
    heading_unwrapped_deg: NDArray[np.float64]
    sweeping: NDArray[np.bool_]

    def _index(self, t_s: float) -> tuple[int, float]:
        x = min(max(t_s / POSE_DT_S, 0.0), self.east_m.size - 1.000001)
        i = int(x)
        return i, x - i

    def position(self, t_s: float) -> tuple[float, float]:
        i, f = self._index(t_s)
        return (
            float(self.east_m[i] * (1 - f) + self.east_m[i + 1] * f),
            float(self.north_m[i] * (1 - f) + self.north_m[i + 1] * f),
        )

    def heading_deg(self, t_s: float) -> float:
        i, f = self._index(t_s)
        h = self.heading_unwrapped_deg
        return wrap_360(float(h[i] * (1 - f) + h[i + 1] * f))

    def is_sweeping(self, t_s: float) -> bool:
        i, _ = self._index(t_s)
        return bool(self.sweeping[i])


@dataclass(frozen=True)
class SweepParams:
    walk_s: tuple[float, float] = (30.0, 90.0)  # walking between sweeps
    sweep_s: tuple[float, float] = (5.0, 15.0)  # one full turn
    point_s: tuple[float, float] = (2.0, 6.0)  # pointing at the loudest direction
    wobble_deg: float = 3.0  # hand wobble around the intended heading
    pointing_error_deg: float = 10.0


def _route_positions(
    waypoints: NDArray[np.float64], distance_m: NDArray[np.float64], loop: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Position and travel heading at distances along a polyline (back and forth or looped)."""
    pts = np.vstack([waypoints, waypoints[:1]]) if loop else waypoints
    seg = np.diff(pts, axis=0)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    total = float(seg_len.sum())
    if total == 0.0:
        zeros = np.zeros_like(distance_m)
        return zeros + pts[0, 0], zeros + pts[0, 1], zeros
    cum = np.concatenate(([0.0], np.cumsum(seg_len)))
    if loop:
        s = np.mod(distance_m, total)
        reverse = np.zeros_like(s, dtype=bool)
    else:  # walk the route out and back again
        s = np.mod(distance_m, 2 * total)
        reverse = s > total
        s = np.where(reverse, 2 * total - s, s)
    east = np.interp(s, cum, pts[:, 0])
    north = np.interp(s, cum, pts[:, 1])
    idx = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, seg.shape[0] - 1)
    heading = bearing_of_enu(seg[idx, 0], seg[idx, 1])
    heading = np.where(reverse, wrap_360(heading + 180.0), heading)
    return east, north, heading


def moving_track(
    waypoints: NDArray[np.float64],
    speed_mps: float,
    duration_s: float,
    loop: bool = False,
    start_s: float = 0.0,
) -> PoseTrack:
    """A vehicle or aircraft moving along ``waypoints`` at constant speed from ``start_s``."""
    t = np.arange(0.0, duration_s + 2 * POSE_DT_S, POSE_DT_S)
    east, north, heading = _route_positions(waypoints, speed_mps * np.maximum(t - start_s, 0), loop)
    return PoseTrack(
        east, north, np.rad2deg(np.unwrap(np.deg2rad(heading))), np.zeros(t.size, dtype=bool)
    )


def fixed_track(east_m: float, north_m: float, heading_deg: float, duration_s: float) -> PoseTrack:
    n = int(duration_s / POSE_DT_S) + 2
    return PoseTrack(
        np.full(n, east_m), np.full(n, north_m), np.full(n, heading_deg), np.zeros(n, dtype=bool)
    )


def handheld_track(
    waypoints: NDArray[np.float64],
    speed_mps: float,
    duration_s: float,
    rng: np.random.Generator,
    sweep: SweepParams,
    target: Callable[[float], tuple[float, float]] | None = None,
    loop: bool = False,
) -> PoseTrack:
    """A searcher walking ``waypoints`` who stops to sweep the Yagi round and point it.

    ``target(t)`` gives the position the searcher turns to after a sweep (the loudest
    direction; the simulator passes the bracelet's position); without it they point ahead.
    """
    n = int(duration_s / POSE_DT_S) + 2
    t = np.arange(n) * POSE_DT_S
    dist = np.zeros(n)
    heading_offset = np.full(n, np.nan)  # absolute heading while stopped; NaN while walking
    sweeping = np.zeros(n, dtype=bool)
    i, walked = 0, 0.0
    while i < n:
        walk_n = int(rng.uniform(*sweep.walk_s) / POSE_DT_S)
        for _ in range(min(walk_n, n - i)):
            walked += speed_mps * POSE_DT_S
            dist[i] = walked
            i += 1
        if i >= n:
            break
        east, north, ahead = _route_positions(waypoints, np.array([walked]), loop)
        start_heading = float(ahead[0])
        sweep_n = int(rng.uniform(*sweep.sweep_s) / POSE_DT_S)
        for k in range(min(sweep_n, n - i)):
            dist[i] = walked
            heading_offset[i] = start_heading + 360.0 * k / sweep_n
            sweeping[i] = True
            i += 1
        point_n = int(rng.uniform(*sweep.point_s) / POSE_DT_S)
        if target is not None and i < n:
            tx = target(t[min(i, n - 1)])
            aim = bearing_of_enu(tx[0] - float(east[0]), tx[1] - float(north[0]))
            aim += float(rng.normal(0, sweep.pointing_error_deg))
        else:
            aim = start_heading
        end_of_sweep = start_heading + 360.0
        aim_unwrapped = end_of_sweep + ((aim - end_of_sweep + 180.0) % 360.0 - 180.0)
        for _ in range(min(point_n, n - i)):
            dist[i] = walked
            heading_offset[i] = aim_unwrapped
            i += 1
    east, north, ahead = _route_positions(waypoints, dist, loop)
    walking_heading = np.rad2deg(np.unwrap(np.deg2rad(ahead)))
    heading = np.where(np.isnan(heading_offset), walking_heading, heading_offset)
    heading = np.rad2deg(np.unwrap(np.deg2rad(heading)))  # join walking and sweeping smoothly
    heading += _smooth_noise(rng, n, sweep.wobble_deg, 1.0)
    return PoseTrack(east, north, heading, sweeping)


def _smooth_noise(
    rng: np.random.Generator, n: int, sigma: float, tau_s: float
) -> NDArray[np.float64]:
    """First-order Gauss–Markov noise: standard deviation ``sigma``, time constant ``tau_s``."""
    a = math.exp(-POSE_DT_S / tau_s)
    w = rng.normal(0, sigma * math.sqrt(1 - a * a), n)
    out = np.empty(n)
    x = rng.normal(0, sigma)
    for k in range(n):
        x = a * x + w[k]
        out[k] = x
    return out


@dataclass
class SensorErrors:
    """GPS and compass errors of one receiver, drawn once and sampled at 10 Hz."""

    gps_east_m: NDArray[np.float64]
    gps_north_m: NDArray[np.float64]
    compass_bias_deg: float
    compass_noise_deg: float
    rng: np.random.Generator

    @classmethod
    def draw(
        cls, n: int, rng: np.random.Generator, gps_sigma_m: float = 3.0, gps_tau_s: float = 60.0,
        compass_bias_sd_deg: float = 2.0, compass_noise_deg: float = 1.5,
    ) -> SensorErrors:  # fmt: skip
        return cls(
            _smooth_noise(rng, n, gps_sigma_m, gps_tau_s),
            _smooth_noise(rng, n, gps_sigma_m, gps_tau_s),
            float(rng.normal(0, compass_bias_sd_deg)),
            compass_noise_deg,
            rng,
        )

    def gps(self, t_s: float) -> tuple[float, float]:
        i = int(min(max(t_s / POSE_DT_S, 0), self.gps_east_m.size - 1))
        return float(self.gps_east_m[i]), float(self.gps_north_m[i])

    def compass(self) -> float:
        return self.compass_bias_deg + float(self.rng.normal(0, self.compass_noise_deg))
