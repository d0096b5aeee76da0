"""The Cramér–Rao bound on a position from bearings and from signal strength (DOMAIN.md).

Bearings (Torrieri 1984): ``J = Σ u_i u_iᵀ / (σ_i² r_i²)``, ``u_i`` the unit vector perpendicular
to the line of sight from receiver ``i``, ``σ_i`` in radians, ``r_i`` the range in metres.
Signal strength (Patwari et al. 2005): ``J = (10 n / (σ_dB ln 10))² Σ v_i v_iᵀ / r_i²`` with
``v_i`` along the line of sight. The bound on the position error is ``trace(J⁻¹)`` (m²); its
square root is the smallest RMS error an unbiased estimator can reach.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def bearing_information(
    target_en: NDArray[np.float64],
    receivers_en: NDArray[np.float64],
    sigmas_deg: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Fisher information (2×2, 1/m²) of bearings from ``receivers_en`` (N×2) on ``target_en``."""
    d = np.asarray(target_en, dtype=float)[None, :] - np.asarray(receivers_en, dtype=float)
    r2 = np.sum(d * d, axis=1)
    u = np.stack((d[:, 1], -d[:, 0]), axis=1) / np.sqrt(r2)[:, None]  # perpendicular, unit
    w = 1.0 / (np.deg2rad(np.asarray(sigmas_deg, dtype=float)) ** 2 * r2)
    info: NDArray[np.float64] = np.einsum("i,ij,ik->jk", w, u, u)
    return info


def rss_information(
    target_en: NDArray[np.float64],
    receivers_en: NDArray[np.float64],
    exponent: float,
    sigma_db: float,
) -> NDArray[np.float64]:
    """Fisher information (2×2, 1/m²) of signal strengths on ``target_en``."""
    d = np.asarray(target_en, dtype=float)[None, :] - np.asarray(receivers_en, dtype=float)
    r2 = np.sum(d * d, axis=1)
    v = d / np.sqrt(r2)[:, None]
    k = (10.0 * exponent / (sigma_db * math.log(10.0))) ** 2
    info: NDArray[np.float64] = k * np.einsum("i,ij,ik->jk", 1.0 / r2, v, v)
    return info


def crlb_m(information: NDArray[np.float64]) -> float:
    """Root of ``trace(J⁻¹)``: the bound on the RMS position error (m); inf when singular."""
    try:
        return math.sqrt(float(np.trace(np.linalg.inv(information))))
    except np.linalg.LinAlgError:
        return math.inf


def bearings_crlb_m(
    target_en: NDArray[np.float64],
    receivers_en: NDArray[np.float64],
    sigmas_deg: NDArray[np.float64],
) -> float:
    """The bound (m) for bearings alone."""
    return crlb_m(bearing_information(target_en, receivers_en, sigmas_deg))
