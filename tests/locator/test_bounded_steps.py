"""The probability map's motion step stays bounded in time and memory whatever the report
times: a map handed a time thousands of years ahead (a receiver with a bad clock) takes one
bounded blur and stays a valid distribution."""

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
