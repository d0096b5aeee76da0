"""Batch triangulation of one bracelet from bearings, robust to wild ones.

Each bearing ``i`` comes from a receiver at ``p_i`` (local metres) with its own one-sigma
``σ_i``. The estimate maximises the likelihood of Gaussian bearing errors — weighted least
squares on the wrapped angle residuals (Stansfield's estimator, iterated to the maximum):

1. **Robust start** (RANSAC over pairs): every pair of bearings that crosses in front of both
   receivers proposes its crossing; the proposal with the smallest total Tukey loss over all
   bearings wins. A reflection's bearing cannot drag a start that others disagree with.
2. **M-estimator**: Gauss–Newton with Tukey biweight weights (c = 4.685 sigmas) from that
   start; a bearing whose residual passes c, or that points away from the estimate (crosses
   behind its receiver), gets no weight.
3. **Maximum likelihood** on the bearings kept, and the **covariance** from the Fisher
   information there, ``(Σ u_i u_iᵀ / (σ_i² r_i²))⁻¹`` — with a weak prior (20 km) so that
   nearly parallel bearings give a long ellipse along them rather than a wild point.

Two bearings give their crossing with a (large) ellipse; one bearing gives no fix, and the
result says why.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import wrap_pi

TUKEY_C = 4.685
PRIOR_SIGMA_M = 20_000.0
MAX_PAIRS = 300
MIN_RANGE_M = 1.0


@dataclass(frozen=True)
class BearingObs:
    """One bearing in the local frame."""

    east_m: float
    north_m: float
    bearing_deg: float
    sigma_deg: float
    receiver_id: str = ""


@dataclass(frozen=True)
class Triangulation:
    position_en: NDArray[np.float64] | None
    cov_en_m2: NDArray[np.float64] | None
    inliers: NDArray[np.bool_]
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.position_en is not None


def _arrays(
    obs: list[BearingObs],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    p = np.array([[o.east_m, o.north_m] for o in obs], dtype=float)
    theta = np.deg2rad(np.array([o.bearing_deg for o in obs], dtype=float))  # compass, radians
    sigma = np.deg2rad(np.array([o.sigma_deg for o in obs], dtype=float))
    return p, theta, sigma


def residuals_rad(
    x: NDArray[np.float64], p: NDArray[np.float64], theta: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Measured minus predicted compass bearing (radians, wrapped), for each receiver."""
    d = x[None, :] - p
    predicted = np.arctan2(d[:, 0], d[:, 1])  # compass: atan2(east, north)
    return np.asarray(wrap_pi(theta - predicted), dtype=float)


def _jacobian(x: NDArray[np.float64], p: NDArray[np.float64]) -> NDArray[np.float64]:
    """d(predicted bearing)/d(east, north), N×2 (rad/m)."""
    d = x[None, :] - p
    r2 = np.maximum(np.sum(d * d, axis=1), MIN_RANGE_M**2)
    return np.stack((d[:, 1] / r2, -d[:, 0] / r2), axis=1)


def _tukey_loss(z: NDArray[np.float64]) -> NDArray[np.float64]:
    c2 = TUKEY_C**2 / 6.0
    inside = np.abs(z) < TUKEY_C
    loss = np.full(z.shape, c2)
    loss[inside] = c2 * (1.0 - (1.0 - (z[inside] / TUKEY_C) ** 2) ** 3)
    return loss


def _tukey_weight(z: NDArray[np.float64]) -> NDArray[np.float64]:
    w: NDArray[np.float64] = np.where(np.abs(z) < TUKEY_C, (1.0 - (z / TUKEY_C) ** 2) ** 2, 0.0)
    return w


def _in_front(
    x: NDArray[np.float64], p: NDArray[np.float64], theta: NDArray[np.float64]
) -> NDArray[np.bool_]:
    d = x[None, :] - p
    return np.asarray(d[:, 0] * np.sin(theta) + d[:, 1] * np.cos(theta) > 0)


def crossing(
    p1: NDArray[np.float64], t1: float, p2: NDArray[np.float64], t2: float
) -> NDArray[np.float64] | None:
    """Where two compass bearings cross, when in front of both receivers; else None."""
    d1 = np.array([math.sin(t1), math.cos(t1)])
    d2 = np.array([math.sin(t2), math.cos(t2)])
    m = np.column_stack((d1, -d2))
    det = float(np.linalg.det(m))
    if abs(det) < 1e-9:
        return None
    s, u = np.linalg.solve(m, p2 - p1)
    if s <= 0 or u <= 0:
        return None
    point: NDArray[np.float64] = p1 + s * d1
    return point


def _gauss_newton(
    x: NDArray[np.float64],
    p: NDArray[np.float64],
    theta: NDArray[np.float64],
    sigma: NDArray[np.float64],
    robust: bool,
    prior_mean: NDArray[np.float64],
    iterations: int = 30,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    prior_info = np.eye(2) / PRIOR_SIGMA_M**2
    weights = np.ones(p.shape[0])
    for _ in range(iterations):
        r = residuals_rad(x, p, theta)
        z = r / sigma
        weights = _tukey_weight(z) if robust else np.ones_like(z)
        weights = weights * _in_front(x, p, theta)
        jac = _jacobian(x, p)
        w = weights / sigma**2
        info = jac.T @ (w[:, None] * jac) + prior_info
        grad = jac.T @ (w * r) - prior_info @ (x - prior_mean)
        step = np.linalg.solve(info, grad)
        # Keep steps sane far from the receivers (the linearisation is local).
        scale = float(np.min(np.linalg.norm(x[None, :] - p, axis=1))) if p.size else 1.0
        norm = float(np.linalg.norm(step))
        if norm > scale:
            step *= scale / norm
        x = x + step
        if norm < 1e-3:
            break
    return x, weights


def _observed_information(
    x: NDArray[np.float64],
    p: NDArray[np.float64],
    theta: NDArray[np.float64],
    sigma: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Hessian of the negative log-likelihood at ``x`` (1/m²), prior included.

    Unlike the expected (Fisher) information it keeps the residuals' second-order term
    ``−Σ r_i ∇²β_i / σ_i²``, which widens the ellipse where the bearings' curvature and their
    disagreement make the likelihood flatter than a straight-line picture says. Falls back to
    the Fisher information when that Hessian is not positive definite.
    """
    jac = _jacobian(x, p)
    w = 1.0 / sigma**2
    fisher = jac.T @ (jac * w[:, None]) + np.eye(2) / PRIOR_SIGMA_M**2
    d = x[None, :] - p
    de, dn = d[:, 0], d[:, 1]
    r4 = np.maximum(np.sum(d * d, axis=1), MIN_RANGE_M**2) ** 2
    h_ee, h_nn, h_en = -2 * de * dn / r4, 2 * de * dn / r4, (de * de - dn * dn) / r4
    r = residuals_rad(x, p, theta)
    correction = np.array(
        [[np.sum(w * r * h_ee), np.sum(w * r * h_en)], [np.sum(w * r * h_en), np.sum(w * r * h_nn)]]
    )
    observed = fisher - correction
    if np.all(np.linalg.eigvalsh(observed) > 0):
        return np.asarray(observed, dtype=np.float64)
    return np.asarray(fisher, dtype=np.float64)


def triangulate(obs: list[BearingObs]) -> Triangulation:
    """Robust maximum-likelihood position from bearings (see the module docstring)."""
    n = len(obs)
    if n == 0:
        return Triangulation(None, None, np.zeros(0, bool), "no bearings")
    if n == 1:
        return Triangulation(None, None, np.ones(1, bool), "one bearing gives a line, not a point")
    p, theta, sigma = _arrays(obs)
    centroid = p.mean(axis=0)
    pairs = list(itertools.combinations(range(n), 2))
    if len(pairs) > MAX_PAIRS:
        rng = np.random.default_rng(n)
        pairs = [pairs[i] for i in rng.choice(len(pairs), MAX_PAIRS, replace=False)]
    best: NDArray[np.float64] | None = None
    best_loss = math.inf
    for i, j in pairs:
        point = crossing(p[i], float(theta[i]), p[j], float(theta[j]))
        if point is None:
            continue
        z = residuals_rad(point, p, theta) / sigma
        loss = float(np.sum(np.where(_in_front(point, p, theta), _tukey_loss(z), TUKEY_C**2 / 6.0)))
        if loss < best_loss:
            best, best_loss = point, loss
    if best is None:
        return Triangulation(
            None, None, np.zeros(n, bool), "no two bearings cross in front of their receivers"
        )
    x, weights = _gauss_newton(best, p, theta, sigma, robust=True, prior_mean=centroid)
    inliers = weights > 0
    if inliers.sum() < 2:
        return Triangulation(None, None, inliers, "fewer than two bearings agree")
    x, _ = _gauss_newton(
        x, p[inliers], theta[inliers], sigma[inliers], robust=False, prior_mean=centroid
    )
    info = _observed_information(x, p[inliers], theta[inliers], sigma[inliers])
    cov = np.asarray(np.linalg.inv(info), dtype=np.float64)
    # When the bearings disagree more than their sigmas say, widen the ellipse by how much:
    # the Fisher information at the estimate is optimistic when few bearings bend the
    # likelihood (range errors are skewed), and sigmas are not always honest.
    kept = int(inliers.sum())
    if kept > 2:
        chi2 = float(np.sum((residuals_rad(x, p[inliers], theta[inliers]) / sigma[inliers]) ** 2))
        cov *= max(1.0, chi2 / (kept - 2))
    return Triangulation(x, cov, inliers)


def pairwise_intersections(obs: list[BearingObs]) -> NDArray[np.float64] | None:
    """The plain method: the mean of all pairwise crossings in front of both receivers."""
    p, theta, _ = _arrays(obs)
    points = [
        c for i, j in itertools.combinations(range(len(obs)), 2)
        if (c := crossing(p[i], float(theta[i]), p[j], float(theta[j]))) is not None
    ]  # fmt: skip
    if not points:
        return None
    mean: NDArray[np.float64] = np.mean(points, axis=0)
    return mean
