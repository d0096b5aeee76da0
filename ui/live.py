"""The live state of one active search: reports in, the map's view and the locator's fixes out.

A :class:`SearchState` holds a locator (#5) for the client's bracelet with its local frame at the
last known point, a probability map, and what the map shows — the fixes (the track), recent
bearings, where the signal was heard and where it was not, every receiver's position, trail and
health. It is pure: no database, no network, no clock, no asyncio. It is built from a search's
setup (:class:`registry.searches.LiveSetup`) and fed reports; the same setup and the same reports
in the same order give the same state, which is how any server process rebuilds it from the
stored reports (:mod:`ui.hub` does the reading and the pushing).

Which reports belong to a search: those naming the client's bracelet; undecoded pulses, bearings
and silences on the bracelet's channel; and status reports of receivers the search knows (listed
in one of its teams, or heard from on its bracelet) — each timed no earlier than
:data:`COUNTS_BEFORE_LAST_SEEN_S` before the last-seen time. An earlier report is stored (the
ingest's window takes reports from up to a day before) but says nothing about where the person
is now; kept out, the live state is the same as one rebuilt from the stored reports, and the
tracker never walks a day's gap from a stale pulse to the first fresh one.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from locator.guidance import BY_CAR, ON_FOOT, guided_team, plan
from locator.probmap import ProbMap, Sighting
from locator.tracker import LastKnown, Locator
from safetynet.antennas import PATTERNS
from safetynet.geodesy import LocalFrame, inverse
from safetynet.reports import (
    Bearing,
    FieldReport,
    Fix,
    Pulse,
    Silence,
    Status,
    format_time,
    report_to_obj,
)
from ui.heat_image import heat_png, heat_rgba

if TYPE_CHECKING:
    from registry.searches import LiveSetup

TRAIL_POINTS = 600
PUSH_PULSE_EVERY_S = 1.0
HEARS_FOR_S = 30.0  # a receiver hears the bracelet for this long after its last pulse or bearing
MOVES_AS_VEHICLE_M = 50.0  # an omni whose trail spans more than this rides in a vehicle
COUNTS_BEFORE_LAST_SEEN_S = 600.0  # reports this long before the last-seen time still count
SMOOTHED_EVERY_S = 10.0  # the smoothed trail is pushed at most this often (report time)
# The heat image's colours at these levels (square root of the probability relative to the
# peak) are the map legend's scale, so the legend shows exactly the image's colours.
HEAT_LEGEND_LEVELS = (0.05, 0.25, 0.5, 0.75, 1.0)


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
    position_t: str | None = None  # the time of the last report that said where it was
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
            "position_t": self.position_t,
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
    _smoothed_pushed_s: float | None = None

    @classmethod
    def start(cls, setup: LiveSetup, features: dict[str, Any] | None = None) -> SearchState:
        """The state of a search before any report: its locator and the probability map's
        prior, shaped by the map ``features`` (a GeoJSON FeatureCollection) if given."""
        lkp_t = setup.last_known_at
        frame = LocalFrame(setup.last_known_lat_deg, setup.last_known_lon_deg)
        last_seen = lkp_t if lkp_t.tzinfo is not None else lkp_t.replace(tzinfo=UTC)
        last_known = LastKnown(
            setup.last_known_lat_deg, setup.last_known_lon_deg, last_seen, setup.category
        )
        seen = setup.sighting
        # Heard by the fleet after last seen: the map starts from that evidence (the prior as
        # of that moment, the pulse's strength there, then the walk to the opening).
        sighting = None if seen is None else Sighting(
            *frame.to_en(seen.lat_deg, seen.lon_deg), seen.t, seen.rssi_dbm,
            PATTERNS["omni"].peak_gain_dbi)  # fmt: skip
        probmap = ProbMap.from_sighting(frame, setup.category, lkp_t, setup.opened_at, sighting)
        state = cls(
            search_id=setup.search_id,
            bracelet_id=setup.bracelet_id,
            channel=setup.channel,
            last_known=(setup.last_known_lat_deg, setup.last_known_lon_deg, lkp_t),
            teams=dict(setup.teams),
            # The tracker starts from the same prior as the map: where a person of this
            # category is found that long after last seen, beside the radio evidence.
            locator=Locator(frame=frame, last_known=last_known),
            # The prior as of the search's opening (how far they can have got by then, and the
            # fleet's last sighting); the map then spreads with time. Rebuilt from the same
            # rows, it comes out the same.
            probmap=probmap,
        )
        state.category = setup.category
        if features is not None:
            state.probmap.shape_geojson(features, setup.category)
        for receiver_id, team_name in setup.teams.items():
            state.receivers[receiver_id] = ReceiverView(receiver_id, team_name)
        return state

    def replay(self, reports: Iterable[FieldReport | Fix]) -> int:
        """Take stored reports in their arrival order (a rebuild; fixes, the locator's own
        output, are passed over); returns how many belonged to the search."""
        replayed = 0
        for report in reports:
            if not isinstance(report, Fix) and self.matches(report):
                self.apply(report)
                replayed += 1
        return replayed

    def take(self, reports: Iterable[FieldReport]) -> tuple[list[dict[str, Any]], list[Fix]]:
        """Take newly ingested reports: the messages to push to the pages watching (pulses
        thinned, see :meth:`worth_pushing`) and the fixes the reports caused."""
        messages: list[dict[str, Any]] = []
        out: list[Fix] = []
        for report in reports:
            if not self.matches(report):
                continue
            obj, fixes = self.apply(report)
            if self.worth_pushing(report):
                view = self.receivers[report.receiver_id]
                messages.append(
                    {
                        "type": "report",
                        "report": obj,
                        "receiver": view.to_obj() if isinstance(report, Status) else None,
                    }
                )
            for fix in fixes:
                messages.append({"type": "fix", "fix": report_to_obj(fix)})
                out.append(fix)
        if out:
            t = out[-1].t.timestamp()
            last = self._smoothed_pushed_s
            if last is None or not 0 <= t - last < SMOOTHED_EVERY_S:
                self._smoothed_pushed_s = t
                messages.append({"type": "smoothed", "smoothed": self.smoothed()})
        return messages, out

    def smoothed(self) -> list[list[Any]]:
        """The track of the last minutes as the map draws it: [lat, lon, t] every
        ``TRAIL_EVERY_S``, each the fixed-lag smoothed position (the particles' positions then,
        weighted by what is known now; :meth:`locator.particle.ParticleTrack.trail`). The live
        fix stays causal; this line is where the person most likely went."""
        frame = self.locator.frame
        if not self.fixes or frame is None:
            return []
        key = self.fixes[-1]["bracelet_id"]
        points = self.locator.trail(key) if key is not None else []
        if not points and self.channel is not None:
            points = self.locator.trail(f"ch{self.channel}")
        out = []
        for p in points:
            lat, lon = frame.to_lat_lon(float(p.position_en[0]), float(p.position_en[1]))
            when = format_time(datetime.fromtimestamp(p.t_s, UTC))
            out.append([round(lat, 7), round(lon, 7), when])
        return out

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
        """Whether the live state takes ``report``: it belongs to the search and is not timed
        before the last-seen time by more than :data:`COUNTS_BEFORE_LAST_SEEN_S`."""
        counts_from = self.last_known[2] - timedelta(seconds=COUNTS_BEFORE_LAST_SEEN_S)
        return report.t >= counts_from and self.belongs(report)

    def belongs(self, report: FieldReport) -> bool:
        """Whether ``report`` is about this search (its bracelet, channel or receivers),
        whenever it was timed."""
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
        if report.lat_deg is not None and report.lon_deg is not None:
            view.position_t = view.last_report_t
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

    def receiver_kind(self, view: ReceiverView) -> str | None:
        """How a receiver moves: ``foot`` (a handheld Yagi, a TAK user), ``vehicle`` (an omni
        whose trail spans more than :data:`MOVES_AS_VEHICLE_M`), ``fixed`` (an omni that
        stays); None until it has said where it is."""
        if view.lat_deg is None or view.lon_deg is None:
            return None
        if view.antenna == ON_FOOT.antenna or view.receiver_id.startswith("TAK-"):
            return "foot"  # a handheld Yagi, or a TAK user's own phone
        return "vehicle" if _moved_m(view) > MOVES_AS_VEHICLE_M else "fixed"

    def guidance(self) -> list[dict[str, Any]]:
        """Each guided receiver's next listening point within about three minutes — on foot
        for a handheld Yagi, by car for an omni that moves; fixed stations and browsers get
        none."""
        grid = self.probmap
        teams = []
        for view in self.receivers.values():
            kind = self.receiver_kind(view)
            if view.lat_deg is None or view.lon_deg is None or view.receiver_id.startswith("WEB-"):
                continue
            if kind not in ("foot", "vehicle"):
                continue  # a fixed station (or not yet known to move) is not guided
            east, north = grid.frame.to_en(view.lat_deg, view.lon_deg)
            hears = (
                view.hears_at is not None
                and self.latest_t is not None
                and (self.latest_t - view.hears_at).total_seconds() <= HEARS_FOR_S
            )
            model = ON_FOOT if kind == "foot" else BY_CAR
            teams.append(guided_team(view.receiver_id, east, north, model, hears))
        guidance = []
        for g in plan(grid, teams):
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
        return guidance

    def probability(self) -> dict[str, Any]:
        """The probability map as the dispatcher's page draws it (the heat image and, for its
        legend, the image's colours at :data:`HEAT_LEGEND_LEVELS`), with guidance per receiver
        (:meth:`guidance`)."""
        grid = self.probmap
        guidance = self.guidance()
        a50, a90 = grid.areas_m2()
        (s, w), (n, e) = grid.bounds_lat_lon()
        return {
            "category": self.category,
            "bounds": [[s, w], [n, e]],
            "area50_km2": round(a50 / 1e6, 3),
            "area90_km2": round(a90 / 1e6, 3),
            "cell_m": grid.cell_m,
            "png": "data:image/png;base64," + base64.b64encode(heat_png(grid.p)).decode(),
            "scale": [
                [level, *map(int, rgba)]
                for level, rgba in zip(
                    HEAT_LEGEND_LEVELS,
                    heat_rgba(np.square([HEAT_LEGEND_LEVELS]))[0],
                    strict=True,
                )
            ],
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
            "smoothed": self.smoothed(),
            "bearings": list(self.bearings)[-100:],
            "heard": list(self.heard)[-1000:],
            "silences": list(self.silences)[-1000:],
            "receivers": [v.to_obj() for v in self.receivers.values()],
        }


def one_message(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The messages of one ingest request as one push (pages keep up with busy ingest)."""
    if not messages:
        return None
    if len(messages) == 1:
        return messages[0]
    return {"type": "batch", "messages": messages}
