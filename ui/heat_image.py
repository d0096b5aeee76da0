"""The probability map as a heat image for the dispatcher's map: a PNG drawn with Pillow.

The locator's grid (:class:`locator.probmap.ProbMap`) holds rows from south to north and
columns from west to east; an image's first row is its top, so the rows are flipped to put
north up. The colour runs from yellow (improbable) to red (the most probable cell), by the square
root of the probability relative to the grid's peak, and cells below ``TRANSPARENT_BELOW`` of
that scale are left transparent so the streets show through. Leaflet lays the image over the
grid's bounds (:meth:`~locator.probmap.ProbMap.bounds_lat_lon`).
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

TRANSPARENT_BELOW = 0.03  # of the peak's square-root level
RED = 230
GREEN_AT_ZERO = 200  # green falls from this to 0 as the level rises: yellow to red
BLUE = 40
ALPHA_AT_ZERO, ALPHA_SPAN = 40, 170  # opacity from 40 to 210 of 255
PNG_COMPRESS_LEVEL = 6


def heat_rgba(p: NDArray[np.float64]) -> NDArray[np.uint8]:
    """The RGBA pixels (height × width × 4, row 0 = north) of probability grid ``p``
    (rows south to north, columns west to east)."""
    if p.ndim != 2 or p.size == 0:
        raise ValueError(f"a probability grid is a non-empty 2-D array, got shape {p.shape}")
    level = np.sqrt(p / max(float(p.max()), 1e-300))[::-1]  # row 0 = north
    rgba = np.zeros((*level.shape, 4), dtype=np.uint8)
    rgba[..., 0] = RED
    rgba[..., 1] = (GREEN_AT_ZERO * (1 - level)).astype(np.uint8)
    rgba[..., 2] = BLUE
    rgba[..., 3] = np.where(
        level > TRANSPARENT_BELOW, ALPHA_AT_ZERO + ALPHA_SPAN * level, 0
    ).astype(np.uint8)
    return rgba


def heat_png(p: NDArray[np.float64]) -> bytes:
    """Probability grid ``p`` (rows south to north, columns west to east) as a PNG, north up."""
    out = io.BytesIO()
    Image.fromarray(heat_rgba(p)).save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()
