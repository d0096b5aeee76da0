"""NMEA positions written and read back; the fix sentences' fields on closed-form examples."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from safetynet.nmea import KNOT_MPS, gga_fields, lat_field, lon_field, nmea_angle, rmc_fields
from tests.conftest import fuzz

MINUTE_DEG = 1e-4 / 60.0  # the fields' last digit: a ten-thousandth of a minute


@fuzz(300)
@given(st.floats(-89.99, 89.99), st.floats(-179.99, 179.99))
def test_positions_round_trip(lat_deg: float, lon_deg: float) -> None:
    lat = nmea_angle(*lat_field(lat_deg), 2)
    lon = nmea_angle(*lon_field(lon_deg), 3)
    assert lat is not None
    assert lon is not None
    assert abs(lat - lat_deg) <= MINUTE_DEG
    assert abs(lon - lon_deg) <= MINUTE_DEG


def fields(text: str) -> list[str]:
    return text.split(",")


def test_rmc_and_gga_fields() -> None:
    rmc = rmc_fields(
        fields("GNRMC,153000.00,A,4221.3000,N,07103.6000,W,19.44,270.0,281126,14.5,W,A")
    )
    assert rmc.valid
    assert rmc.lat_deg == 42 + 21.3 / 60
    assert rmc.lon_deg == -(71 + 3.6 / 60)
    assert rmc.speed_mps is not None
    assert abs(rmc.speed_mps - 19.44 * KNOT_MPS) < 1e-12  # 10.0 m/s
    assert rmc.course_deg == 270.0
    assert rmc.variation_deg == -14.5
    no_fix = rmc_fields(fields("GNRMC,153000.00,V,,,,,,,281126,,,N"))
    assert not no_fix.valid
    assert no_fix.lat_deg is None
    gga = gga_fields(fields("GPGGA,153000.00,4221.3000,N,07103.6000,W,1,08,1.0,10.0,M,-33.0,M,,"))
    assert gga.valid
    assert gga.alt_m == -23.0  # 10 m above the geoid, which is 33 m below the ellipsoid
    assert not gga_fields(fields("GPGGA,153000.00,4221.3,N,07103.6,W,1,00,,,M,,M,,")).valid
    assert nmea_angle("4261.0000", "N", 2) is None  # 61 minutes
    assert nmea_angle("4221.0000", "X", 2) is None
