"""Per-receiver bearing bias, estimated jointly with the position.

A receiver in multipath, or with a compass off, can be consistently wrong by 9–12° (DOMAIN.md).
Over a window in which the person is taken as still, the position ``x`` and one bias ``b_k`` per
receiver are fitted together: ``z_i = β(x, p_i) + b_{k(i)} + e_i``, each bias with a zero-mean
prior of ``PRIOR_BIAS_DEG``. A bias is identifiable when its receiver has looked from several
places (searchers move) or when the others outvote it; the prior keeps it near zero otherwise.
A receiver's bias is reported only when it stands ``MIN_SIGMAS`` posterior deviations from zero
and exceeds ``MIN_BIAS_DEG``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from safetynet.angles import wrap_pi

PRIOR_BIAS_DEG = 6.0
MIN_SIGMAS = 3.0
MIN_BIAS_DEG = 3.0


def estimate_biases(
    receivers: Sequence[str],
    east_m: np.ndarray,
    north_m: np.ndarray,
    bearing_rad: np.ndarray,
    sigma_rad: np.ndarray,
    start_en: np.ndarray,
    iterations: int = 8,
) -> dict[str, float]:
    """Biases (radians) of the receivers that are clearly off; the rest are left out."""
    names = sorted(set(receivers))
    if len(names) < 2 or len(receivers) < 2 * len(names) + 2:
        return {}
    index = np.array([names.index(r) for r in receivers])
    k = len(names)
    params = np.concatenate((np.asarray(start_en, dtype=float), np.zeros(k)))
    prior = np.zeros((k + 2, k + 2))
    prior[2:, 2:] = np.eye(k) / math.radians(PRIOR_BIAS_DEG) ** 2
    info = prior
    for _ in range(iterations):
        de = params[0] - east_m
        dn = params[1] - north_m
        r2 = np.maximum(de * de + dn * dn, 1.0)
        predicted = np.arctan2(de, dn) + params[2:][index]
        resid = np.asarray(wrap_pi(bearing_rad - predicted), dtype=float)
        jac = np.zeros((resid.size, k + 2))
        jac[:, 0] = dn / r2
        jac[:, 1] = -de / r2
        jac[np.arange(resid.size), 2 + index] = 1.0
        w = 1.0 / sigma_rad**2
        info = jac.T @ (jac * w[:, None]) + prior
        grad = jac.T @ (w * resid) - prior @ params
        step = np.linalg.solve(info, grad)
        params = params + step
        if float(np.abs(step[:2]).max()) < 0.01 and float(np.abs(step[2:]).max()) < 1e-5:
            break
    cov = np.linalg.inv(info)
    out = {}
    for j, name in enumerate(names):
        b, sd = float(params[2 + j]), math.sqrt(float(cov[2 + j, 2 + j]))
        if abs(b) > MIN_SIGMAS * sd and abs(b) > math.radians(MIN_BIAS_DEG):
            out[name] = b
    return out
