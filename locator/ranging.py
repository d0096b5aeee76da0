"""Signal-strength ranging: the path-loss model, learned from the search as it goes.

``rssi = level₁ₘ − 10·n·log10(r) + G`` — ``level₁ₘ`` the bracelet's EIRP less the loss at 1 m,
``n`` the path-loss exponent, ``G`` the receiving antenna's gain toward the bracelet. Neither the
EIRP (−20 to 0 dBm, sleeve and body) nor the exponent (2.7–3.5 in a suburb) is known, so they
start at nominal values with wide uncertainty and are refined by least squares over the pulses
heard while the position is well known (the range then known to a fraction of itself), with the
nominal values as a prior. The spread left over becomes the ranging sigma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

NOMINAL_LEVEL_DBM = -13.0 - 19.15  # −10 dBm EIRP less 3 dB for the wrist, less free space at 1 m
NOMINAL_EXPONENT = 2.7
PRIOR_LEVEL_DB = 6.0
PRIOR_EXPONENT = 0.5
MIN_SIGMA_DB = 6.0  # shadowing alone (DOMAIN.md: 4–8 dB) is shared by nearby pulses
NOMINAL_SIGMA_DB = 10.0
MIN_POINTS = 12
MIN_SPAN_DECADES = 0.25  # the ranges must span a factor of 1.8 to see the slope
MAX_RELATIVE_RANGE_ERROR = 0.2


@dataclass
class PathLossModel:
    """One bracelet's path-loss model, refined from pulses with a well-known range."""

    level_1m_dbm: float = NOMINAL_LEVEL_DBM
    exponent: float = NOMINAL_EXPONENT
    sigma_db: float = NOMINAL_SIGMA_DB
    _log_r: list[float] = field(default_factory=list)
    _rssi: list[float] = field(default_factory=list)

    def observe(self, range_m: float, range_sigma_m: float, rssi_minus_gain_dbm: float) -> None:
        """A pulse whose range is known within ``MAX_RELATIVE_RANGE_ERROR``; refit the model."""
        if range_m < 5.0 or range_sigma_m > MAX_RELATIVE_RANGE_ERROR * range_m:
            return
        self._log_r.append(math.log10(range_m))
        self._rssi.append(rssi_minus_gain_dbm)
        if len(self._log_r) < MIN_POINTS:
            return
        log_r = np.array(self._log_r[-500:])
        rssi = np.array(self._rssi[-500:])
        if float(np.ptp(log_r)) < MIN_SPAN_DECADES:
            return
        # Regularised least squares: rssi = level − 10·n·log_r, priors on level and n.
        a = np.column_stack((np.ones_like(log_r), -10.0 * log_r))
        prior = np.diag([1.0 / PRIOR_LEVEL_DB**2, 1.0 / PRIOR_EXPONENT**2]) * NOMINAL_SIGMA_DB**2
        target = np.array([NOMINAL_LEVEL_DBM, NOMINAL_EXPONENT])
        level, exponent = np.linalg.solve(a.T @ a + prior, a.T @ rssi + prior @ target)
        self.level_1m_dbm = float(level)
        self.exponent = float(min(max(exponent, 1.8), 5.0))
        residual = rssi - (self.level_1m_dbm - 10.0 * self.exponent * log_r)
        self.sigma_db = max(float(np.std(residual, ddof=2)), MIN_SIGMA_DB)
