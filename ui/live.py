"""The live state of every active search, and the push of its changes to the pages watching it.

Each active search has a :class:`SearchState`: a locator (#5) for the client's bracelet with its
local frame at the last known point, and what the map shows — the fixes (the track), recent
bearings, where the signal was heard and where it was not, every receiver's position, trail and
health. Reports reach it as they are ingested; when the server starts (or first looks at a
search) the state is rebuilt from the stored reports, so nothing lives only in one process.

Which reports belong to a search: those naming the client's bracelet; undecoded pulses, bearings
and silences on the bracelet's channel; and status reports of receivers the search knows (listed
in one of its teams, or heard from on its bracelet).

Pages subscribe over a WebSocket; each gets an asyncio queue fed from whichever thread ingested
the report (``call_soon_threadsafe``). A slow page's queue is bounded: when it overflows the page
is sent a fresh snapshot instead of the backlog.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, or_, select
from sqlalchemy.orm import Session

from locator.probmap import ANTENNA_GAIN_DBI, GuidedTeam, ProbMap
from locator.tracker import Locator
from registry.models import (
    Bracelet,
    BraceletStatus,
    Client,
    Search,
    SearchStatus,
    SearchTeam,
    StoredReport,
)
from registry.service import as_utc
from safetynet.geodesy import LocalFrame, inverse
from safetynet.reports import (
    Bearing,
    FieldReport,
    Fix,
    Pulse,
    Silence,
    Status,
    format_time,
    parse_report,
    report_to_obj,
)

log = logging.getLogger(__name__)

REBUILD_BEFORE_S = 600.0  # reports this long before the last known time still count
QUEUE_LIMIT = 2000
TRAIL_POINTS = 600
PUSH_PULSE_EVERY_S = 1.0
HEARS_FOR_S = 30.0  # a receiver hears the bracelet for this long after its last pulse or bearing
GUIDE_AHEAD_S = 180.0  # guidance looks this far ahead: three minutes on foot or by car


def _moved_m(view: ReceiverView) -> float:
    """The diagonal of the box around the receiver's trail (metres)."""
    if len(view.trail) < 2:
        return 0.0
    lats = [p[0] for p in view.trail]
    lons = [p[1] for p in view.trail]
    return inverse(min(lats), min(lons), max(lats), max(lons)).distance_m


@dataclass
class ReceiverView:
    receiver_id: str
    team: str | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    last_report_t: str | None = None
    gps_fix: bool | None = None
    clipping: bool | None = None
    noise_dbm: float | None = None
    gain_db: float | None = None
    battery_v: float | None = None
    antenna: str | None = None
    hears_at: datetime | None = None  # the last pulse or bearing, until a silence
    trail: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=TRAIL_POINTS))

    def moved_to(self, lat: float | None, lon: float | None) -> None:
        if lat is None or lon is None:
            return
        self.lat_deg, self.lon_deg = lat, lon
        if not self.trail or self.trail[-1] != (lat, lon):
            self.trail.append((round(lat, 6), round(lon, 6)))

    def to_obj(self) -> dict[str, Any]:
        return {
            "receiver_id": self.receiver_id,
            "team": self.team,
            "lat_deg": self.lat_deg,
            "lon_deg": self.lon_deg,
            "last_report_t": self.last_report_t,
            "gps_fix": self.gps_fix,
            "clipping": self.clipping,
            "noise_dbm": self.noise_dbm,
            "gain_db": self.gain_db,
            "battery_v": self.battery_v,
            "trail": [list(p) for p in self.trail],
        }


@dataclass
class SearchState:
    search_id: str
    bracelet_id: str | None
    channel: int | None
    last_known: tuple[float, float, datetime]
    teams: dict[str, str]  # receiver_id -> team name
    locator: Locator
    probmap: ProbMap
    fixes: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=3600))
    bearings: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=300))
    heard: deque[list[Any]] = field(default_factory=lambda: deque(maxlen=3000))
    silences: deque[list[Any]] = field(default_factory=lambda: deque(maxlen=3000))
    receivers: dict[str, ReceiverView] = field(default_factory=dict)
    reports_seen: int = 0
    latest_t: datetime | None = None
    category: str = "dementia"  # the lost-person statistics the map started from
    _last_pushed_pulse: dict[str, float] = field(default_factory=dict)

    def worth_pushing(self, report: FieldReport) -> bool:
        """Pages get every bearing, silence and status, but pulses at most one per receiver per
        ``PUSH_PULSE_EVERY_S`` (a page draws where the signal was heard, not each frame)."""
        if not isinstance(report, Pulse):
            return True
        t = report.t.timestamp()
        last = self._last_pushed_pulse.get(report.receiver_id)
        if last is not None and 0 <= t - last < PUSH_PULSE_EVERY_S:
            return False
        self._last_pushed_pulse[report.receiver_id] = t
        return True

    def matches(self, report: FieldReport) -> bool:
        if isinstance(report, Status):
            return report.receiver_id in self.receivers or report.receiver_id in self.teams
        bracelet = report.bracelet_id if isinstance(report, Pulse | Bearing) else None
        if bracelet is not None:
            return bracelet == self.bracelet_id
        return self.channel is not None and report.channel == self.channel

    def receiver(self, receiver_id: str) -> ReceiverView:
        view = self.receivers.get(receiver_id)
        if view is None:
            view = self.receivers[receiver_id] = ReceiverView(
                receiver_id, self.teams.get(receiver_id)
            )
        return view

    def apply(self, report: FieldReport) -> tuple[dict[str, Any], list[Fix]]:
        """Take one report; returns what to push about it and the fixes it caused."""
        self.reports_seen += 1
        if self.latest_t is None or report.t > self.latest_t:
            self.latest_t = report.t
        view = self.receiver(report.receiver_id)
        view.moved_to(report.lat_deg, report.lon_deg)
        view.last_report_t = format_time(report.t)
        obj = report_to_obj(report)
        if isinstance(report, Status):
            view.gps_fix, view.clipping = report.gps_fix, report.clipping
            view.noise_dbm, view.gain_db, view.battery_v = (
                report.noise_dbm,
                report.gain_db,
                report.battery_v,
            )
            view.gps_fix = report.gps_fix
        elif isinstance(report, Pulse):
            view.gain_db, view.antenna = report.gain_db, report.antenna
            view.hears_at = report.t
            if report.lat_deg is not None and report.lon_deg is not None:
                self.heard.append([report.lat_deg, report.lon_deg, report.rssi_dbm, obj["t"]])
        elif isinstance(report, Silence):
            view.antenna = report.antenna
            view.hears_at = None
            self.silences.append([report.lat_deg, report.lon_deg, obj["t"]])
        elif isinstance(report, Bearing):
            self.bearings.append(obj)
            view.hears_at = report.t
        self.probmap.add(report)
        fixes = self.locator.add(report)
        for fix in fixes:
            self.fixes.append(report_to_obj(fix))
        return obj, fixes

    def probability(self) -> dict[str, Any]:
        """The probability map as the dispatcher's page draws it, with guidance per receiver:
        the next listening point within about three minutes — on foot for a handheld Yagi, by
        car for an omni that moves; fixed stations get none."""
        grid = self.probmap
        teams = []
        for view in self.receivers.values():
            if view.lat_deg is None or view.lon_deg is None or view.receiver_id.startswith("WEB-"):
                continue
            east, north = grid.frame.to_en(view.lat_deg, view.lon_deg)
            if view.antenna == "yagi3":  # a handheld Yagi: a team on foot
                reach, gain = 1.3 * GUIDE_AHEAD_S, ANTENNA_GAIN_DBI["yagi3"]
            elif _moved_m(view) > 50.0:  # an omni that moves: a vehicle
                reach, gain = 8.0 * GUIDE_AHEAD_S, ANTENNA_GAIN_DBI["omni"]
            else:
                continue  # a fixed station (or not yet known to move) is not guided
            hears = (
                view.hears_at is not None
                and self.latest_t is not None
                and (self.latest_t - view.hears_at).total_seconds() <= HEARS_FOR_S
            )
            teams.append(GuidedTeam(view.receiver_id, east, north, reach, gain, hears))
        guidance = []
        for g in grid.guidance(teams):
            lat, lon = grid.frame.to_lat_lon(g.east_m, g.north_m)
            guidance.append(
                {
                    "receiver_id": g.receiver_id,
                    "lat_deg": lat,
                    "lon_deg": lon,
                    "mode": g.mode,
                    "p_detect": round(g.p_detect, 3),
                    "p_near": round(g.p_near, 3),
                    "team": self.teams.get(g.receiver_id),
                }
            )
        a50, a90 = grid.areas_m2()
        (s, w), (n, e) = grid.bounds_lat_lon()
        return {
            "category": self.category,
            "bounds": [[s, w], [n, e]],
            "area50_km2": round(a50 / 1e6, 3),
            "area90_km2": round(a90 / 1e6, 3),
            "cell_m": grid.cell_m,
            "png": "data:image/png;base64," + base64.b64encode(grid.png()).decode(),
            "guidance": guidance,
            "as_of": None if grid.t is None else format_time(grid.t),
        }

    def snapshot(self) -> dict[str, Any]:
        lat, lon, t = self.last_known
        return {
            "type": "snapshot",
            "search_id": self.search_id,
            "bracelet_id": self.bracelet_id,
            "channel": self.channel,
            "last_known": {"lat_deg": lat, "lon_deg": lon, "t": format_time(t)},
            "fix": self.fixes[-1] if self.fixes else None,
            "track": [[f["lat_deg"], f["lon_deg"], f["t"]] for f in self.fixes],
            "bearings": list(self.bearings)[-100:],
            "heard": list(self.heard)[-1000:],
            "silences": list(self.silences)[-1000:],
            "receivers": [v.to_obj() for v in self.receivers.values()],
        }


@dataclass
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]
    overflowed: bool = False


def category_of(diagnoses: str | None) -> str:
    """The lost-person category a search's map starts from: "autism" when the client's recorded
    diagnoses name autism (or an autism spectrum disorder), else "dementia" (the program's most
    common). Read for the map only; nothing clinical is shown by it."""
    text = diagnoses or ""
    return "autism" if re.search(r"autis|\bASD\b", text, re.IGNORECASE) else "dementia"


class LiveHub:
    """The states of the active searches and the pages subscribed to them."""

    def __init__(self, engine: Engine, features: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.features = features  # a GeoJSON FeatureCollection that shapes every search's prior
        self._states: dict[str, SearchState] = {}
        self._subscribers: dict[str, list[_Subscriber]] = {}
        self._lock = threading.RLock()

    # --- states ---------------------------------------------------------------------------------
    def state(self, search_id: str) -> SearchState | None:
        """The live state of an active search (rebuilt from the stored reports on first use)."""
        with self._lock:
            if search_id in self._states:
                return self._states[search_id]
            with Session(self.engine) as session:
                search = session.get(Search, search_id)
                if search is None or search.status is not SearchStatus.ACTIVE:
                    return None
                state = self._rebuild(session, search)
            self._states[search_id] = state
            return state

    def probability(self, search_id: str) -> dict[str, Any] | None:
        """The probability map of an active search (see :meth:`SearchState.probability`)."""
        with self._lock:
            state = self.state(search_id)
            return None if state is None else state.probability()

    def load_active(self) -> int:
        """Rebuild every active search's state (at start-up); returns how many."""
        with Session(self.engine) as session:
            ids = session.scalars(select(Search.id).where(Search.status == SearchStatus.ACTIVE))
            ids_list = list(ids)
        for search_id in ids_list:
            self.state(search_id)
        return len(ids_list)

    def forget(self, search_id: str) -> None:
        """The search is no longer active (found, suspended, closed) or its teams changed."""
        with self._lock:
            self._states.pop(search_id, None)
        self.publish(search_id, {"type": "changed"})

    def _rebuild(self, session: Session, search: Search) -> SearchState:
        bracelet = session.scalar(
            select(Bracelet).where(
                Bracelet.client_id == search.client_id, Bracelet.status == BraceletStatus.ASSIGNED
            )
        )
        client = session.get(Client, search.client_id)
        category = category_of(None if client is None else client.diagnoses)
        teams: dict[str, str] = {}
        for team in session.scalars(select(SearchTeam).where(SearchTeam.search_id == search.id)):
            for receiver_id in team.receiver_ids:
                teams[receiver_id] = team.name
        lkp_t = as_utc(search.last_known_at)
        frame = LocalFrame(search.last_known_lat_deg, search.last_known_lon_deg)
        state = SearchState(
            search_id=search.id,
            bracelet_id=None if bracelet is None else f"{bracelet.bracelet_id:04X}",
            channel=None if bracelet is None else bracelet.channel,
            last_known=(search.last_known_lat_deg, search.last_known_lon_deg, lkp_t),
            teams=teams,
            locator=Locator(frame=frame),
            # The prior as of the search's opening (how far they can have got by then); the map
            # then spreads with time. Rebuilt from the same rows, it comes out the same.
            probmap=ProbMap.from_prior(
                frame,
                category,
                at=as_utc(search.opened_at),
                since_s=(as_utc(search.opened_at) - lkp_t).total_seconds(),
            ),
        )
        state.category = category
        if self.features is not None:
            state.probmap.shape_geojson(self.features, category)
        for receiver_id, team_name in teams.items():
            state.receivers[receiver_id] = ReceiverView(receiver_id, team_name)
        since = lkp_t - timedelta(seconds=REBUILD_BEFORE_S)
        conditions: list[ColumnElement[bool]] = [StoredReport.receiver_id.in_(list(teams))]
        if state.bracelet_id is not None:
            conditions.append(StoredReport.bracelet_id == state.bracelet_id)
        if state.channel is not None:
            conditions.append(StoredReport.channel == state.channel)
        rows = session.scalars(
            select(StoredReport.body)
            .where(StoredReport.t >= since, or_(*conditions))
            .order_by(StoredReport.id)  # arrival order: the locator saw them in this order
        )
        replayed = 0
        for body in rows:
            report = parse_report(body)
            if not isinstance(report, Fix) and state.matches(report):
                state.apply(report)
                replayed += 1
        log.info(
            "search %s: rebuilt from %d stored reports, %d fixes",
            search.id,
            replayed,
            len(state.fixes),
        )
        return state

    def ingest(self, reports: list[FieldReport]) -> dict[str, list[Fix]]:
        """Feed newly stored reports to every active search they belong to; push the changes.
        Returns the fixes they caused, per search."""
        out: dict[str, list[Fix]] = {}
        with self._lock:
            for search_id in list(self._states):
                state = self._states[search_id]
                messages: list[dict[str, Any]] = []
                for report in reports:
                    if not state.matches(report):
                        continue
                    obj, fixes = state.apply(report)
                    if state.worth_pushing(report):
                        view = state.receivers[report.receiver_id]
                        messages.append(
                            {
                                "type": "report",
                                "report": obj,
                                "receiver": view.to_obj() if isinstance(report, Status) else None,
                            }
                        )
                    for fix in fixes:
                        messages.append({"type": "fix", "fix": report_to_obj(fix)})
                        out.setdefault(search_id, []).append(fix)
                if len(messages) == 1:
                    self.publish(search_id, messages[0])
                elif messages:  # one message per request: pages keep up with busy ingest
                    self.publish(search_id, {"type": "batch", "messages": messages})
        return out

    # --- subscribers ----------------------------------------------------------------------------
    def subscribe(self, search_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        with self._lock:
            self._subscribers.setdefault(search_id, []).append(
                _Subscriber(asyncio.get_running_loop(), queue)
            )
        return queue

    def unsubscribe(self, search_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            subs = self._subscribers.get(search_id, [])
            self._subscribers[search_id] = [s for s in subs if s.queue is not queue]

    def subscriber_count(self, search_id: str) -> int:
        with self._lock:
            return len(self._subscribers.get(search_id, []))

    def publish(self, search_id: str, message: dict[str, Any]) -> None:
        with self._lock:
            subs = list(self._subscribers.get(search_id, []))
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(self._put, sub, message)
            except RuntimeError:  # the page's loop has closed
                self.unsubscribe(search_id, sub.queue)

    @staticmethod
    def _put(sub: _Subscriber, message: dict[str, Any]) -> None:
        if sub.overflowed:
            return
        try:
            sub.queue.put_nowait(message)
        except asyncio.QueueFull:
            sub.overflowed = True  # the socket loop sends a fresh snapshot and clears this
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queue.put_nowait({"type": "resync"})
            sub.overflowed = False
