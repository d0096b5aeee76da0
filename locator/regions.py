"""The smallest areas that hold a given share of a probability grid, as outlines.

A grid ``p`` (rows from south to north, columns from west to east, summing to one) is cut at
the level where its most probable cells first hold ``share`` of the probability (the highest
density region; :meth:`locator.probmap.ProbMap.areas_m2` counts the same cells), and the cells
inside are outlined along their edges: each outline is a closed ring of corner points in grid
units, counter-clockwise around the cells it holds, holes clockwise. Rings are then thinned so
that no ring has more than a given number of corners while staying within a cell of the exact
outline (Douglas–Peucker), so a map that draws them (TAK, a GIS) gets a few hundred points,
not tens of thousands.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

Corner = tuple[int, int]  # (column, row) of a cell corner; (0, 0) is the grid's south-west
Ring = list[tuple[float, float]]  # (x, y) in grid units, closed: the first point again last

MAX_CORNERS = 200  # a ring is thinned to at most this many corners
MIN_CELLS = 1  # an island of fewer cells is still drawn (a single likely cell matters)


def highest_density_mask(p: NDArray[np.float64], share: float) -> NDArray[np.bool_]:
    """The cells of the smallest set holding ``share`` of ``p`` (0 < share <= 1): the most
    probable cells, in order, until their sum first reaches ``share``."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be within (0, 1], got {share!r}")
    flat = p.ravel()
    order = np.argsort(flat, kind="stable")[::-1]
    cum = np.cumsum(flat[order])
    count = min(int(np.searchsorted(cum, share * cum[-1])) + 1, flat.size)
    mask = np.zeros(flat.size, dtype=bool)
    mask[order[:count]] = True
    return mask.reshape(p.shape)


def outline(mask: NDArray[np.bool_]) -> list[list[Corner]]:
    """The outlines of the ``True`` cells of ``mask`` along cell edges: closed rings of
    corners (first corner repeated last), outer rings counter-clockwise, holes clockwise.

    Every edge between a cell inside and one outside (or the grid's border) is walked with the
    inside on its left; at a corner where two inside cells touch diagonally the walk turns
    left, so diagonal neighbours give separate rings rather than a figure eight."""
    rows, cols = mask.shape
    padded = np.zeros((rows + 2, cols + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    nexts: dict[Corner, list[Corner]] = {}

    def edge(a: Corner, b: Corner) -> None:
        nexts.setdefault(a, []).append(b)

    inside = np.argwhere(padded[1:-1, 1:-1])
    for r, c in inside:
        row, col = int(r), int(c)
        pr, pc = row + 1, col + 1
        if not padded[pr - 1, pc]:  # south edge, walked west to east
            edge((col, row), (col + 1, row))
        if not padded[pr, pc + 1]:  # east edge, south to north
            edge((col + 1, row), (col + 1, row + 1))
        if not padded[pr + 1, pc]:  # north edge, east to west
            edge((col + 1, row + 1), (col, row + 1))
        if not padded[pr, pc - 1]:  # west edge, north to south
            edge((col, row + 1), (col, row))
    rings: list[list[Corner]] = []
    while nexts:
        start = next(iter(nexts))
        first = _take(nexts, start, None)
        ring = [start, first]
        prev, here = start, first
        while True:
            if here == start and (start not in nexts or _left_of(prev, here) == first):
                break  # back where it began, and the walk would go on along its first edge
            prev, here = here, _take(nexts, here, prev)
            ring.append(here)
        rings.append(ring)
    return rings


def _left_of(came_from: Corner, at: Corner) -> Corner:
    """The corner one step to the left of the way from ``came_from`` to ``at``."""
    dx, dy = at[0] - came_from[0], at[1] - came_from[1]
    return (at[0] - dy, at[1] + dx)


def _take(nexts: dict[Corner, list[Corner]], at: Corner, came_from: Corner | None) -> Corner:
    """The next corner of the walk from ``at``: where two ways leave a corner, the left turn."""
    options = nexts[at]
    choice = 0
    if len(options) > 1 and came_from is not None:
        left = _left_of(came_from, at)
        choice = options.index(left) if left in options else 0
    out = options.pop(choice)
    if not options:
        del nexts[at]
    return out


def signed_area(ring: list[Corner] | Ring) -> float:
    """The signed area of a closed ring (positive counter-clockwise), in grid units²."""
    total = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        total += x0 * y1 - x1 * y0
    return total / 2.0


def _corners_only(ring: list[Corner]) -> Ring:
    """The ring without the points in the middle of straight runs."""
    out: Ring = []
    n = len(ring) - 1
    for i in range(n):
        x0, y0 = ring[i - 1]
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % n]
        if (x1 - x0) * (y2 - y1) - (y1 - y0) * (x2 - x1) != 0:
            out.append((float(x1), float(y1)))
    out.append(out[0])
    return out


def _douglas_peucker(points: Ring, tolerance: float) -> Ring:
    """``points`` (an open polyline) thinned to within ``tolerance`` of it."""
    if len(points) < 3:
        return list(points)
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        (x0, y0), (x1, y1) = points[i], points[j]
        dx, dy = x1 - x0, y1 - y0
        length = float(np.hypot(dx, dy))
        worst, at = -1.0, -1
        for k in range(i + 1, j):
            px, py = points[k]
            if length == 0.0:
                d = float(np.hypot(px - x0, py - y0))
            else:
                d = abs(dy * (px - x0) - dx * (py - y0)) / length
            if d > worst:
                worst, at = d, k
        if at >= 0 and worst > tolerance:
            keep[at] = True
            stack.extend([(i, at), (at, j)])
    return [pt for pt, kept in zip(points, keep, strict=True) if kept]


def thin(ring: Ring, max_corners: int = MAX_CORNERS) -> Ring:
    """A closed ring with at most ``max_corners`` corners, within the smallest tolerance (in
    grid units, doubling from half a cell) that gets it there."""
    if len(ring) - 1 <= max_corners:
        return ring
    # Split at the corner farthest from the first, so both halves are open polylines.
    first = np.array(ring[0])
    far = int(np.argmax([np.hypot(*(np.array(pt) - first)) for pt in ring[:-1]]))
    tolerance = 0.5
    while True:
        a = _douglas_peucker(ring[: far + 1], tolerance)
        b = _douglas_peucker(ring[far:], tolerance)
        out = a + b[1:]
        if len(out) - 1 <= max_corners or len(out) <= 4:
            return out
        tolerance *= 2.0


def region_rings(
    p: NDArray[np.float64], share: float, max_corners: int = MAX_CORNERS
) -> list[tuple[Ring, bool]]:
    """The outlines of the smallest area holding ``share`` of ``p``, in grid units (x east
    from the grid's west edge, y north from its south edge, one cell = 1), each with whether
    it is a hole; outer rings counter-clockwise, largest first."""
    rings = []
    for corners in outline(highest_density_mask(p, share)):
        area = signed_area(corners)
        rings.append((thin(_corners_only(corners), max_corners), area < 0, abs(area)))
    rings.sort(key=lambda r: -r[2])
    return [(ring, hole) for ring, hole, _ in rings]
