"""Where the person probably is: a probability grid from lost-person statistics and radio evidence.

The grid covers a square around the last known point in the local east/north frame (metres),
``cell_m`` on a side: ``p[row, col]`` is the probability of the cell whose centre is
``(east[row, col], north[row, col])``, rows from south to north, columns from west to east.
It starts from the lost-person prior (:mod:`locator.prior`), optionally shaped by map features
(:mod:`locator.features`), and is then updated by every report, Bayes' rule on each cell, with
the report's likelihood (:mod:`locator.evidence`), and between reports by **motion**: the person
spreads as a persistent random walker (diffusion with ``σ² = v² τ Δt``), so a hole left by a
silence fills again with time.

Where teams should go next is planned on it in :mod:`locator.guidance`; the heat image is drawn
from :attr:`ProbMap.p` and :meth:`ProbMap.bounds_lat_lon` by the user interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

from locator.evidence import (
    EvidenceGate,
    bearing_likelihood,
    silence_likelihood,
    strength_likelihood,
)
from locator.features import feature_masks
from locator.link import LISTEN_PULSES, LinkBudget
from locator.prior import check_category, distance_prior, feature_weights, grid_size_m
from safetynet.antennas import PATTERNS
from safetynet.errors import InputError
from safetynet.geodesy import LocalFrame
from safetynet.reports import Bearing, FieldReport, Pulse, Silence

FloatGrid = NDArray[np.float64]
MIN_CELL_M, MAX_CELL_M = 1.0, 200.0
MIN_HALF_WIDTH_CELLS = 5  # at least ten cells across
BLUR_TRUNCATE_SIGMAS = 3.0  # the motion kernel reaches this many sigmas


@dataclass(frozen=True)
class Sighting:
    """A pulse heard before the search opened by a receiver that was not searching (the fleet's
    last sighting): where the receiver stood (east/north metres in the map's frame), when, how
    strongly, and its antenna's gain toward the bracelet."""

    east_m: float
    north_m: float
    t: datetime
    rssi_dbm: float
    gain_dbi: float


@dataclass
class ProbMap:
    """The probability grid of one search (see the module's docstring); ``t`` is the time it
    stands at, ``walk_speed_mps`` and ``persistence_s`` the random walker's speed and the time
    it keeps a heading."""

    frame: LocalFrame
    half_width_m: float = 3000.0
    cell_m: float = 20.0
    walk_speed_mps: float = 0.7
    persistence_s: float = 300.0
    link: LinkBudget = field(default_factory=LinkBudget)
    t: datetime | None = None
    p: FloatGrid = field(init=False)
    _pending_var_m2: float = 0.0
    _gate: EvidenceGate = field(default_factory=EvidenceGate)

    def __post_init__(self) -> None:
        if (
            not MIN_CELL_M <= self.cell_m <= MAX_CELL_M
            or self.half_width_m < MIN_HALF_WIDTH_CELLS * self.cell_m
        ):
            raise InputError(
                f"grid: cell {MIN_CELL_M:g}..{MAX_CELL_M:g} m and at least "
                f"{2 * MIN_HALF_WIDTH_CELLS} cells across, got "
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

        Unless told, the grid is sized for the search (:func:`locator.prior.grid_size_m`)."""
        check_category(category)
        if "half_width_m" not in kwargs:
            half_width_m, cell_m = grid_size_m(since_s)
            kwargs["half_width_m"] = half_width_m
            kwargs.setdefault("cell_m", cell_m)
        grid = cls(frame=frame, t=at, **kwargs)
        grid.p = distance_prior(grid.east, grid.north, grid.cell_m, category, since_s)
        return grid

    @classmethod
    def from_sighting(
        cls,
        frame: LocalFrame,
        category: str,
        last_seen: datetime,
        at: datetime,
        sighting: Sighting | None,
        **kwargs: Any,
    ) -> ProbMap:
        """The prior at ``at`` (the search's opening) for a person last seen at ``last_seen``,
        with the fleet's last sighting as evidence when it falls between the two: the prior as
        of the sighting (on the grid sized for the opening), the pulse's strength there, then
        the walk to ``at``. Without one (or one from before last seen): :meth:`from_prior`."""
        since_s = (at - last_seen).total_seconds()
        if sighting is None or not last_seen <= sighting.t <= at:
            return cls.from_prior(frame, category, since_s=since_s, at=at, **kwargs)
        if "half_width_m" not in kwargs:
            half_width_m, cell_m = grid_size_m(since_s)
            kwargs["half_width_m"] = half_width_m
            kwargs.setdefault("cell_m", cell_m)
        grid = cls.from_prior(frame, category, since_s=(sighting.t - last_seen).total_seconds(),
                              at=sighting.t, **kwargs)  # fmt: skip
        grid.strength(sighting.east_m, sighting.north_m, sighting.rssi_dbm, sighting.gain_dbi)
        grid.advance(at)
        return grid

    def shape_geojson(self, collection: dict[str, Any], category: str = "dementia") -> int:
        """Weight the cells the features of a GeoJSON FeatureCollection cover, by their
        ``kind`` (:mod:`locator.features`); returns how many features fell on the grid."""
        masks = feature_masks(collection, self.frame, self.east, self.north)
        self._set(self.p * feature_weights(masks, category, self.p.shape))
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
            blurred = gaussian_filter(
                self.p, sigma_cells, mode="constant", truncate=BLUR_TRUNCATE_SIGMAS
            )
            self._set(blurred)
            self._pending_var_m2 = 0.0

    def bearing(self, east_m: float, north_m: float, bearing_deg: float, sigma_deg: float) -> None:
        """A bearing from (east, north): a wedge with a floor for reflections."""
        like = bearing_likelihood(self.east, self.north, east_m, north_m, bearing_deg, sigma_deg)
        self._set(self.p * like)

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
        like = silence_likelihood(
            self.east, self.north, east_m, north_m, self.link, gain_dbi, noise_dbm, pulses
        )
        self._set(self.p * like)

    def strength(self, east_m: float, north_m: float, rssi_dbm: float, gain_dbi: float) -> None:
        """A pulse heard at ``rssi_dbm``: the path-loss likelihood at each cell's distance."""
        like = strength_likelihood(
            self.east, self.north, east_m, north_m, self.link, rssi_dbm, gain_dbi
        )
        self._set(self.p * like)

    def add(self, report: FieldReport) -> None:
        """Take one field report (status reports carry no evidence about the person; pulses
        and silences that repeat what their receiver said just before are skipped:
        :class:`~locator.evidence.EvidenceGate`)."""
        if not isinstance(report, Bearing | Silence | Pulse):
            return
        if report.lat_deg is None or report.lon_deg is None:
            return
        east, north = self.frame.to_en(report.lat_deg, report.lon_deg)
        # A repeat adds no evidence, but the map is of the moment it was heard: the person
        # walked on meanwhile (so the map's "as of" keeps up with the fix).
        repeat = (isinstance(report, Pulse) and not self._gate.pulse_counts(report)) or (
            isinstance(report, Silence) and not self._gate.silence_counts(report, east, north)
        )
        self.advance(report.t)
        if repeat:
            return
        if isinstance(report, Bearing):
            self.bearing(east, north, report.bearing_deg, report.sigma_deg)
        elif isinstance(report, Silence):
            # A swept Yagi points at the bracelet at some moment of its sweep: its peak gain.
            self.silence(
                east,
                north,
                PATTERNS[report.antenna].peak_gain_dbi,
                report.noise_dbm,
                max(1, round(report.window_s)),
            )
        else:
            self.strength(east, north, report.rssi_dbm, PATTERNS[report.antenna].peak_gain_dbi)

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
        """The probability-weighted mean position (east, north metres)."""
        return float((self.p * self.east).sum()), float((self.p * self.north).sum())

    def density_at(self, east_m: float, north_m: float) -> float:
        """Probability per m² at a point (0 outside the grid)."""
        n = self.p.shape[0]
        col = int((east_m + self.half_width_m) // self.cell_m)
        row = int((north_m + self.half_width_m) // self.cell_m)
        if not (0 <= row < n and 0 <= col < n):
            return 0.0
        return float(self.p[row, col]) / self.cell_m**2

    def bounds_lat_lon(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """South-west and north-east corners of the grid (the outer edges of its cells)."""
        h = self.half_width_m
        return self.frame.to_lat_lon(-h, -h), self.frame.to_lat_lon(h, h)
