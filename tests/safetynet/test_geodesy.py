"""Geodesy against independent truth (Karney's geographiclib) and angle wrapping properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geographiclib.geodesic import Geodesic
from hypothesis import given
from hypothesis import strategies as st

from safetynet.angles import (
    angle_diff_deg,
    bearing_of_enu,
    bearing_to_math_rad,
    math_rad_to_bearing,
    wrap_180,
    wrap_360,
    wrap_pi,
)
from safetynet.errors import InputError
from safetynet.geodesy import LocalFrame, forward, inverse

WGS84 = Geodesic.WGS84

# Boston landmarks (lat, lon), from public maps; any pair works as long as the truth is Karney's.
LANDMARKS = {
    "state_house": (42.35775, -71.06365),
    "old_north_church": (42.36625, -71.05444),
    "fenway_park": (42.34646, -71.09724),
    "logan_tower": (42.36346, -71.01871),
    "harvard_yard": (42.37444, -71.11689),
    "franklin_park_zoo": (42.30260, -71.08639),
    "blue_hills_summit": (42.21194, -71.11389),
}
PAIRS = [(a, b) for a in LANDMARKS for b in LANDMARKS if a < b]


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_inverse_matches_geographiclib(a: str, b: str) -> None:
    (lat1, lon1), (lat2, lon2) = LANDMARKS[a], LANDMARKS[b]
    truth = WGS84.Inverse(lat1, lon1, lat2, lon2)
    ours = inverse(lat1, lon1, lat2, lon2)
    assert ours.distance_m == pytest.approx(truth["s12"], abs=0.1)
    assert angle_diff_deg(ours.azimuth1_deg, truth["azi1"]) == pytest.approx(0.0, abs=0.001)
    assert angle_diff_deg(ours.azimuth2_deg, truth["azi2"]) == pytest.approx(0.0, abs=0.001)
    back = WGS84.Inverse(lat2, lon2, lat1, lon1)["azi1"]
    assert angle_diff_deg(ours.back_azimuth_deg, back) == pytest.approx(0.0, abs=0.001)
    assert 0.0 <= ours.azimuth1_deg < 360.0


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_forward_matches_geographiclib(a: str, b: str) -> None:
    (lat1, lon1), (lat2, lon2) = LANDMARKS[a], LANDMARKS[b]
    truth = WGS84.Inverse(lat1, lon1, lat2, lon2)
    lat, lon = forward(lat1, lon1, truth["azi1"], truth["s12"])
    assert WGS84.Inverse(lat, lon, lat2, lon2)["s12"] < 0.1


def test_inverse_of_a_point_to_itself() -> None:
    assert inverse(42.0, -71.0, 42.0, -71.0).distance_m == 0.0


def test_invalid_points_are_refused() -> None:
    with pytest.raises(InputError, match=r"latitude must be within -90\.\.90"):
        inverse(91.0, 0.0, 0.0, 0.0)
    with pytest.raises(InputError, match="longitude"):
        LocalFrame(42.0, 200.0)
    with pytest.raises(InputError, match="distance"):
        forward(42.0, -71.0, 10.0, -5.0)


@given(
    lat0=st.floats(-80, 80),
    lon0=st.floats(-180, 180),
    east=st.floats(-20_000, 20_000),
    north=st.floats(-20_000, 20_000),
    up=st.floats(-200, 2000),
)
def test_enu_round_trip_to_1_mm_within_20_km(
    lat0: float, lon0: float, east: float, north: float, up: float
) -> None:
    frame = LocalFrame(lat0, lon0, 10.0)
    lat, lon, alt = frame.to_geodetic(east, north, up)
    e2, n2, u2 = frame.to_enu(lat, lon, alt)
    assert math.dist((east, north, up), (e2, n2, u2)) < 1e-3


@given(
    lat0=st.floats(-80, 80),
    lon0=st.floats(-179, 179),
    azimuth=st.floats(0, 360, exclude_max=True),
    distance=st.floats(1, 20_000),
)
def test_enu_agrees_with_geodesic_distance_and_bearing(
    lat0: float, lon0: float, azimuth: float, distance: float
) -> None:
    """A point placed by Karney's direct solution lands where the local frame says."""
    direct = WGS84.Direct(lat0, lon0, azimuth, distance)
    east, north = LocalFrame(lat0, lon0).to_en(direct["lat2"], direct["lon2"])
    # On the tangent plane the horizontal distance shrinks by ~d³/(6R²) and the point sinks
    # below the plane; within 20 km this stays under 0.1 m and 0.01°.
    assert math.hypot(east, north) == pytest.approx(distance, abs=0.1, rel=2e-5)
    assert angle_diff_deg(bearing_of_enu(east, north), azimuth) == pytest.approx(0, abs=0.01)


def test_array_round_trip() -> None:
    frame = LocalFrame(42.30206, -71.05761)
    east = np.linspace(-5000, 5000, 11)
    north = np.linspace(3000, -3000, 11)
    lat, lon, alt = frame.to_geodetic(east, north, np.zeros(11))
    e2, n2, _ = frame.to_enu(lat, lon, alt)
    assert np.allclose(e2, east, atol=1e-3)
    assert np.allclose(n2, north, atol=1e-3)


# --- angles -------------------------------------------------------------------------------------

angles = st.floats(-1e6, 1e6)


@given(angles)
def test_wrap_360_range_and_congruence(a: float) -> None:
    w = wrap_360(a)
    assert 0.0 <= w < 360.0
    assert math.isclose(math.remainder(w - a, 360.0), 0.0, abs_tol=1e-6)


@given(angles)
def test_wrap_180_range(a: float) -> None:
    w = wrap_180(a)
    assert -180.0 <= w < 180.0
    assert math.isclose(math.remainder(w - a, 360.0), 0.0, abs_tol=1e-6)


@given(angles, angles)
def test_angle_difference_is_smallest_signed(a: float, b: float) -> None:
    d = angle_diff_deg(a, b)
    assert -180.0 <= d < 180.0
    assert math.isclose(wrap_360(b + d), wrap_360(a), abs_tol=1e-6) or math.isclose(
        abs(wrap_360(b + d) - wrap_360(a)), 360.0, abs_tol=1e-6
    )


@given(st.floats(-100, 100))
def test_wrap_pi_range(a: float) -> None:
    assert -math.pi <= wrap_pi(a) < math.pi


def test_known_wraps() -> None:
    assert wrap_360(-1e-20) == 0.0
    assert wrap_360(720.0) == 0.0
    assert angle_diff_deg(359.0, 1.0) == pytest.approx(-2.0)
    assert angle_diff_deg(1.0, 359.0) == pytest.approx(2.0)
    assert wrap_180(180.0) == -180.0


@given(st.floats(0, 360, exclude_max=True))
def test_bearing_math_angle_round_trip(bearing: float) -> None:
    back = math_rad_to_bearing(bearing_to_math_rad(bearing))
    assert abs(angle_diff_deg(back, bearing)) < 1e-9


def test_bearing_conventions() -> None:
    assert bearing_of_enu(0.0, 1.0) == 0.0  # north
    assert bearing_of_enu(1.0, 0.0) == pytest.approx(90.0)  # east
    assert bearing_of_enu(0.0, -1.0) == pytest.approx(180.0)
    assert bearing_of_enu(-1.0, 0.0) == pytest.approx(270.0)
    assert bearing_to_math_rad(90.0) == pytest.approx(0.0)  # east is angle 0
    assert bearing_to_math_rad(0.0) == pytest.approx(math.pi / 2)
