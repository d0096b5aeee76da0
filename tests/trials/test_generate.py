"""The seeded search-case generator: deterministic, kinds as specified, runnable, truthful."""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_sim.report_mode import simulate_reports
from firmware_sim.world import World
from safetynet.angles import angle_diff_deg, bearing_of_enu
from safetynet.errors import InputError
from safetynet.reports import Bearing, Pulse
from trials.generate import (
    KINDS,
    SearchCase,
    generate_case,
    generate_cases,
    simulate_case,
    truth_of,
)

N_PER_KIND = 24


@pytest.fixture(scope="module")
def by_kind() -> dict[str, list[SearchCase]]:
    return {kind: [generate_case(5, kind, i) for i in range(N_PER_KIND)] for kind in KINDS}


def test_same_seed_same_case_and_other_seeds_differ() -> None:
    for kind in KINDS:
        a, b = generate_case(42, kind, 3), generate_case(42, kind, 3)
        assert a.scenario == b.scenario
        assert generate_case(43, kind, 3).scenario != a.scenario
        assert generate_case(42, kind, 4).scenario != a.scenario


def test_a_case_does_not_depend_on_the_others_generated_with_it() -> None:
    mixed = generate_cases(6, 9)
    parks = generate_cases(2, 9, ["park"])
    assert [c.kind for c in mixed] == ["suburb", "city", "park"] * 2
    assert mixed[2].scenario == parks[0].scenario
    assert mixed[5].scenario == parks[1].scenario


def test_same_seed_same_reports() -> None:
    case = generate_case(3, "city", 1)
    _, first, _ = simulate_case(case)
    again = simulate_reports(World(generate_case(3, "city", 1).scenario))
    assert first == again


def test_propagation_follows_the_kind(by_kind: dict[str, list[SearchCase]]) -> None:
    def values(kind: str, name: str) -> list[float]:
        return [float(getattr(c.scenario.propagation, name)) for c in by_kind[kind]]

    # DOMAIN.md: outdoor suburban exponent 2.7–3.5, shadowing 4–8 dB.
    assert min(values("suburb", "exponent")) >= 2.7
    assert max(values("suburb", "exponent")) <= 3.5
    sub_sigma = values("suburb", "shadowing_sigma_db")
    assert min(sub_sigma) >= 4.0
    assert max(sub_sigma) <= 8.0
    # The dense city is harsher than the suburb, the suburb harsher than the park.
    assert min(values("city", "shadowing_sigma_db")) > max(values("park", "shadowing_sigma_db"))
    assert np.mean(values("city", "shadowing_sigma_db")) > np.mean(sub_sigma)
    assert np.mean(sub_sigma) > np.mean(values("park", "shadowing_sigma_db"))
    assert min(values("city", "exponent")) > max(values("park", "exponent"))
    assert max(values("city", "decorrelation_m")) < min(values("park", "decorrelation_m"))
    city_reflectors = [len(c.scenario.propagation.reflectors) for c in by_kind["city"]]
    park_reflectors = [len(c.scenario.propagation.reflectors) for c in by_kind["park"]]
    assert min(city_reflectors) >= 2
    assert max(park_reflectors) <= 1
    assert min(len(c.scenario.propagation.obstacles) for c in by_kind["city"]) >= 4
    assert all(not c.scenario.propagation.obstacles for c in by_kind["park"])


def test_teams_walkers_and_places_vary(by_kind: dict[str, list[SearchCase]]) -> None:
    cases = [c for kind in KINDS for c in by_kind[kind]]
    origins = {(c.scenario.origin.lat_deg, c.scenario.origin.lon_deg) for c in cases}
    assert len(origins) == len(cases)  # a new last known point every time
    assert {c.walker_style for c in cases} == {"straight", "destination", "meander", "sitter"}
    speeds = [c.scenario.bracelets[0].walker.speed_mean_mps for c in cases]
    assert 0.3 <= min(speeds) < 0.6
    assert 1.1 < max(speeds) <= 1.4
    kinds_seen = {r.kind for c in cases for r in c.scenario.receivers}
    assert kinds_seen == {"handheld", "vehicle", "fixed", "aircraft"}
    for c in cases:
        handhelds = [r for r in c.scenario.receivers if r.kind == "handheld"]
        assert 1 <= len(handhelds) <= 3, c.name  # every search has a team with a Yagi
        assert all(r.start_s <= 600.0 for r in c.scenario.receivers if r.kind != "aircraft")
    # City teams stop to sweep more often than park teams (mean walk between sweeps).
    city_walk = [sum(r.walk_s) / 2 for c in by_kind["city"] for r in c.scenario.receivers
                 if r.kind == "handheld"]  # fmt: skip
    park_walk = [sum(r.walk_s) / 2 for c in by_kind["park"] for r in c.scenario.receivers
                 if r.kind == "handheld"]  # fmt: skip
    assert max(city_walk) < min(park_walk)


def test_city_teams_walk_the_street_grid(by_kind: dict[str, list[SearchCase]]) -> None:
    for case in by_kind["city"][:8]:
        world = World(case.scenario.model_copy(update={"receivers": []}))
        directions = []
        for r in case.scenario.receivers:
            if r.kind != "handheld":
                continue
            points = np.array([world.en(p) for p in r.route])
            legs = np.diff(points, axis=0)[:-1]  # the last leg may close in off the grid
            directions += [bearing_of_enu(float(e), float(n)) for e, n in legs]
        # Every leg runs along one of the grid's two axes: bearings agree modulo 90°.
        ref = directions[0]
        for d in directions:
            off = abs(angle_diff_deg(d, ref)) % 90.0
            assert min(off, 90.0 - off) < 0.5, case.name


def test_bad_requests_are_refused_with_what_is_valid() -> None:
    with pytest.raises(InputError, match="valid kinds: suburb, city, park"):
        generate_case(1, "forest", 0)
    with pytest.raises(InputError, match="at least 1"):
        generate_cases(0, 1)
    with pytest.raises(InputError, match="0 or more"):
        generate_case(1, "park", -1)
    with pytest.raises(InputError, match="must not repeat"):
        generate_cases(3, 1, ["park", "park"])


def test_generated_cases_run_through_the_report_simulation() -> None:
    for kind in KINDS:
        case = generate_case(11, kind, 0)
        world, reports, truth = simulate_case(case)
        ids = {r.id for r in case.scenario.receivers}
        assert reports, case.name
        assert {r.receiver_id for r in reports} <= ids
        assert all(0 <= (r.t - world.start).total_seconds() <= world.duration_s for r in reports)
        heard = [p for p in reports if isinstance(p, Pulse) and p.bracelet_id is not None]
        assert {p.bracelet_id for p in heard} <= {truth.bracelet_id}
        assert truth.bracelet_id == case.scenario.bracelets[0].id


def _park_case_without_reflectors() -> SearchCase:
    for i in range(40):
        case = generate_case(2, "park", i)
        handhelds = [r for r in case.scenario.receivers if r.kind == "handheld"]
        if not case.scenario.propagation.reflectors and len(handhelds) >= 2:
            return case
    raise AssertionError("no park case without reflectors among the first 40")


def test_truth_is_where_the_bearings_point() -> None:
    """In open ground without reflectors, sweep bearings point at the truth within their error:
    the truth describes the bracelet the receivers actually heard."""
    case = _park_case_without_reflectors()
    world, reports, truth = simulate_case(case)
    bearings = [b for b in reports if isinstance(b, Bearing)]
    assert len(bearings) >= 5
    start = world.start.timestamp()
    good = 0
    for b in bearings:
        rx = np.array(world.frame.to_en(b.lat_deg, b.lon_deg))
        # A sweep's bearing is of the loudest pulse during the turn, up to ~15 s before it ends.
        t_s = b.t.timestamp() - start
        at = [truth.position_en(t_s - back) for back in (0.0, 8.0, 16.0)]
        offs = [abs(angle_diff_deg(b.bearing_deg, bearing_of_enu(*(p - rx)))) for p in at]
        good += min(offs) <= 3.0 * b.sigma_deg + 5.0  # compass bias up to ~3σ of 4°
    assert good >= 0.85 * len(bearings)


def test_truth_is_the_walk_of_a_person() -> None:
    for kind in KINDS:
        for i in range(4):
            case = generate_case(8, kind, i)
            world = World(case.scenario.model_copy(update={"receivers": []}))
            truth = truth_of(world)
            t = np.arange(0.0, world.duration_s + 1.0)
            en = truth.position_en(t)
            # Starts at the last known point (the scenario's origin).
            assert np.allclose(en[:, 0], 0.0, atol=1e-6)
            steps = np.hypot(*np.diff(en, axis=1))
            assert steps.max() <= 1.5 + 1e-9  # never faster than 1.5 m/s
            moving = np.array([truth.is_moving(float(s)) for s in t[:-1]])
            assert np.all(steps[~moving] < 1e-9)  # stopped means not moving
            w = case.scenario.bracelets[0].walker
            if w.stationary:
                assert steps.max() == 0.0
            elif w.stopped_s > 0:
                assert steps[: int(w.stopped_s) - 1].max() == 0.0
            if moving.any() and not w.stationary:
                # Legs are walked at 0.2–1.5 m/s (the second of arriving somewhere aside).
                assert np.mean(steps[moving] < 0.2 - 1e-9) < 0.01
            some = float(t[len(t) // 2])
            v = truth.velocity_enu_mps(some)
            expect = (truth.position_en(some + 2.0) - truth.position_en(some - 2.0)) / 4.0
            assert np.allclose(v, expect)


def test_destination_walkers_head_for_their_places() -> None:
    n_checked = 0
    for i in range(30):
        case = generate_case(4, "suburb", i)
        w = case.scenario.bracelets[0].walker
        if case.walker_style != "destination":
            continue
        world = World(case.scenario.model_copy(update={"receivers": []}))
        truth = truth_of(world)
        goal = np.array(world.en(w.destinations[0].position))
        start = math.dist((0.0, 0.0), goal)
        closest = min(
            math.dist(truth.position_en(float(s)), goal)
            for s in range(0, int(world.duration_s), 10)
        )
        walk_m = np.hypot(
            *np.diff(truth.position_en(np.arange(0.0, world.duration_s)), axis=1)
        ).sum()
        if walk_m > start + 100.0:  # he walked far enough to get there
            assert closest < 0.5 * start, case.name
            n_checked += 1
    assert n_checked >= 2
