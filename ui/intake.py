"""From a sender's items to the store, the live maps, the search log and the home stations: the
one path every ingest takes, ``POST /api/v1/reports`` and the MQTT worker (:mod:`ui.mqtt_ingest`)
alike.

:func:`take_in` runs in a worker thread (it blocks on the database and the searches' locks):
the reports are validated and stored (:func:`ui.ingest.ingest`), fed to the live searches first
(they are the search), each search's newest fix goes to its log, and then the home stations and
the fleet's sightings hear of them. The metrics (:mod:`ui.metrics`) count what was stored and
refused, and time each fix from ``received_s`` (``time.monotonic()`` at the report's arrival).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from registry import home_stations, searches, sightings
from safetynet.reports import FieldReport, Pulse, report_to_obj
from ui.bodies import Unreadable
from ui.deps import AppState
from ui.ingest import IngestResult, Sender, ingest
from ui.metrics import refusal_reason

log = logging.getLogger(__name__)


def _home_stations(app: AppState, stored: list[FieldReport]) -> None:
    """What the stored reports tell the home stations and the fleet's sightings, in a
    transaction of its own: a station hearing its client's bracelet logs the daily test, a
    low-battery bit is told at once, each station that reported is checked for a wander alert,
    and an enrolled bracelet heard while no search is open is kept as a sealed sighting (with
    consent). Its failure is logged, never the ingest's."""
    if not stored:
        return
    pulses = [r for r in stored if isinstance(r, Pulse)]
    try:
        with app.transaction() as session:
            home_stations.heard(session, pulses)
            sightings.record(session, pulses)
            home_stations.check_stations(session, datetime.now(UTC),
                                         {r.receiver_id for r in stored})  # fmt: skip
    except Exception:  # a check racing another, or a fault: the next report or minute checks
        # again; the reports are stored and already on the live maps, whatever happens here.
        log.exception("home-station check after ingest failed")


def take_in(
    app: AppState, sender: Sender, items: list[Any], via: str, received_s: float
) -> IngestResult:
    """Store ``items`` (from :func:`ui.bodies.report_items`) sent by ``sender`` and feed them
    onwards; ``via`` ("http" or "mqtt") labels the metrics."""
    metrics = app.metrics
    window_of = app.hub.window_of(datetime.now(UTC))
    with app.transaction() as session:
        result = ingest(session, sender, items, window_of)
        app.hub.forward(session, result.stored)  # to the searches' owners (several processes)
    fixes = app.hub.ingest(result.stored)  # the live maps first: they are the search
    pushed_s = time.monotonic()
    for _ in fixes:
        metrics.fix_latency.observe(pushed_s - received_s)
    if fixes or any(r.kind == "bearing" for r in result.stored):
        with app.transaction() as session:
            for search_id, found in fixes.items():
                if not app.hub.holds(search_id):
                    continue  # its lease went meanwhile: its new owner logs the fixes
                last = found[-1]  # the newest fix of this batch goes to the log
                searches.add_event(session, None, search_id, "fix", report_to_obj(last), at=last.t)
    metrics.ingested.labels(via).inc(result.accepted)
    metrics.duplicates.labels(via).inc(result.duplicates)
    for item in result.rejected:
        index = int(item.get("index", -1))
        unreadable = 0 <= index < len(items) and isinstance(items[index], Unreadable)
        metrics.refuse(via, "unreadable" if unreadable else refusal_reason(item))
    _home_stations(app, result.stored)
    return result
