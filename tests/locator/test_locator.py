"""The locator against independent truth: closed forms, the Cramér–Rao bound, the simulator."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import load_scenario
from firmware_sim.world import World
from locator.crlb import bearings_crlb_m, rss_information
from locator.fixes import ellipse95, inside_ellipse95
from locator.kalman import Measurement, Track
from locator.tracker import Locator, batch_fixes
from locator.triangulate import BearingObs, triangulate
from safetynet.angles import bearing_of_enu
from safetynet.reports import Fix
from tests.conftest import REPO


def toward(rx: tuple[float, float], target: tuple[float, float], error_deg: float = 0.0) -> float:
    return (bearing_of_enu(target[0] - rx[0], target[1] - rx[1]) + error_deg) % 360


def test_crlb_closed_form() -> None:
    # Two receivers at right angles, 1 km away, 1° each: each constrains the cross-range to
    # r·σ = 17.45 m, so the bound is √2 · 17.45 m.
    rx = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    bound = bearings_crlb_m(np.zeros(2), rx, np.array([1.0, 1.0]))
    assert bound == pytest.approx(math.sqrt(2) * 1000 * math.radians(1.0), rel=1e-9)
    info = rss_information(np.zeros(2), rx, 3.0, 6.0)
    k = (10 * 3.0 / (6.0 * math.log(10))) ** 2 / 1000**2
    assert np.allclose(info, np.diag([k, k]))


def test_exact_bearings_give_the_point() -> None:
    target = (120.0, -340.0)
    rxs = [(600.0, 200.0), (-500.0, 100.0), (50.0, -900.0), (700.0, -700.0)]
    result = triangulate([BearingObs(e, n, toward((e, n), target), 3.0) for e, n in rxs])
    assert result.ok
    assert result.position_en is not None
    assert np.allclose(result.position_en, target, atol=0.05)


def test_two_bearings_cross_with_a_large_ellipse_and_one_gives_none() -> None:
    target = (0.0, 0.0)
    obs = [BearingObs(500.0, 0.0, toward((500.0, 0.0), target), 5.0),
           BearingObs(0.0, 600.0, toward((0.0, 600.0), target), 5.0)]  # fmt: skip
    result = triangulate(obs)
    assert result.ok
    assert result.position_en is not None
    assert result.cov_en_m2 is not None
    assert np.allclose(result.position_en, target, atol=0.05)  # the 20 km prior's pull: mm
    assert ellipse95(result.cov_en_m2).semi_major_m > 100
    one = triangulate(obs[:1])
    assert not one.ok
    assert "one bearing" in one.reason


def test_near_parallel_bearings_give_a_long_ellipse_not_a_wild_point() -> None:
    target = (0.0, 3000.0)
    rxs = [(-20.0, 0.0), (20.0, 0.0)]
    result = triangulate([BearingObs(e, n, toward((e, n), target, err), 2.0)
                          for (e, n), err in zip(rxs, (0.3, -0.3), strict=True)])  # fmt: skip
    assert result.ok
    assert result.position_en is not None
    assert result.cov_en_m2 is not None
    e = ellipse95(result.cov_en_m2)
    assert e.semi_major_m > 20 * e.semi_minor_m  # long, along the bearings
    assert min(e.orientation_deg, 180 - e.orientation_deg) < 5  # pointing north-south
    assert abs(result.position_en[0]) < 100


def test_bearings_crossing_behind_are_rejected() -> None:
    # Both point away from each other: they cross only behind the receivers.
    result = triangulate([BearingObs(0.0, 0.0, 270.0, 5.0), BearingObs(100.0, 0.0, 90.0, 5.0)])
    assert not result.ok
    assert "in front" in result.reason


def test_wild_bearing_is_outvoted() -> None:
    target = (100.0, 200.0)
    rng = np.random.default_rng(3)
    rxs = [(700.0, 0.0), (-600.0, 300.0), (0.0, -700.0), (500.0, 600.0), (-400.0, -500.0)]
    obs = [BearingObs(e, n, toward((e, n), target, float(rng.normal(0, 3))), 3.0) for e, n in rxs]
    obs[1] = BearingObs(*rxs[1], toward(rxs[1], target, 70.0), 3.0)  # a reflection
    result = triangulate(obs)
    assert result.position_en is not None
    assert not result.inliers[1]
    bound = bearings_crlb_m(np.array(target), np.array(rxs), np.full(5, 3.0))
    assert np.linalg.norm(result.position_en - np.array(target)) < 3 * bound


def test_monte_carlo_against_the_bound_and_ellipse_coverage() -> None:
    rng = np.random.default_rng(8)
    rx = np.array(
        [[600.0 * math.sin(a), 600.0 * math.cos(a)] for a in np.deg2rad([10, 100, 190, 280])]
    )
    bound = bearings_crlb_m(np.zeros(2), rx, np.full(4, 5.0))
    errors, covered = [], []
    for _ in range(400):
        obs = [
            BearingObs(e, n, toward((e, n), (0.0, 0.0), float(rng.normal(0, 5))), 5.0)
            for e, n in rx
        ]
        result = triangulate(obs)
        assert result.position_en is not None
        assert result.cov_en_m2 is not None
        errors.append(result.position_en)
        covered.append(inside_ellipse95(result.position_en, result.cov_en_m2))
    rmse = math.sqrt(float(np.mean(np.sum(np.square(errors), axis=1))))
    assert rmse / bound < 1.1
    assert 0.91 <= float(np.mean(covered)) <= 0.98


def test_ellipse_of_a_known_covariance() -> None:
    e = ellipse95(np.array([[400.0, 0.0], [0.0, 100.0]]))
    assert e.semi_major_m == pytest.approx(math.sqrt(5.991 * 400), rel=1e-3)
    assert e.orientation_deg == pytest.approx(90.0)  # major axis east-west
    e = ellipse95(np.array([[100.0, 0.0], [0.0, 400.0]]))
    assert e.orientation_deg == pytest.approx(0.0)


def stationary_bearings(seconds: int, rng: np.random.Generator) -> list[Measurement]:
    target = np.array([80.0, -50.0])
    rxs = {"A": (600.0, 0.0), "B": (-500.0, 300.0), "C": (0.0, -700.0), "D": (400.0, 650.0)}
    out = []
    for k in range(seconds):
        name = "ABCD"[k % 4]
        e, n = rxs[name]
        err = rng.normal(0, 4.0)
        bearing = math.radians(toward((e, n), (float(target[0]), float(target[1])), err))
        out.append(Measurement(float(k), "bearing", name, e, n, bearing, math.radians(4.0)))
    return out


def test_track_out_of_order_equals_in_order() -> None:
    rng = np.random.default_rng(1)
    ms = stationary_bearings(200, rng)
    in_order = Track(np.array([0.0, 0.0]), np.eye(2) * 200**2, 0.0)
    for m in ms:
        in_order.add(m)
    shuffled = Track(np.array([0.0, 0.0]), np.eye(2) * 200**2, 0.0)
    late = ms[50:60]
    for m in ms[:50] + ms[60:120] + late + ms[120:]:
        shuffled.add(m)
    assert np.allclose(in_order.estimate[0], shuffled.estimate[0], atol=1e-6)


def test_tracking_a_simulated_walker() -> None:
    world = World(load_scenario(REPO / "scenarios" / "quiet-suburb.toml"))
    locator = Locator(frame=world.frame)
    fixes: list[Fix] = []
    for report in simulate_reports(world):
        fixes += locator.add(report)
    assert len(fixes) > 20
    errors, covered = [], []
    for fix in fixes:
        t = (fix.t - world.start).total_seconds()
        truth = np.array(world.bracelets[0].position(t))
        est = np.array(world.frame.to_en(fix.lat_deg, fix.lon_deg))
        errors.append(float(np.linalg.norm(est - truth)))
        covered.append(inside_ellipse95(est - truth, np.array(fix.cov_enu_m2)))
    late = errors[len(errors) // 2 :]
    assert float(np.median(late)) < 150  # metres, against the simulator's truth
    assert float(np.mean(covered)) > 0.6


def test_locate_command(tmp_path: Path) -> None:
    reports = tmp_path / "r.jsonl"
    subprocess.run([sys.executable, "-m", "safetynet", "sim", "reports", "--scenario",
                    str(REPO / "scenarios" / "quiet-suburb.toml"), "--out", str(reports)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    locate = [sys.executable, "-m", "safetynet", "locate", "--input", str(reports)]
    result = subprocess.run(
        [*locate, "--batch"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert '"method":"batch"' in result.stdout
    streamed = subprocess.run(locate, capture_output=True, text=True, timeout=300, check=False)
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.count('"method":"pf"') > 10
    # From the scenario's last known point and start: fixes again; a bad point or time is
    # refused, saying what was wrong.
    scenario = load_scenario(REPO / "scenarios" / "quiet-suburb.toml")
    origin = scenario.origin
    prior = ["--last-known", f"{origin.lat_deg},{origin.lon_deg}",
             "--last-seen", scenario.start.isoformat()]  # fmt: skip
    known = subprocess.run([*locate, *prior], capture_output=True, text=True, timeout=300,
                           check=False)  # fmt: skip
    assert known.returncode == 0, known.stderr
    assert known.stdout.count('"method":"pf"') > 10
    for bad, words in ((["--last-known", "95,-71"], "latitude must be within -90..90"),
                       (["--last-known", "42.3"], "LAT,LON"),
                       ([*prior[:2], "--last-seen", "2026-11-28 14:00"], "time zone"),
                       (prior[2:], "--last-seen needs --last-known")):  # fmt: skip
        refused = subprocess.run([*locate, *bad], capture_output=True, text=True, timeout=300,
                                 check=False)  # fmt: skip
        assert refused.returncode == 2, (bad, refused.stderr)
        assert words in refused.stderr, (bad, refused.stderr)


def test_batch_fixes_group_by_bracelet() -> None:
    world = World(load_scenario(REPO / "scenarios" / "quiet-suburb.toml"))
    fixes = batch_fixes(simulate_reports(world))
    assert any(f.bracelet_id == "3A7F" for f in fixes)


def moving_bearings(rng: np.random.Generator, biased: str | None) -> list[Measurement]:
    """Four teams walking about 300 m squares, one of them (maybe) 12° off."""
    target = (80.0, -50.0)
    bases = {"A": (600.0, 0.0), "B": (-500.0, 300.0), "C": (0.0, -700.0), "D": (400.0, 650.0)}
    out = []
    for k in range(400):
        name = "ABCD"[k % 4]
        e = bases[name][0] + float(rng.uniform(-150, 150))
        n = bases[name][1] + float(rng.uniform(-150, 150))
        err = float(rng.normal(0, 4.0)) + (12.0 if name == biased else 0.0)
        bearing = math.radians(toward((e, n), target, err))
        out.append(Measurement(k * 0.5, "bearing", name, e, n, bearing, math.radians(4.0)))
    return out


def test_track_finds_the_receiver_that_is_off() -> None:
    rng = np.random.default_rng(5)
    ms = moving_bearings(rng, "B")
    track = Track(np.array([0.0, 0.0]), np.eye(2) * 300**2, 0.0)
    for m in ms:
        track.add(m)
    assert set(track.bias_rad) == {"B"}
    assert math.degrees(track.bias_rad["B"]) == pytest.approx(12.0, abs=4.0)
    fair = Track(np.array([0.0, 0.0]), np.eye(2) * 300**2, 0.0)
    for m in moving_bearings(np.random.default_rng(6), None):
        fair.add(m)
    assert not fair.bias_rad  # nobody is blamed when nobody is off
    x, _, _ = track.estimate
    assert np.linalg.norm(x[:2] - np.array([80.0, -50.0])) < 25
