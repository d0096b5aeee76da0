"""Where a lost person is found, before any radio evidence: the prior of the probability map.

Distances found from the last known point (Koester, *Lost Person Behavior*, in DOMAIN.md),
dementia: 25 % within 0.3 km, 50 % 0.8, 75 % 1.9, 95 % 8.3 — fitted by a log-normal (median
0.8 km, σ_ln 1.38; the four quantiles give 1.28–1.46). DOMAIN.md gives no distances for autism;
the autism prior uses the same distances and weights water three times (drowning is the leading
cause of death; water within half a mile is the first place to look).

Those are where walks *ended*. Early in a search a person who will end far out is still on
his way there, at the distance walked out so far (:func:`log_radial_density`): the distance at
a time is the nearer of the two, so the prior is the found distances long after last seen and
a travelling front soon after. (Measured on 45 generated searches against the found distances
cut off at a brisk walk's reach: median error 72 → 67 m; on 105 unseen ones, with the walkers'
outbound headings and the past positions of :mod:`locator.particle`, 59 → 53 m.)

The density over a grid of cell centres (local east/north metres around the last known point)
is that density of the distance spread over the ring at that distance, cut off softly
beyond how far the person can have walked since last seen, and optionally weighted by the map
features each cell lies in (:mod:`locator.features` reads them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import special

from safetynet.errors import InputError

FloatGrid = NDArray[np.float64]

# A walker's steady pace: as far as a lost person can have got since last seen, and a search
# team's pace on foot (:mod:`locator.guidance`).
WALK_SPEED_MPS = 1.3
REACH_MARGIN_M = 200.0  # ... plus this much: the last known point is itself uncertain
REACH_EDGE_M = 100.0  # the soft edge of the reachable disc (a logistic's scale)
SPREAD_MARGIN_M = 2000.0  # the grid reaches this far past the reachable disc, to diffuse into
MIN_HALF_WIDTH_M = 3000.0
MAX_HALF_WIDTH_M = 10_000.0  # the 95th percentile distance (dementia) is 8.3 km
CELLS_PER_HALF_WIDTH = 150.0  # about 300 cells across ...
MIN_CELL_M = 20.0  # ... of 20 m at the smallest

# (ln of the median distance in metres, σ of ln distance) by category.
LOGNORMAL = {"dementia": (math.log(800.0), 1.38), "autism": (math.log(800.0), 1.38)}
CATEGORIES = tuple(LOGNORMAL)
# How much likelier a cell is to hold the person when a map feature of the kind covers it.
FEATURE_WEIGHTS = {
    "dementia": {"water": 1.0, "road": 1.3, "building": 1.3, "park": 1.0, "woods": 1.2},
    "autism": {"water": 3.0, "road": 1.0, "building": 1.0, "park": 1.2, "woods": 1.0},
}
FEATURE_KINDS = tuple(FEATURE_WEIGHTS["dementia"])  # water, road, building, park, woods


def check_category(category: str) -> None:
    """An :class:`~safetynet.errors.InputError` unless ``category`` has a prior."""
    if category not in LOGNORMAL:
        raise InputError(f"category: one of {', '.join(CATEGORIES)}, got {category!r}")


def reach_m(since_s: float) -> float:
    """How far from the last known point the person can be ``since_s`` seconds after last seen."""
    return WALK_SPEED_MPS * max(since_s, 0.0) + REACH_MARGIN_M


def grid_size_m(since_s: float) -> tuple[float, float]:
    """(half width, cell) of a grid sized for the search: as far as the person can have walked
    and ``SPREAD_MARGIN_M`` more to spread into, within 3 to 10 km of the last known point,
    about 300 cells across (20 m cells at the smallest)."""
    half_width_m = min(max(reach_m(since_s) + SPREAD_MARGIN_M, MIN_HALF_WIDTH_M), MAX_HALF_WIDTH_M)
    return half_width_m, max(MIN_CELL_M, round(half_width_m / CELLS_PER_HALF_WIDTH))


# How far out a person still walking has got: the distance covered outward grows at a pace
# that is log-normal across people and walks (median FRONT_SPEED_MPS: 0.9 m/s on the
# route for about two thirds of the time, on a route about half as long again as the straight
# line; FRONT_SIGMA_LN spans a sitter to a fast straight walker).
FRONT_SPEED_MPS = 0.3
FRONT_SIGMA_LN = 0.7
MIN_FRONT_S = 60.0


def log_radial_density(r: FloatGrid, category: str, since_s: float) -> FloatGrid:
    """Log of the density of the person's distance ``r`` (m) from the last known point
    ``since_s`` after last seen, up to a constant.

    Koester's distances are where people were *found*: the end of their walk (``D``). Before
    it ends, a person is on the way out, at the distance covered so far (``R``, growing at a
    log-normal pace): at time t the distance is ``min(D, R)``, whose density is
    ``f_D(r) P(R > r) + f_R(r) P(D > r)`` — the found-distance density near the point, and
    those who will go farther piled up at the travelling front. Long after, ``R`` is beyond
    every ``D`` and this is the found-distance density itself."""
    mu, sigma = LOGNORMAL[category]
    ln_r = np.log(r)
    mu_front = math.log(FRONT_SPEED_MPS * max(since_s, MIN_FRONT_S))
    z_d = (ln_r - mu) / sigma
    z_r = (ln_r - mu_front) / FRONT_SIGMA_LN
    # log f(r) of a log-normal, less the constants they share (−log r, −½ log 2π).
    log_f_d = -0.5 * z_d**2 - math.log(sigma)
    log_f_r = -0.5 * z_r**2 - math.log(FRONT_SIGMA_LN)
    log_s_d = _log_survival(z_d)
    log_s_r = _log_survival(z_r)
    out: FloatGrid = np.logaddexp(log_f_d + log_s_r, log_f_r + log_s_d) - ln_r
    return out


def _log_survival(z: FloatGrid) -> FloatGrid:
    """log P(Z > z) for a standard normal, accurate far into the tail."""
    out: FloatGrid = special.log_ndtr(-z)
    return out


def distance_prior(
    east_m: FloatGrid, north_m: FloatGrid, cell_m: float, category: str, since_s: float
) -> FloatGrid:
    """The prior over cell centres ``east_m``/``north_m`` (metres from the last known point,
    any shape; cells ``cell_m`` on a side), summing to one."""
    check_category(category)
    r = np.maximum(np.hypot(east_m, north_m), cell_m / 2)
    # The distance's density (log_radial_density), spread over the ring at r: f(r) / (2 π r).
    log_f = log_radial_density(r, category, since_s) - np.log(r)
    density = np.exp(log_f - log_f.max())
    # No farther than walking since last seen allows (a soft edge).
    density *= 1.0 / (1.0 + np.exp((r - reach_m(since_s)) / REACH_EDGE_M))
    out: FloatGrid = density / density.sum()
    return out


# The tracker's use of the same prior (:func:`point_weights`): softer than the map's, since a
# particle cloud cannot spread back into a place it was told was out of reach.
TRACKER_REACH_EDGE_M = 400.0  # the soft edge of the reachable disc for particles
TRACKER_FLOOR_SHARE = 0.1  # kept for "the last known point or time was wrong"
MIN_PRIOR_RANGE_M = 10.0  # no finer than GPS: the density is flat within this of the point


def point_weights(
    east_m: FloatGrid, north_m: FloatGrid, category: str, since_s: float
) -> FloatGrid:
    """Relative prior weights of points (a tracker's particles, metres from the last known
    point, drawn from some other proposal) ``since_s`` seconds after last seen: the distance
    prior's density over the plane (as :func:`distance_prior`, with a softer reach edge),
    scaled to mean one over the points and mixed with a flat share ``TRACKER_FLOOR_SHARE``, so
    that a wrong last known point or time weakens the truth but cannot rule it out."""
    check_category(category)
    r = np.maximum(np.hypot(east_m, north_m), MIN_PRIOR_RANGE_M)
    log_f = log_radial_density(r, category, since_s) - np.log(r)  # f(r) / r, but constants
    reach = (r - reach_m(since_s)) / TRACKER_REACH_EDGE_M
    log_f -= np.logaddexp(0.0, reach)  # the logistic edge, in logs (no overflow far out)
    w = np.exp(log_f - log_f.max())
    mean = float(w.mean())
    out: FloatGrid = (1.0 - TRACKER_FLOOR_SHARE) * w / mean + TRACKER_FLOOR_SHARE
    return out


def feature_weights(
    masks: Sequence[tuple[str, NDArray[np.bool_]]], category: str, shape: tuple[int, ...]
) -> FloatGrid:
    """Each cell's weight from the features covering it (``(kind, mask)`` pairs, as
    :func:`locator.features.feature_masks` gives them): the product of their kinds' weights
    for ``category`` (dementia's for a category without its own)."""
    weights = FEATURE_WEIGHTS.get(category, FEATURE_WEIGHTS["dementia"])
    w = np.ones(shape)
    for kind, mask in masks:
        w[mask] *= weights[kind]
    return w
