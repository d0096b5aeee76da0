"""The particle tracker against independent truth: closed forms and the simulator's ground truth."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from numpy.typing import NDArray

from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import load_scenario
from firmware_sim.world import World
from locator.bearing_model import (
    PLACE_BIAS_VAR_RAD2,
    PLACE_REFLECTED_SHARE,
    PlaceBearings,
    bearing_update,
    place_sigma,
)
from locator.fixes import CHI2_2DOF_95, inside_ellipse95
from locator.motion import (
    LEG_MEAN_S,
    LOOK_MEAN_S,
    REST_MEAN_S,
    REST_SHARE,
    WALKING,
    propagate,
)
from locator.particle import ParticleTrack, disc_positions
from locator.ranging import (
    BRACELET_END_DB,
    LEVEL_DECORRELATION_M,
    PlaceMeasurement,
    prior_level,
    rss_update,
    silence_fading_db,
    silence_update,
    walk_level,
)
from locator.tracker import FIX_MAJOR_M, Locator
from safetynet.angles import bearing_of_enu
from safetynet.geodesy import LocalFrame
from safetynet.reports import Bearing, Fix, Pulse
from tests.conftest import REPO

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
FRAME = LocalFrame(42.30206, -71.05761)
SILENCE_FLOOR_DBM = -136.0  # the simulated receivers' noise, −130 dBm, less 6 dB of SNR


def bearing_report(rx: tuple[float, float], deg: float, t_s: float, seq: int, rid: str) -> Bearing:
    lat, lon = FRAME.to_lat_lon(*rx)
    return Bearing(
        receiver_id=rid, seq=seq, t=T0 + timedelta(seconds=t_s), bracelet_id="3A7F",
        channel=19, lat_deg=lat, lon_deg=lon, bearing_deg=round(deg % 360.0, 2) % 360.0,
        sigma_deg=4.0, method="sweep", n_pulses=12,
    )  # fmt: skip


def toward(rx: tuple[float, float], target: tuple[float, float]) -> float:
    return bearing_of_enu(target[0] - rx[0], target[1] - rx[1])


def generated_search_fixes(
    seed: int, kind: str, index: int
) -> list[tuple[float, NDArray[np.float64], NDArray[np.float64]]]:
    """Track a generated search (trials/generate.py) from its reports with its last known
    point and last-seen time, as the server does: each fix's time (s from last seen), its error
    against the simulator's truth (east/north m) and its covariance (2×2, m²)."""
    from locator.tracker import LastKnown
    from trials.generate import generate_case, simulate_case

    case = generate_case(seed, kind, index)
    world, reports, truth = simulate_case(case)
    origin = case.scenario.origin
    locator = Locator(
        frame=world.frame,
        last_known=LastKnown(origin.lat_deg, origin.lon_deg, case.scenario.start, "dementia"),
    )
    t0 = case.scenario.start.timestamp()
    out = []
    for r in reports:
        for fix in locator.add(r):
            t_s = fix.t.timestamp() - t0
            error = np.array(world.frame.to_en(fix.lat_deg, fix.lon_deg)) - truth.position_en(t_s)
            out.append((t_s, error, np.array(fix.cov_enu_m2)))
    return out


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
    # the level at 1 m and the shadowing at his end (he does not move) add up to the level
    assert level_mean[0, 0] + level_mean[0, 2] == pytest.approx(-35.0, abs=4.0)


def test_walking_looking_and_resting_shares_settle_at_their_dwell_times() -> None:
    # A Markov chain spends in each mode its entry rate times its mean dwell: legs of LEG,
    # each ending in a rest (share REST_SHARE, mean REST) or a look around (mean LOOK).
    rng = np.random.default_rng(5)
    n = 20_000
    pos, vel = np.zeros((n, 2)), np.zeros((n, 2))
    vel[:, 1] = 1.0
    mode = np.zeros(n, dtype=np.int8)
    propagate(pos, vel, mode, 1800.0, rng)  # 360 steps of 5 s: the chain's own steps
    look, rest = (1.0 - REST_SHARE) * LOOK_MEAN_S, REST_SHARE * REST_MEAN_S
    total = LEG_MEAN_S + look + rest
    assert np.mean(mode == WALKING) == pytest.approx(LEG_MEAN_S / total, abs=0.02)
    assert np.mean(mode == 2) == pytest.approx(rest / total, abs=0.02)
    # The stopped keep a walking velocity (the heading they will walk on): none is zero.
    assert np.all(np.hypot(vel[:, 0], vel[:, 1]) > 0.0)


def test_a_walker_who_stops_to_look_walks_on_his_heading() -> None:
    # Particles that all walk north at 1 m/s, then stand for 20 s: the heading they set off on
    # again is still mostly north (a person with dementia rarely backtracks).
    rng = np.random.default_rng(9)
    n = 5000
    pos, vel = np.zeros((n, 2)), np.tile([0.0, 1.0], (n, 1))
    mode = np.full(n, 1, dtype=np.int8)  # all looking around
    propagate(pos, vel, mode, 20.0, rng)
    assert float(np.mean(vel[:, 1] > 0.5)) > 0.9
    standing = mode != WALKING
    assert 0.3 < float(np.mean(standing)) < 0.8  # a look lasts LOOK_MEAN_S on average
    # Standing: only jitter (a few walked a step or two and stopped again).
    assert float(np.percentile(np.hypot(pos[standing, 0], pos[standing, 1]), 95)) < 3.0
    walked = ~standing & (np.hypot(pos[:, 0], pos[:, 1]) > 5.0)
    assert float(np.mean(pos[walked, 1] > np.abs(pos[walked, 0]))) > 0.9  # on north


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


def test_sweeps_from_one_blocked_corner_weigh_as_that_place_once() -> None:
    # A team at a blocked corner sweeps six times; every sweep points at the same building face,
    # 60° off the person. Weighed place by place, the six say what the first said — "he is on
    # this line, or the place is reflected" — and weigh a position off their line down by about
    # what the first did, not by the first's factor six times over.
    person, on_line, rx = np.array([[0.0, 800.0]]), np.array([[693.0, 400.0]]), (0.0, 0.0)
    positions = np.vstack((person, on_line))
    sigma = math.radians(4.0)
    bias, q, seen = np.zeros(2), np.full(2, 1.0 - PLACE_REFLECTED_SHARE), PlaceBearings()
    var = PLACE_BIAS_VAR_RAD2
    rng = np.random.default_rng(5)
    log_ratio = []
    total = np.zeros(2)
    for _ in range(6):
        z = math.radians(toward(rx, (693.0, 400.0))) + float(rng.normal(0.0, sigma))
        log_lik, var = bearing_update(
            positions, rx, z, sigma, bias, var, q, seen.reflected_density(z, sigma)
        )
        seen.add(z, sigma)
        total += log_lik
        log_ratio.append(float(total[1] - total[0]))
    assert log_ratio[0] > math.log(20.0)  # the first sweep is strong evidence
    assert log_ratio[-1] < log_ratio[0] + math.log(30.0)  # the five repeats add little
    # Taken as independent bearings, each repeat would add the first's factor again.
    assert log_ratio[-1] < 2.0 * log_ratio[0]


def test_a_blocked_corner_sweeping_six_times_does_not_outvote_three_open_places() -> None:
    target = (0.0, 800.0)
    blocked, open_a, open_b, open_c = (0.0, 0.0), (-800.0, 800.0), (0.0, 1600.0), (700.0, 1500.0)
    locator = Locator(frame=FRAME)
    rng = np.random.default_rng(11)
    sweeps = (
        [(open_a, "HH-2", 0.0)] + [(blocked, "HH-1", 60.0)] * 6
        + [(open_b, "HH-3", 0.0), (open_c, "HH-4", 0.0), (open_a, "HH-2", 0.0)] * 2
    )  # fmt: skip
    fixes: list[Fix] = []
    for seq, (rx, rid, off_deg) in enumerate(sweeps):
        deg = toward(rx, target) + off_deg + float(rng.normal(0.0, 3.0))
        fixes += locator.add(bearing_report(rx, deg, 20.0 * seq, seq, rid))
    est = np.array(FRAME.to_en(fixes[-1].lat_deg, fixes[-1].lon_deg))
    assert np.linalg.norm(est - np.array(target)) < 80.0
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


@pytest.mark.parametrize("pulses", [1, 5, 10, 30])
def test_the_silence_probit_matches_the_exact_chance_of_hearing_nothing(pulses: int) -> None:
    # Closed form: no pulse of N Rayleigh-faded pulses above the floor, mean power x over it:
    # (1 − exp(−1/x))^N. The probit stands in for it within a few per cent.
    from scipy.stats import norm

    offset, sigma = silence_fading_db(pulses)
    margin_db = np.linspace(-25.0, 15.0, 401)
    exact = (-np.expm1(-1.0 / 10.0 ** (margin_db / 10.0))) ** pulses
    probit = norm.cdf((offset - margin_db) / sigma)
    assert float(np.max(np.abs(probit - exact))) < (0.055 if pulses == 1 else 0.015)


def test_silences_teach_a_weak_link_instead_of_pushing_the_person_away() -> None:
    # A dense city (the simulator's kind of link): level −38 dBm at 1 m, exponent 3.8, 8 dB
    # shadowing. A receiver listens at many places 200–1500 m from the person; from most it
    # hears nothing. At the true position, the particle's exponent moves from the prior's
    # 3.0 towards the truth, and the silences count against the truth far less than if each
    # of them were judged by the prior's link (as if independent).
    rng = np.random.default_rng(11)
    level_true, n_true, shadow = -38.0, 3.8, 8.0
    floor_dbm = SILENCE_FLOOR_DBM
    here, far = np.array([[0.0, 0.0]]), np.array([[2000.0, 0.0]])
    mean, cov = prior_level()
    lm, lc = mean[None, :].copy(), cov[None, :].copy()
    lm_far, lc_far = lm.copy(), lc.copy()
    log_here = log_far = log_here_prior = log_far_prior = 0.0
    silences = 0
    for _ in range(120):
        r = float(rng.uniform(200.0, 1500.0))
        theta = float(rng.uniform(0.0, 2.0 * math.pi))
        rx = (r * math.sin(theta), r * math.cos(theta))
        power = level_true - 10.0 * n_true * math.log10(r) + float(rng.normal(0.0, shadow))
        faded = power + 10.0 * np.log10(rng.exponential(1.0, 10))
        if np.any(faded > floor_dbm):
            continue  # heard: not a silence
        silences += 1
        log_here += float(silence_update(here, lm, lc, rx, floor_dbm, 0.0, 10)[0])
        log_far += float(silence_update(far, lm_far, lc_far, rx, floor_dbm, 0.0, 10)[0])
        for pos, which in ((here, "here"), (far, "far")):
            m0, c0 = mean[None, :].copy(), cov[None, :].copy()
            value = float(silence_update(pos, m0, c0, rx, floor_dbm, 0.0, 10)[0])
            if which == "here":
                log_here_prior += value
            else:
                log_far_prior += value
    assert silences > 60
    assert lm[0, 1] > 3.4  # learnt: the link is weak (the prior says 3.0)
    # Judged one by one by the prior's link, the silences rule the truth out (e^-50 or less
    # against 2 km off); learnt, they leave it within a few e-folds.
    assert log_far_prior - log_here_prior > 20.0
    assert log_far - log_here < 5.0


def test_the_shadowing_at_the_person_end_moves_on_as_far_as_he_walks() -> None:
    # An Ornstein–Uhlenbeck field in the distance walked: after a step Δ its mean and its
    # covariances with the rest shrink by ρ = exp(−Δ/D) and its variance relaxes towards the
    # field's; a particle that stood keeps it; one that walked far has the prior's again.
    mean, cov = prior_level()
    level_mean = np.tile(mean, (3, 1))
    level_mean[:, 2] = 3.0
    level_cov = np.tile(cov, (3, 1, 1))
    level_cov[:, 2, 2] = 4.0
    level_cov[:, 0, 2] = level_cov[:, 2, 0] = 2.0
    before = level_cov.copy()
    walk_level(level_mean, level_cov, np.array([0.0, 10.0, 1e6]))
    rho = math.exp(-10.0 / LEVEL_DECORRELATION_M)
    sigma2 = BRACELET_END_DB**2
    assert np.array_equal(level_cov[0], before[0])
    assert level_mean[0, 2] == 3.0
    assert level_mean[1, 2] == pytest.approx(3.0 * rho)
    assert level_cov[1, 2, 2] == pytest.approx(rho * rho * 4.0 + (1.0 - rho * rho) * sigma2)
    assert level_cov[1, 0, 2] == pytest.approx(2.0 * rho)
    assert level_cov[1, 0, 0] == before[1, 0, 0]
    assert level_mean[2, 2] == pytest.approx(0.0)
    assert level_cov[2, 2, 2] == pytest.approx(sigma2)
    assert level_cov[2, 0, 2] == pytest.approx(0.0)


def test_a_sitter_who_walks_off_heard_by_signal_strength_alone_is_not_dragged_away() -> None:
    """A generated suburb search: the person sits at the last known point for sixteen minutes,
    then walks off, and for seven minutes no team takes a bearing — the cars west of him hear
    him, the handhelds east of him go silent. His every link has faded together (the
    shadowing at his end moved with him); judged with the level learnt while he sat, the
    signal strength pushed the fix a kilometre west, 7.7 times its own ellipse off (median
    error 176 m after he got up). Against the simulator's truth, every fix stays within twice
    its ellipse."""
    errors, ratios = [], []
    for t_s, error, cov in generated_search_fixes(11, "suburb", 18):
        if t_s < 16 * 60:
            continue  # he is still sitting
        errors.append(float(np.hypot(*error)))
        ratios.append(math.sqrt(float(error @ np.linalg.solve(cov, error)) / CHI2_2DOF_95))
    assert len(errors) > 500
    assert max(ratios) < 2.0, max(ratios)
    assert float(np.median(errors)) < 100.0, np.median(errors)


def test_a_helicopter_pass_does_not_drag_the_fix_off_the_bearings() -> None:
    # The simulator's air link: free space over the slant range from 300 m up (no ground
    # exponent, no shadowing). Bearings hold the person; the pass must not pull the fix to
    # its track, and it teaches the level (read through the ground's exponent, the same pass
    # teaches −29 dBm: 8 dB too loud, which then misjudges every range on the ground).
    target = (100.0, 200.0)
    rxs = [(900.0, 0.0), (-600.0, 600.0), (0.0, -800.0)]
    level_true = -37.0
    locator = Locator(frame=FRAME)
    rng = np.random.default_rng(12)
    fixes: list[Fix] = []
    seq = 0
    for k in range(12):
        rx = rxs[k % 3]
        deg = toward(rx, target) + float(rng.normal(0, 4.0))
        fixes += locator.add(bearing_report(rx, deg, 30.0 * k, seq, f"T{k % 3}"))
        seq += 1
        if k < 6:
            continue
        for j in range(15):  # a pass at 60 m/s, 2 km to the west and closing
            air = (-2000.0 + 120.0 * (15 * (k - 6) + j), 1500.0)
            slant = math.hypot(math.dist(air, target), 300.0)
            lat, lon = FRAME.to_lat_lon(*air)
            rssi = level_true - 20.0 * math.log10(slant) + float(rng.normal(0.0, 1.5))
            pulse = Pulse(
                receiver_id="HELI-1", seq=seq, t=T0 + timedelta(seconds=30.0 * k + 2 * j + 1),
                channel=19, freq_hz=216_462_612, bracelet_id="3A7F", status=None,
                rssi_dbm=round(rssi, 1), snr_db=20.0, gain_db=30.0, lat_deg=lat, lon_deg=lon,
                alt_m=FRAME.alt0_m + 300.0, heading_deg=None, antenna="omni",
            )  # fmt: skip
            seq += 1
            fixes += locator.add(pulse)
    est = np.array(FRAME.to_en(fixes[-1].lat_deg, fixes[-1].lon_deg))
    # The pass flies 1.3 km off; the bearings, a minute apart on a person who may walk, hold
    # him to a hundred metres, and the pass must not move him out of that.
    assert np.linalg.norm(est - np.array(target)) < 150.0
    assert inside_ellipse95(est - np.array(target), np.array(fixes[-1].cov_enu_m2))
    track = locator.bracelets["3A7F"].track
    level = track.level_mean[:, 0] + track.level_mean[:, 2]  # at 1 m, and the shadowing at his end
    assert float(track.weights() @ level) == pytest.approx(level_true, abs=4.0)


def test_a_helicopter_search_pattern_alone_places_the_person() -> None:
    # No bearing and no ground receiver: a helicopter flies three 6 km legs of a search pattern
    # at 300 m (two 2.5 km apart, one across them), hearing the bracelet the whole way (free
    # space over the slant range, the level unknown to the tracker and 5 dB under its prior's
    # for what is near the person, each pulse Rayleigh-faded). The pulses' level is shared, but
    # how they rise and fall along each leg is geometry: the legs place the person, and the
    # ellipse holds him.
    target = np.array([400.0, -300.0])
    level_true = -37.0 - 5.0
    rng = np.random.default_rng(17)
    legs = [
        ((-3000.0, 1000.0), (3000.0, 1000.0)),
        ((3000.0, -1500.0), (-3000.0, -1500.0)),
        ((-1500.0, -3000.0), (-1500.0, 3000.0)),
    ]
    locator = Locator(frame=FRAME)
    fixes: list[Fix] = []
    seq = 0
    for start, end in legs:
        for j in range(120):  # 50 m/s, a pulse a second
            air = np.array(start) + (np.array(end) - np.array(start)) * j / 119.0
            slant = math.hypot(float(np.linalg.norm(air - target)), 300.0)
            fading_db = 10.0 * math.log10(float(rng.exponential(1.0)))
            rssi = level_true - 20.0 * math.log10(slant) + fading_db
            lat, lon = FRAME.to_lat_lon(float(air[0]), float(air[1]))
            fixes += locator.add(
                Pulse(
                    receiver_id="HELI-1", seq=seq, t=T0 + timedelta(seconds=seq),
                    channel=19, freq_hz=216_462_612, bracelet_id="3A7F", status=None,
                    rssi_dbm=round(rssi, 1), snr_db=20.0, gain_db=30.0, lat_deg=lat,
                    lon_deg=lon, alt_m=FRAME.alt0_m + 300.0, heading_deg=None, antenna="omni",
                )
            )  # fmt: skip
            seq += 1
    est = np.array(FRAME.to_en(fixes[-1].lat_deg, fixes[-1].lon_deg))
    assert np.linalg.norm(est - target) < 350.0
    assert inside_ellipse95(est - target, np.array(fixes[-1].cov_enu_m2))
    major = math.sqrt(CHI2_2DOF_95 * float(np.linalg.eigvalsh(fixes[-1].cov_enu_m2)[-1]))
    assert major < FIX_MAJOR_M  # it says where he is, not only that he is within 10 km


def test_the_fix_of_a_split_cloud_sits_on_a_place_not_between_and_its_ellipse_holds_both() -> None:
    # Two crossings (a true bearing and a reflection): 70 % of the cloud 30 m around one place,
    # 30 % around another 600 m off. The mean lies 180 m from the first, where nobody is; the
    # fix shown sits on the first place, and its ellipse still holds the second.
    rng = np.random.default_rng(13)
    a, b = np.array([0.0, 0.0]), np.array([600.0, 0.0])
    n = 10_000
    positions = np.vstack(
        (rng.normal(a, 30.0, (7 * n // 10, 2)), rng.normal(b, 30.0, (3 * n // 10, 2)))
    )
    track = ParticleTrack(positions, 0.0, 13)
    point, cov = track.point()
    assert np.linalg.norm(point - a) < 10.0
    mean, _, _, _ = track.estimate()
    assert np.linalg.norm(mean - a) == pytest.approx(180.0, abs=10.0)
    assert inside_ellipse95(b - point, cov)


def test_the_ellipse_holds_95_percent_of_a_cloud_that_is_a_place_and_a_ring() -> None:
    # A person who sat for a quarter of an hour may have got up and walked off any way: 85 % of
    # the cloud is the bench (5 m), 15 % a ring 110–150 m around it. The cloud's second moment
    # gives an ellipse of 2.45 × 36 m = 87 m that leaves the whole ring out; the fix's ellipse
    # holds 95 % of the weight, so two thirds of the ring lie inside it.
    rng = np.random.default_rng(21)
    n = 20_000
    on_bench = rng.normal(0.0, 5.0, (int(0.85 * n), 2))
    angle = rng.uniform(0.0, 2.0 * math.pi, n - on_bench.shape[0])
    radius = rng.uniform(110.0, 150.0, angle.size)
    ring = radius[:, None] * np.column_stack((np.sin(angle), np.cos(angle)))
    track = ParticleTrack(np.vstack((on_bench, ring)), 0.0, 21)
    point, cov = track.point()
    _, second_moment, _, _ = track.estimate()
    d = track.position - point
    m2 = np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d)
    assert float(np.mean(m2 <= CHI2_2DOF_95 * (1.0 + 1e-9))) >= 0.95
    assert not inside_ellipse95(np.array([120.0, 0.0]) - point, second_moment)
    assert inside_ellipse95(np.array([120.0, 0.0]) - point, cov)
    assert inside_ellipse95(np.array([0.0, -120.0]) - point, cov)


def test_the_prior_weights_follow_the_lost_person_distances() -> None:
    from locator.prior import LOGNORMAL, TRACKER_FLOOR_SHARE, point_weights

    rng = np.random.default_rng(5)
    # Points uniform over a 6 km disc: the weighted share within a radius is the prior's
    # (log-normal) probability of being found that close, as far as the reach allows.
    r = 6000.0 * np.sqrt(rng.random(400_000))
    theta = rng.uniform(0, 2 * math.pi, r.size)
    w = point_weights(r * np.sin(theta), r * np.cos(theta), "dementia", since_s=1e6)
    assert w.mean() == pytest.approx(1.0)
    assert w.min() >= TRACKER_FLOOR_SHARE * 0.999  # a wrong last known point is not ruled out
    mu, sigma = LOGNORMAL["dementia"]
    for radius in (300.0, 800.0, 1900.0):
        share = float(w[r <= radius].sum() - TRACKER_FLOOR_SHARE * (r <= radius).sum()) / float(
            (w - TRACKER_FLOOR_SHARE).sum()
        )
        expected = 0.5 * (1 + math.erf((math.log(radius) - mu) / (sigma * math.sqrt(2))))
        expected /= 0.5 * (1 + math.erf((math.log(6000.0) - mu) / (sigma * math.sqrt(2))))
        assert share == pytest.approx(expected, abs=0.03), radius


def test_the_last_known_point_places_a_sitter_heard_along_one_line() -> None:
    """One team takes every bearing from about one direction and the person sits near where he
    was last seen: the bearings alone leave him anywhere along the line (the radio cannot say
    how far), the last known point says where along it."""
    errors, inside = [], []
    for _, error, cov in generated_search_fixes(11, "park", 9):
        errors.append(float(np.hypot(*error)))
        inside.append(inside_ellipse95(error, cov))
    assert len(errors) > 100
    assert float(np.median(errors)) < 150.0, np.median(errors)
    assert np.mean(inside) >= 0.9


def test_early_in_a_search_the_prior_is_the_nearer_of_journey_end_and_travelling_front() -> None:
    """Half an hour after last seen, a person is at the nearer of where his walk will end
    (Koester's found distances) and how far he has walked out so far: drawn independently by
    sampling, the two distances' minimum has the distribution the weights give."""
    from locator.prior import (
        FRONT_SIGMA_LN,
        FRONT_SPEED_MPS,
        LOGNORMAL,
        TRACKER_FLOOR_SHARE,
        point_weights,
    )

    since_s = 1800.0
    rng = np.random.default_rng(8)
    mu, sigma = LOGNORMAL["dementia"]
    journey_end = np.exp(rng.normal(mu, sigma, 400_000))
    front = FRONT_SPEED_MPS * since_s * np.exp(rng.normal(0.0, FRONT_SIGMA_LN, 400_000))
    sampled = np.minimum(journey_end, front)
    r = 4000.0 * np.sqrt(rng.random(400_000))
    theta = rng.uniform(0, 2 * math.pi, r.size)
    w = point_weights(r * np.sin(theta), r * np.cos(theta), "dementia", since_s)
    w -= TRACKER_FLOOR_SHARE
    within = float(np.mean(sampled <= 4000.0))
    for radius in (150.0, 300.0, 500.0, 900.0):
        share = float(w[r <= radius].sum() / w.sum())
        assert share == pytest.approx(float(np.mean(sampled <= radius)) / within, abs=0.03), radius
    # No one has yet got as far as the far found distances: within reach of a brisk walk
    # (2.5 km), those alone would put 15 % beyond 1.5 km; a half-hour's walk out, under 4 %.
    assert float(w[r > 1500.0].sum() / w.sum()) < 0.04


def test_walkers_far_out_for_their_time_head_away_from_where_they_were_last_seen() -> None:
    """The headings drawn for a particle ``d`` out after a walk of length ``L`` have a mean
    resultant ``d / L`` along the outbound direction (the mean of a path's unit headings is its
    displacement over its length), and none at the last known point itself."""
    from locator.motion import WALK_SPEED_MPS, outbound_velocity, walking_share

    rng = np.random.default_rng(3)
    since_s = 1200.0
    length = WALK_SPEED_MPS * walking_share() * since_s
    for straight, bearing in ((0.0, 0.0), (0.3, 1.0), (0.6, -2.0), (0.9, 2.5)):
        d = max(straight * length, 1e-6)
        offset = np.tile([d * math.sin(bearing), d * math.cos(bearing)], (50_000, 1))
        v = outbound_velocity(rng, offset, since_s)
        heading = np.arctan2(v[:, 0], v[:, 1])
        assert float(np.mean(np.cos(heading - bearing))) == pytest.approx(straight, abs=0.02)
        assert abs(float(np.mean(np.sin(heading - bearing)))) < 0.02
        speed = np.hypot(v[:, 0], v[:, 1])
        assert float(np.median(speed)) == pytest.approx(WALK_SPEED_MPS, abs=0.02)
    # Last seen "after" the evidence (a wrong clock or a typo): no lean at all, not a straight line.
    v = outbound_velocity(rng, np.tile([300.0, 0.0], (50_000, 1)), -600.0)
    assert abs(float(np.mean(v[:, 0] / np.hypot(v[:, 0], v[:, 1])))) < 0.02


def test_past_evidence_weighs_each_particle_where_it_was_then() -> None:
    """A place's pulses describe where the person was while they were heard: each particle's
    position then is its own line of descent's, recorded here as the cloud moved on, and kept
    by its descendants through resampling."""
    rng = np.random.default_rng(12)
    track = ParticleTrack(disc_positions(rng, 4000, (0.0, 0.0), 500.0), 0.0, 12)
    track.mode[:] = WALKING
    seen = {0.0: track.position.copy()}
    for t in (10.0, 20.0, 30.0, 35.0):
        track.predict(t)
        seen[t] = track.position.copy()
    # No evidence yet, no resampling: every particle is itself.
    for t in (0.0, 10.0, 20.0, 30.0):
        assert np.allclose(track.positions_at(t), seen[t], atol=1e-3)
    assert np.allclose(track.positions_at(15.0), 0.5 * (seen[10.0] + seen[20.0]), atol=1e-3)
    assert np.allclose(track.positions_at(32.5), 0.5 * (seen[30.0] + seen[35.0]), atol=1e-3)
    assert np.array_equal(track.positions_at(35.0), track.position)
    # Evidence that only the north-east quarter fits: the cloud is resampled, and its past is
    # its ancestors', those of that quarter.
    fits = (seen[35.0][:, 0] > 0.0) & (seen[35.0][:, 1] > 0.0)
    track.weigh_prior(np.where(fits, 1.0, 1e-9))
    past = track.positions_at(20.0)
    ancestors = seen[20.0][fits]
    nearest = np.min(np.linalg.norm(past[:300, None, :] - ancestors[None, :, :], axis=2), axis=1)
    assert float(np.max(nearest)) < 1e-3
    assert not np.allclose(past[:300], seen[20.0][:300], atol=1.0)  # resampled, not kept in place
    # ... and each lies behind its descendant by no more than a walk of 15 s allows (with the
    # resampling's jitter).
    moved = np.linalg.norm(track.position - past, axis=1)
    assert float(np.percentile(moved, 99)) < 2.0 * 15.0 + 5.0 * 3.0


def test_bearings_that_arrive_minutes_late_place_the_walker_as_if_on_time() -> None:
    """Store and forward: a walker's bearings reach the tracker up to three minutes late and
    out of order. Each is weighed where the particles were when it was taken, so the track
    ends where the truth is, as the one that heard them on time does."""
    rng = np.random.default_rng(21)
    receivers = {"A": (-600.0, -300.0), "B": (500.0, -500.0), "C": (0.0, 700.0)}

    def truth(t: float) -> np.ndarray:  # north-east at 0.8 m/s, then sitting after 10 minutes
        walked = 0.8 * min(t, 600.0)
        return np.array([walked * math.sin(0.8), walked * math.cos(0.8)])

    reports, sent = [], []
    for k, t in enumerate(np.arange(0.0, 900.0, 15.0)):
        rid = "ABC"[k % 3]
        rx = receivers[rid]
        deg = toward(rx, tuple(truth(float(t)))) + rng.normal(0.0, 4.0)
        reports.append(bearing_report(rx, deg, float(t), k, rid))
        sent.append(float(t) + (rng.uniform(0.0, 180.0) if t < 720.0 else 0.0))
    results = {}
    for name, order in (("on time", range(len(reports))), ("late", np.argsort(sent))):
        locator = Locator(frame=FRAME)
        for i in order:
            locator.add(reports[i])
        track = locator.bracelets["3A7F"].track
        track.predict(900.0 + T0.timestamp())
        point, cov = track.point()
        results[name] = point - truth(900.0), cov
    for name, (off, cov) in results.items():
        assert inside_ellipse95(off, cov), name
    # The late track ends where the one on time does: within a quarter of its ellipse's extent
    # (used at the track's time with a widened sigma instead, they ended 72 m from it, past that).
    (on_time, cov), (late, _) = results["on time"], results["late"]
    assert inside_ellipse95((late - on_time) / 0.25, cov)
