"""The probability map against closed forms: a single bearing's wedge, a single silence's hole,
the lost-person prior's median, the spread of motion; it always sums to one; and it agrees with
the Kalman fix on a simulated search."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import ndtr

from locator.evidence import REFLECTION_FLOOR
from locator.link import LinkBudget
from locator.probmap import ProbMap
from locator.tracker import Locator
from safetynet.geodesy import LocalFrame
from safetynet.reports import Silence
from tests.ui_support import scenario_reports, walker_truth

FRAME = LocalFrame(42.30206, -71.05761)
T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def uniform(half: float = 1000.0, cell: float = 10.0) -> ProbMap:
    return ProbMap(frame=FRAME, half_width_m=half, cell_m=cell)


def test_a_single_bearing_is_a_wedge_with_a_reflection_floor() -> None:
    grid = uniform()
    sigma = 5.0
    grid.bearing(0.0, 0.0, 30.0, sigma)
    # Cell by cell: the posterior of a uniform prior is the likelihood of each cell's angle.
    az = np.degrees(np.arctan2(grid.east, grid.north))
    diff = np.radians((az - 30.0 + 180.0) % 360.0 - 180.0)
    s = math.radians(sigma)
    like = (1 - REFLECTION_FLOOR) * np.exp(-0.5 * (diff / s) ** 2) / (math.sqrt(2 * math.pi) * s)
    like += REFLECTION_FLOOR / (2 * math.pi)
    assert np.allclose(grid.p, like / like.sum(), rtol=1e-9)
    # The mass within ±σ of the bearing, against the integral over the square's geometry:
    # the area at angle θ from the centre out to the edge of a square is h²/(2 cos²(θ − θ_edge)).
    h = 1000.0

    def area(theta: float) -> float:  # per radian, out to the square's edge
        t = math.radians(theta)
        return h * h / (2 * max(abs(math.sin(t)), abs(math.cos(t))) ** 2)

    def like_of(theta: float) -> float:
        d = math.radians((theta - 30.0 + 180.0) % 360.0 - 180.0)
        return (1 - REFLECTION_FLOOR) * math.exp(-0.5 * (d / s) ** 2) / (
            math.sqrt(2 * math.pi) * s
        ) + REFLECTION_FLOOR / (2 * math.pi)

    def f(theta: float) -> float:
        return like_of(theta) * area(theta) * math.pi / 180

    total = sum(quad(f, a, a + 45, limit=200)[0] for a in range(0, 360, 45))
    inner = quad(f, 30 - sigma, 30 + sigma, limit=200)[0]
    in_wedge = np.abs(np.degrees(diff)) <= sigma
    assert float(grid.p[in_wedge].sum()) == pytest.approx(inner / total, abs=0.01)


def detected_share(link: LinkBudget, distance_m: float, gain_dbi: float, pulses: int) -> float:
    """Monte Carlo of one listen: a shadowing draw for the place, then ``pulses`` Rayleigh
    fades; heard when one pulse clears the threshold (independent of the map's quadrature)."""
    rng = np.random.default_rng(int(distance_m))
    n = 40_000
    mean_dbm = float(link.mean_rssi_dbm(np.array(distance_m), gain_dbi))
    shadow = rng.normal(0.0, link.shadowing_db, n)
    fades_db = 10 * np.log10(rng.exponential(size=(n, pulses)))
    best = mean_dbm + shadow + fades_db.max(axis=1)
    return float(np.mean(best >= link.noise_dbm + link.snr_min_db))


def test_a_single_silence_digs_the_hole_the_link_budget_says() -> None:
    link = LinkBudget(noise_dbm=-111.0)  # about a mile of range: nothing heard from 5.8 km
    grid = ProbMap(frame=FRAME, half_width_m=6000.0, cell_m=50.0, link=link)
    grid.silence(0.0, 0.0, gain_dbi=0.0, pulses=10)
    r = np.hypot(grid.east, grid.north)
    far = grid.p[r > 5800].mean()
    assert far > 0
    # The hole's depth at each distance is the chance of not hearing there in ten pulses.
    assert detected_share(link, 5800.0, 0.0, 10) < 0.001
    for radius in (100.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0):
        ring = np.abs(r - radius) < 25
        left = float((grid.p[ring] / far).mean())
        expected = 1.0 - detected_share(link, radius, 0.0, 10)
        assert left == pytest.approx(expected, abs=0.02), radius


def test_a_silence_where_the_same_receiver_listened_before_counts_once() -> None:
    link = LinkBudget()
    grid = ProbMap.from_prior(FRAME, "dementia", since_s=1800.0, at=T0, link=link)

    def silence(seq: int, seconds: float, east_m: float) -> Silence:
        lat, lon = FRAME.to_lat_lon(east_m, 0.0)
        return Silence(
            receiver_id="HH-1",
            seq=seq,
            t=T0 + timedelta(seconds=seconds),
            channel=19,
            lat_deg=lat,
            lon_deg=lon,
            window_s=10.0,
            noise_dbm=-130.0,
            antenna="yagi3",
        )

    grid.add(silence(1, 0.0, 0.0))
    walked = copy.deepcopy(grid)
    walked.advance(T0 + timedelta(seconds=10.0))  # the person walks on: the map's "as of"
    grid.add(silence(2, 10.0, 30.0))  # 30 m on, 10 s later: the same shadowing, no evidence
    assert grid.t == walked.t
    assert np.array_equal(grid.p, walked.p)
    once = grid.p.copy()
    grid.add(silence(3, 20.0, 400.0))  # 400 m on: new ground
    assert not np.array_equal(grid.p, once)
    moved = grid.p.copy()
    grid.add(silence(4, 400.0, 400.0))  # five minutes on: the person has moved
    assert not np.array_equal(grid.p, moved)


def test_the_prior_puts_half_the_mass_within_the_median_distance() -> None:
    grid = ProbMap.from_prior(FRAME, "dementia", since_s=1e6, half_width_m=10_000.0, cell_m=50.0)
    r = np.hypot(grid.east, grid.north)
    # Log-normal CDF at its median is 0.5; the grid's corners cut off the tail beyond 10 km.
    sigma = 1.38
    kept = ndtr(math.log(10_000 / 800) / sigma)
    assert float(grid.p[r <= 800].sum()) == pytest.approx(0.5 / kept, abs=0.015)
    # Soon after last seen the person cannot be far.
    early = ProbMap.from_prior(FRAME, "dementia", since_s=300.0, cell_m=20.0)
    r = np.hypot(early.east, early.north)
    assert float(early.p[r > 1300 * 0.3 + 200 + 400].sum()) < 0.01


def test_motion_spreads_at_the_diffusion_the_walker_model_gives() -> None:
    grid = uniform(half=2000.0, cell=10.0)
    grid.p[:] = 0.0
    n = grid.p.shape[0]
    grid.p[n // 2, n // 2] = 1.0
    grid.t = T0
    grid.advance(T0 + timedelta(minutes=10))
    var_e = float((grid.p * (grid.east - grid.east[0, n // 2 - 0]) ** 2).sum())
    expected = grid.walk_speed_mps**2 * grid.persistence_s * 600 + 10.0**2 / 12
    assert var_e == pytest.approx(expected, rel=0.05)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["bearing", "silence", "strength", "advance"]),
            st.floats(-1500, 1500),
            st.floats(-1500, 1500),
            st.floats(0, 359.9),
            st.floats(-140, -40),
        ),
        max_size=12,
    )
)
def test_the_grid_always_sums_to_one(steps: list[tuple[str, float, float, float, float]]) -> None:
    grid = ProbMap.from_prior(
        FRAME, "autism", since_s=1800.0, at=T0, half_width_m=1500.0, cell_m=50.0
    )
    t = T0
    for kind, e, n, angle, level in steps:
        if kind == "bearing":
            grid.bearing(e, n, angle, 5.0)
        elif kind == "silence":
            grid.silence(e, n, 7.0)
        elif kind == "strength":
            grid.strength(e, n, level, 0.0)
        else:
            t += timedelta(seconds=angle)
            grid.advance(t)
        assert math.isclose(float(grid.p.sum()), 1.0, rel_tol=1e-9)
        assert float(grid.p.min()) >= 0.0


def test_the_map_agrees_with_the_kalman_fix_on_a_simulated_search() -> None:
    start = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
    reports = scenario_reports(start, 300)
    frame = LocalFrame(42.30206, -71.05761)
    grid = ProbMap.from_prior(frame, "dementia", since_s=0.0, at=start, cell_m=20.0)
    locator = Locator(frame=frame)
    fix = None
    for report in reports:
        grid.add(report)
        fixes = locator.add(report)
        fix = fixes[-1] if fixes else fix
    assert fix is not None
    # The fix lies in the map's 90 % region, and the map's mass is near the truth.
    east, north = frame.to_en(fix.lat_deg, fix.lon_deg)
    density = grid.density_at(east, north) * grid.cell_m**2
    flat = np.sort(grid.p.ravel())[::-1]
    threshold = flat[np.searchsorted(np.cumsum(flat), 0.9)]
    assert density >= threshold
    world = walker_truth(start, 300)
    te, tn = world.bracelets[0].position((fix.t - start).total_seconds())
    me, mn = grid.mean_en()
    assert math.hypot(me - te, mn - tn) < 150.0
