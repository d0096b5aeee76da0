"""Map features that shape the lost-person prior, read from GeoJSON (RFC 7946).

A FeatureCollection whose features each carry a ``kind`` property — ``water``, ``road``,
``building``, ``park`` or ``woods`` (:data:`locator.prior.FEATURE_WEIGHTS`) — and one of these
geometries, in longitude/latitude:

- ``Polygon`` / ``MultiPolygon``: the area inside the outer ring and outside its holes (even-odd
  rule);
- ``LineString`` / ``MultiLineString`` (a road, a stream): the cells within half of its
  ``width_m`` property (default :data:`LINE_WIDTH_M` by kind) of the line;
- ``Point`` / ``MultiPoint`` (a pond, a bus stop): the cells within its ``radius_m`` property
  (default 30 m).

Each is turned into a mask over the grid's cells; features outside the grid are ignored. Errors
name the feature (by its index) and what is wrong with it.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from locator.prior import FEATURE_KINDS
from safetynet.errors import InputError
from safetynet.geodesy import LocalFrame

LINE_WIDTH_M = {"road": 12.0, "water": 8.0, "building": 10.0, "park": 10.0, "woods": 10.0}
POINT_RADIUS_M = 30.0
MAX_FEATURES = 100_000

Mask = NDArray[np.bool_]
Grid = NDArray[np.float64]


def load_geojson(path: Path) -> dict[str, Any]:
    """Read a GeoJSON file; a clear error if it is not one."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable GeoJSON file ({e})") from e
    if not isinstance(obj, dict):
        raise InputError(f"{path}: a GeoJSON FeatureCollection is an object")
    return obj


def feature_masks(
    collection: dict[str, Any], frame: LocalFrame, east: Grid, north: Grid
) -> list[tuple[str, Mask]]:
    """(kind, cells covered) for each feature of ``collection`` over the grid of cell centres
    ``east``/``north`` (local metres of ``frame``; a regular grid, rows north, columns east)."""
    if collection.get("type") != "FeatureCollection":
        raise InputError(f"GeoJSON: a FeatureCollection, got type {collection.get('type')!r}")
    features = collection.get("features")
    if not isinstance(features, list):
        raise InputError("GeoJSON: 'features' must be a list")
    if len(features) > MAX_FEATURES:
        raise InputError(f"GeoJSON: at most {MAX_FEATURES} features, got {len(features)}")
    raster = _Raster(east, north)
    out = []
    for index, feature in enumerate(features):
        where = f"GeoJSON feature {index}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise InputError(f"{where}: not a Feature object")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise InputError(f"{where}: properties must be an object")
        kind = properties.get("kind")
        if kind not in FEATURE_KINDS:
            raise InputError(f"{where}: property 'kind' must be one of {', '.join(FEATURE_KINDS)}")
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict):
            raise InputError(f"{where}: no geometry")
        width = _positive(properties.get("width_m", LINE_WIDTH_M[kind]), f"{where}: width_m")
        radius = _positive(properties.get("radius_m", POINT_RADIUS_M), f"{where}: radius_m")
        mask = _geometry_mask(geometry, frame, raster, width, radius, where)
        if mask.any():
            out.append((str(kind), mask))
    return out


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10_000:
        raise InputError(f"{what} must be a number of metres within (0, 10000], got {value!r}")
    return float(value)


def _geometry_mask(
    geometry: dict[str, Any],
    frame: LocalFrame,
    raster: _Raster,
    width_m: float,
    radius_m: float,
    where: str,
) -> Mask:
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    mask = raster.empty()
    if kind == "Polygon":
        mask |= raster.polygon([_ring(r, frame, where) for r in _list(coords, where)], where)
    elif kind == "MultiPolygon":
        for polygon in _list(coords, where):
            rings = [_ring(r, frame, where) for r in _list(polygon, where)]
            mask |= raster.polygon(rings, where)
    elif kind == "LineString":
        mask |= raster.line(_points(coords, frame, where, 2), width_m / 2)
    elif kind == "MultiLineString":
        for line in _list(coords, where):
            mask |= raster.line(_points(line, frame, where, 2), width_m / 2)
    elif kind == "Point":
        mask |= raster.line(_points([coords], frame, where, 1), radius_m)
    elif kind == "MultiPoint":
        for point in _points(coords, frame, where, 1):
            mask |= raster.line([point], radius_m)
    else:
        raise InputError(f"{where}: geometry type {kind!r} is not supported")
    return mask


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: coordinates must be a non-empty list")
    return value


def _points(coords: Any, frame: LocalFrame, where: str, at_least: int) -> list[tuple[float, float]]:
    positions = _list(coords, where)
    if len(positions) < at_least:
        raise InputError(f"{where}: needs at least {at_least} positions")
    out = []
    for position in positions:
        if (
            not isinstance(position, list)
            or len(position) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position)
        ):
            raise InputError(f"{where}: a position is [longitude, latitude], got {position!r}")
        lon, lat = float(position[0]), float(position[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InputError(f"{where}: position {position!r} is off the globe (lon, lat)")
        out.append(frame.to_en(lat, lon))
    return out


def _ring(coords: Any, frame: LocalFrame, where: str) -> NDArray[np.float64]:
    ring = _points(coords, frame, where, 4)
    return np.asarray(ring, dtype=float)


class _Raster:
    """Masks over a regular grid of cell centres, each worked out on the window it can touch."""

    def __init__(self, east: Grid, north: Grid) -> None:
        self.east, self.north = east, north
        self.e0, self.n0 = float(east[0, 0]), float(north[0, 0])
        self.cell = float(east[0, 1] - east[0, 0]) if east.shape[1] > 1 else 1.0
        self.shape = east.shape

    def empty(self) -> Mask:
        return np.zeros(self.shape, dtype=bool)

    def _window(self, e_lo: float, e_hi: float, n_lo: float, n_hi: float) -> tuple[slice, slice]:
        rows, cols = self.shape
        c0 = max(math.floor((e_lo - self.e0) / self.cell), 0)
        c1 = min(math.ceil((e_hi - self.e0) / self.cell) + 1, cols)
        r0 = max(math.floor((n_lo - self.n0) / self.cell), 0)
        r1 = min(math.ceil((n_hi - self.n0) / self.cell) + 1, rows)
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

    def polygon(self, rings: Sequence[NDArray[np.float64]], where: str) -> Mask:
        """Inside the first ring and outside the others (its holes)."""
        outer = rings[0]
        mask = self.empty()
        rows, cols = self._window(
            float(outer[:, 0].min()),
            float(outer[:, 0].max()),
            float(outer[:, 1].min()),
            float(outer[:, 1].max()),
        )
        e, n = self.east[rows, cols], self.north[rows, cols]
        if e.size == 0:
            return mask
        inside = inside_polygon(e, n, outer)
        for hole in rings[1:]:
            inside &= ~inside_polygon(e, n, hole)
        mask[rows, cols] = inside
        return mask

    def line(self, points: Sequence[tuple[float, float]], half_width_m: float) -> Mask:
        """Cells within ``half_width_m`` of the polyline through ``points`` (a disc for one)."""
        mask = self.empty()
        segments = list(itertools.pairwise(points)) or [(points[0], points[0])]
        for (ae, an), (be, bn) in segments:
            rows, cols = self._window(
                min(ae, be) - half_width_m,
                max(ae, be) + half_width_m,
                min(an, bn) - half_width_m,
                max(an, bn) + half_width_m,
            )
            e, n = self.east[rows, cols], self.north[rows, cols]
            if e.size == 0:
                continue
            de, dn = be - ae, bn - an
            length2 = de * de + dn * dn
            if length2 > 0:
                t = np.clip(((e - ae) * de + (n - an) * dn) / length2, 0.0, 1.0)
            else:
                t = np.zeros_like(e)
            distance = np.hypot(e - (ae + t * de), n - (an + t * dn))
            mask[rows, cols] |= distance <= half_width_m
        return mask


def inside_polygon(x: Grid, y: Grid, polygon: NDArray[np.float64]) -> Mask:
    """Which points (x, y) lie inside ``polygon`` (even-odd rule), vectorised over the points."""
    inside = np.zeros(x.shape, dtype=bool)
    px, py = polygon[:, 0], polygon[:, 1]
    j = len(polygon) - 1
    for i in range(len(polygon)):
        crosses = (py[i] > y) != (py[j] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i]) + px[i]
        inside ^= crosses & (x < x_at)
        j = i
    return inside
