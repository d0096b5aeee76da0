"""The outlines of a probability grid's highest-density areas (locator/regions.py), checked
against closed-form answers: the cells counted, the area enclosed, holes and islands."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from locator.regions import (
    highest_density_mask,
    outline,
    region_rings,
    signed_area,
    thin,
)
from tests.conftest import fuzz


def _gaussian(n: int, cx: float, cy: float, sigma: float) -> NDArray[np.float64]:
    """A circular normal on an n × n grid of unit cells, centred at (cx, cy)."""
    y, x = np.mgrid[0:n, 0:n] + 0.5
    p: NDArray[np.float64] = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return np.asarray(p / p.sum(), dtype=np.float64)


def test_the_mask_holds_the_share_with_the_fewest_cells() -> None:
    p = _gaussian(80, 40.0, 40.0, 6.0)
    mask = highest_density_mask(p, 0.5)
    assert p[mask].sum() >= 0.5
    # one cell fewer (the least likely inside) no longer holds it: the set is the smallest
    assert p[mask].sum() - p[mask].min() < 0.5
    # a circular normal holds 50 % within r = σ √(2 ln 2): area π r² = 2π ln 2 σ² cells
    assert mask.sum() == pytest.approx(2 * np.pi * np.log(2) * 36.0, rel=0.05)


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"share must be within \(0, 1\]"):
        highest_density_mask(np.ones((3, 3)) / 9, 1.5)


def test_a_square_with_a_hole_is_one_outer_ring_and_one_hole() -> None:
    mask = np.ones((5, 5), dtype=bool)
    mask[2, 2] = False
    rings = outline(mask)
    areas = sorted(signed_area(r) for r in rings)
    assert areas == [-1.0, 25.0]  # the hole runs clockwise
    assert all(r[0] == r[-1] for r in rings)


def test_cells_touching_at_a_corner_are_two_islands_not_a_figure_eight() -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = mask[1, 1] = True
    rings = outline(mask)
    assert len(rings) == 2
    assert [signed_area(r) for r in rings] == [1.0, 1.0]
    assert all(len(r) == 5 for r in rings)


@fuzz(200)
@given(arrays(np.bool_, st.tuples(st.integers(1, 9), st.integers(1, 9))))
def test_the_outlines_enclose_exactly_the_cells_of_any_mask(mask: np.ndarray) -> None:
    rings = outline(mask)
    assert sum(signed_area(r) for r in rings) == pytest.approx(float(mask.sum()))
    for ring in rings:
        assert ring[0] == ring[-1]
        steps = {(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(ring)}
        assert steps <= {(1, 0), (-1, 0), (0, 1), (0, -1)}  # along cell edges only


def test_thinning_keeps_a_staircase_within_a_cell_and_under_the_limit() -> None:
    p = _gaussian(300, 150.0, 150.0, 60.0)
    (ring, hole), *_ = region_rings(p, 0.9, max_corners=10_000)
    assert not hole
    exact = abs(signed_area(ring))
    thinned = thin(ring, max_corners=60)
    assert len(thinned) - 1 <= 60
    assert thinned[0] == thinned[-1]
    assert abs(signed_area(thinned)) == pytest.approx(exact, rel=0.03)


def test_two_peaks_give_two_islands_largest_first() -> None:
    p = 0.7 * _gaussian(100, 30.0, 30.0, 4.0) + 0.3 * _gaussian(100, 75.0, 70.0, 4.0)
    rings = region_rings(p, 0.9)
    outer = [r for r, hole in rings if not hole]
    assert len(outer) == 2
    assert abs(signed_area(outer[0])) > abs(signed_area(outer[1]))
    cx = np.mean([x for x, _ in outer[0][:-1]])
    assert cx == pytest.approx(30.0, abs=2.0)  # the larger island is round the stronger peak
