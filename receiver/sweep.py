"""Bearings from a sweep: fitting the antenna's pattern to signal strength against heading.

A searcher turns a Yagi through the circle; every pulse heard carries the RSSI and the heading
the antenna pointed at. The model is ``rssi_i = A + G(θ − h_i) + e_i`` — ``G`` the antenna's
pattern in dB (:mod:`safetynet.antennas`), ``A`` the unknown level, ``θ`` the bearing. The fit:

1. a grid over θ (0.5°), each with the level that best fits it, scored with a robust loss
   (Huber at 1.5 robust standard deviations): a deep fade or a pulse caught by a reflection
   should not drag the bearing;
2. a parabola through the best grid point and its neighbours refines θ;
3. the one-sigma error is the Cramér–Rao bound of this fit at the residuals' robust spread:
   ``var θ = σ_r² / (Σ g_i'² − (Σ g_i')² / n)``, with ``g_i' = dG/dθ`` at each pulse (the level
   being unknown costs the second term), widened for the few pulses ``σ_r`` comes from (a
   Student-t's spread), and combined with the compass's own error.

A sweep must cover enough of the circle (its largest gap between headings at most
``MAX_GAP_DEG``) with at least ``MIN_PULSES`` pulses; otherwise no bearing, and the reason says
why. A fit whose residuals are much wider than the fading explains, or whose second-best lobe
fits almost as well (a reflection, two lobes), is flagged and its sigma widened so that the
locator weighs it as it deserves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import angle_diff_deg, wrap_360
from safetynet.antennas import Pattern
from safetynet.reports import SIGMA_DEG_RANGE

MIN_PULSES = 6
MAX_GAP_DEG = 120.0
GRID_STEP_DEG = 0.5
HUBER_K = 1.5
SIGMA_FLOOR_DB = 0.5
POOR_FIT_DB = 4.0
SECOND_LOBE_RATIO = 1.25
SECOND_LOBE_APART_DEG = 60.0
COMPASS_SIGMA_DEG = 2.0  # a handheld unit's compass, one sigma
MAD_TO_SIGMA = 1.4826  # median absolute deviation → standard deviation (Gaussian)
WINSOR_SIGMAS = 3.5  # residuals are winsorised at this many robust deviations


@dataclass(frozen=True)
class SweepFit:
    """Result of fitting one sweep; ``bearing_deg`` is None when no bearing could be made."""

    bearing_deg: float | None
    sigma_deg: float | None
    n_pulses: int
    coverage_deg: float
    residual_db: float | None
    quality: str  # "good", "poor_fit", "two_lobes", or why there is no bearing
    reason: str = ""


def coverage_deg(headings_deg: NDArray[np.float64]) -> tuple[float, float]:
    """(covered degrees, largest gap) of a set of headings around the circle."""
    h = np.sort(wrap_360(np.asarray(headings_deg, dtype=float)))
    if h.size == 0:
        return 0.0, 360.0
    gaps = np.diff(np.concatenate((h, [h[0] + 360.0])))
    largest = float(gaps.max())
    return 360.0 - largest, largest


def _slope_db_per_rad(pattern: Pattern, off_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    step = 0.05
    slope: NDArray[np.float64] = (
        pattern.gain_dbi(off_deg + step) - pattern.gain_dbi(off_deg - step)
    ) / math.radians(2 * step)
    return slope


def crlb_sweep_deg(
    pattern: Pattern,
    bearing_deg: float,
    headings_deg: Sequence[float] | NDArray[np.float64],
    sigma_db: float,
) -> float:
    """Cramér–Rao bound (one sigma, degrees) on a sweep's bearing, the level unknown."""
    off = np.asarray(bearing_deg - np.asarray(headings_deg, dtype=float), dtype=float)
    g = _slope_db_per_rad(pattern, off)
    info = float(np.sum(g * g) - np.sum(g) ** 2 / g.size)
    if info <= 0:
        return float("inf")
    return math.degrees(sigma_db / math.sqrt(info))


def _huber_cost(residual: NDArray[np.float64], scale: float) -> NDArray[np.float64]:
    z = np.abs(residual) / scale
    cost: NDArray[np.float64] = np.where(z <= HUBER_K, 0.5 * z * z, HUBER_K * z - 0.5 * HUBER_K**2)
    return cost


def _residual_spread_db(residual: NDArray[np.float64]) -> float:
    """Robust standard deviation of a fit's residuals (two parameters fitted).

    The residuals are winsorised at 3.5 robust deviations (a deep fade counts, but not by its
    full depth), then their root mean square is taken over n − 2 degrees of freedom.
    """
    centred = residual - np.median(residual)
    s0 = max(MAD_TO_SIGMA * float(np.median(np.abs(centred))), SIGMA_FLOOR_DB)
    clipped = np.clip(centred, -WINSOR_SIGMAS * s0, WINSOR_SIGMAS * s0)
    dof = max(residual.size - 2, 1)
    return max(math.sqrt(float(np.sum(clipped * clipped)) / dof), SIGMA_FLOOR_DB)


def fit_sweep(
    headings_deg: Sequence[float] | NDArray[np.float64],
    rssi_dbm: Sequence[float] | NDArray[np.float64],
    pattern: Pattern,
    compass_sigma_deg: float = COMPASS_SIGMA_DEG,
) -> SweepFit:
    """Fit the pattern to one sweep's pulses."""
    h = np.asarray(headings_deg, dtype=float)
    r = np.asarray(rssi_dbm, dtype=float)
    covered, gap = coverage_deg(h)
    if h.size < MIN_PULSES:
        return SweepFit(None, None, int(h.size), covered, None, "too_few",
                        f"only {h.size} pulses with a heading (need {MIN_PULSES})")  # fmt: skip
    if gap > MAX_GAP_DEG:
        reason = f"the sweep left a {gap:.0f}° gap (at most {MAX_GAP_DEG:.0f}°)"
        return SweepFit(None, None, int(h.size), covered, None, "partial", reason)
    grid = np.arange(0.0, 360.0, GRID_STEP_DEG)
    gains = pattern.gain_dbi(grid[:, None] - h[None, :])  # grid × pulses
    resid = r[None, :] - gains
    level = np.median(resid, axis=1)
    centred = resid - level[:, None]
    scale = max(
        MAD_TO_SIGMA * float(np.median(np.abs(centred[np.argmin(np.abs(centred).sum(axis=1))]))),
        SIGMA_FLOOR_DB,
    )
    cost = _huber_cost(centred, scale).sum(axis=1)
    best = int(np.argmin(cost))
    theta = float(grid[best])
    a, b, c = cost[best - 1], cost[best], cost[(best + 1) % grid.size]
    denom = a - 2 * b + c
    if denom > 0:
        theta += float(0.5 * (a - c) / denom) * GRID_STEP_DEG
    theta = wrap_360(theta)
    sigma_r = _residual_spread_db(r - pattern.gain_dbi(theta - h))
    # A spread estimated from a handful of pulses makes the error Student-t rather than normal:
    # widen by the t distribution's standard deviation for n − 2 degrees of freedom.
    dof = h.size - 2
    t_factor = math.sqrt(dof / (dof - 2)) if dof > 2 else 2.0
    sigma = math.hypot(t_factor * crlb_sweep_deg(pattern, theta, h, sigma_r), compass_sigma_deg)
    quality = "good"
    # A second lobe: the best fit at least SECOND_LOBE_APART_DEG away from θ.
    far = np.abs(angle_diff_deg(grid, theta)) > SECOND_LOBE_APART_DEG
    second = float(cost[far].min()) if far.any() else float("inf")
    if second < SECOND_LOBE_RATIO * float(cost[best]):
        quality = "two_lobes"
        other = float(grid[far][int(np.argmin(cost[far]))])
        sigma = max(sigma, abs(float(angle_diff_deg(other, theta))) / 2.0)
    elif sigma_r > POOR_FIT_DB:
        quality = "poor_fit"
        sigma *= 2.0
    return SweepFit(
        round(theta, 2) % 360.0,
        min(sigma, SIGMA_DEG_RANGE[1]),
        int(h.size),
        covered,
        sigma_r,
        quality,
    )
