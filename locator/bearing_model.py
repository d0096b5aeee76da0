"""What a bearing says about the position: the reported sigma, a bias shared by nearby bearings,
and a heavy tail for reflections.

A bearing's error has three parts (DOMAIN.md):

- the **scatter** the receiver reports as ``sigma_deg`` (2–6° for a trained operator in the open);
- a **bias** that is the same for every bearing taken from one spot — the compass's own offset,
  and in multipath a consistent 9–12° pull toward a building face. ``PLACE_BIAS_DEG`` is its
  spread over places (the root mean square of near zero in the open and about 10° in
  multipath);
- **reflections**: where the direct path is blocked, the loudest signal comes off a building and
  the bearing points at the building, not at the person — and it does so *from that place*, at
  every sweep, until the team moves (DOMAIN.md: half of non-line-of-sight points in one study).
  A reflection is a property of a place, not of one bearing: each place is taken as reflected
  with prior probability ``PLACE_REFLECTED_SHARE``, and then its bearings cluster around the
  reflector's direction (their own running mean, with the scatter the receiver reports and a
  drift ``REFLECTOR_DRIFT_DEG`` as the team shuffles) whatever the person's position. Each
  particle keeps the probability that the place it is weighed from is direct, given the
  bearings from there so far (:func:`bearing_update`). So three sweeps from one blocked corner
  are one hypothesis to be confirmed from elsewhere, not three confirmations; one reflection
  cannot drag the estimate, and a pair of disagreeing places leaves two hypotheses rather than
  one confident point between them. A share ``OUTLIER_SHARE`` of single bearings is taken as
  drawn uniformly around the circle on top (a sweep that caught a fading peak).

Repeated bearings from one spot are not independent: their bias is shared. Each particle of
the tracker carries its own estimate of each place's bias (a Gaussian, learnt from the bearings
taken there: Rao–Blackwellised, :func:`bearing_update`), so ``k`` bearings from one place fix
the person no better than one bearing of variance ``σ²/k + σ_b²`` — yet their changes still
follow a person walking. Where a measurement cannot carry its place's offset as a state, the
``k``-th from a place is used with the variance that adds just its share
(:func:`place_sigma`). A place is a receiver's position within ``PLACE_RADIUS_M``, remembered
for ``PLACE_MEMORY_S``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import wrap_pi

PLACE_BIAS_DEG = 7.0
# DOMAIN.md: reflections give false bearings at half of the points without line of sight;
# most places in a dense city, few in a park.
PLACE_REFLECTED_SHARE = 0.2
REFLECTOR_DRIFT_DEG = 6.0  # a reflected direction moves this much as the team shuffles
OUTLIER_SHARE = 0.04  # single bearings that point anywhere
PLACE_RADIUS_M = 50.0
PLACE_MEMORY_S = 900.0
MIN_SIGMA_DEG = 1.0  # no bearing is better than this, whatever it reports


def place_sigma(sigma: float, shared: float, k: int) -> float:
    """The sigma with which the ``k``-th measurement (k ≥ 1) from one place is used, so that
    ``k`` of them together weigh as one of variance ``σ²/k + σ_shared²`` (any one unit: the
    bias of bearings in radians, the shadowing of signal strength in dB)."""
    if k < 1:
        raise ValueError(f"k counts measurements from the place and starts at 1, got {k}")
    s2, b2 = sigma * sigma, shared * shared
    info = 1.0 / (s2 / k + b2) - (0.0 if k == 1 else 1.0 / (s2 / (k - 1) + b2))
    return math.sqrt(1.0 / max(info, 1e-12))


@dataclass
class _Place:
    east_m: float
    north_m: float
    key: str
    times_s: list[float]


@dataclass
class PlaceMemory:
    """Where each receiver has measured (for one bracelet): its places, and when each gave a
    measurement. A place is forgotten ``memory_s`` after its last measurement."""

    memory_s: float = PLACE_MEMORY_S
    _places: dict[str, list[_Place]] = field(default_factory=dict)
    _made: int = 0

    def place(self, receiver_id: str, east_m: float, north_m: float, t_s: float) -> tuple[str, int]:
        """Record a measurement; returns its place's key and how many measurements (this one
        included) came from there within ``memory_s``."""
        places = self._places.setdefault(receiver_id, [])
        places[:] = [p for p in places if t_s - p.times_s[-1] <= self.memory_s]
        for p in places:
            if math.hypot(p.east_m - east_m, p.north_m - north_m) <= PLACE_RADIUS_M:
                p.times_s[:] = [t for t in p.times_s if t_s - t <= self.memory_s]
                p.times_s.append(t_s)
                return p.key, len(p.times_s)
        self._made += 1
        places.append(_Place(east_m, north_m, f"{receiver_id}#{self._made}", [t_s]))
        return places[-1].key, 1

    def count(self, receiver_id: str, east_m: float, north_m: float, t_s: float) -> int:
        """Record a measurement; returns how many (this one included) came from this place."""
        return self.place(receiver_id, east_m, north_m, t_s)[1]


def own_sigma_rad(sigma_deg: float) -> float:
    """A bearing's own scatter (radians): as reported, floored at ``MIN_SIGMA_DEG``."""
    return math.radians(max(sigma_deg, MIN_SIGMA_DEG))


PLACE_BIAS_VAR_RAD2 = math.radians(PLACE_BIAS_DEG) ** 2


@dataclass
class PlaceBearings:
    """The bearings taken so far from one place (what the reflected hypothesis predicts from):
    their circular sum and count, and the mean of their variances."""

    sin_sum: float = 0.0
    cos_sum: float = 0.0
    count: int = 0
    var_sum: float = 0.0

    def reflected_density(self, bearing_rad: float, sigma_rad: float) -> float:
        """The density (per radian) of ``bearing_rad`` if the place's bearings come off a
        reflector: anywhere for the place's first, then around the direction of its others."""
        if self.count == 0:
            return 1.0 / (2.0 * math.pi)
        mean = math.atan2(self.sin_sum, self.cos_sum)
        s = (
            sigma_rad * sigma_rad
            + self.var_sum / self.count / self.count
            + math.radians(REFLECTOR_DRIFT_DEG) ** 2
        )
        d = float(wrap_pi(bearing_rad - mean))
        gauss = math.exp(-0.5 * d * d / s) / math.sqrt(2.0 * math.pi * s)
        return (1.0 - OUTLIER_SHARE) * gauss + OUTLIER_SHARE / (2.0 * math.pi)

    def add(self, bearing_rad: float, sigma_rad: float) -> None:
        self.sin_sum += math.sin(bearing_rad)
        self.cos_sum += math.cos(bearing_rad)
        self.count += 1
        self.var_sum += sigma_rad * sigma_rad


def direct_density_peak(sigma_rad: float, bias_var_rad2: float) -> float:
    """The largest density a bearing can have under the direct hypothesis (on its line)."""
    s = sigma_rad * sigma_rad + bias_var_rad2
    return (1.0 - OUTLIER_SHARE) / math.sqrt(2.0 * math.pi * s) + OUTLIER_SHARE / (2.0 * math.pi)


def bearing_update(
    position_en: NDArray[np.float64],
    receiver_en: tuple[float, float],
    bearing_rad: float,
    sigma_rad: float,
    bias_mean_rad: NDArray[np.float64],
    bias_var_rad2: float,
    direct_q: NDArray[np.float64] | None = None,
    reflected_density: float = 1.0 / (2.0 * math.pi),
) -> tuple[NDArray[np.float64], float]:
    """Weigh positions by a bearing, with its place's bias integrated out, and learn the bias.

    ``position_en`` (n×2, m); ``bias_mean_rad`` (n,) each particle's estimate of the bias of
    the place the bearing was taken from (updated in place), all with variance
    ``bias_var_rad2``. Directly, the bearing is ``β(x) + b + e``: a wrapped Gaussian of
    variance ``σ² + var(b)`` around the biased direction, mixed with a uniform share for
    outliers. ``direct_q`` (n,), if given, is each particle's probability that the place is
    direct given its earlier bearings (updated in place); the rest of the mass is the place's
    reflected hypothesis, under which the bearing has ``reflected_density`` wherever the
    particle is (:meth:`PlaceBearings.reflected_density`).
    Returns log p(bearing | position, earlier bearings from the place) for each particle, and
    the bias variance after the update — the bias a place shows is learnt from its first
    bearings, so later ones from there track the person's moves at their own scatter.
    """
    de = position_en[:, 0] - receiver_en[0]
    dn = position_en[:, 1] - receiver_en[1]
    residual = np.asarray(wrap_pi(bearing_rad - np.arctan2(de, dn) - bias_mean_rad), dtype=float)
    s = sigma_rad * sigma_rad + bias_var_rad2
    gauss = (
        (1.0 - OUTLIER_SHARE)
        * np.exp(-0.5 * residual * residual / s)
        / math.sqrt(2.0 * math.pi * s)
    )
    direct = gauss + OUTLIER_SHARE / (2.0 * math.pi)
    inlier = gauss / direct
    if direct_q is None:
        total = direct
    else:
        total = direct_q * direct + (1.0 - direct_q) * reflected_density
        direct_q *= direct / total
        inlier = inlier * direct_q
    bias_mean_rad += inlier * (bias_var_rad2 / s) * residual
    out: NDArray[np.float64] = np.log(total)
    return out, bias_var_rad2 * sigma_rad * sigma_rad / s
