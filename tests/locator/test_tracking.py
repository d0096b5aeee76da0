"""The particle tracker against independent truth: closed forms and the simulator's ground truth."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import load_scenario
from firmware_sim.world import World
from locator.bearing_model import PLACE_BIAS_VAR_RAD2, bearing_update, place_sigma
from locator.fixes import inside_ellipse95
from locator.motion import LEG_MEAN_S, STOP_MEAN_S, propagate
from locator.particle import ParticleTrack, disc_positions
from locator.ranging import PlaceMeasurement, prior_level, rss_update
from locator.tracker import Locator
from safetynet.angles import bearing_of_enu
from safetynet.geodesy import LocalFrame
from safetynet.reports import Bearing, Fix, Pulse
from tests.conftest import REPO

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
FRAME = LocalFrame(42.30206, -71.05761)


def bearing_report(rx: tuple[float, float], deg: float, t_s: float, seq: int, rid: str) -> Bearing:
    lat, lon = FRAME.to_lat_lon(*rx)
    return Bearing(
        receiver_id=rid, seq=seq, t=T0 + timedelta(seconds=t_s), bracelet_id="3A7F",
        channel=19, lat_deg=lat, lon_deg=lon, bearing_deg=round(deg % 360.0, 2) % 360.0,
        sigma_deg=4.0, method="sweep", n_pulses=12,
    )  # fmt: skip


def toward(rx: tuple[float, float], target: tuple[float, float]) -> float:
    return bearing_of_enu(target[0] - rx[0], target[1] - rx[1])


def test_repeated_bearings_from_a_place_weigh_as_one_with_its_bias() -> None:
    # k bearings of scatter σ sharing a bias σ_b carry the information of one of σ²/k + σ_b².
    sigma, bias = math.radians(4.0), math.radians(7.0)
    for k in (1, 2, 5, 30):
        info = sum(1.0 / place_sigma(sigma, bias, j) ** 2 for j in range(1, k + 1))
        assert info == pytest.approx(1.0 / (sigma**2 / k + bias**2), rel=1e-9)


def test_a_place_bias_is_learnt_at_the_true_position() -> None:
    rng = np.random.default_rng(3)
    target, rx = np.array([[300.0, 400.0]]), (0.0, 0.0)
    true_bias = math.radians(10.0)
    bias_mean, var = np.zeros(1), PLACE_BIAS_VAR_RAD2
    for _ in range(40):
        z = math.radians(toward(rx, (300.0, 400.0))) + true_bias + rng.normal(0, math.radians(3))
        _, var = bearing_update(target, rx, z, math.radians(3.0), bias_mean, var)
    assert math.degrees(float(bias_mean[0])) == pytest.approx(10.0, abs=1.5)
    assert math.degrees(math.sqrt(var)) < 1.0


def test_level_and_exponent_are_learnt_at_the_true_position() -> None:
    # Place measurements at known ranges, level −35 dBm at 1 m, exponent 3.3, 6 dB shadowing:
    # the particle at the truth learns both (the prior says −32.1 dBm and 3.0).
    rng = np.random.default_rng(4)
    pos = np.array([[0.0, 0.0]])
    mean, cov = prior_level()
    level_mean, level_cov = mean[None, :].copy(), cov[None, :].copy()
    for _ in range(200):
        r = float(rng.uniform(50, 1500))
        theta = float(rng.uniform(0, 2 * math.pi))
        rssi = -35.0 - 33.0 * math.log10(r) + float(rng.normal(0, 6.0))
        m = PlaceMeasurement(
            0.0, np.array([r * math.sin(theta)]), np.array([r * math.cos(theta)]),
            np.zeros(1), np.array([rssi]), None, "omni", 1,
        )  # fmt: skip
        rss_update(pos, level_mean, level_cov, m, 6.0)
    assert level_mean[0, 1] == pytest.approx(3.3, abs=0.2)
    assert level_mean[0, 0] == pytest.approx(-35.0, abs=4.0)


def test_walking_and_stopped_shares_settle_at_their_dwell_times() -> None:
    # A two-state Markov chain spends LEG/(LEG+STOP) of its time walking.
    rng = np.random.default_rng(5)
    n = 20_000
    pos, vel = np.zeros((n, 2)), np.zeros((n, 2))
    walking = np.zeros(n, dtype=bool)
    propagate(pos, vel, walking, 3000.0, rng)
    assert walking.mean() == pytest.approx(LEG_MEAN_S / (LEG_MEAN_S + STOP_MEAN_S), abs=0.02)
    assert np.all(vel[~walking] == 0.0)


def test_two_nearly_parallel_bearings_give_a_long_honest_uncertainty() -> None:
    # Two bearings 8° apart: the track knows the line, not the point along it.
    target = (0.0, 1000.0)
    locator = Locator(frame=FRAME)
    for i, rx in enumerate([(-70.0, 0.0), (70.0, 0.0)]):
        locator.add(bearing_report(rx, toward(rx, target), 10.0 * i, i, f"HH-{i}"))
    mean, cov, _, _ = locator.bracelets["3A7F"].track.estimate()
    values, vectors = np.linalg.eigh(cov)
    assert math.sqrt(5.991 * values[1]) > 400.0  # a long ellipse, not a confident point
    assert abs(vectors[1, 1]) > 0.9  # along the lines (north)
    assert inside_ellipse95(mean - np.array(target), cov)


def test_a_reflection_does_not_drag_the_fix() -> None:
    target = (200.0, -100.0)
    rxs = [(900.0, 0.0), (-600.0, 400.0), (100.0, -900.0), (-500.0, -700.0)]
    locator = Locator(frame=FRAME)
    fixes: list[Fix] = []
    rng = np.random.default_rng(6)
    for k in range(16):
        rx = rxs[k % 4]
        err = 70.0 if k % 4 == 1 and k > 4 else float(rng.normal(0, 4.0))  # one team's bounce
        fixes += locator.add(bearing_report(rx, toward(rx, target) + err, 20.0 * k, k, f"T{k % 4}"))
    est = np.array(FRAME.to_en(fixes[-1].lat_deg, fixes[-1].lon_deg))
    assert np.linalg.norm(est - np.array(target)) < 60.0
    assert inside_ellipse95(est - np.array(target), np.array(fixes[-1].cov_enu_m2))


def test_signal_strength_cannot_pull_the_fix_against_the_bearings() -> None:
    # Bearings from three teams hold the person; a receiver far off reports pulses 15 dB louder
    # than the path loss says (a bracelet hot, or an open window): the fix must stay.
    target = (100.0, 200.0)
    rxs = [(900.0, 0.0), (-600.0, 600.0), (0.0, -800.0)]
    locator = Locator(frame=FRAME)
    rng = np.random.default_rng(7)
    fixes: list[Fix] = []
    seq = 0
    for k in range(12):
        rx = rxs[k % 3]
        deg = toward(rx, target) + float(rng.normal(0, 4.0))
        fixes += locator.add(bearing_report(rx, deg, 30.0 * k, seq, f"T{k % 3}"))
        seq += 1
        for j in range(10):
            far = (-1200.0 + 20.0 * j, -1200.0)
            r = math.dist(far, target)
            lat, lon = FRAME.to_lat_lon(*far)
            pulse = Pulse(
                receiver_id="CAR-1", seq=seq, t=T0 + timedelta(seconds=30.0 * k + j + 1),
                channel=19, freq_hz=216_462_612, bracelet_id="3A7F", status=None,
                rssi_dbm=round(-32.1 - 30.0 * math.log10(r) + 15.0, 1), snr_db=20.0,
                gain_db=30.0, lat_deg=lat, lon_deg=lon, alt_m=None, heading_deg=None,
                antenna="omni",
            )  # fmt: skip
            seq += 1
            fixes += locator.add(pulse)
    est = np.array(FRAME.to_en(fixes[-1].lat_deg, fixes[-1].lon_deg))
    assert np.linalg.norm(est - np.array(target)) < 80.0
    assert inside_ellipse95(est - np.array(target), np.array(fixes[-1].cov_enu_m2))


def test_a_cloud_spread_over_a_disc_reports_it() -> None:
    rng = np.random.default_rng(8)
    track = ParticleTrack(disc_positions(rng, 20_000, (0.0, 0.0), 1000.0), 0.0, 8)
    mean, cov, _, _ = track.estimate()
    # Uniform in range over a 1 km disc: each axis has variance E[r²]/2 = 1000²/6.
    assert np.linalg.norm(mean) < 15.0
    assert np.allclose(np.diag(cov), 1000.0**2 / 6.0, rtol=0.05)


@pytest.mark.parametrize("seed", [101, 202])
def test_tracking_simulated_searches_on_fresh_seeds(seed: int) -> None:
    scenario = load_scenario(REPO / "scenarios" / "quiet-suburb.toml").model_copy(
        update={"seed": seed}
    )
    world = World(scenario)
    locator = Locator(frame=world.frame)
    errors, covered = [], []
    for report in simulate_reports(world):
        for fix in locator.add(report):
            t = (fix.t - world.start).total_seconds()
            truth = np.array(world.bracelets[0].position(t))
            est = np.array(world.frame.to_en(fix.lat_deg, fix.lon_deg))
            errors.append(float(np.linalg.norm(est - truth)))
            covered.append(inside_ellipse95(est - truth, np.array(fix.cov_enu_m2)))
    assert len(errors) > 20
    assert float(np.mean(covered)) > 0.75  # against the simulator's truth
    assert float(np.median(errors)) < 200.0


def test_smoothed_trail_follows_the_walker() -> None:
    world = World(load_scenario(REPO / "scenarios" / "quiet-suburb.toml"))
    locator = Locator(frame=world.frame)
    for report in simulate_reports(world):
        locator.add(report)
    trail = locator.trail("3A7F")
    assert len(trail) > 10
    t0 = world.start.timestamp()
    errors = [
        float(np.linalg.norm(p.position_en - np.array(world.bracelets[0].position(p.t_s - t0))))
        for p in trail
    ]
    inside = [
        inside_ellipse95(
            p.position_en - np.array(world.bracelets[0].position(p.t_s - t0)), p.cov_en_m2
        )
        for p in trail
    ]
    assert float(np.median(errors)) < 150.0
    assert float(np.mean(inside)) > 0.7
