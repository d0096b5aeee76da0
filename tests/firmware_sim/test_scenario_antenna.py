"""A scenario's receivers carry their antenna as the report types name it: a handheld's Yagi and
a vehicle's omni unless the file says otherwise, and every report a receiver sends names the
antenna its scenario gave it; an unknown antenna is refused with the valid ones."""

from __future__ import annotations

import pytest

from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import parse_scenario
from firmware_sim.world import World
from safetynet.errors import ScenarioError
from safetynet.reports import Pulse, Silence

ORIGIN = {"lat_deg": 42.30206, "lon_deg": -71.05761}
NEAR = [42.3025, -71.0570]


def scenario(receivers: list[dict[str, object]]) -> dict[str, object]:
    return {
        "name": "antennas", "start": "2026-11-28T14:00:00Z", "duration_s": 40, "origin": ORIGIN,
        "bracelets": [{"id": "3A7F", "channel": 19, "walker": {"stationary": True}}],
        "receivers": receivers,
    }  # fmt: skip


def test_receivers_default_by_kind_and_keep_what_the_file_says() -> None:
    parsed = parse_scenario(
        scenario(
            [
                {"id": "HH-1", "kind": "handheld", "route": [NEAR]},
                {"id": "CAR-1", "kind": "vehicle", "route": [NEAR]},
                {"id": "CAR-2", "kind": "vehicle", "route": [NEAR], "antenna": "yagi3"},
                {"id": "ROOF-1", "kind": "fixed", "position": NEAR},
            ]
        )
    )
    expected = {"HH-1": "yagi3", "CAR-1": "omni", "CAR-2": "yagi3", "ROOF-1": "omni"}
    assert {r.id: r.antenna for r in parsed.receivers} == expected
    world = World(parsed)
    assert {rx.receiver_id: rx.pattern.name for rx in world.receivers} == expected
    said = {
        (r.receiver_id, r.antenna)
        for r in simulate_reports(world)
        if isinstance(r, Pulse | Silence)
    }
    assert said == set(expected.items())  # every receiver reported, each with its own antenna


def test_an_unknown_antenna_is_refused_with_the_valid_ones() -> None:
    bad = scenario([{"id": "HH-1", "kind": "handheld", "route": [NEAR], "antenna": "dipole"}])
    with pytest.raises(ScenarioError, match=r"antenna.*'yagi3' or 'omni'"):
        parse_scenario(bad)
