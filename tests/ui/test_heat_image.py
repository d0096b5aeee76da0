"""The heat image against the grid's geometry: it decodes as a PNG of the grid's size, north up
and east right, each cell's colour and opacity the closed form of its probability."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from locator.probmap import ProbMap
from safetynet.geodesy import LocalFrame
from ui.heat_image import heat_png

FRAME = LocalFrame(42.30206, -71.05761)


def pixel_of(grid: ProbMap, east_m: float, north_m: float) -> tuple[int, int]:
    """(x, y) of the pixel over a point: x from the west edge, y from the north edge."""
    x = math.floor((east_m + grid.half_width_m) / grid.cell_m)
    y = math.floor((grid.half_width_m - north_m) / grid.cell_m)
    return x, y


def test_the_heat_image_puts_north_up_and_east_right_with_the_closed_form_colours() -> None:
    grid = ProbMap(frame=FRAME, half_width_m=500.0, cell_m=20.0)  # 50 × 50 cells
    hot_en, quarter_en = (330.0, 410.0), (-250.0, -90.0)  # north-east, and south-west
    p = np.zeros_like(grid.p)
    for (e, n), mass in ((hot_en, 4.0), (quarter_en, 1.0)):
        row, col = np.unravel_index(np.argmin(np.hypot(grid.east - e, grid.north - n)), p.shape)
        p[row, col] = mass
    grid.p = p / p.sum()

    image = Image.open(io.BytesIO(heat_png(grid.p)))
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    assert image.size == (50, 50)
    pixels = np.asarray(image)
    # The most probable cell: level 1, red (230, 0, 40), opacity 40 + 170.
    assert tuple(pixels[pixel_of(grid, *hot_en)[::-1]]) == (230, 0, 40, 210)
    # A quarter of the peak: level √¼ = ½, green 200 · ½, opacity 40 + 170 · ½.
    assert tuple(pixels[pixel_of(grid, *quarter_en)[::-1]]) == (230, 100, 40, 125)
    # Everything else is improbable: fully transparent.
    opaque = np.argwhere(pixels[..., 3] > 0)
    expected = sorted([pixel_of(grid, *hot_en)[::-1], pixel_of(grid, *quarter_en)[::-1]])
    assert sorted(map(tuple, opaque.tolist())) == expected


def test_a_flat_grid_is_evenly_tinted_and_an_empty_one_is_refused() -> None:
    grid = ProbMap(frame=FRAME, half_width_m=200.0, cell_m=10.0)
    pixels = np.asarray(Image.open(io.BytesIO(heat_png(grid.p))))
    assert pixels.shape == (40, 40, 4)
    assert (pixels == np.array([230, 0, 40, 210], dtype=np.uint8)).all()
    with pytest.raises(ValueError, match="2-D"):
        heat_png(np.zeros((0, 3)))
