"""Where the person probably is: a probability grid from lost-person statistics and radio evidence.

The grid covers a square around the last known point in the local east/north frame (metres),
``cell_m`` on a side. It starts from the distance a lost person of the category is found from
the last known point (Koester, *Lost Person Behavior*, in DOMAIN.md), limited by how far they
can have walked since last seen, optionally shaped by map features, and is then updated by every
report, Bayes' rule on each cell:

- a **bearing**: a wedge, Gaussian in angle with the bearing's sigma, with a floor for
  reflections (``REFLECTION_FLOOR`` of the mass may lie anywhere: a bounce off a building gives a
  consistently wrong bearing that no sigma covers);
- **signal strength** of a heard pulse: the log-distance path-loss likelihood of the RSSI at
  each cell's distance (shadowing and the unknown EIRP make it broad);
- a **silence** (listened, heard nothing): each cell's probability times the chance the receiver
  would have missed the bracelet from there, ``1 − P_detect(distance)`` from the link budget for
  that receiver's antenna and noise — negative information;
- **motion** between updates: the person spreads as a persistent random walker (diffusion with
  ``σ² = v² τ Δt``), so a hole left by a silence fills again with time.

Distances found (km), dementia: 25 % 0.3, 50 % 0.8, 75 % 1.9, 95 % 8.3 — fitted by a log-normal
(median 0.8 km, σ_ln 1.38; the four quantiles give 1.28–1.46). DOMAIN.md gives no distances for
autism; the autism prior uses the same distances and weights water three times (drowning is the
leading cause of death; water within half a mile is the first place to look).
"""

from __future__ import annotations

import functools
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

from safetynet.angles import bearing_of_enu, wrap_180
from safetynet.errors import InputError
from safetynet.geodesy import LocalFrame
from safetynet.reports import Bearing, FieldReport, Pulse, Silence

FloatGrid = NDArray[np.float64]
REFLECTION_FLOOR = 0.1
LOGNORMAL = {"dementia": (math.log(800.0), 1.38), "autism": (math.log(800.0), 1.38)}
FEATURE_WEIGHTS = {
    "dementia": {"water": 1.0, "road": 1.3, "building": 1.3, "park": 1.0, "woods": 1.2},
    "autism": {"water": 3.0, "road": 1.0, "building": 1.0, "park": 1.2, "woods": 1.0},
}
ANTENNA_GAIN_DBI = {"omni": 0.0, "yagi3": 7.0}  # a swept Yagi: its peak
CLOSE_IN_AT = 0.9  # listening turns into closing in once a reachable spot hears this surely
CLOSE_IN_M = 100.0  # ... towards the point with the most probability within this distance
# One pulse per receiver per this many seconds counts as signal-strength evidence: pulses heard
# from nearby spots share their shadowing, and counting each would make the map overconfident.
STRENGTH_EVERY_S = 60.0
# Silences likewise: a receiver listening again where it listened before meets the same
# shadowing, and its silence says little more. One counts when the receiver has moved this far
# (about twice the shadowing's decorrelation distance) from its last counted silence, or when
# this long has passed (the person moves).
SILENCE_SPACING_M = 100.0
SILENCE_EVERY_S = 300.0


LISTEN_PULSES = 10  # a listen lasts about ten pulses (a sweep, a silence's window)
# Probabilists' Gauss–Hermite nodes and weights (weights summing to one): E[f(Z)], Z ~ N(0, 1).
_nodes, _weights = np.polynomial.hermite_e.hermegauss(12)
_HERMITE_NODES, _HERMITE_WEIGHTS = _nodes, _weights / _weights.sum()


@functools.lru_cache(maxsize=64)
def _detection_table(shadowing_db: float, pulses: int) -> tuple[FloatGrid, FloatGrid]:
    """Chance of hearing at least one of ``pulses`` Rayleigh-faded pulses against the mean
    level's margin over the threshold (dB), with log-normal shadowing: tabulated every 0.05 dB
    from −80 to +80 dB (interpolating it is eight times faster than the quadrature per cell,
    and within 1e-5 of it)."""
    margins = np.arange(-80.0, 80.0 + 1e-9, 0.05)
    table = np.zeros_like(margins)
    for node, weight in zip(_HERMITE_NODES, _HERMITE_WEIGHTS, strict=True):
        level = 10.0 ** ((margins + shadowing_db * node) / 10.0)  # mean power / threshold
        # One Rayleigh-faded pulse clears the threshold with probability exp(−1/level).
        missed = -np.expm1(-1.0 / np.maximum(level, 1e-12))
        table += weight * (1.0 - missed**pulses)
    return margins, table


@dataclass(frozen=True)
class LinkBudget:
    """What decides whether a receiver hears the bracelet at a distance (all in dB)."""

    eirp_dbm: float = -10.0
    body_loss_db: float = 3.0
    loss_at_1m_db: float = 19.1  # free space at 216 MHz
    exponent: float = 3.0
    shadowing_db: float = 6.0
    noise_dbm: float = -130.0  # in 10 kHz: thermal −134 plus a 4 dB noise figure
    snr_min_db: float = -6.0  # 90 % detection near 34–36 dB-Hz (receiver benchmark)

    def mean_rssi_dbm(self, distance_m: FloatGrid, gain_dbi: float) -> FloatGrid:
        d = np.maximum(distance_m, 1.0)
        out: FloatGrid = (
            self.eirp_dbm
            - self.body_loss_db
            + gain_dbi
            - self.loss_at_1m_db
            - 10.0 * self.exponent * np.log10(d)
        )
        return out

    def p_detect(
        self,
        distance_m: FloatGrid,
        gain_dbi: float,
        noise_dbm: float | None = None,
        pulses: int = LISTEN_PULSES,
    ) -> FloatGrid:
        """Chance of hearing the bracelet in ``pulses`` pulses (one a second) at ``distance_m``:
        at least one pulse above the detection threshold, each faded on its own (Rayleigh), all
        sharing the place's log-normal shadowing (averaged by Gauss–Hermite quadrature, from a
        table)."""
        noise = self.noise_dbm if noise_dbm is None else noise_dbm
        margin = self.mean_rssi_dbm(distance_m, gain_dbi) - (noise + self.snr_min_db)
        margins, table = _detection_table(self.shadowing_db, pulses)
        out: FloatGrid = np.interp(margin, margins, table)
        return out


@dataclass
class Guidance:
    """Where a team should go next: ``mode`` "listen" (the best chance to hear the bracelet
    there, ``p_detect``) or "close in" (the team hears it, or can get where hearing it is near
    certain: the centre of the most probability within ``CLOSE_IN_M``, ``p_near``)."""

    receiver_id: str
    east_m: float
    north_m: float
    p_detect: float
    mode: str = "listen"
    p_near: float = 0.0


class GuidedTeam(NamedTuple):
    """A team to guide: where it is, how far it can get before the next guidance (m), its
    antenna's gain (dBi; a noisier receiver counts as less gain) and whether it hears the
    bracelet now."""

    receiver_id: str
    east_m: float
    north_m: float
    reach_m: float
    gain_dbi: float
    hears: bool = False


@dataclass
class ProbMap:
    frame: LocalFrame
    half_width_m: float = 3000.0
    cell_m: float = 20.0
    walk_speed_mps: float = 0.7
    persistence_s: float = 300.0
    link: LinkBudget = field(default_factory=LinkBudget)
    t: datetime | None = None
    p: FloatGrid = field(init=False)
    _pending_var_m2: float = 0.0
    _last_strength: dict[str, float] = field(default_factory=dict)
    _last_silence: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1.0 <= self.cell_m <= 200.0 or self.half_width_m < 5 * self.cell_m:
            raise InputError(
                f"grid: cell 1..200 m and at least 10 cells across, got "
                f"{self.cell_m} m over ±{self.half_width_m} m"
            )
        n = round(2 * self.half_width_m / self.cell_m)
        centres = (np.arange(n) + 0.5) * self.cell_m - self.half_width_m
        self.east, self.north = np.meshgrid(centres, centres)  # [row = north, col = east]
        self.p = np.full((n, n), 1.0 / (n * n))

    # --- prior ------------------------------------------------------------------------------
    @classmethod
    def from_prior(
        cls,
        frame: LocalFrame,
        category: str,
        since_s: float,
        at: datetime | None = None,
        **kwargs: Any,
    ) -> ProbMap:
        """Lost-person statistics for ``category``, ``since_s`` seconds after last seen.

        Unless told, the grid is sized for the search: as far as the person can have walked by
        now and 2 km more to spread into (3 to 10 km from the last known point; the 95th
        percentile distance is 8.3 km), about 300 cells across (20 m cells at the smallest)."""
        if category not in LOGNORMAL:
            raise InputError(f"category: one of {', '.join(LOGNORMAL)}, got {category!r}")
        reach = 1.3 * max(since_s, 0.0) + 200.0
        if "half_width_m" not in kwargs:
            kwargs["half_width_m"] = min(max(reach + 2000.0, 3000.0), 10_000.0)
            kwargs.setdefault("cell_m", max(20.0, round(kwargs["half_width_m"] / 150.0)))
        grid = cls(frame=frame, t=at, **kwargs)
        mu, sigma = LOGNORMAL[category]
        r = np.maximum(np.hypot(grid.east, grid.north), grid.cell_m / 2)
        # Log-normal density of the distance, spread over the ring at r: f(r) / (2 π r).
        f = np.exp(-((np.log(r) - mu) ** 2) / (2 * sigma**2)) / (r * sigma * math.sqrt(2 * math.pi))
        density = f / (2 * math.pi * r)
        # No farther than walking since last seen allows (soft edge over 100 m).
        density *= 1.0 / (1.0 + np.exp((r - reach) / 100.0))
        grid.p = density / density.sum()
        return grid

    def shape_geojson(self, collection: dict[str, Any], category: str = "dementia") -> int:
        """Weight the cells the features of a GeoJSON FeatureCollection cover, by their
        ``kind`` (:mod:`locator.features`); returns how many features fell on the grid."""
        from locator.features import feature_masks

        weights = FEATURE_WEIGHTS.get(category, FEATURE_WEIGHTS["dementia"])
        masks = feature_masks(collection, self.frame, self.east, self.north)
        w = np.ones_like(self.p)
        for kind, mask in masks:
            w[mask] *= weights[kind]
        self._set(self.p * w)
        return len(masks)

    # --- evidence ---------------------------------------------------------------------------
    def advance(self, to: datetime) -> None:
        """Let the person walk until ``to``: diffuse by ``σ² = v² τ Δt``."""
        if self.t is None or to <= self.t:
            self.t = to if self.t is None else max(self.t, to)
            return
        dt = (to - self.t).total_seconds()
        self.t = to
        self._pending_var_m2 += self.walk_speed_mps**2 * self.persistence_s * dt
        # A blur wider than half the grid leaves it as flat as the grid can show; capped there,
        # a long gap (or a receiver's bad clock) costs one grid-wide blur, not a kernel of
        # millions of cells.
        sigma_cells = min(math.sqrt(self._pending_var_m2) / self.cell_m, self.p.shape[0] / 2)
        if sigma_cells >= 0.5:  # below half a cell a blur changes nothing: keep it for later
            self._set(gaussian_filter(self.p, sigma_cells, mode="constant", truncate=3.0))
            self._pending_var_m2 = 0.0

    def bearing(self, east_m: float, north_m: float, bearing_deg: float, sigma_deg: float) -> None:
        """A bearing from (east, north): a wedge with a floor for reflections."""
        azimuth_deg = bearing_of_enu(self.east - east_m, self.north - north_m)
        diff = np.radians(wrap_180(azimuth_deg - bearing_deg))
        sigma = math.radians(max(sigma_deg, 0.5))
        wedge = np.exp(-0.5 * (diff / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
        self._set(self.p * ((1 - REFLECTION_FLOOR) * wedge + REFLECTION_FLOOR / (2 * math.pi)))

    def silence(
        self,
        east_m: float,
        north_m: float,
        gain_dbi: float,
        noise_dbm: float | None = None,
        pulses: int = LISTEN_PULSES,
    ) -> None:
        """Listened for ``pulses`` pulses at (east, north) and heard nothing: cells it would
        have heard lose mass."""
        d = np.hypot(self.east - east_m, self.north - north_m)
        self._set(self.p * (1.0 - self.link.p_detect(d, gain_dbi, noise_dbm, pulses)))

    def strength(self, east_m: float, north_m: float, rssi_dbm: float, gain_dbi: float) -> None:
        """A pulse heard at ``rssi_dbm``: the path-loss likelihood at each cell's distance."""
        d = np.hypot(self.east - east_m, self.north - north_m)
        sigma = math.hypot(self.link.shadowing_db, 3.0)  # shadowing, and the EIRP's spread
        z = (rssi_dbm - self.link.mean_rssi_dbm(d, gain_dbi)) / sigma
        self._set(self.p * np.exp(-0.5 * z**2))

    def add(self, report: FieldReport) -> None:
        """Take one field report (status reports carry no evidence about the person)."""
        if isinstance(report, Bearing | Silence | Pulse):
            if report.lat_deg is None or report.lon_deg is None:
                return
            if isinstance(report, Pulse):
                t = report.t.timestamp()
                last = self._last_strength.get(report.receiver_id)
                if last is not None and 0 <= t - last < STRENGTH_EVERY_S:
                    return
                self._last_strength[report.receiver_id] = t
            east, north = self.frame.to_en(report.lat_deg, report.lon_deg)
            if isinstance(report, Silence):
                t = report.t.timestamp()
                last_silence = self._last_silence.get(report.receiver_id)
                if last_silence is not None:
                    t_last, e_last, n_last = last_silence
                    moved = math.hypot(east - e_last, north - n_last)
                    if moved < SILENCE_SPACING_M and 0 <= t - t_last < SILENCE_EVERY_S:
                        return
                self._last_silence[report.receiver_id] = (t, east, north)
            self.advance(report.t)
            if isinstance(report, Bearing):
                self.bearing(east, north, report.bearing_deg, report.sigma_deg)
            elif isinstance(report, Silence):
                self.silence(
                    east,
                    north,
                    ANTENNA_GAIN_DBI[report.antenna],
                    report.noise_dbm,
                    max(1, round(report.window_s)),
                )
            else:
                self.strength(east, north, report.rssi_dbm, ANTENNA_GAIN_DBI[report.antenna])

    def _set(self, p: FloatGrid) -> None:
        total = float(p.sum())
        if not math.isfinite(total) or total <= 1e-300:
            # The evidence contradicts everything (a bad report far outside): keep the old map.
            return
        self.p = p / total

    # --- outputs ----------------------------------------------------------------------------
    def areas_m2(self) -> tuple[float, float]:
        """The smallest areas that hold 50 % and 90 % of the probability."""
        flat = np.sort(self.p.ravel())[::-1]
        cum = np.cumsum(flat)
        cell = self.cell_m**2
        return (
            float(np.searchsorted(cum, 0.5) + 1) * cell,
            float(np.searchsorted(cum, 0.9) + 1) * cell,
        )

    def mean_en(self) -> tuple[float, float]:
        return float((self.p * self.east).sum()), float((self.p * self.north).sum())

    def density_at(self, east_m: float, north_m: float) -> float:
        """Probability per m² at a point (0 outside the grid)."""
        n = self.p.shape[0]
        col = int((east_m + self.half_width_m) // self.cell_m)
        row = int((north_m + self.half_width_m) // self.cell_m)
        if not (0 <= row < n and 0 <= col < n):
            return 0.0
        return float(self.p[row, col]) / self.cell_m**2

    def guidance(
        self,
        teams: Sequence[GuidedTeam | tuple[str, float, float, float, float]],
        directions: int = 12,
    ) -> list[Guidance]:
        """For each team (:class:`GuidedTeam`, or its first five fields), the reachable
        listening point with the best chance of hearing the bracelet; or, for a team that hears
        it now or could get where hearing it is near certain, the spot it most probably is at.
        Teams are placed one after another, the one that can get farthest first (a car before
        a team on foot), each as if the ones before had listened and heard nothing (or searched
        their spot and not found), so they spread out. Guidance comes back in the given order."""
        coarse = max(1, round(60.0 / self.cell_m))  # plan on cells of about 60 m
        n = self.p.shape[0] // coarse * coarse
        pool = self.p[:n, :n].reshape(n // coarse, coarse, n // coarse, coarse).sum(axis=(1, 3))
        ce = self.east[:n, :n].reshape(n // coarse, coarse, n // coarse, coarse).mean(axis=(1, 3))
        cn = self.north[:n, :n].reshape(n // coarse, coarse, n // coarse, coarse).mean(axis=(1, 3))
        p = pool.ravel() / max(pool.sum(), 1e-300)
        e, nn = ce.ravel(), cn.ravel()
        guided = [GuidedTeam(*team) for team in teams]
        placed: dict[int, Guidance] = {}
        for index in sorted(range(len(guided)), key=lambda i: -guided[i].reach_m):
            receiver_id, east, north, reach, gain, hears = guided[index]
            cand = [(east, north)]
            for frac in (1 / 3, 2 / 3, 1.0):
                for k in range(directions):
                    a = 2 * math.pi * k / directions
                    cand.append(
                        (east + frac * reach * math.sin(a), north + frac * reach * math.cos(a))
                    )
            # ... and the most probable spot itself, or as far towards it as the team can get.
            top = int(np.argmax(p))
            to_e, to_n = e[top] - east, nn[top] - north
            far = math.hypot(to_e, to_n)
            shrink = min(1.0, reach / far) if far > 0 else 0.0
            cand.append((east + to_e * shrink, north + to_n * shrink))
            ca = np.asarray(cand)
            d = np.hypot(e[None, :] - ca[:, 0:1], nn[None, :] - ca[:, 1:2])
            pd = self.link.p_detect(d, gain)
            score = pd @ p
            best = int(np.argmax(score))
            if not hears and float(score.max()) < CLOSE_IN_AT:
                placed[index] = Guidance(
                    receiver_id, float(ca[best, 0]), float(ca[best, 1]), float(score[best])
                )
                p = p * (1.0 - pd[best])
            else:
                # Heard now, or near certain to be heard from some reachable spot: listening
                # is done; go where the person most probably is, the next team to the next.
                near_w = np.exp(-0.5 * (d / CLOSE_IN_M) ** 2)
                near = near_w @ p
                best = int(np.argmax(near))
                # The planning cells (60 m) are coarser than a searcher's eyes: go to the
                # fine grid's centre of probability around the chosen point, if within reach.
                to_e, to_n = self._centre_near(float(ca[best, 0]), float(ca[best, 1]))
                off_e, off_n = to_e - east, to_n - north
                far = math.hypot(off_e, off_n)
                shrink = min(1.0, reach / far) if far > 0 else 0.0
                placed[index] = Guidance(
                    receiver_id,
                    east + off_e * shrink,
                    north + off_n * shrink,
                    float(score[best]),
                    "close in",
                    float(near[best]),
                )
                p = p * (1.0 - near_w[best])
            p /= max(p.sum(), 1e-300)
        return [placed[i] for i in range(len(guided))]

    def _centre_near(self, east_m: float, north_m: float) -> tuple[float, float]:
        """The fine grid's local centre of probability near a point: mean shift with a Gaussian
        kernel of width ``CLOSE_IN_M`` (each step moves to the probability-weighted centre
        around the last), to within a metre; the point itself if nothing is there."""
        span = math.ceil(3 * CLOSE_IN_M / self.cell_m)
        n = self.p.shape[0]
        for _ in range(20):
            col = int((east_m + self.half_width_m) // self.cell_m)
            row = int((north_m + self.half_width_m) // self.cell_m)
            rows = slice(min(max(row - span, 0), n), min(max(row + span + 1, 0), n))
            cols = slice(min(max(col - span, 0), n), min(max(col + span + 1, 0), n))
            e, nn = self.east[rows, cols], self.north[rows, cols]
            w = self.p[rows, cols] * np.exp(
                -0.5 * ((e - east_m) ** 2 + (nn - north_m) ** 2) / CLOSE_IN_M**2
            )
            total = float(w.sum())
            if not total > 0:
                break
            to_e, to_n = float((w * e).sum() / total), float((w * nn).sum() / total)
            moved = math.hypot(to_e - east_m, to_n - north_m)
            east_m, north_m = to_e, to_n
            if moved < 1.0:
                break
        return east_m, north_m

    def png(self) -> bytes:
        """The grid as a heat image (PNG, RGBA, north up), transparent where improbable."""
        level = np.sqrt(self.p / max(float(self.p.max()), 1e-300))[::-1]  # row 0 = north
        rgba = np.zeros((*level.shape, 4), dtype=np.uint8)
        rgba[..., 0] = 230
        rgba[..., 1] = (200 * (1 - level)).astype(np.uint8)
        rgba[..., 2] = 40
        rgba[..., 3] = np.where(level > 0.03, 40 + 170 * level, 0).astype(np.uint8)
        return _png(rgba)

    def bounds_lat_lon(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """South-west and north-east corners of the grid."""
        h = self.half_width_m
        return self.frame.to_lat_lon(-h, -h), self.frame.to_lat_lon(h, h)


def _png(rgba: NDArray[np.uint8]) -> bytes:
    height, width = rgba.shape[:2]
    raw = b"".join(b"\x00" + rgba[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
