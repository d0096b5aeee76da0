"""The pages' templates: Jinja2 with autoescaping (a name like ``<img src=x onerror=...>`` is
shown as text), every page handed its user, the session's CSRF token and the request's
Content-Security-Policy nonce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from registry.models import Role
from ui.deps import Authed
from ui.local_time import agency_zone, local_text, zone_label
from ui.usng import usng

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


def _with_nonce(html: str, nonce: str) -> Markup:
    """folium's head (our own, no user data) with the page's nonce on its inline scripts."""
    return Markup(html.replace("<script>", f'<script nonce="{escape(nonce)}">'))


templates.env.filters["with_nonce"] = _with_nonce


def _place(lat_deg: float | None, lon_deg: float | None) -> str:
    """A position as a person reads it: USNG beside decimal degrees (where.js's ``position``)."""
    if lat_deg is None or lon_deg is None:
        return "—"
    grid = usng(lat_deg, lon_deg)
    degrees = f"{lat_deg:.5f}, {lon_deg:.5f}"
    return f"{grid} · {degrees}" if grid else degrees


templates.env.globals["place"] = _place

# Each role as the header says it: a person's words, never the enum's.
ROLE_LABELS = {
    Role.ADMIN: "Administrator",
    Role.PROGRAM_STAFF: "Program staff",
    Role.DISPATCHER: "Dispatcher",
    Role.SEARCHER: "Search team",
    Role.CLINICIAN: "Clinician",
    Role.FAMILY: "Family",
}
templates.env.filters["role_label"] = lambda role: ROLE_LABELS.get(role, str(role))


def render(request: Request, name: str, user: Authed | None, **context: Any) -> HTMLResponse:
    """The page ``name`` for ``user`` (None: not logged in); ``local(t)`` shows a time on the
    agency's wall clock, ``zone_name`` names that zone, ``units`` the agency's distance units
    (read by where.js from the page's root element)."""
    settings = request.app.state.safetynet.settings
    zone = agency_zone(settings)
    return templates.TemplateResponse(
        request,
        name,
        {
            "local": lambda t: local_text(t, zone),
            "zone_name": zone_label(zone),
            "zone_key": getattr(zone, "key", ""),  # an IANA name for the pages' scripts
            "units": settings.distance_units,
            "user": user,
            "csrf": user.csrf if user else "",
            "nonce": request.state.nonce,
            "roles": Role,
            **context,
        },
    )
