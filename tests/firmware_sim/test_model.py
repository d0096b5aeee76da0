"""Simulator models against closed forms and the field's figures: antenna, walker, radio."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.propagation import Propagation, PropagationParams, Reflector, ShadowingField
from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import load_scenario, parse_scenario
from firmware_sim.walker import Walker, point_in_polygon
from firmware_sim.world import World
from safetynet.angles import angle_diff_deg, bearing_of_enu
from safetynet.antennas import OMNI, YAGI3
from safetynet.errors import ScenarioError
from safetynet.reports import Bearing
from tests.conftest import REPO

SCENARIOS = sorted((REPO / "scenarios").glob("*.toml"))


def test_yagi_pattern_figures() -> None:
    assert YAGI3.gain_dbi(0.0) == pytest.approx(7.0)
    assert YAGI3.gain_dbi(35.0) == pytest.approx(7.0 - 3.01, abs=0.01)  # 70° half-power width
    assert YAGI3.gain_dbi(-35.0) == pytest.approx(7.0 - 3.01, abs=0.01)
    assert YAGI3.gain_dbi(0.0) - YAGI3.gain_dbi(180.0) == pytest.approx(15.0, abs=0.01)
    angles = np.linspace(-180, 180, 721)
    assert np.all(np.diff(YAGI3.gain_dbi(angles[360:])) <= 1e-12)  # one lobe, falling off
    assert OMNI.gain_dbi(123.0) == 0.0


def test_free_space_reference_and_exponent() -> None:
    params = PropagationParams(exponent=3.0)
    assert params.loss_at_1m_db == pytest.approx(19.15, abs=0.05)  # DOMAIN.md: 19.1 dB
    assert float(params.path_loss_db(100.0) - params.path_loss_db(10.0)) == pytest.approx(30.0)


def test_shadowing_is_spatially_correlated() -> None:
    field = ShadowingField(6.0, 50.0, np.random.default_rng(1), n_features=512)
    rng = np.random.default_rng(2)
    points = rng.uniform(-5000, 5000, size=(4000, 2))
    values = np.array([field(x, y) for x, y in points])
    assert np.std(values) == pytest.approx(6.0, rel=0.15)
    near = np.array([field(x + 5.0, y) for x, y in points])
    far = np.array([field(x + 500.0, y) for x, y in points])
    assert np.corrcoef(values, near)[0, 1] > 0.85  # exp(-5/50) = 0.90
    assert abs(np.corrcoef(values, far)[0, 1]) < 0.15  # exp(-10) ≈ 0


def test_reflector_dominates_where_direct_path_is_blocked() -> None:
    from firmware_sim.propagation import Obstacle

    wall = Obstacle(np.array([[40.0, -50.0], [60.0, -50.0], [60.0, 50.0], [40.0, 50.0]]), 25.0)
    params = PropagationParams(reflectors=(Reflector(50.0, 150.0, 4.0, 200.0),), obstacles=(wall,))
    prop = Propagation(params, np.random.default_rng(0))
    paths = prop.paths((200.0, 0.0), (0.0, 0.0), -10.0, indoor=False)
    strongest = max(paths, key=lambda p: p.power_dbm)
    # The bracelet is due east (90°) but the strongest path comes from the reflector to the NNE.
    assert strongest.arrival_bearing_deg == pytest.approx(bearing_of_enu(50.0, 150.0))


def test_walker_statistics_match_the_lost_person_figures() -> None:
    """After an hour, the median straight-line distance is of the order of DOMAIN.md's 0.8 km."""
    distances, moving_share = [], []
    for seed in range(60):
        track = Walker().walk(3600.0, np.random.default_rng(seed))
        distances.append(math.hypot(track.east_m[-1], track.north_m[-1]))
        moving_share.append(track.moving.mean())
        speeds = np.hypot(np.diff(track.east_m), np.diff(track.north_m))
        assert speeds.max() <= 1.5 + 1e-9
    median_km = float(np.median(distances)) / 1000
    assert 0.5 < median_km < 1.9  # between the dementia median (0.8 km) and 75th percentile (1.9)
    assert 0.5 < float(np.mean(moving_share)) < 0.85  # stops and long pauses


def test_walker_stays_in_its_area_and_reaches_destination() -> None:
    square = np.array([[-200.0, -200.0], [200.0, -200.0], [200.0, 200.0], [-200.0, 200.0]])
    track = Walker(area=[square]).walk(3600.0, np.random.default_rng(5))
    assert all(
        point_in_polygon(x, y, square) for x, y in zip(track.east_m, track.north_m, strict=True)
    )
    from firmware_sim.walker import Destination

    walker = Walker(destinations=[Destination("church", 600.0, 300.0)], initial_heading_deg=0.0)
    track = walker.walk(3600.0, np.random.default_rng(6))
    closest = np.min(np.hypot(track.east_m - 600.0, track.north_m - 300.0))
    assert closest < 20.0


def test_walker_is_seeded() -> None:
    a = Walker().walk(600.0, np.random.default_rng(9))
    b = Walker().walk(600.0, np.random.default_rng(9))
    assert np.array_equal(a.east_m, b.east_m)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_example_scenarios_load_and_report(path: Path) -> None:
    world = World(load_scenario(path))
    reports = simulate_reports(world)
    assert any(r.kind == "pulse" for r in reports)
    assert any(r.kind == "status" for r in reports)


def test_sweep_bearings_are_honest_in_the_open() -> None:
    """Report-level sweep bearings: errors against the truth are consistent with their sigma."""
    world = World(load_scenario(REPO / "scenarios" / "quiet-suburb.toml"))
    z = []
    for report in simulate_reports(world):
        if isinstance(report, Bearing):
            e, n = world.frame.to_en(report.lat_deg, report.lon_deg)
            t = (report.t - world.start).total_seconds()
            tx = world.bracelets[0].position(t)
            truth = bearing_of_enu(tx[0] - e, tx[1] - n)
            z.append(angle_diff_deg(report.bearing_deg, truth) / report.sigma_deg)
    assert len(z) >= 10
    assert 0.5 < float(np.std(z)) < 2.0  # includes GPS error and walker motion, so not exactly 1


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"duration_s": -5}, "duration_s"),
        ({"bracelets": [{"id": "FFFF", "channel": 3}]}, "reserved"),
        ({"bracelets": [{"id": "3A7F", "channel": 41}]}, "channel"),
        ({"origin": {"lat_deg": 95.0, "lon_deg": 0.0}}, "lat_deg"),
        ({"start": "2026-11-28T14:00:00"}, "time zone"),
        ({"colour": "red"}, "colour"),
        ({"receivers": [{"id": "F", "kind": "fixed"}]}, "position"),
    ],
)
def test_bad_scenarios_are_refused_clearly(patch: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "name": "x", "start": "2026-11-28T14:00:00Z", "duration_s": 10,
        "origin": {"lat_deg": 42.0, "lon_deg": -71.0}, "bracelets": [{"id": "3A7F", "channel": 1}],
    }  # fmt: skip
    with pytest.raises(ScenarioError, match=message):
        parse_scenario({**base, **patch})


def test_sim_reports_command(tmp_path: Path) -> None:
    out = tmp_path / "reports.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "safetynet", "sim", "reports", "--scenario",
         str(REPO / "scenarios" / "quiet-suburb.toml"), "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [sys.executable, "-m", "safetynet", "check", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert (tmp_path / "reports.jsonl.truth.jsonl").stat().st_size > 0


def test_sim_command_names_a_missing_receiver(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "safetynet", "sim", "iq", "--scenario",
         str(REPO / "scenarios" / "quiet-suburb.toml"), "--receiver", "NOPE",
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "NOPE" in result.stderr
    assert "HH-07" in result.stderr
    assert "Traceback" not in result.stderr
