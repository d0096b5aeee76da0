"""The probability map's and the particle tracker's motion steps stay bounded in time and
memory whatever the report times: a map handed a time thousands of years ahead (a receiver
with a bad clock) takes one bounded blur and stays a valid distribution; a particle track takes
at most half an hour of steps and one long-run diffusion."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import numpy as np

from locator.probmap import ProbMap
from safetynet.geodesy import LocalFrame

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_probmap_advance_over_millennia_is_one_bounded_blur() -> None:
    grid = ProbMap.from_prior(LocalFrame(42.3, -71.05), "dementia", since_s=600.0, at=T0)
    started = time.perf_counter()
    grid.advance(FAR_FUTURE)
    elapsed_s = time.perf_counter() - started
    assert elapsed_s < 5.0  # uncapped, the kernel is millions of cells wide: minutes or more
    assert math.isclose(float(grid.p.sum()), 1.0, rel_tol=1e-9)
    assert np.isfinite(grid.p).all()
    # Closed form: a blur of half the grid's width spreads a central peak so that the centre
    # holds at most exp(0) / exp(-(r²)/(2σ²)) more than a cell a quarter-grid away, where
    # r = n/4 cells and σ = n/2 cells: a ratio of exp(1/8) ≈ 1.13 (the prior's own shape, a
    # few hundred metres wide, is small beside σ).
    n = grid.p.shape[0]
    centre = grid.p[n // 2, n // 2]
    quarter = grid.p[n // 2, n // 2 + n // 4]
    assert centre / quarter < math.exp(1 / 8) * 1.05
    assert grid.t == FAR_FUTURE


def test_a_particle_track_predicted_millennia_ahead_stays_bounded_and_usable() -> None:
    # A report stamped in the year 9999 (a bad clock): the prediction takes a bounded number
    # of steps, the cloud stays finite, and a bearing afterwards still weighs it.
    from locator.particle import ParticleTrack, disc_positions

    rng = np.random.default_rng(1)
    track = ParticleTrack(disc_positions(rng, 20_000, (0.0, 0.0), 1000.0), T0.timestamp(), 1)
    started = time.perf_counter()
    track.predict(FAR_FUTURE.timestamp())
    elapsed_s = time.perf_counter() - started
    assert elapsed_s < 5.0  # uncapped, 5 s steps over 8,000 years: hours
    assert np.isfinite(track.position).all()
    mean, cov, _, _ = track.estimate()
    assert np.isfinite(mean).all()
    assert np.isfinite(cov).all()
    track.update_bearing((0.0, 0.0), 0.5, 0.05, "HH-01#1", 3000.0)
    assert math.isclose(float(track.weights().sum()), 1.0, rel_tol=1e-9)
