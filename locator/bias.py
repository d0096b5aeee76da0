"""Per-receiver bearing bias, estimated jointly with the person's recent path.

A receiver in multipath, or with a compass off, can be consistently wrong by 9–12° (DOMAIN.md).
Over a recent window, the person's path (knots ``x_0 … x_K`` every ``KNOT_EVERY_S`` or less back
from the window's end, straight between them: walks, stops and turns all fit) and one bias
``b_k`` per receiver are fitted together:

    z_i = β(Σ_j w_ij x_j, p_i) + b_{k(i)} + e_i,

each bias with a zero-mean prior of ``PRIOR_BIAS_DEG`` and each leg between knots with one of
``PRIOR_SPEED_MPS`` per axis. The loss on the bearing residuals (in sigmas) is robust in two
stages: Huber's (``HUBER_SIGMAS``, convex, from wherever the fit starts), then Tukey's biweight
(``TUKEY_SIGMAS``) from there, so a reflection tens of sigmas off pulls nothing at all. Each stage
takes Newton steps (the bearing's second derivatives included: Gauss–Newton alone converged only
linearly, and stopped where a 1e-13 change of its start moved a bias by 1e-4 rad), Gauss–Newton
ones when the Hessian is not positive definite, each halved until the objective falls, and stops
when no parameter moves by more than ``STEP_TOL_SIGMAS`` of its posterior deviation. A bias is
identifiable when its receiver has looked from several places (searchers move) or when the
others outvote it; the prior keeps it near zero otherwise.

What is returned is a correction only when it can be trusted: nothing when the fit does not
settle within ``MAX_ITERATIONS``, when its information matrix is singular (the geometry does
not fix the position), or when any bias comes out beyond ``MAX_BIAS_DEG`` (a bias that large is
a wrong geometry — a second target, a start far off — not a compass); and of the rest, only a
receiver whose bias stands ``MIN_SIGMAS`` posterior deviations from zero and exceeds
``MIN_BIAS_DEG``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import wrap_pi

log = logging.getLogger(__name__)

PRIOR_BIAS_DEG = 10.0  # multipath gives 9–12° (DOMAIN.md)
PRIOR_SPEED_MPS = 1.0  # per axis: a walker's 0.2–1.5 m/s
HUBER_SIGMAS = 2.0  # first stage: residuals beyond this many sigmas pull linearly
TUKEY_SIGMAS = 4.685  # second stage: residuals beyond this many sigmas do not pull at all
MAX_BIAS_DEG = 30.0
MIN_SIGMAS = 3.0
MIN_BIAS_DEG = 3.0
MAX_ITERATIONS = 50
MAX_HALVINGS = 30
STEP_TOL_SIGMAS = 1e-6
HUBER_TOL_SIGMAS = 1e-2  # the Huber stage only brings the Tukey stage near its minimum
KNOT_EVERY_S = 30.0  # the path is piecewise straight between knots this far apart

FloatArray = NDArray[np.float64]
Loss = tuple[float, FloatArray, FloatArray, FloatArray]


def _huber(u: FloatArray) -> Loss:
    """Σ ρ(u) with ρ = u²/2 within ``HUBER_SIGMAS`` and c|u| − c²/2 beyond; ρ'(u); ρ''(u); and
    the Gauss–Newton weight ρ'(u)/u. Convex: the first stage, from wherever the fit starts."""
    c = HUBER_SIGMAS
    inside = np.abs(u) <= c
    total = float(np.where(inside, 0.5 * u * u, c * np.abs(u) - 0.5 * c * c).sum())
    curvature = inside.astype(float)
    return total, np.clip(u, -c, c), curvature, curvature


def _tukey(u: FloatArray) -> Loss:
    """Tukey's biweight, as :func:`_huber`: ρ = c²/6 (1 − (1 − (u/c)²)³) within
    ``TUKEY_SIGMAS``, c²/6 beyond. A reflection beyond c then costs the same wherever the
    person is, so it cannot draw the fit towards a geometry that explains it a little better
    (under Huber's loss, a few reflections tens of sigmas off outweighed the truth)."""
    c = TUKEY_SIGMAS
    q = np.minimum((u / c) ** 2, 1.0)
    total = float((c * c / 6.0 * (1.0 - (1.0 - q) ** 3)).sum())
    weight = (1.0 - q) ** 2
    return total, u * weight, (1.0 - q) * (1.0 - 5.0 * q), weight


def _knots(t_s: FloatArray, t_end_s: float) -> tuple[FloatArray, float]:
    """The path's interpolation weights (n × K) on knots every at most ``KNOT_EVERY_S`` back
    from ``t_end_s`` (knot 0) to the window's first bearing, and the knots' spacing (s)."""
    span = max(t_end_s - float(np.min(t_s)), 1e-3)
    count = max(2, math.ceil(span / KNOT_EVERY_S) + 1)
    spacing = span / (count - 1)
    back = np.clip((t_end_s - np.asarray(t_s, dtype=float)) / spacing, 0.0, count - 1)
    left = np.minimum(np.floor(back).astype(int), count - 2)
    frac = back - left
    rows = np.arange(back.size)
    weights = np.zeros((back.size, count))
    weights[rows, left] = 1.0 - frac
    weights[rows, left + 1] = frac
    return weights, spacing


def _newton(
    info: FloatArray, a: FloatArray, de: FloatArray, dn: FloatArray, r2: FloatArray, w: FloatArray
) -> FloatArray:
    """The objective's full Hessian: the Gauss–Newton ``info`` less Σ aᵢ ∇²βᵢ over the path's
    knots, with ``a`` = ρ'(u)/σ per bearing and ``w`` the knots' weights (n × K). Where the
    range or the path is weakly fixed, that second-order term is not small beside ``info``, and
    Gauss–Newton alone converges only linearly. Raises ``LinAlgError`` when the Hessian is not
    positive definite (far from the minimum), when the Gauss–Newton step is the safe one.

    ∇²β over (Δe, Δn), β = atan2(Δe, Δn): [[−2ΔeΔn, Δe² − Δn²], [Δe² − Δn², 2ΔeΔn]] / r⁴; the
    person at tᵢ is Σ_k wᵢₖ x_k, so knots k and l share Σᵢ aᵢ wᵢₖ wᵢₗ ∇²βᵢ.
    """
    r4 = r2 * r2
    cross = (w * (a * 2.0 * de * dn / r4)[:, None]).T @ w  # K × K: Σᵢ aᵢ wᵢₖ wᵢₗ 2ΔeΔn/r⁴
    diff = (w * (a * (de * de - dn * dn) / r4)[:, None]).T @ w
    block = np.empty((2 * w.shape[1], 2 * w.shape[1]))
    block[0::2, 0::2], block[1::2, 1::2] = -cross, cross
    block[0::2, 1::2] = block[1::2, 0::2] = diff
    hessian = info.copy()
    hessian[: block.shape[0], : block.shape[0]] -= block
    np.linalg.cholesky(hessian)
    return hessian


def estimate_biases(
    receivers: Sequence[str],
    east_m: FloatArray,
    north_m: FloatArray,
    bearing_rad: FloatArray,
    sigma_rad: FloatArray,
    t_s: FloatArray,
    start: Sequence[float] | FloatArray,
    t_end_s: float,
) -> dict[str, float]:
    """Biases (radians, added to the true bearing) of the receivers that are clearly off.

    ``receivers``, ``east_m``, ``north_m`` (the receiver, local frame, m), ``bearing_rad``
    (compass, radians), ``sigma_rad`` and ``t_s`` are one entry per bearing; ``start`` is the
    person's [east_m, north_m, ve_mps, vn_mps] at ``t_end_s``, where the fit starts from (the
    path back from there along that velocity). The receivers not clearly off are left out; an
    empty answer means no correction.
    """
    names = sorted(set(receivers))
    k = len(names)
    if k < 2 or len(receivers) < 2 * k + 4:
        return {}
    lookup = {name: j for j, name in enumerate(names)}
    index = np.array([lookup[r] for r in receivers])
    n = len(receivers)
    rows = np.arange(n)
    weights, spacing = _knots(t_s, t_end_s)
    knots = weights.shape[1]
    path = 2 * knots  # the knots' [east_m, north_m], from the window's end back
    inv_sigma = 1.0 / np.asarray(sigma_rad, dtype=float)
    # Priors: each leg between knots at a walker's speed, each bias near zero.
    prior = np.zeros((path + k, path + k))
    leg = np.zeros((2, path))
    for j in range(knots - 1):
        leg[:] = 0.0
        leg[0, 2 * j], leg[0, 2 * j + 2] = 1.0, -1.0
        leg[1, 2 * j + 1], leg[1, 2 * j + 3] = 1.0, -1.0
        prior[:path, :path] += leg.T @ leg / (spacing * PRIOR_SPEED_MPS) ** 2
    prior[path:, path:] = np.eye(k) / math.radians(PRIOR_BIAS_DEG) ** 2

    def residuals(params: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Bearing residuals in sigmas, and the offsets from the receivers to the person."""
        where = weights @ params[:path].reshape(knots, 2)
        de = where[:, 0] - east_m
        dn = where[:, 1] - north_m
        r2 = np.maximum(de * de + dn * dn, 1.0)
        predicted = np.arctan2(de, dn) + params[path:][index]
        u = np.asarray(wrap_pi(bearing_rad - predicted), dtype=float) * inv_sigma
        return u, de, dn, r2

    s0 = np.asarray(start, dtype=float)
    back_s = spacing * np.arange(knots)
    params = np.concatenate(
        (np.column_stack((s0[0] - s0[2] * back_s, s0[1] - s0[3] * back_s)).ravel(), np.zeros(k))
    )
    info = prior
    for loss, tolerance in ((_huber, HUBER_TOL_SIGMAS), (_tukey, STEP_TOL_SIGMAS)):
        u, de, dn, r2 = residuals(params)
        cost = loss(u)[0] + 0.5 * float(params @ prior @ params)
        converged = False
        for _ in range(MAX_ITERATIONS):
            _, pull, curvature, weight = loss(u)
            jac = np.zeros((n, path + k))
            jac[:, 0:path:2] = weights * (dn / r2)[:, None]
            jac[:, 1:path:2] = weights * (-de / r2)[:, None]
            jac[rows, path + index] = 1.0
            jac *= inv_sigma[:, None]
            info = jac.T @ (jac * weight[:, None]) + prior
            grad = jac.T @ pull - prior @ params
            try:
                hessian = jac.T @ (jac * curvature[:, None]) + prior
                hessian = _newton(hessian, pull * inv_sigma, de, dn, r2, weights)
                step = np.linalg.solve(hessian, grad)
            except np.linalg.LinAlgError:
                try:
                    step = np.linalg.solve(info, grad)
                except np.linalg.LinAlgError:
                    log.debug("bias fit refused: the geometry does not fix the position")
                    return {}
            sd = np.sqrt(np.abs(np.diag(np.linalg.inv(info))))
            if float(np.max(np.abs(step) / sd)) < tolerance:
                # Settled: the last step is below what rounding lets the objective see.
                params = params + step
                converged = True
                break
            for _ in range(MAX_HALVINGS):
                trial = params + step
                u_trial, de_t, dn_t, r2_t = residuals(trial)
                cost_trial = loss(u_trial)[0] + 0.5 * float(trial @ prior @ trial)
                if cost_trial <= cost:
                    break
                step = 0.5 * step
            else:
                break  # no step along the (Gauss–)Newton direction lowers the objective
            params, cost, u, de, dn, r2 = trial, cost_trial, u_trial, de_t, dn_t, r2_t
        if not converged or not np.all(np.isfinite(params)):
            log.debug("bias fit refused: not settled in %d iterations", MAX_ITERATIONS)
            return {}
    biases = params[path:]
    if float(np.abs(biases).max()) > math.radians(MAX_BIAS_DEG):
        log.debug("bias fit refused: a bias of %.1f° is a wrong geometry", math.degrees(
            float(np.abs(biases).max())))  # fmt: skip
        return {}
    cov = np.linalg.inv(info)
    out = {}
    for j, name in enumerate(names):
        b, sd_b = float(biases[j]), math.sqrt(float(cov[path + j, path + j]))
        if abs(b) > MIN_SIGMAS * sd_b and abs(b) > math.radians(MIN_BIAS_DEG):
            out[name] = b
    return out
