"""Geodesy: WGS84 latitude/longitude ↔ local east/north metres, and the geodesic problems.

All ellipsoid maths comes from **pymap3d** (``geodetic2enu``/``enu2geodetic`` for the local
tangent plane, Vincenty's ``vdist``/``vreckon`` for the direct and inverse geodesic problems).
Why pymap3d and not pyproj: it is pure Python over NumPy, vectorised, and small, so the same code
runs on the small computer in a cruiser that hosts a field receiver; Vincenty is accurate to well
under a millimetre at the distances of a search (it only fails to converge for nearly antipodal
points, thousands of kilometres away from any search). The tests check it against Karney's
geographiclib, an independent implementation.

Conventions: latitude first; ``lat_deg``, ``lon_deg`` in degrees (WGS84), ``alt_m`` in metres
above the ellipsoid; local frame ``east_m``, ``north_m`` (``up_m``) in metres around a named
origin; azimuths are compass bearings (clockwise from true north) in [0, 360).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
import pymap3d
import pymap3d.vincenty
from numpy.typing import NDArray

from safetynet.angles import wrap_360
from safetynet.errors import InputError

FloatArray = NDArray[np.float64]


def check_lat_lon(lat_deg: float, lon_deg: float) -> None:
    """Raise :class:`InputError` unless latitude is in [-90, 90] and longitude in [-180, 180]."""
    if not np.isfinite(lat_deg) or not -90.0 <= lat_deg <= 90.0:
        raise InputError(f"latitude must be within -90..90 degrees, got {lat_deg!r}")
    if not np.isfinite(lon_deg) or not -180.0 <= lon_deg <= 180.0:
        raise InputError(f"longitude must be within -180..180 degrees, got {lon_deg!r}")


@dataclass(frozen=True)
class LocalFrame:
    """A local east/north/up tangent frame around ``origin`` (WGS84 degrees, metres).

    ``to_enu`` and ``to_geodetic`` accept scalars or equal-shaped arrays.
    """

    lat0_deg: float
    lon0_deg: float
    alt0_m: float = 0.0

    def __post_init__(self) -> None:
        check_lat_lon(self.lat0_deg, self.lon0_deg)

    @overload
    def to_enu(
        self, lat_deg: float, lon_deg: float, alt_m: float = 0.0
    ) -> tuple[float, float, float]: ...
    @overload
    def to_enu(
        self, lat_deg: FloatArray, lon_deg: FloatArray, alt_m: FloatArray | float = 0.0
    ) -> tuple[FloatArray, FloatArray, FloatArray]: ...
    def to_enu(
        self,
        lat_deg: float | FloatArray,
        lon_deg: float | FloatArray,
        alt_m: float | FloatArray = 0.0,
    ) -> tuple[float | FloatArray, float | FloatArray, float | FloatArray]:
        """Geodetic → (east_m, north_m, up_m) in this frame."""
        east, north, up = pymap3d.geodetic2enu(
            lat_deg, lon_deg, alt_m, self.lat0_deg, self.lon0_deg, self.alt0_m
        )
        return _scalar_or_array(east), _scalar_or_array(north), _scalar_or_array(up)

    @overload
    def to_geodetic(
        self, east_m: float, north_m: float, up_m: float = 0.0
    ) -> tuple[float, float, float]: ...
    @overload
    def to_geodetic(
        self, east_m: FloatArray, north_m: FloatArray, up_m: FloatArray | float = 0.0
    ) -> tuple[FloatArray, FloatArray, FloatArray]: ...
    def to_geodetic(
        self,
        east_m: float | FloatArray,
        north_m: float | FloatArray,
        up_m: float | FloatArray = 0.0,
    ) -> tuple[float | FloatArray, float | FloatArray, float | FloatArray]:
        """(east_m, north_m, up_m) in this frame → geodetic (lat_deg, lon_deg, alt_m)."""
        lat, lon, alt = pymap3d.enu2geodetic(
            east_m, north_m, up_m, self.lat0_deg, self.lon0_deg, self.alt0_m
        )
        return _scalar_or_array(lat), _scalar_or_array(lon), _scalar_or_array(alt)

    def to_en(self, lat_deg: float, lon_deg: float) -> tuple[float, float]:
        """Geodetic → (east_m, north_m) on the ellipsoid's surface at the origin's height."""
        east, north, _ = self.to_enu(lat_deg, lon_deg, self.alt0_m)
        return east, north

    def to_lat_lon(self, east_m: float, north_m: float) -> tuple[float, float]:
        """(east_m, north_m) → (lat_deg, lon_deg), at the origin's height."""
        lat, lon, _ = self.to_geodetic(east_m, north_m, 0.0)
        return lat, lon


@dataclass(frozen=True)
class Inverse:
    """Solution of the inverse geodesic problem between point 1 and point 2.

    ``azimuth1_deg``: bearing of the geodesic leaving point 1 towards point 2;
    ``azimuth2_deg``: bearing of the geodesic arriving at point 2 (continuing past it), both in
    [0, 360); ``back_azimuth_deg``: bearing from point 2 back to point 1.
    """

    distance_m: float
    azimuth1_deg: float
    azimuth2_deg: float

    @property
    def back_azimuth_deg(self) -> float:
        return wrap_360(self.azimuth2_deg + 180.0)


def inverse(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> Inverse:
    """Distance (m) and azimuths between two WGS84 points (Vincenty, via pymap3d)."""
    check_lat_lon(lat1_deg, lon1_deg)
    check_lat_lon(lat2_deg, lon2_deg)
    if lat1_deg == lat2_deg and lon1_deg == lon2_deg:
        return Inverse(0.0, 0.0, 0.0)
    dist, az1 = pymap3d.vincenty.vdist(lat1_deg, lon1_deg, lat2_deg, lon2_deg)
    _, az_back = pymap3d.vincenty.vdist(lat2_deg, lon2_deg, lat1_deg, lon1_deg)
    return Inverse(float(dist), wrap_360(float(az1)), wrap_360(float(az_back) + 180.0))


def forward(
    lat_deg: float, lon_deg: float, azimuth_deg: float, distance_m: float
) -> tuple[float, float]:
    """The point ``distance_m`` from (lat, lon) along the geodesic leaving at ``azimuth_deg``."""
    check_lat_lon(lat_deg, lon_deg)
    if distance_m < 0 or not np.isfinite(distance_m):
        raise InputError(f"distance must be a finite number of metres >= 0, got {distance_m!r}")
    if distance_m == 0:
        return lat_deg, lon_deg
    lat2, lon2 = pymap3d.vincenty.vreckon(lat_deg, lon_deg, distance_m, wrap_360(azimuth_deg))
    lon2_f = float(wrap_360(float(lon2) + 180.0) - 180.0)
    return float(lat2), lon2_f


def _scalar_or_array(x: object) -> float | FloatArray:
    arr = np.asarray(x, dtype=float)
    return float(arr) if arr.ndim == 0 else arr
