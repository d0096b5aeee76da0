"""Whether a moving array's bearings agree on one emitter: reflections that look like one wave.

Where a building blocks the direct path and one reflection carries nearly all the power, the
array sees a single plane wave from the reflector: the per-pulse tests of
:func:`receiver.doa.estimate` (a misfit no single wave explains, a competing beam peak) have
nothing to find, and the bearing, with its Cramér–Rao sigma of a degree or two, points tens of
degrees away from the bracelet. No test on one pulse can tell it from the direct path.

A moving vehicle sees more than one pulse. The direct path's bearings from its successive
positions all cross where the bracelet is (which walks at most ``WALK_MPS``); a reflection's
cross at its reflector, somewhere else; and as the vehicle drives, the dominant path changes
(a building starts or stops blocking the line, a reflector comes within or leaves its reach).
So the bearings of the last ``WINDOW_S`` seconds are searched for the one position most of them
agree with (:func:`consensus`): candidates are the crossings of pairs of bearing lines and
far points along each line (a source seen from one spot, or far away), each scored by a bounded
loss ``Σ min(r_i²/s_i² + ln(s_i²/σ_i²), C²)`` (``C = INLIER_SIGMAS``; the log term: a bearing
excused only by a wide allowance is no support), the best then refined by Gauss–Newton on its
inliers. Each bearing's allowance ``s_i² = σ_i² + (WALK_MPS·|t − t_i| / range_i)²`` holds the
bracelet's possible walk since then. A new bearing (:class:`DriveConsistency`) is
*inconsistent*, and not sent, when

- its residual from the consensus exceeds ``CONSISTENT_SIGMAS`` of its own sigma and the
  consensus's uncertainty in that direction together (:func:`judge`); or
- fewer than ``MIN_SUPPORT`` of the window's pulses agree on the consensus, the pulses the
  per-pulse test flagged counted as not agreeing (a drive among reflections: where most pulses
  show competing paths, a pulse that shows one is mostly one of them that the other's fade
  left alone, and either may be the reflection); or
- the window cannot be judged (fewer than ``MIN_BEARINGS`` bearings, or under
  ``MIN_BASELINE_M`` of road) and either fewer than ``MIN_BEARINGS`` pulses have been heard
  in it at all (a bracelet just heard: its first few bearings wait, a few seconds of a drive)
  or more than ``UNJUDGED_MAX_FLAGGED`` of them were flagged.

The window is a minute: at 6–12 m/s that is 360–720 m of road, a block or more, so the time a
vehicle spends behind one building (where a reflection takes over) is mostly the minority of
it; the walk allowance keeps the bracelet's own moves from counting against it.

A consistent bearing is sent with its sigma widened by the window's excess scatter about the
consensus (:func:`excess_scatter_rad2`: what the bearings there scatter beyond what their own
sigmas and the walk allow; about zero on an open road), which reflections kept in the window
(held back for want of support) make wide. An unjudged bearing among few flags is sent as it
is.

What this cannot see: a reflection that dominates for the whole window (the majority then
agrees on the reflector) — the place-level reflection hypothesis of the tracker is for that.

All positions are local east/north metres around any one origin; bearings are compass
bearings (degrees) outside, radians inside.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import wrap_pi
from safetynet.geodesy import LocalFrame

WINDOW_S = 60.0
WALK_MPS = 1.8  # a walking person's speed, with some margin (a jog)
INLIER_SIGMAS = 3.0
CONSISTENT_SIGMAS = 3.5
MIN_SUPPORT = 0.5
UNJUDGED_MAX_FLAGGED = 0.15
MIN_BEARINGS = 8
MIN_BASELINE_M = 30.0
FAR_M = 5_000.0  # a source this far looks the same from every point of a drive's window
MAX_RANGE_M = 3_000.0  # crossings beyond: taken as the far point on the line instead
MIN_CROSSING_DEG = 2.0  # two lines closer than this in direction cross nowhere useful
MAX_PAIRS = 4_000
RECENTRE_M = 2_000.0  # a new local frame once the vehicle is this far from its origin

Verdict = Literal["consistent", "inconsistent", "unjudged"]


@dataclass(frozen=True)
class Consensus:
    """The position most of a window's bearings agree on, and which of them do."""

    east_m: float
    north_m: float
    inliers: NDArray[np.bool_]  # shape (n,): each bearing's residual within INLIER_SIGMAS
    support: float  # the share of the window's bearings that are inliers
    cov_en_m2: NDArray[np.float64]  # 2×2, from the inliers' Gauss–Newton fit


def _residuals(
    east_m: NDArray[np.float64],
    north_m: NDArray[np.float64],
    bearing_rad: NDArray[np.float64],
    at_east_m: NDArray[np.float64],
    at_north_m: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Residuals (rad) and ranges (m) of every bearing (axis 1) against candidates (axis 0)."""
    de = at_east_m[:, None] - east_m[None, :]
    dn = at_north_m[:, None] - north_m[None, :]
    predicted = np.arctan2(de, dn)  # compass: clockwise from north
    r = np.asarray(wrap_pi(bearing_rad[None, :] - predicted), dtype=float)
    return r, np.hypot(de, dn)


def _allowance_rad2(
    sigma_rad: NDArray[np.float64], age_s: NDArray[np.float64], range_m: NDArray[np.float64]
) -> NDArray[np.float64]:
    walk = WALK_MPS * age_s / np.maximum(range_m, 1.0)
    out: NDArray[np.float64] = sigma_rad**2 + np.minimum(walk, 1.0) ** 2
    return out


def _cost(
    r: NDArray[np.float64], sigma_rad: NDArray[np.float64], allowance_rad2: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``r²/s² + ln(s²/σ²)``: twice the negative log-likelihood of a residual under its
    allowance, against the bearing's own sigma. The log term makes a bearing that a position
    explains only by a wide allowance (a candidate a few metres from the road, where the
    bracelet's walk would excuse any direction) cost nearly as much as one it does not."""
    out: NDArray[np.float64] = r**2 / allowance_rad2 + np.log(allowance_rad2 / sigma_rad**2)
    return out


def _candidates(
    east_m: NDArray[np.float64],
    north_m: NDArray[np.float64],
    bearing_rad: NDArray[np.float64],
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n = east_m.size
    ue, un = np.sin(bearing_rad), np.cos(bearing_rad)
    i, j = np.triu_indices(n, 1)
    if i.size > MAX_PAIRS:
        keep = rng.choice(i.size, MAX_PAIRS, replace=False)
        i, j = i[keep], j[keep]
    # p_i + a·u_i = p_j + b·u_j, solved for a and b (Cramer's rule).
    det = ue[j] * un[i] - ue[i] * un[j]
    de, dn = east_m[j] - east_m[i], north_m[j] - north_m[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (ue[j] * dn - un[j] * de) / det
        b = (ue[i] * dn - un[i] * de) / det
    crossing_ok = (
        (np.abs(np.arcsin(np.clip(det, -1.0, 1.0))) > math.radians(MIN_CROSSING_DEG))
        & (a > 0)
        & (b > 0)
        & (a < MAX_RANGE_M)
        & (b < MAX_RANGE_M)
    )
    ce = np.concatenate((east_m[i] + a * ue[i], east_m + FAR_M * ue))
    cn = np.concatenate((north_m[i] + a * un[i], north_m + FAR_M * un))
    ok = np.concatenate((crossing_ok, np.ones(n, dtype=bool)))
    return ce[ok], cn[ok]


def consensus(
    t_s: NDArray[np.float64],
    east_m: NDArray[np.float64],
    north_m: NDArray[np.float64],
    bearing_deg: NDArray[np.float64],
    sigma_deg: NDArray[np.float64],
    t_now_s: float,
    rng: np.random.Generator | None = None,
) -> Consensus | None:
    """The position most bearings (all arrays shape (n,)) agree on, seen from ``t_now_s``.

    None with fewer than two bearings."""
    if t_s.size < 2:
        return None
    rng = rng or np.random.default_rng(0)
    b = np.deg2rad(bearing_deg)
    s = np.deg2rad(sigma_deg)
    age = np.abs(t_now_s - t_s)
    ce, cn = _candidates(east_m, north_m, b, rng)
    r, rng_m = _residuals(east_m, north_m, b, ce, cn)
    loss = np.minimum(_cost(r, s[None, :], _allowance_rad2(s[None, :], age[None, :], rng_m)),
                      INLIER_SIGMAS**2)  # fmt: skip
    best = int(np.argmin(loss.sum(axis=1)))
    pe, pn = float(ce[best]), float(cn[best])
    cov = np.full((2, 2), np.inf)
    for _ in range(8):  # Gauss–Newton on the inliers of the current point
        r1, range1 = _residuals(east_m, north_m, b, np.array([pe]), np.array([pn]))
        r1, range1 = r1[0], range1[0]
        w = 1.0 / _allowance_rad2(s, age, range1)
        inl = _cost(r1, s, 1.0 / w) <= INLIER_SIGMAS**2
        if inl.sum() < 3:
            break
        de, dn = pe - east_m, pn - north_m
        r2 = np.maximum(range1**2, 1.0)
        jac = np.stack((dn / r2, -de / r2), axis=1)  # d(predicted bearing)/d(east, north)
        jw = jac[inl] * w[inl, None]
        info = jac[inl].T @ jw
        if np.linalg.cond(info) > 1e12:
            break
        cov = np.linalg.inv(info)
        step = cov @ (jw.T @ r1[inl])
        pe, pn = pe + float(step[0]), pn + float(step[1])
        if math.hypot(pe, pn) > 1e7 or math.hypot(float(step[0]), float(step[1])) < 0.1:
            break
    r1, range1 = _residuals(east_m, north_m, b, np.array([pe]), np.array([pn]))
    inliers = _cost(r1[0], s, _allowance_rad2(s, age, range1[0])) <= INLIER_SIGMAS**2
    return Consensus(pe, pn, inliers, float(inliers.mean()), np.asarray(cov, dtype=float))


def judge(
    c: Consensus, east_m: float, north_m: float, bearing_deg: float, sigma_deg: float
) -> float:
    """A bearing's residual from the consensus ``c`` in units of its allowance: its sigma and
    the consensus's spread in that direction together."""
    de, dn = c.east_m - east_m, c.north_m - north_m
    r = float(wrap_pi(math.radians(bearing_deg) - math.atan2(de, dn)))
    r2 = max(de * de + dn * dn, 1.0)
    jac = np.array([dn / r2, -de / r2])
    spread = float(jac @ c.cov_en_m2 @ jac) if np.all(np.isfinite(c.cov_en_m2)) else 0.0
    return abs(r) / math.sqrt(math.radians(sigma_deg) ** 2 + spread)


def excess_scatter_rad2(
    c: Consensus,
    t_s: NDArray[np.float64],
    east_m: NDArray[np.float64],
    north_m: NDArray[np.float64],
    bearing_deg: NDArray[np.float64],
    sigma_deg: NDArray[np.float64],
    t_now_s: float,
) -> float:
    """How much more (rad², mean over the window) the bearings scatter about the consensus
    than their allowances say: ``mean(max(r_i² − s_i², 0))``."""
    r, range_m = _residuals(
        east_m, north_m, np.deg2rad(bearing_deg), np.array([c.east_m]), np.array([c.north_m])
    )
    allowance = _allowance_rad2(np.deg2rad(sigma_deg), np.abs(t_now_s - t_s), range_m[0])
    return float(np.mean(np.maximum(r[0] ** 2 - allowance, 0.0)))


@dataclass(frozen=True)
class DriveBearing:
    """One bearing as the check keeps it: when, from where (local east/north m), which way."""

    t_s: float
    east_m: float
    north_m: float
    bearing_deg: float
    sigma_deg: float


@dataclass(frozen=True)
class Judgement:
    """A bearing's verdict, and the sigma to report it with when it is sent (degrees)."""

    verdict: Verdict
    sigma_deg: float
    z: float  # its residual from the consensus in allowances (0 when unjudged)
    flagged_share: float  # of the window's pulses, those the per-pulse test flagged

    @property
    def send(self) -> bool:
        return self.verdict != "inconsistent"


@dataclass
class DriveConsistency:
    """The pulses of one bracelet over the last ``window_s``, and each new bearing's verdict.

    :meth:`flagged` counts a pulse the per-pulse test flagged (it gives no bearing, but it says
    the surroundings hold competing paths); :meth:`check` adds a bearing (in time order) and
    judges it against the window, itself included. A bearing off a consensus that most of the
    window supports is forgotten (it would only widen the sigmas of those that agree); one held
    back for want of support stays (it may be the first of a new majority once the vehicle has
    turned a corner)."""

    window_s: float = WINDOW_S
    _kept: deque[DriveBearing] = field(default_factory=deque)
    _flagged_t: deque[float] = field(default_factory=deque)
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def flagged(self, t_s: float) -> None:
        self._flagged_t.append(t_s)
        self._forget(t_s)

    def check(self, b: DriveBearing) -> Judgement:
        kept = self._kept
        kept.append(b)
        self._forget(b.t_s)
        n_flagged = len(self._flagged_t)
        share = n_flagged / (n_flagged + len(kept))
        t = np.array([k.t_s for k in kept])
        e = np.array([k.east_m for k in kept])
        n = np.array([k.north_m for k in kept])
        baseline_m = 2.0 * float(np.hypot(e - e.mean(), n - n.mean()).max())
        if len(kept) < MIN_BEARINGS or baseline_m < MIN_BASELINE_M:
            heard = n_flagged + len(kept) >= MIN_BEARINGS
            clean = heard and share <= UNJUDGED_MAX_FLAGGED
            verdict: Verdict = "unjudged" if clean else "inconsistent"
            return Judgement(verdict, b.sigma_deg, 0.0, share)
        bearing = np.array([k.bearing_deg for k in kept])
        sigma = np.array([k.sigma_deg for k in kept])
        c = consensus(t, e, n, bearing, sigma, b.t_s, self._rng)
        assert c is not None  # at least MIN_BEARINGS
        z = judge(c, b.east_m, b.north_m, b.bearing_deg, b.sigma_deg)
        support = float(c.inliers.sum()) / (len(kept) + n_flagged)
        if support < MIN_SUPPORT or z > CONSISTENT_SIGMAS:
            if support >= MIN_SUPPORT:  # an outlier of a well-held consensus: forgotten
                kept.pop()
            return Judgement("inconsistent", b.sigma_deg, z, share)
        excess = excess_scatter_rad2(c, t, e, n, bearing, sigma, b.t_s)
        inflated = math.hypot(b.sigma_deg, math.degrees(math.sqrt(excess)))
        return Judgement("consistent", inflated, z, share)

    def reproject(self, to_new: Callable[[float, float], tuple[float, float]]) -> None:
        """Move the kept bearings' positions into another local frame (``to_new(e, n)``)."""
        self._kept = deque(
            DriveBearing(k.t_s, *to_new(k.east_m, k.north_m), k.bearing_deg, k.sigma_deg)
            for k in self._kept
        )

    def _forget(self, now_s: float) -> None:
        while self._kept and now_s - self._kept[0].t_s > self.window_s:
            self._kept.popleft()
        while self._flagged_t and now_s - self._flagged_t[0] > self.window_s:
            self._flagged_t.popleft()


@dataclass
class DriveChecks:
    """A :class:`DriveConsistency` per bracelet (or channel, keyed by the caller), positions
    taken from latitude and longitude into a local frame around the first one seen."""

    window_s: float = WINDOW_S
    _frame: LocalFrame | None = None
    _by_key: dict[str, DriveConsistency] = field(default_factory=dict)

    def flagged(self, key: str, t: datetime) -> None:
        self._of(key).flagged(t.timestamp())

    def check(
        self, key: str, t: datetime, lat_deg: float, lon_deg: float, bearing_deg: float,
        sigma_deg: float,
    ) -> Judgement:  # fmt: skip
        if self._frame is None:
            self._frame = LocalFrame(lat_deg, lon_deg)
        east_m, north_m, _ = self._frame.to_enu(lat_deg, lon_deg)
        if math.hypot(east_m, north_m) > RECENTRE_M:
            # Far from the frame's origin its north turns from true north (the meridians
            # converge: 0.4° at 50 km east at 42° N); a new origin where the vehicle is.
            old, new = self._frame, LocalFrame(lat_deg, lon_deg)

            def to_new(e: float, n: float) -> tuple[float, float]:
                e2, n2, _ = new.to_enu(*old.to_lat_lon(e, n))
                return e2, n2

            for check in self._by_key.values():
                check.reproject(to_new)
            self._frame, east_m, north_m = new, 0.0, 0.0
        b = DriveBearing(t.timestamp(), east_m, north_m, bearing_deg, sigma_deg)
        return self._of(key).check(b)

    def _of(self, key: str) -> DriveConsistency:
        if key not in self._by_key:
            self._by_key[key] = DriveConsistency(self.window_s)
        return self._by_key[key]
