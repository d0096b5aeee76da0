"""Array cruisers in the generated and the simulated searches, against the walker's truth."""

from __future__ import annotations

import math

import numpy as np

from firmware_sim.scenario import ArraySpec, PropagationSpec
from firmware_sim.world import World
from safetynet.angles import angle_diff_deg
from safetynet.reports import Bearing
from trials.array_cruisers import SearchArray
from trials.generate import generate_case, simulate_case, with_array_cruisers


def test_array_cruisers_join_a_case_and_leave_the_rest_as_it_was() -> None:
    case = generate_case(4, "suburb", 2)
    more = with_array_cruisers(case, 2)
    before = case.scenario.model_dump()
    after = more.scenario.model_dump()
    added = after.pop("receivers")[len(before["receivers"]) :]
    assert after == {k: v for k, v in before.items() if k != "receivers"}
    assert more.scenario.receivers[: len(case.scenario.receivers)] == case.scenario.receivers
    assert [r["id"] for r in added] == ["KR-1", "KR-2"]
    assert all(r["array"] is not None and r["kind"] == "vehicle" for r in added)
    first = min(r.start_s for r in case.scenario.receivers)
    assert all(r["start_s"] >= first for r in added)


def test_generated_array_bearings_point_at_the_walker() -> None:
    case = with_array_cruisers(generate_case(3, "park", 0), 1)  # KR-1 arrives at 372 s
    short = case.scenario.model_copy(update={"duration_s": 600.0})
    case = type(case)(case.kind, case.seed, case.index, case.walker_style, short)
    world, reports, _ = simulate_case(case)
    bearings = [r for r in reports if isinstance(r, Bearing) and r.method == "array"]
    assert len(bearings) >= 20
    person = world.bracelets[0]
    z = []
    for b in bearings:
        t = (b.t - world.start).total_seconds() + 0.014
        rx_e, rx_n = world.frame.to_en(b.lat_deg, b.lon_deg)  # where it says it was
        e, n = person.position(t)
        truth_deg = math.degrees(math.atan2(e - rx_e, n - rx_n))
        z.append(angle_diff_deg(b.bearing_deg, truth_deg) / b.sigma_deg)
    z_arr = np.abs(np.array(z))
    # The reported position carries the GPS error (2–10 m here) the sigma does not include,
    # so the bound is loose; most bearings sit within a few sigmas of the truth.
    assert np.mean(z_arr < 4.0) >= 0.8
    assert len({b.seq for b in bearings}) == len(bearings)


def test_a_search_teams_array_bearing_from_where_it_stands() -> None:
    case = generate_case(3, "park", 1)
    world = World(case.scenario.model_copy(update={"propagation": PropagationSpec(exponent=2.5)}))
    array = SearchArray.build(world, 0, -110.0, ArraySpec())
    person_en = (300.0, 400.0)
    team_en = (0.0, 0.0)
    frames = [f for f in world.frames(100.0, 110.0) if f.bracelet_index == 0]
    paths = world.propagation.paths(person_en, team_en, -10.0, False)
    found = array.bearings([(f, paths) for f in frames], heading_deg=70.0, moving=True)
    assert 3 <= len(found) <= 6  # ten pulses, at most one per 2 s
    truth_deg = math.degrees(math.atan2(300.0, 400.0))
    for _, bearing_deg, sigma_deg in found:
        assert abs(angle_diff_deg(bearing_deg, truth_deg)) < 4 * sigma_deg
