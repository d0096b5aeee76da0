"""The search team's page as an app a phone installs and opens without coverage.

- The web app manifest of a search's team page (:func:`team_manifest`): it opens standalone at
  ``/searches/<id>/team``, with the icons of :func:`team_icon_png`.
- The service worker (:func:`service_worker_js`): the source ``ui/static/team-sw.js`` with what
  it keeps (:data:`SHELL`, the page's scripts, styles, Leaflet's files and the icons) and a
  version (the hash of those files: a server with new files gives phones a new worker, which
  fetches them anew). It is served at ``/searches/<id>/team-sw.js`` so that its scope is that
  search's team pages (``/searches/<id>/``); the dispatcher's page ``/searches/<id>`` lies
  outside it.

Nothing here holds personal data: the manifest and the worker are the same for anyone who asks
(they name no person; the search id is in the URL already).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ui.maps import LEAFLET_DIR

STATIC_DIR = Path(__file__).resolve().parent / "static"
WORKER_SOURCE = STATIC_DIR / "team-sw.js"
SEARCH_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a search id may look like in a path
ICON_SIZES_PX = (192, 512)  # the sizes browsers ask of an installable app
NAVY, RED, WHITE = (21, 34, 56), (192, 57, 43), (255, 255, 255)  # the header's, the estimate's
THEME_COLOUR, BACKGROUND_COLOUR = "#152238", "#f4f6f9"  # app.css's header and page background
# The files the team page loads, kept by the worker (URL path -> file on this server).
SHELL: dict[str, Path] = {
    **{f"/static/app/{name}": STATIC_DIR / name
       for name in ("app.css", "team.css", "geo.js", "where.js", "outbox.js", "team.js",
                    "basemap.js")},
    "/static/leaflet/leaflet.js": LEAFLET_DIR / "leaflet.js",
    "/static/leaflet/leaflet.css": LEAFLET_DIR / "leaflet.css",
    **{f"/static/leaflet/images/{name}": LEAFLET_DIR / "images" / name
       for name in ("layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png",
                    "marker-shadow.png")},
}  # fmt: skip
ICON_URLS = tuple(f"/icons/team-{size}.png" for size in ICON_SIZES_PX)


def team_manifest(search_id: str) -> dict[str, Any]:
    """The web app manifest of search ``search_id``'s team page (no personal data)."""
    page = f"/searches/{search_id}/team"
    return {
        "id": page,
        "name": "SafetyNet search team",
        "short_name": "SafetyNet team",
        "description": "Where the search's estimate is from you; send bearings and heard or "
        "not heard, with or without coverage.",
        "start_url": page,
        "scope": f"/searches/{search_id}/",
        "display": "standalone",
        "background_color": BACKGROUND_COLOUR,
        "theme_color": THEME_COLOUR,
        "icons": [
            *({"src": url, "sizes": f"{size}x{size}", "type": "image/png", "purpose": "any"}
              for url, size in zip(ICON_URLS, ICON_SIZES_PX, strict=True)),
            {"src": ICON_URLS[-1], "sizes": f"{ICON_SIZES_PX[-1]}x{ICON_SIZES_PX[-1]}",
             "type": "image/png", "purpose": "maskable"},
        ],
    }  # fmt: skip


@cache
def shell_version() -> str:
    """A hash of the worker's source and every file it keeps (16 hex digits)."""
    digest = hashlib.sha256(WORKER_SOURCE.read_bytes())
    for url, path in sorted(SHELL.items()):
        digest.update(url.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@cache
def service_worker_js() -> str:
    """The worker as served: its version and what it keeps, then its source."""
    keep = [*SHELL, *ICON_URLS]
    return (
        f"const VERSION = {json.dumps(shell_version())};\n"
        f"const SHELL = {json.dumps(keep)};\n" + WORKER_SOURCE.read_text(encoding="utf-8")
    )


@cache
def team_icon_png(size_px: int) -> bytes:
    """The app's icon, ``size_px`` square: a red estimate inside white rings on the header's
    navy, drawn within the middle 80 % so that a round mask ("maskable") keeps it whole."""
    if size_px not in ICON_SIZES_PX:
        raise ValueError(f"icon size: one of {ICON_SIZES_PX} px, got {size_px}")
    big = size_px * 4  # drawn large and scaled down: smooth edges
    image = Image.new("RGB", (big, big), NAVY)
    draw = ImageDraw.Draw(image)
    c = big / 2
    for radius, width in ((0.34, 0.045), (0.22, 0.045)):
        r = radius * big
        draw.ellipse((c - r, c - r, c + r, c + r), outline=WHITE, width=round(width * big))
    r = 0.09 * big
    draw.ellipse((c - r, c - r, c + r, c + r), fill=RED, outline=WHITE, width=round(0.02 * big))
    out = io.BytesIO()
    image.resize((size_px, size_px), Image.Resampling.LANCZOS).save(out, format="PNG")
    return out.getvalue()
