"""The fleet in simulated searches: receivers listening all shift (a cruiser on patrol, a fire
station, a roof) hear the walker before the search opens, only from where they really were and
within radio reach of the walker's true position; the last sighting, as the map's evidence,
raises the probability the map gives the person's true position when the search opens; and
``safetynet sim search --fleet`` says who last heard the person, where."""

from __future__ import annotations

import contextlib
import io
import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.scenario import load_scenario, parse_scenario
from firmware_sim.world import World
from locator.link import LinkBudget
from locator.probmap import ProbMap
from safetynet.cli import main
from safetynet.errors import ScenarioError
from tests.conftest import REPO
from trials.search import (
    HANDHELD_NOISE_DBM,
    LISTEN_S,
    SNR_MIN_DB,
    detection_range_m,
    fleet_sightings,
    last_sighting,
)

SUBURB = REPO / "scenarios" / "quiet-suburb.toml"
CITY = REPO / "scenarios" / "dense-city.toml"
OPENS_S = 45 * 60.0


def distance_to_route_m(point: tuple[float, float], route: list[tuple[float, float]]) -> float:
    """The shortest distance from ``point`` to the closed polyline ``route`` (metres)."""
    best = math.inf
    for a, b in zip(route, route[1:] + route[:1], strict=True):
        ab = np.subtract(b, a)
        t = float(np.clip(np.dot(np.subtract(point, a), ab) / np.dot(ab, ab), 0.0, 1.0))
        best = min(best, float(np.hypot(*(np.subtract(point, a) - t * ab))))
    return best


def test_the_fleet_hears_from_where_it_is_within_radio_reach_of_the_walker() -> None:
    scenario = load_scenario(SUBURB)
    seed = 1003
    seen = fleet_sightings(scenario, seed, OPENS_S)
    assert seen, "the patrol and the fire station hear the walker in the 45 minutes"
    world = World(scenario.model_copy(update={"seed": seed, "duration_s": OPENS_S + 60}))
    patrol = [world.en(p) for p in scenario.fleet[0].route]
    station = world.en(scenario.fleet[1].position or [])
    reach_m = 3 * detection_range_m(scenario, vehicle=True)
    for s in seen:
        assert 0.0 <= s.t_s <= OPENS_S
        assert s.t_s % LISTEN_S == 0.0
        if s.receiver_id == "CAR-5":
            assert distance_to_route_m((s.east_m, s.north_m), patrol) < 1.0  # on its patrol
        else:
            assert s.receiver_id == "ENG-4"
            assert math.hypot(s.east_m - station[0], s.north_m - station[1]) < 1e-6
        walker = world.bracelets[0].position(s.t_s)
        assert math.hypot(walker[0] - s.east_m, walker[1] - s.north_m) < reach_m
    assert last_sighting(seen, OPENS_S) == max(seen, key=lambda s: s.t_s)
    assert last_sighting(seen, seen[0].t_s - 1) is None
    # A fleet 30 km off never hears the walker.
    away = [scenario.origin.lat_deg + 0.27, scenario.origin.lon_deg]
    far = scenario.model_copy(
        update={"fleet": [scenario.fleet[1].model_copy(update={"position": away})]}
    )
    assert fleet_sightings(far, seed, OPENS_S) == []


def test_the_last_sighting_raises_the_maps_probability_at_the_true_position() -> None:
    scenario = load_scenario(CITY)
    better, scored, gain = 0, 0, []
    for seed in range(1000, 1010):
        sighting = last_sighting(fleet_sightings(scenario, seed, OPENS_S), OPENS_S)
        if sighting is None:
            continue
        world = World(scenario.model_copy(update={"seed": seed, "duration_s": OPENS_S + 60}))
        link = LinkBudget(eirp_dbm=world.bracelets[0].bracelet.eirp_dbm,
                          exponent=scenario.propagation.exponent,
                          shadowing_db=scenario.propagation.shadowing_sigma_db,
                          noise_dbm=HANDHELD_NOISE_DBM, snr_min_db=SNR_MIN_DB)  # fmt: skip
        opens = world.start + timedelta(seconds=OPENS_S)
        truth = world.bracelets[0].position(OPENS_S)
        plain = ProbMap.from_sighting(world.frame, "dementia", world.start, opens, None, link=link)
        seen = ProbMap.from_sighting(world.frame, "dementia", world.start, opens,
                                     sighting.evidence(world.start), link=link)  # fmt: skip
        assert seen.t == opens
        assert math.isclose(float(seen.p.sum()), 1.0, rel_tol=1e-9)
        gain.append(math.log10(seen.density_at(*truth) / plain.density_at(*truth)))
        better += gain[-1] > 0
        scored += 1
    assert scored >= 7
    assert better >= 0.7 * scored, gain
    assert float(np.median(gain)) > 0.3, gain  # twice the density at the truth, or more


def test_sim_search_with_the_fleet_says_who_last_heard_the_person() -> None:
    scenario = load_scenario(SUBURB)
    seen = last_sighting(fleet_sightings(scenario, 1003, OPENS_S), OPENS_S)
    assert seen is not None
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["sim", "search", "--scenario", str(SUBURB), "--fleet", "--seed", "1003",
                     "--strategy", "guided", "--max-minutes", "15"])  # fmt: skip
    assert code == 0
    said = buffer.getvalue()
    assert (
        f"fleet: last heard by {seen.receiver_id} {seen.t_s / 60:.1f} min after last seen" in said
    )
    assert "guided  seed 1003" in said


def test_a_fleet_needs_its_route_or_position_and_ids_of_its_own(tmp_path: Path) -> None:
    base = {"name": "f", "start": "2026-11-28T14:00:00Z", "duration_s": 60,
            "origin": {"lat_deg": 42.3, "lon_deg": -71.05},
            "bracelets": [{"id": "3A7F", "channel": 19}]}  # fmt: skip
    with pytest.raises(ScenarioError, match="fleet CAR-1: a cruiser needs a route"):
        parse_scenario({**base, "fleet": [{"id": "CAR-1", "kind": "cruiser"}]})
    with pytest.raises(ScenarioError, match="fleet ENG-1: a fire-station needs a position"):
        parse_scenario({**base, "fleet": [{"id": "ENG-1", "kind": "fire-station"}]})
    team = {"id": "CAR-1", "kind": "vehicle", "route": [[42.3, -71.05]]}
    fleet = {"id": "CAR-1", "kind": "roof", "position": [42.3, -71.05]}
    with pytest.raises(ScenarioError, match="must be unique"):
        parse_scenario({**base, "receivers": [team], "fleet": [fleet]})
    with pytest.raises(ScenarioError, match=r"fleet\.0\.kind"):
        parse_scenario({**base, "fleet": [{**fleet, "kind": "drone"}]})
    # --fleet on a scenario without one is refused, saying what it needs.
    plain = tmp_path / "no-fleet.toml"
    plain.write_text(SUBURB.read_text().split("[[fleet]]")[0], encoding="utf-8")
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        code = main(["sim", "search", "--scenario", str(plain), "--fleet", "--max-minutes", "1"])
    assert code != 0
    assert "--fleet needs a [[fleet]] in the scenario" in buffer.getvalue()
