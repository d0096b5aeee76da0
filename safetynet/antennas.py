"""Antenna patterns in the horizontal plane, shared by the simulator, receiver and locator.

``yagi3``: a 3-element Yagi, 7 dBi on boresight, half-power beamwidth 70°, front-to-back 15 dB,
modelled as ``G(θ) = G0 · [(1 − b)·((1 + cos θ)/2)^p + b]`` with ``b`` the back-lobe level and
``p`` chosen so that the gain is 3 dB down at ±35°: a smooth single main lobe, which is what the
sweep fit of a handheld receiver assumes. ``omni``: 0 dBi everywhere.

Angles are off-boresight in degrees (target bearing minus antenna heading, any range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import get_args, overload

import numpy as np
from numpy.typing import NDArray

from safetynet.reports import Antenna

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Pattern:
    """A horizontal-plane gain pattern."""

    name: Antenna
    peak_gain_dbi: float
    beamwidth_deg: float  # half-power, full width; 360 for an omni
    front_to_back_db: float

    @property
    def back_level(self) -> float:
        return float(10.0 ** (-self.front_to_back_db / 10.0))

    @property
    def exponent(self) -> float:
        if self.beamwidth_deg >= 360.0:
            return 0.0
        b = self.back_level
        half = math.radians(self.beamwidth_deg / 2.0)
        return math.log((0.5 - b) / (1.0 - b)) / math.log((1.0 + math.cos(half)) / 2.0)

    @overload
    def gain_dbi(self, off_boresight_deg: float) -> float: ...
    @overload
    def gain_dbi(self, off_boresight_deg: FloatArray) -> FloatArray: ...
    def gain_dbi(self, off_boresight_deg: float | FloatArray) -> float | FloatArray:
        """Gain (dBi) at ``off_boresight_deg`` from the main lobe."""
        if self.exponent == 0.0:
            flat = np.full(np.shape(off_boresight_deg), self.peak_gain_dbi)
            return float(flat) if flat.ndim == 0 else flat
        b = self.back_level
        lobe = ((1.0 + np.cos(np.deg2rad(off_boresight_deg))) / 2.0) ** self.exponent
        gain: FloatArray = self.peak_gain_dbi + 10.0 * np.log10((1.0 - b) * lobe + b)
        return float(gain) if np.ndim(gain) == 0 else gain


YAGI3 = Pattern("yagi3", peak_gain_dbi=7.0, beamwidth_deg=70.0, front_to_back_db=15.0)
OMNI = Pattern("omni", peak_gain_dbi=0.0, beamwidth_deg=360.0, front_to_back_db=0.0)
PATTERNS: dict[str, Pattern] = {"yagi3": YAGI3, "omni": OMNI}  # by name (an Antenna)
ANTENNAS: tuple[Antenna, ...] = get_args(Antenna)


def antenna_named(name: str) -> Antenna | None:
    """The :data:`~safetynet.reports.Antenna` called ``name`` (one of :data:`ANTENNAS`), or
    None for any other name."""
    return next((antenna for antenna in ANTENNAS if antenna == name), None)
