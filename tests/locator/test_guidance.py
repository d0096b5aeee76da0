"""Guidance on the probability map against geometry worked out by hand: a team listens where
hearing is likeliest and teams spread out; a team closes in once it hears or would hear from
anywhere it can reach; the team that can get farthest picks first; and the team model's reach
and gains against the antennas' patterns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from locator.guidance import (
    BY_CAR,
    LOOK_AHEAD_S,
    ON_FOOT,
    GuidedTeam,
    guided_team,
    plan,
)
from locator.link import LinkBudget
from locator.probmap import ProbMap
from safetynet.antennas import OMNI, YAGI3
from safetynet.geodesy import LocalFrame

FRAME = LocalFrame(42.30206, -71.05761)


def _blobs(centres: list[tuple[float, float]], link: LinkBudget) -> ProbMap:
    grid = ProbMap(frame=FRAME, half_width_m=3000.0, cell_m=25.0, link=link)
    p = sum(
        np.exp(-((grid.east - e) ** 2 + (grid.north - n) ** 2) / (2 * 100.0**2)) for e, n in centres
    )
    grid.p = np.asarray(p, dtype=float) / float(np.sum(p))
    return grid


def test_guidance_listens_where_hearing_is_likeliest_and_spreads_the_teams() -> None:
    short = LinkBudget(exponent=4.5)  # a few hundred metres of range: hearing is not a given
    one = plan(_blobs([(1000.0, 0.0)], short), [("HH-1", 0.0, 0.0, 600.0, 7.0)])[0]
    assert one.mode == "listen"
    assert one.east_m > 500.0  # towards the mass, as far as it can
    assert abs(one.north_m) < 150.0
    two = plan(
        _blobs([(1000.0, 0.0), (-1000.0, 0.0)], short),
        [("HH-1", 0.0, 0.0, 600.0, 7.0), ("HH-2", 0.0, 0.0, 600.0, 7.0)],
    )
    assert two[0].east_m * two[1].east_m < 0  # one team each way


def test_guidance_closes_in_once_it_would_hear_from_anywhere() -> None:
    g = plan(_blobs([(700.0, 300.0)], LinkBudget()), [("HH-1", 0.0, 0.0, 600.0, 7.0)])[0]
    assert g.mode == "close in"
    # The spot lies 762 m away, beyond reach: as far towards it as the team can get.
    scale = 600.0 / math.hypot(700.0, 300.0)
    assert math.hypot(g.east_m - 700.0 * scale, g.north_m - 300.0 * scale) < 30.0
    near = plan(_blobs([(300.0, 200.0)], LinkBudget()), [("HH-1", 0.0, 0.0, 600.0, 7.0)])[0]
    # Guidance plans on 60 m cells, then goes to the fine grid's centre of probability.
    assert math.hypot(near.east_m - 300.0, near.north_m - 200.0) <= 15.0
    assert near.p_near > 0.3


def test_a_team_that_hears_is_sent_to_close_in_even_where_hearing_is_not_a_given() -> None:
    short = LinkBudget(exponent=4.5)
    grid = _blobs([(1600.0, -1200.0)], short)  # 2 km off: out of reach and out of earshot
    listening = plan(grid, [GuidedTeam("HH-1", 0.0, 0.0, 600.0, 7.0)])[0]
    assert listening.mode == "listen"
    hearing = plan(grid, [GuidedTeam("HH-1", 0.0, 0.0, 600.0, 7.0, hears=True)])[0]
    assert hearing.mode == "close in"
    # As far towards the spot as the team can get: 600 m along the line to it.
    assert math.hypot(hearing.east_m - 480.0, hearing.north_m + 360.0) <= 15.0
    car = plan(grid, [GuidedTeam("CAR-1", 0.0, 0.0, 2500.0, 0.0)])[0]
    assert car.mode == "close in"  # it can get where hearing is near certain: it goes there
    assert math.hypot(car.east_m - 1600.0, car.north_m + 1200.0) <= 15.0


def test_the_team_that_can_get_farthest_picks_its_listening_point_first() -> None:
    short = LinkBudget(exponent=4.5)
    grid = _blobs([(1000.0, 0.0), (-1000.0, 0.0)], short)
    grid.p[grid.east > 0] *= 2.0  # the east blob holds two thirds
    grid.p /= grid.p.sum()
    walker = GuidedTeam("HH-1", 0.0, 0.0, 600.0, 7.0)
    car = GuidedTeam("CAR-1", 0.0, 0.0, 1400.0, 7.0)
    on_foot, by_car = plan(grid, [walker, car])
    assert (on_foot.receiver_id, by_car.receiver_id) == ("HH-1", "CAR-1")  # in the given order
    assert by_car.east_m > 500.0  # the car takes the likelier blob
    assert on_foot.east_m < 0.0  # the walker the other


def test_the_team_model_reaches_three_minutes_out_with_its_antennas_peak_gain() -> None:
    # Three minutes at 1.3 m/s on foot and at 8 m/s by car.
    assert LOOK_AHEAD_S == 180.0
    assert ON_FOOT.reach_m == pytest.approx(234.0)
    assert BY_CAR.reach_m == pytest.approx(1440.0)
    # The gain towards the bracelet is the pattern's boresight gain: 7 dBi Yagi, 0 dBi omni.
    assert ON_FOOT.gain_dbi == pytest.approx(float(YAGI3.gain_dbi(0.0)))
    assert BY_CAR.gain_dbi == pytest.approx(float(OMNI.gain_dbi(0.0)))
    noisy = guided_team("CAR-1", 10.0, 20.0, BY_CAR, hears=True, extra_noise_db=9.0)
    assert noisy == GuidedTeam("CAR-1", 10.0, 20.0, 1440.0, -9.0, True)
