"""Confidence ellipses and fix reports, computed in metres (never in degrees)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import bearing_of_enu
from safetynet.geodesy import LocalFrame
from safetynet.reports import Ellipse95, Fix

CHI2_2DOF_95 = 5.991464547107979  # chi-square quantile, 2 degrees of freedom, 0.95


def ellipse95(cov_enu_m2: NDArray[np.float64]) -> Ellipse95:
    """The 95 % ellipse of a 2×2 east/north covariance: semi-axes (m), major axis bearing."""
    cov = np.asarray(cov_enu_m2, dtype=float)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
    values = np.maximum(values, 0.0)
    major = vectors[:, 1]  # eigh sorts ascending
    orientation = bearing_of_enu(float(major[0]), float(major[1])) % 180.0
    return Ellipse95(
        semi_major_m=round(math.sqrt(CHI2_2DOF_95 * values[1]), 2),
        semi_minor_m=round(math.sqrt(CHI2_2DOF_95 * values[0]), 2),
        orientation_deg=round(orientation, 2) % 180.0,
    )


def inside_ellipse95(error_en: NDArray[np.float64], cov_enu_m2: NDArray[np.float64]) -> bool:
    """Whether an error vector lies inside the 95 % ellipse of ``cov_enu_m2``."""
    e = np.asarray(error_en, dtype=float)
    return float(e @ np.linalg.solve(np.asarray(cov_enu_m2, dtype=float), e)) <= CHI2_2DOF_95


def make_fix(
    frame: LocalFrame,
    bracelet_id: str | None,
    t: datetime,
    position_en: NDArray[np.float64],
    cov_enu_m2: NDArray[np.float64],
    method: str,
    n_bearings: int,
    n_pulses: int,
    velocity_enu_mps: NDArray[np.float64] | None = None,
) -> Fix:
    """A fix report from a local estimate (the covariance is kept in metres, rounded to cm²)."""
    lat, lon = frame.to_lat_lon(float(position_en[0]), float(position_en[1]))
    cov = np.asarray(cov_enu_m2, dtype=float)
    cross = round(float((cov[0, 1] + cov[1, 0]) / 2.0), 2)
    return Fix(
        bracelet_id=bracelet_id,
        t=t,
        lat_deg=round(lat, 7),
        lon_deg=round(lon, 7),
        cov_enu_m2=[[round(float(cov[0, 0]), 2), cross], [cross, round(float(cov[1, 1]), 2)]],
        ellipse95=ellipse95(cov),
        velocity_enu_mps=None
        if velocity_enu_mps is None
        else [round(float(velocity_enu_mps[0]), 3), round(float(velocity_enu_mps[1]), 3)],
        n_bearings=n_bearings,
        n_pulses=n_pulses,
        method=method,
    )
