"""The drive check of array bearings: against closed-form geometry and the simulator's truth."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from firmware_sim.scenario import ArraySpec, parse_scenario
from firmware_sim.world import World
from receiver.array_bearings import CAL_SIGMA_DEG, MIN_ESN0_DB, ArrayBearings, HeadingFix
from receiver.doa import DoaEstimate
from receiver.drive_consistency import (
    MIN_BEARINGS,
    DriveBearing,
    DriveChecks,
    DriveConsistency,
    consensus,
)
from safetynet.angles import angle_diff_deg, bearing_of_enu
from safetynet.geodesy import LocalFrame, inverse
from safetynet.reports import Pulse
from tests.receiver.test_array_df import CITY
from trials.array_cruisers import ArrayPulse, drive

EMITTER = (120.0, 300.0)  # east, north m
REFLECTOR = (-250.0, 180.0)
SPEED_MPS = 8.0


def _road(n: int) -> list[tuple[float, float, float]]:
    """(t_s, east_m, north_m): a car driving east along north = 0, one pulse a second."""
    return [(float(t), -300.0 + SPEED_MPS * t, 0.0) for t in range(n)]


def _toward(src: tuple[float, float], east_m: float, north_m: float) -> float:
    return float(bearing_of_enu(src[0] - east_m, src[1] - north_m))


def test_the_consensus_is_where_the_bearing_lines_cross() -> None:
    rng = np.random.default_rng(1)
    road = _road(60)
    t, e, n = (np.array(c) for c in zip(*road, strict=True))
    sigma = np.full(t.size, 1.5)
    b = np.array([_toward(EMITTER, x, y) for _, x, y in road]) + rng.normal(0, 1.5, t.size)
    c = consensus(t, e, n, b, sigma, float(t[-1]))
    assert c is not None
    # Bearings from a 470 m baseline at 1.5°: the crossing within a few metres of the truth.
    assert math.dist((c.east_m, c.north_m), EMITTER) < 15.0
    assert c.support > 0.95
    # Its covariance is honest to a factor: the miss is within 3 of its sigmas.
    miss = np.array([c.east_m - EMITTER[0], c.north_m - EMITTER[1]])
    assert float(miss @ np.linalg.solve(c.cov_en_m2, miss)) < 3.0**2 * 2


def test_a_reflection_run_is_held_back_and_the_direct_path_sent() -> None:
    """Twelve pulses (t = 40..51 s) come off a reflector as one clean wave each: they agree
    with each other but not with the minute of road around them."""
    rng = np.random.default_rng(2)
    check = DriveConsistency()
    held, sent = [], []
    for t, x, y in _road(80):
        reflected = 40 <= t < 52
        src = REFLECTOR if reflected else EMITTER
        b = _toward(src, x, y) + float(rng.normal(0, 1.5))
        j = check.check(DriveBearing(t, x, y, b % 360.0, 1.5))
        if reflected:
            held.append(not j.send)
        elif t >= MIN_BEARINGS:
            sent.append(j.send)
            err = angle_diff_deg(b, _toward(EMITTER, x, y))
            assert not j.send or abs(err) < 4 * j.sigma_deg
    assert all(held)
    assert np.mean(sent) > 0.95
    assert check.check(DriveBearing(80.0, 340.0, 0.0, 0.0, 1.5)).verdict == "inconsistent"


def test_the_first_bearings_on_the_move_wait_and_flags_count_against_them() -> None:
    check = DriveConsistency()
    road = _road(30)
    for t, x, y in road[: MIN_BEARINGS - 1]:
        j = check.check(DriveBearing(t, x, y, _toward(EMITTER, x, y), 1.5))
        assert j.verdict == "inconsistent"  # nothing heard yet to judge the surroundings by
    # Mostly flagged pulses around: a bearing that looks clean is not trusted either.
    busy = DriveConsistency()
    for t, x, y in road:
        busy.flagged(t)
        busy.flagged(t + 0.5)
        j = busy.check(DriveBearing(t, x, y, _toward(EMITTER, x, y), 1.5))
        assert not j.send
        assert j.flagged_share > 0.5


def _estimate(relative_deg: float) -> DoaEstimate:
    return DoaEstimate(
        relative_bearing_deg=relative_deg % 360.0, crb_sigma_deg=1.0, snr_db=10.0,
        esn0_db=MIN_ESN0_DB + 10.0, multipath=False, misfit=0.0, fit_sigmas=0.0,
        competing_peak_db=-math.inf, spectrum_db=np.zeros(720),
    )  # fmt: skip


def test_array_bearings_send_no_bearing_the_drive_disagrees_with() -> None:
    frame = LocalFrame(42.355, -71.06)
    start = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
    bearings = ArrayBearings("CAR-A", itertools.count().__next__, thin_s=0.0)
    heading = HeadingFix(90.0, 0.5, "course")  # driving east
    sent: dict[float, float] = {}
    for t, x, y in _road(80):
        src = REFLECTOR if 40 <= t < 52 else EMITTER
        lat, lon = frame.to_lat_lon(x, y)
        pulse = Pulse(
            receiver_id="CAR-A", seq=int(t), t=start + timedelta(seconds=t), channel=21,
            freq_hz=216_462_612, bracelet_id="B00C", rssi_dbm=-90.0, snr_db=20.0,
            gain_db=40.2, lat_deg=lat, lon_deg=lon,
        )  # fmt: skip
        for b in bearings.add(pulse, _estimate(_toward(src, x, y) - 90.0), heading):
            sent[t] = b.bearing_deg
    assert not any(40 <= t < 52 for t in sent)
    assert bearings.inconsistent >= 12
    assert len(sent) >= 0.9 * (80 - 12 - MIN_BEARINGS)


def _city_drive(seed: int) -> tuple[World, list[ArrayPulse]]:
    """A car looping a block of the dense city for two minutes (seeds the bench does not use)."""
    frame = LocalFrame(42.355, -71.06)
    rng = np.random.default_rng([seed, 77])
    a, b = rng.uniform(100.0, 300.0, 2)
    cx, cy = rng.uniform(-0.3, 0.3, 2) * (a, b)
    route = [
        list(frame.to_lat_lon(cx + x, cy + y)) for x, y in ((-a, -b), (a, -b), (a, b), (-a, b))
    ]
    world = World(parse_scenario({
        "name": "city drive", "seed": seed, "start": "2026-11-28T15:30:00Z", "duration_s": 120,
        "origin": {"lat_deg": 42.355, "lon_deg": -71.06}, "propagation": CITY,
        "bracelets": [{"id": "B00C", "channel": 21, "eirp_dbm": -12.0}],
        "receivers": [{"id": "CAR-A", "kind": "vehicle", "route": route, "loop": True,
                       "speed_mps": float(rng.uniform(6.0, 12.0)), "array": {}}],
    }))  # fmt: skip
    return world, drive(world, world.receivers[0], ArraySpec())


@pytest.mark.parametrize("seeds", [range(301, 313)])
def test_city_reflections_that_look_like_one_wave_are_held_back(seeds: range) -> None:
    """Against the simulator's truth: pulses whose power came mostly by reflections (the
    direct path blocked or faded) and that the per-pulse test let through are mostly held back
    by the drive check, and what it sends has honest sigmas."""
    dominant = held = 0
    z: list[float] = []
    for seed in seeds:
        _, pulses = _city_drive(seed)
        check = DriveConsistency()
        for p in pulses:
            e = p.estimate
            if e is None or e.esn0_db < MIN_ESN0_DB or p.heading is None:
                continue
            if e.multipath:
                check.flagged(p.t_s)
                continue
            sigma = math.sqrt(e.crb_sigma_deg**2 + p.heading.sigma_deg**2 + CAL_SIGMA_DEG**2)
            measured = (e.relative_bearing_deg + p.heading.heading_deg) % 360.0
            j = check.check(DriveBearing(p.t_s, p.rx_east_m, p.rx_north_m, measured, sigma))
            if p.reflected_share > 0.5:
                dominant += 1
                held += not j.send
            if j.send:
                z.append(angle_diff_deg(measured, p.true_bearing_deg) / j.sigma_deg)
    assert dominant >= 20  # the city gives the check something to do
    assert held / dominant >= 0.85  # 71 of 73 when written
    assert len(z) >= 200
    # The spread of what is sent, as the standard deviation a normal error would have (the
    # 68th percentile of |z|): one reflection that slipped through at z = 40 would own a
    # plain standard deviation of a few hundred bearings.
    a = np.abs(np.array(z))
    assert 0.7 <= float(np.percentile(a, 68.27)) <= 1.3
    assert float(np.mean(a > 4.0)) < 0.02


def test_a_drive_that_crosses_into_a_new_local_frame_is_judged_as_one() -> None:
    """The checks' local frame moves with the vehicle (past 2 km from its origin); bearings
    kept from before the move must keep their places, or the window would disagree."""
    frame = LocalFrame(42.355, -71.06)
    checks = DriveChecks()
    start = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
    verdicts = []
    checks.check("B00C", start - timedelta(seconds=900), 42.355, -71.06, 0.0, 1.0)  # the origin
    emitter = frame.to_lat_lon(EMITTER[0] + 1_900.0, EMITTER[1])
    for t, x, y in _road(80):
        # From 1.6 km east of the frame's origin: 2 km is crossed 50 s into the drive.
        lat, lon = frame.to_lat_lon(x + 1_900.0, y)
        b = inverse(lat, lon, *emitter).azimuth1_deg % 360.0
        j = checks.check("B00C", start + timedelta(seconds=t), lat, lon, b, 1.0)
        verdicts.append(j.verdict)
    assert verdicts[MIN_BEARINGS:].count("consistent") == len(verdicts) - MIN_BEARINGS
