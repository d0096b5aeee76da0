"""A search as GeoJSON, KML and GPX — for CalTopo/SARTopo, Google Earth and GIS.

What goes out: the last known point, the current fix with its 95 % ellipse (as a polygon), the
track of fixes, every bearing as a line from its receiver (length ``BEARING_LINE_M``), each
receiver's trail. No personal detail of the client is written: an export leaves the registry's
access rules behind, so it carries the search's id and the bracelet, not the name.
GPX has no polygons: the ellipse goes out as a closed track. Points carry their USNG reference
(a ``usng`` property; the description in KML and GPX).
"""

from __future__ import annotations

import json
import math
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from safetynet.geodesy import forward
from ui.usng import usng

BEARING_LINE_M = 3000.0


def _ellipse_ring(fix: dict[str, Any], points: int = 48) -> list[tuple[float, float]]:
    """The 95 % ellipse as a closed ring of (lat, lon)."""
    e = fix["ellipse95"]
    a, b = e["semi_major_m"], e["semi_minor_m"]
    theta = math.radians(e["orientation_deg"])
    ring = []
    for k in range(points + 1):
        phi = 2 * math.pi * k / points
        x, y = a * math.cos(phi), b * math.sin(phi)  # along the major, minor axes
        east = x * math.sin(theta) - y * math.cos(theta)
        north = x * math.cos(theta) + y * math.sin(theta)
        dist = math.hypot(east, north)
        az = math.degrees(math.atan2(east, north)) % 360
        lat, lon = forward(fix["lat_deg"], fix["lon_deg"], az, dist)
        ring.append((lat, lon))
    return ring


def _bearing_line(b: dict[str, Any]) -> list[tuple[float, float]]:
    end = forward(b["lat_deg"], b["lon_deg"], b["bearing_deg"], BEARING_LINE_M)
    return [(b["lat_deg"], b["lon_deg"]), end]


def features(search: dict[str, Any], snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The search's geometry as GeoJSON features (coordinates lon, lat)."""
    lkp = snapshot["last_known"]
    out: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lkp["lon_deg"], lkp["lat_deg"]]},
            "properties": {
                "name": "Last known point",
                "kind": "last_known_point",
                "t": lkp["t"],
                "usng": usng(lkp["lat_deg"], lkp["lon_deg"]),
            },
        }
    ]
    fix = snapshot.get("fix")
    if fix:
        out.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [fix["lon_deg"], fix["lat_deg"]]},
                "properties": {
                    "name": "Estimated position",
                    "kind": "fix",
                    "t": fix["t"],
                    "usng": usng(fix["lat_deg"], fix["lon_deg"]),
                    "semi_major_m": fix["ellipse95"]["semi_major_m"],
                    "semi_minor_m": fix["ellipse95"]["semi_minor_m"],
                },
            }
        )
        out.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[lon, lat] for lat, lon in _ellipse_ring(fix)]],
                },
                "properties": {"name": "95 % ellipse", "kind": "ellipse95"},
            }
        )
    if len(snapshot["track"]) >= 2:
        out.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[p[1], p[0]] for p in snapshot["track"]],
                },
                "properties": {
                    "name": "Track of fixes",
                    "kind": "track",
                    "times": [p[2] for p in snapshot["track"]],
                },
            }
        )
    for b in snapshot["bearings"]:
        out.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[lon, lat] for lat, lon in _bearing_line(b)],
                },
                "properties": {
                    "name": f"{b['receiver_id']} {b['bearing_deg']:.0f}°",
                    "kind": "bearing",
                    "receiver_id": b["receiver_id"],
                    "bearing_deg": b["bearing_deg"],
                    "sigma_deg": b["sigma_deg"],
                    "t": b["t"],
                    "method": b["method"],
                },
            }
        )
    for r in snapshot["receivers"]:
        if len(r["trail"]) >= 2:
            out.append(
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[p[1], p[0]] for p in r["trail"]],
                    },
                    "properties": {
                        "name": f"{r['receiver_id']} trail",
                        "kind": "trail",
                        "receiver_id": r["receiver_id"],
                        "team": r["team"],
                    },
                }
            )
    for f in out:
        f["properties"]["search_id"] = search["id"]
    return out


def to_geojson(search: dict[str, Any], snapshot: dict[str, Any]) -> str:
    return json.dumps(
        {"type": "FeatureCollection", "features": features(search, snapshot)}, indent=1
    )


def _coords(points: list[list[float]]) -> str:
    return " ".join(f"{lon:.7f},{lat:.7f}" for lon, lat in points)


def to_kml(search: dict[str, Any], snapshot: dict[str, Any]) -> str:
    marks = []
    for f in features(search, snapshot):
        name = escape(f["properties"]["name"])
        g = f["geometry"]
        if g["type"] == "Point":
            shape = f"<Point><coordinates>{_coords([g['coordinates']])}</coordinates></Point>"
            if f["properties"].get("usng"):
                shape = f"<description>USNG {escape(f['properties']['usng'])}</description>{shape}"
        elif g["type"] == "LineString":
            shape = (
                f"<LineString><coordinates>{_coords(g['coordinates'])}</coordinates></LineString>"
            )
        else:
            shape = (
                "<Polygon><outerBoundaryIs><LinearRing><coordinates>"
                f"{_coords(g['coordinates'][0])}</coordinates></LinearRing></outerBoundaryIs>"
                "</Polygon>"
            )
        marks.append(f"<Placemark><name>{name}</name>{shape}</Placemark>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<name>SafetyNet search {escape(search['id'])}</name>{''.join(marks)}"
        "</Document></kml>\n"
    )


def _usng_desc(feature: dict[str, Any]) -> str:
    grid = feature["properties"].get("usng")
    return f"<desc>USNG {escape(grid)}</desc>" if grid else ""


def to_gpx(search: dict[str, Any], snapshot: dict[str, Any]) -> str:
    parts = []
    for f in features(search, snapshot):
        name = escape(f["properties"]["name"])
        g = f["geometry"]
        if g["type"] == "Point":
            lon, lat = g["coordinates"]
            parts.append(
                f"<wpt lat={quoteattr(f'{lat:.7f}')} lon={quoteattr(f'{lon:.7f}')}>"
                f"<name>{name}</name>{_usng_desc(f)}</wpt>"
            )
            continue
        points = g["coordinates"] if g["type"] == "LineString" else g["coordinates"][0]
        times = f["properties"].get("times")
        pts = []
        for i, (lon, lat) in enumerate(points):
            when = f"<time>{escape(times[i])}</time>" if times else ""
            pts.append(f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}">{when}</trkpt>')
        parts.append(f"<trk><name>{name}</name><trkseg>{''.join(pts)}</trkseg></trk>")
    # GPX wants waypoints first, then tracks.
    parts.sort(key=lambda p: not p.startswith("<wpt"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="SafetyNet" xmlns="http://www.topografix.com/GPX/1/1">'
        f"{''.join(parts)}</gpx>\n"
    )
