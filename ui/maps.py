"""The base map, built with folium and served with local assets only.

folium loads Leaflet, jQuery, Bootstrap and fonts from CDNs by default, which fails offline and in
the field; :class:`LocalMap` loads only Leaflet, from ``xstatic-leaflet`` served by our own
server under ``/static/leaflet``. The page's own script (``dispatch.js``, ``team.js``) finds the
map by the name folium gave it and draws the live layers on it.

Tiles: a configured URL template (OpenStreetMap's by default), the server's own ``/tiles``
when an offline MBTiles file is configured, or none at all — vector layers on a plain
background still work when a search area has no coverage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import folium
import xstatic.pkg.leaflet as xstatic_leaflet

LEAFLET_DIR = Path(xstatic_leaflet.BASE_DIR)
# folium's own <meta> tags: the page has its charset, and its viewport must not forbid zooming
# (folium's says user-scalable=no, which WCAG 1.4.4 refuses: a phone user must be able to zoom).
_FOLIUM_METAS = re.compile(r"<meta\s+(?:http-equiv|name)=\"(?:content-type|viewport)\"[^>]*>", re.S)
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "&copy; OpenStreetMap contributors"


class LocalMap(folium.Map):
    # folium reads these class attributes when it renders the page's head.
    default_js = [  # noqa: RUF012
        ("leaflet", "/static/leaflet/leaflet.js"),
        ("basemap", "/static/app/basemap.js"),  # says so on the map when tiles cannot come
    ]
    default_css = [("leaflet_css", "/static/leaflet/leaflet.css")]  # noqa: RUF012


@dataclass(frozen=True)
class BaseMap:
    """Where tiles come from: ``url`` (a template, or "" for none) and its attribution."""

    url: str
    attribution: str

    @property
    def has_tiles(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class MapParts:
    """What a page embeds: the head's links, the map's div, its script, the map's JS name."""

    header: str
    html: str
    script: str
    name: str


def render_map(lat_deg: float, lon_deg: float, base: BaseMap, zoom: int = 15) -> MapParts:
    """A map centred on (lat, lon); no personal data goes into it (the page adds the layers)."""
    m = LocalMap(
        location=[lat_deg, lon_deg],
        zoom_start=zoom,
        tiles=None,
        control_scale=True,
        prefer_canvas=True,
        max_zoom=19,
    )
    if base.has_tiles:
        # Tiles set without an attribution (SAFETYNET_TILE_URL alone) still draw, credited to
        # their server, rather than failing every map page.
        attribution = base.attribution or f"Map tiles: {urlsplit(base.url).netloc or 'local'}"
        folium.TileLayer(tiles=base.url, attr=attribution, name="Base map", max_zoom=19).add_to(m)
    root: Any = m.get_root()  # a branca Figure
    root.render()
    return MapParts(
        header=_FOLIUM_METAS.sub("", root.header.render()),
        html=root.html.render(),
        script=f"{root.script.render()}\nBasemap.watch({m.get_name()});",
        name=m.get_name(),
    )
