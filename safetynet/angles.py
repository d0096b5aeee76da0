"""Angles: the one place where bearings are wrapped, differenced and converted.

Conventions (STYLE.md): a *bearing* is a compass bearing in degrees, clockwise from true north,
in [0, 360). Inside numerics the locator may use maths angles (radians, counter-clockwise from
east); the only conversions between the two live here.

All functions accept scalars or NumPy arrays and return the same shape.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
_TWO_PI = 2.0 * math.pi


@overload
def wrap_360(angle_deg: float) -> float: ...
@overload
def wrap_360(angle_deg: FloatArray) -> FloatArray: ...
def wrap_360(angle_deg: float | FloatArray) -> float | FloatArray:
    """Wrap degrees into [0, 360)."""
    wrapped = np.mod(angle_deg, 360.0)
    # np.mod(-1e-20, 360) rounds to 360.0, which is outside the interval.
    wrapped = np.where(wrapped >= 360.0, 0.0, wrapped)
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


@overload
def wrap_180(angle_deg: float) -> float: ...
@overload
def wrap_180(angle_deg: FloatArray) -> FloatArray: ...
def wrap_180(angle_deg: float | FloatArray) -> float | FloatArray:
    """Wrap degrees into [-180, 180)."""
    wrapped: FloatArray = wrap_360(np.asarray(angle_deg, dtype=float) + 180.0) - 180.0
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


@overload
def angle_diff_deg(a_deg: float, b_deg: float) -> float: ...
@overload
def angle_diff_deg(a_deg: FloatArray, b_deg: FloatArray | float) -> FloatArray: ...
@overload
def angle_diff_deg(a_deg: float, b_deg: FloatArray) -> FloatArray: ...
def angle_diff_deg(a_deg: float | FloatArray, b_deg: float | FloatArray) -> float | FloatArray:
    """The signed smallest difference ``a − b`` in degrees, in [-180, 180)."""
    diff: FloatArray = np.asarray(a_deg, dtype=float) - np.asarray(b_deg, dtype=float)
    return wrap_180(diff)


@overload
def wrap_pi(angle_rad: float) -> float: ...
@overload
def wrap_pi(angle_rad: FloatArray) -> FloatArray: ...
def wrap_pi(angle_rad: float | FloatArray) -> float | FloatArray:
    """Wrap radians into [-π, π); the residual function for angle measurements in filters."""
    if isinstance(angle_rad, float | int):
        # A filter wraps one residual per update: plain floats, not numpy's per-call overhead.
        # Python's float % takes the divisor's sign exactly as np.mod does.
        scalar = (float(angle_rad) + math.pi) % _TWO_PI - math.pi
        return -math.pi if scalar >= math.pi else scalar
    wrapped: FloatArray = np.mod(np.asarray(angle_rad, dtype=float) + np.pi, 2.0 * np.pi) - np.pi
    wrapped = np.where(wrapped >= np.pi, -np.pi, wrapped)
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


@overload
def bearing_to_math_rad(bearing_deg: float) -> float: ...
@overload
def bearing_to_math_rad(bearing_deg: FloatArray) -> FloatArray: ...
def bearing_to_math_rad(bearing_deg: float | FloatArray) -> float | FloatArray:
    """Compass bearing (deg, clockwise from north) → maths angle (rad, anticlockwise from east)."""
    return wrap_pi(np.deg2rad(90.0 - np.asarray(bearing_deg, dtype=float)))


@overload
def math_rad_to_bearing(angle_rad: float) -> float: ...
@overload
def math_rad_to_bearing(angle_rad: FloatArray) -> FloatArray: ...
def math_rad_to_bearing(angle_rad: float | FloatArray) -> float | FloatArray:
    """Maths angle (rad, counter-clockwise from east) → compass bearing (deg) in [0, 360)."""
    angle_deg: FloatArray = 90.0 - np.rad2deg(np.asarray(angle_rad, dtype=float))
    return wrap_360(angle_deg)


@overload
def bearing_of_enu(east_m: float, north_m: float) -> float: ...
@overload
def bearing_of_enu(east_m: FloatArray, north_m: FloatArray) -> FloatArray: ...
def bearing_of_enu(east_m: float | FloatArray, north_m: float | FloatArray) -> float | FloatArray:
    """Compass bearing (deg) of the local vector (east, north); atan2(east, north) by definition."""
    return wrap_360(np.rad2deg(np.arctan2(east_m, north_m)))


COMPASS_WORDS = ("north", "north-east", "east", "south-east", "south", "south-west", "west",
                 "north-west")  # fmt: skip


def compass_word(bearing_deg: float) -> str:
    """A compass bearing (degrees clockwise from true north) as one of the eight words:
    ``north`` within 22.5° of 0°, ``north-east`` within 22.5° of 45°, and so on."""
    return COMPASS_WORDS[int((wrap_360(bearing_deg) + 22.5) // 45.0) % 8]
