"""The probability map's and the particle tracker's motion steps stay bounded in time and
memory whatever the report times: a map handed a time thousands of years ahead (a receiver
with a bad clock) takes one bounded blur and stays a valid distribution; a particle track takes
at most half an hour of steps and one long-run diffusion.

The work is counted, not timed (a timed bound failed on a loaded machine: 14 s for about
1.4 s of CPU): the blurs the map runs and their widths, the steps a prediction takes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from locator import motion, probmap
from locator.probmap import ProbMap
from safetynet.geodesy import LocalFrame

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_probmap_advance_over_millennia_is_one_bounded_blur(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grid = ProbMap.from_prior(LocalFrame(42.3, -71.05), "dementia", since_s=600.0, at=T0)
    sigmas_cells: list[float] = []

    def counted_filter(p: Any, sigma: float, **kwargs: Any) -> Any:
        sigmas_cells.append(float(sigma))
        return gaussian_filter(p, sigma, **kwargs)

    monkeypatch.setattr(probmap, "gaussian_filter", counted_filter)
    grid.advance(FAR_FUTURE)
    n = grid.p.shape[0]
    # Uncapped, σ² = v² τ Δt over 8,000 years: a kernel millions of cells wide. One blur of at
    # most half the grid's width instead, so the work is that of one grid-wide kernel.
    dt_s = (FAR_FUTURE - T0).total_seconds()
    uncapped_cells = math.sqrt(grid.walk_speed_mps**2 * grid.persistence_s * dt_s) / grid.cell_m
    assert 2 * probmap.BLUR_TRUNCATE_SIGMAS * uncapped_cells > 1e6
    assert len(sigmas_cells) == 1
    assert sigmas_cells[0] <= n / 2
    assert math.isclose(float(grid.p.sum()), 1.0, rel_tol=1e-9)
    assert np.isfinite(grid.p).all()
    # Closed form: a blur of half the grid's width spreads a central peak so that the centre
    # holds at most exp(0) / exp(-(r²)/(2σ²)) more than a cell a quarter-grid away, where
    # r = n/4 cells and σ = n/2 cells: a ratio of exp(1/8) ≈ 1.13 (the prior's own shape, a
    # few hundred metres wide, is small beside σ).
    centre = grid.p[n // 2, n // 2]
    quarter = grid.p[n // 2, n // 2 + n // 4]
    assert centre / quarter < math.exp(1 / 8) * 1.05
    assert grid.t == FAR_FUTURE


def _counting_steps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The time step of every step the motion model takes from now on (each evolves the
    velocities once)."""
    steps_s: list[float] = []
    evolve = motion.evolve_velocity

    def counted(velocity_en: Any, dt_s: float, rng: Any) -> Any:
        steps_s.append(dt_s)
        return evolve(velocity_en, dt_s, rng)

    monkeypatch.setattr(motion, "evolve_velocity", counted)
    return steps_s


# Half an hour of steps: the bound locator/motion.py states, written out here.
HALF_AN_HOUR_OF_STEPS = 360


@pytest.mark.parametrize(
    "gap_s", [1.0, 4.999, 5.0, 1799.0, 1800.0, 1800.001, 1801.0, 86_400.0, 3.2e7, 2.5e11, 1e15]
)
def test_no_time_gap_takes_more_than_half_an_hour_of_steps(
    gap_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The steps cover the gap, or its last half hour with the rest as one diffusion; no gap,
    # from a second to far beyond the year 9999, takes more steps than half an hour's.
    from locator.particle import ParticleTrack, disc_positions

    rng = np.random.default_rng(2)
    track = ParticleTrack(disc_positions(rng, 200, (0.0, 0.0), 100.0), T0.timestamp(), 1)
    steps_s = _counting_steps(monkeypatch)
    track.predict(T0.timestamp() + gap_s)
    gap_s = (T0.timestamp() + gap_s) - T0.timestamp()  # the gap as the clock's floats hold it
    assert motion.MAX_STEPS == HALF_AN_HOUR_OF_STEPS
    assert len(steps_s) <= min(math.ceil(gap_s / motion.MAX_STEP_S), HALF_AN_HOUR_OF_STEPS + 1)
    assert max(steps_s) <= motion.MAX_STEP_S
    # The stepped share is the gap itself up to half an hour, and half an hour beyond it (a
    # gap that large rounds in float at about 1e-16 of itself).
    stepped_s = min(gap_s, HALF_AN_HOUR_OF_STEPS * motion.MAX_STEP_S)
    assert math.isclose(sum(steps_s), stepped_s, rel_tol=1e-9, abs_tol=4e-16 * gap_s)
    assert np.isfinite(track.position).all()


def test_a_particle_track_predicted_millennia_ahead_stays_bounded_and_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A report stamped in the year 9999 (a bad clock): the prediction takes a bounded number
    # of steps, the cloud stays finite, and a bearing afterwards still weighs it.
    from locator.particle import ParticleTrack, disc_positions

    rng = np.random.default_rng(1)
    track = ParticleTrack(disc_positions(rng, 20_000, (0.0, 0.0), 1000.0), T0.timestamp(), 1)
    steps_s = _counting_steps(monkeypatch)
    track.predict(FAR_FUTURE.timestamp())
    # Uncapped, 5 s steps over 8,000 years: 5e10 of them.
    assert (FAR_FUTURE - T0).total_seconds() / motion.MAX_STEP_S > 1e10
    assert len(steps_s) <= HALF_AN_HOUR_OF_STEPS + 1
    assert np.isfinite(track.position).all()
    mean, cov, _, _ = track.estimate()
    assert np.isfinite(mean).all()
    assert np.isfinite(cov).all()
    track.update_bearing((0.0, 0.0), 0.5, 0.05, "HH-01#1", 3000.0)
    assert math.isclose(float(track.weights().sum()), 1.0, rel_tol=1e-9)
