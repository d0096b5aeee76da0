"""Array bearings on simulated drives, against the simulator's truth and the Cramér–Rao bound."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from firmware_sim.array import ArrayTuners
from firmware_sim.scenario import ArraySpec, parse_scenario
from firmware_sim.world import World
from receiver.array_bearings import CAL_SIGMA_DEG, MIN_ESN0_DB, HeadingTracker
from receiver.doa import calibration_weights
from safetynet.angles import angle_diff_deg
from safetynet.geodesy import LocalFrame
from trials.array_cruisers import ArrayPulse, drive

CITY = {  # the dense city's two reflectors and two buildings (scenarios/dense-city.toml)
    "exponent": 3.5, "shadowing_sigma_db": 8.0, "decorrelation_m": 30.0, "rician_k_db": 0.0,
    "body_loss_db": 3.0,
    "obstacles": [
        {"polygon": [[42.3555, -71.0585], [42.3555, -71.0575], [42.3545, -71.0575],
                     [42.3545, -71.0585]], "loss_db": 22.0},
        {"polygon": [[42.3538, -71.0610], [42.3538, -71.0595], [42.3532, -71.0595],
                     [42.3532, -71.0610]], "loss_db": 25.0},
    ],
    "reflectors": [{"position": [42.3565, -71.0570], "loss_db": 4.0, "radius_m": 250.0},
                   {"position": [42.3530, -71.0580], "loss_db": 6.0, "radius_m": 200.0}],
}  # fmt: skip
OPEN = {"exponent": 2.7, "shadowing_sigma_db": 5.0, "decorrelation_m": 80.0, "rician_k_db": 6.0}


def _drive_world(propagation: dict[str, Any], seed: int, half_m: float) -> World:
    frame = LocalFrame(42.355, -71.06)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 1.0, 2) * half_m
    route = [list(frame.to_lat_lon(x, y)) for x, y in ((-a, -b), (a, -b), (a, b), (-a, b))]
    return World(parse_scenario({
        "name": "drive", "seed": seed, "start": "2026-11-28T15:30:00Z", "duration_s": 60,
        "origin": {"lat_deg": 42.355, "lon_deg": -71.06}, "propagation": propagation,
        "bracelets": [{"id": "B00C", "channel": 21, "eirp_dbm": -12.0}],
        "receivers": [{"id": "CAR-A", "kind": "vehicle", "route": route, "loop": True,
                       "speed_mps": 9.0, "array": {}}],
    }))  # fmt: skip


def _truth_relative(world: World, p: ArrayPulse) -> float:
    """The direct path's direction in the car's frame, from the simulator's true positions."""
    rx = world.receivers[0]
    t = p.t_s + 0.014
    e, n = world.bracelets[0].position(t)
    rx_e, rx_n = rx.pose.position(t)
    return math.degrees(math.atan2(e - rx_e, n - rx_n)) - rx.pose.heading_deg(t)


def _open_pulses() -> tuple[list[World], list[list[ArrayPulse]]]:
    worlds = [_drive_world(OPEN, seed, 500.0) for seed in (11, 12, 13)]
    return worlds, [drive(w, w.receivers[0], ArraySpec()) for w in worlds]


@pytest.fixture(scope="module")
def open_drives() -> tuple[list[World], list[list[ArrayPulse]]]:
    return _open_pulses()


def test_array_error_reaches_the_cramer_rao_bound(open_drives: Any) -> None:
    errors, bounds = [], []
    for world, pulses in zip(*open_drives, strict=True):
        for p in pulses:
            if p.snr10k_db >= 10.0 and p.estimate is not None:
                errors.append(angle_diff_deg(p.estimate.relative_bearing_deg,
                                             _truth_relative(world, p)))  # fmt: skip
                bounds.append(p.estimate.crb_sigma_deg)
    assert len(errors) > 60
    ratio = math.sqrt(np.mean(np.square(errors))) / math.sqrt(np.mean(np.square(bounds)))
    assert 0.8 <= ratio <= 1.25, ratio


def test_bearing_sigma_is_honest_heading_included(open_drives: Any) -> None:
    """Compass bearings (the GPS course or the compass added) against the true geodesic
    bearing to the bracelet: error / sigma has unit spread."""
    z = []
    for world, pulses in zip(*open_drives, strict=True):
        rx = world.receivers[0]
        for p in pulses:
            est, heading = p.estimate, p.heading
            if est is None or heading is None or est.esn0_db < MIN_ESN0_DB or est.multipath:
                continue
            t = p.t_s + 0.014
            e, n = world.bracelets[0].position(t)
            rx_e, rx_n = rx.pose.position(t)
            truth = math.degrees(math.atan2(e - rx_e, n - rx_n))
            sigma = math.sqrt(est.crb_sigma_deg**2 + heading.sigma_deg**2 + CAL_SIGMA_DEG**2)
            z.append(angle_diff_deg(est.relative_bearing_deg + heading.heading_deg, truth) / sigma)
    assert len(z) > 100
    assert 0.8 <= float(np.std(z)) <= 1.25, np.std(z)


def test_competing_reflections_are_flagged_in_the_city_and_not_in_the_open(
    open_drives: Any,
) -> None:
    competing = flagged = 0
    for seed in (21, 22, 23, 24):
        world = _drive_world(CITY, seed, 250.0)
        for p in drive(world, world.receivers[0], ArraySpec()):
            est = p.estimate
            off = p.strongest_reflection_off_deg
            if est is None or est.esn0_db < MIN_ESN0_DB or p.rival_db is None or off is None:
                continue
            if abs(p.rival_db) <= 6.0 and abs(off) >= 30.0:  # two paths within 6 dB, 30° apart
                competing += 1
                flagged += est.multipath
    assert competing >= 5
    assert flagged / competing >= 0.8
    _, pulses = open_drives
    strong = [p for ps in pulses for p in ps if p.estimate and p.estimate.esn0_db >= MIN_ESN0_DB]
    assert sum(p.estimate.multipath for p in strong if p.estimate) <= 0.02 * len(strong)


def test_calibration_recovers_the_tuners_offsets() -> None:
    world = _drive_world(OPEN, 3, 300.0)
    from firmware_sim.array import ArrayStream
    from safetynet.arrays import ArrayGeometry

    tuners = ArrayTuners.draw(5, np.random.default_rng(9), gain_sd_db=2.0)
    stream = ArrayStream(world, world.receivers[0], ArrayGeometry.circular(), tuners)
    x, _ = stream.read(1 << 14, calibration=True)
    w = calibration_weights(x)
    c = tuners.complex_gains
    corrected = c * w  # every channel now as channel 0
    assert np.allclose(corrected / corrected[0], 1.0, atol=0.02)


def test_heading_from_the_gps_course_and_the_compass_when_turning() -> None:
    tracker = HeadingTracker(gps_sigma_m=0.0)
    for tenth in range(300):  # east at 10 m/s, then a right turn to south at t = 15 s
        t = tenth / 10
        e, n = (10.0 * t, 0.0) if t <= 15 else (150.0, -10.0 * (t - 15))
        if tenth % 10 == 0:
            tracker.add_fix(t, e, n)
        tracker.add_compass(t, 90.0 if t < 15 else 180.0)
    mid_leg = tracker.at(6.5)
    assert mid_leg is not None
    assert mid_leg.source == "course"
    assert abs(angle_diff_deg(mid_leg.heading_deg, 90.0)) < 1e-6
    at_corner = tracker.at(14.6)
    assert at_corner is not None
    assert at_corner.source == "compass"
    assert at_corner.heading_deg == 90.0
