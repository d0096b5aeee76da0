"""A person on foot who has wandered off: where they are at every second.

The walk alternates between walking and stopping. Walking speed is drawn per leg around
0.9 m/s (clipped to 0.2–1.5 m/s: older adults walk 0.8–1.2 m/s, slower when confused). Stops are
short (10–60 s, looking around) or long pauses (5–20 min, sitting down), so that about a third of
the time is spent standing still. Heading is persistent — people with dementia tend to travel in
a straight line and rarely backtrack (Koester, *Lost Person Behavior*: median 15 m off their
travel route) — with a slow random drift and occasional turns at junctions (every few hundred
metres, ±90°). With these figures the straight-line distance from the last known point after
one hour has a median near 1 km, in line with DOMAIN.md's dementia distances (50 % within
0.8 km, 75 % within 1.9 km, counting walkers found earlier).

Options: **attraction** to named destinations (a former home, a church): the heading is pulled
toward the active destination, and the walker lingers there; **confinement** to a walkable area
(GeoJSON polygons in local metres): a step that would leave the area is refused and the walker
turns. All randomness comes from the seeded generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import wrap_180


@dataclass(frozen=True)
class WalkerParams:
    """Parameters of the walk (SI units; documented in the module docstring)."""

    speed_mean_mps: float = 0.9
    speed_sd_mps: float = 0.2
    speed_min_mps: float = 0.2
    speed_max_mps: float = 1.5
    leg_mean_s: float = 240.0  # walking between stops
    short_stop_s: tuple[float, float] = (10.0, 60.0)
    long_pause_s: tuple[float, float] = (300.0, 1200.0)
    long_pause_probability: float = 0.15
    heading_drift_deg_per_sqrt_s: float = 2.0
    turn_every_m: float = 300.0
    turn_sd_deg: float = 60.0
    attraction: float = 0.3  # 0..1: how strongly a destination pulls the heading
    arrive_within_m: float = 15.0
    linger_s: tuple[float, float] = (300.0, 900.0)


@dataclass(frozen=True)
class Destination:
    name: str
    east_m: float
    north_m: float


@dataclass(frozen=True)
class Track:
    """A walked track sampled every ``dt_s`` from ``t0_s``; positions in local metres."""

    t0_s: float
    dt_s: float
    east_m: NDArray[np.float64]
    north_m: NDArray[np.float64]
    moving: NDArray[np.bool_]

    def position(
        self, t_s: float | NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Interpolated (east_m, north_m) at ``t_s`` (held at the ends)."""
        times = self.t0_s + self.dt_s * np.arange(self.east_m.size)
        east = np.asarray(np.interp(t_s, times, self.east_m), dtype=float)
        north = np.asarray(np.interp(t_s, times, self.north_m), dtype=float)
        return east, north

    def is_moving(self, t_s: float) -> bool:
        i = int(np.clip(round((t_s - self.t0_s) / self.dt_s), 0, self.moving.size - 1))
        return bool(self.moving[i])


@dataclass
class Walker:
    """Generates a :class:`Track` from a start point."""

    start_east_m: float = 0.0
    start_north_m: float = 0.0
    initial_heading_deg: float | None = None
    params: WalkerParams = field(default_factory=WalkerParams)
    destinations: list[Destination] = field(default_factory=list)
    area: list[NDArray[np.float64]] | None = None  # polygons (N×2, east/north m) one may walk in
    start_stopped_s: float = 0.0

    def walk(self, duration_s: float, rng: np.random.Generator, dt_s: float = 1.0) -> Track:
        p = self.params
        n = math.ceil(duration_s / dt_s) + 1
        east = np.empty(n)
        north = np.empty(n)
        moving = np.zeros(n, dtype=bool)
        x, y = self.start_east_m, self.start_north_m
        if self.area is not None and not self._inside(x, y):
            raise ValueError("the walker's start point is outside its walkable area")
        heading = (
            self.initial_heading_deg if self.initial_heading_deg is not None
            else float(rng.uniform(0, 360))
        )  # fmt: skip
        stop_left = self.start_stopped_s
        leg_left = float(rng.exponential(p.leg_mean_s))
        speed = self._speed(rng)
        since_turn = 0.0
        next_turn = float(rng.exponential(p.turn_every_m))
        goal = 0
        for i in range(n):
            east[i], north[i] = x, y
            if stop_left > 0:
                stop_left -= dt_s
                continue
            moving[i] = True
            heading += float(rng.normal(0, p.heading_drift_deg_per_sqrt_s * math.sqrt(dt_s)))
            if since_turn >= next_turn:
                heading += float(rng.normal(0, p.turn_sd_deg))
                since_turn, next_turn = 0.0, float(rng.exponential(p.turn_every_m))
            if goal < len(self.destinations):
                dest = self.destinations[goal]
                to_goal = math.degrees(math.atan2(dest.east_m - x, dest.north_m - y))
                heading += p.attraction * wrap_180(to_goal - heading)
                if math.hypot(dest.east_m - x, dest.north_m - y) < p.arrive_within_m:
                    goal += 1
                    stop_left = float(rng.uniform(*p.linger_s))
                    continue
            step = speed * dt_s
            nx = x + step * math.sin(math.radians(heading))
            ny = y + step * math.cos(math.radians(heading))
            if self.area is not None and not self._inside(nx, ny):
                heading += float(rng.choice([-1.0, 1.0])) * float(rng.uniform(60, 150))
                continue
            x, y = nx, ny
            since_turn += step
            leg_left -= dt_s
            if leg_left <= 0:
                long = rng.random() < p.long_pause_probability
                stop_left = float(rng.uniform(*(p.long_pause_s if long else p.short_stop_s)))
                leg_left = float(rng.exponential(p.leg_mean_s))
                speed = self._speed(rng)
        return Track(0.0, dt_s, east, north, moving)

    def _speed(self, rng: np.random.Generator) -> float:
        p = self.params
        return float(
            np.clip(rng.normal(p.speed_mean_mps, p.speed_sd_mps), p.speed_min_mps, p.speed_max_mps)
        )

    def _inside(self, x: float, y: float) -> bool:
        assert self.area is not None
        return any(point_in_polygon(x, y, poly) for poly in self.area)


def point_in_polygon(x: float, y: float, polygon: NDArray[np.float64]) -> bool:
    """Even-odd rule; ``polygon`` is N×2 (east, north), closed or not."""
    px, py = polygon[:, 0], polygon[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    crosses = ((py > y) != (qy > y)) & (
        x < (qx - px) * (y - py) / np.where(qy == py, 1e-300, qy - py) + px
    )
    return bool(np.count_nonzero(crosses) % 2)
