"""The probability map takes the fleet's last sighting as prior evidence: a search whose person
was heard by a car 1.2 km north-east of home half an hour after last seen starts with its
probability near that car (measured against the geometry, not the code's own guess), and one
without a sighting starts around the last known point as before."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from registry.searches import LastSighting, LiveSetup
from safetynet.geodesy import forward, inverse
from ui.live import SearchState

HOME = (42.30206, -71.05761)
OPENED = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)


def setup(sighting: LastSighting | None) -> LiveSetup:
    return LiveSetup(search_id="s1", bracelet_id="3A7F", channel=19, last_known_lat_deg=HOME[0],
                     last_known_lon_deg=HOME[1], last_known_at=OPENED - timedelta(minutes=60),
                     opened_at=OPENED, category="dementia", teams={},
                     sighting=sighting)  # fmt: skip


def mean_position(state: SearchState) -> tuple[float, float]:
    east, north = state.probmap.mean_en()
    return state.probmap.frame.to_lat_lon(east, north)


def test_the_map_starts_near_the_last_sighting() -> None:
    car = forward(HOME[0], HOME[1], 45.0, 1200.0)
    seen = LastSighting("CAR-3", car[0], car[1], OPENED - timedelta(minutes=30), -100.0)
    with_sighting = SearchState.start(setup(seen))
    without = SearchState.start(setup(None))
    plain = mean_position(without)
    assert inverse(HOME[0], HOME[1], *plain).distance_m < 150.0  # centred on the home
    moved = mean_position(with_sighting)
    to_car = inverse(moved[0], moved[1], car[0], car[1]).distance_m
    from_home = inverse(HOME[0], HOME[1], moved[0], moved[1])
    assert to_car < 400.0, to_car  # within a car's hearing of where it heard the bracelet
    assert from_home.distance_m > 800.0
    assert abs(from_home.azimuth1_deg - 45.0) < 15.0
    assert math.isclose(float(with_sighting.probmap.p.sum()), 1.0, rel_tol=1e-9)
    assert with_sighting.probmap.t == OPENED  # the map is of the search's opening
    # A sighting from before the person was last seen says nothing new: ignored.
    stale = LastSighting("CAR-3", car[0], car[1], OPENED - timedelta(minutes=90), -100.0)
    assert mean_position(SearchState.start(setup(stale))) == plain
