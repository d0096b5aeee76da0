"""A whole simulated search, fast: ``safetynet sim search``.

The walker and the radio come from the simulator (#3: the scenario's walker, its propagation with
shadowing, obstacles and reflectors); the teams are the scenario's handheld units and vehicles,
but where they go is decided here, by a strategy:

- ``guided``: every minute (or on arrival; every 15 s when closing in) each team that is not
  walking its own bearing goes where guidance on the probability map (:mod:`locator.guidance`)
  sends it, within its look-ahead on foot or by car: the listening point that most raises the
  chance of hearing the bracelet, or — once the team hears it, or could get where hearing it is
  near certain — the point with the most probability close by;
- ``oracle``: every team heads straight for where the person is, from the start: no search
  can be faster with these teams, so it bounds what any strategy could gain;
- ``square``: the plain way — each team runs an expanding square from the last known point
  (legs of 1, 1, 2, 2, 3, 3 … spacings, teams turned 90° from each other), and heads for the
  locator's fix once there is one.

In both, a team that hears the bracelet walks along its own bearing, as searchers home in (a
variant where guided teams followed the map's "close in" point instead was slower: median time
to find 11.3 against 6.0 min on the suburb, 12.5 against 10.7 in the city, 50 searches each).

Every ten seconds each team listens: with a directional
antenna swept (its peak gain toward the strongest path) over ten pulses of Rayleigh fading, it
hears the bracelet when one pulse clears the detection threshold, and then reports a bearing
(the strongest path's direction — a reflection gives a wrong one — plus the operator's 6° error)
and the pulse's strength; otherwise a silence. Those reports feed the locator's tracker and the
probability map. Found: a team within ``FOUND_M`` of the person.

**The fleet** (a scenario's ``[[fleet]]``: cruisers' roof stations on patrol, fire stations,
fixed roof sites) listens all shift, before the search opens, by the car's rule (an omni antenna,
the cruiser's noise) every ``LISTEN_S`` along the walker's route: :func:`fleet_sightings`. With
``sightings`` given, the map starts from the last of them before the opening, as the server's
live map does from the sealed sightings (:meth:`locator.probmap.ProbMap.from_sighting`).

Scoring, each minute once a fix exists: the log density the map gives the true position, beside
that of a Gaussian around the Kalman fix alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from firmware_sim.field import PoseTrack, fixed_track, moving_track
from firmware_sim.propagation import Path as RadioPath
from firmware_sim.scenario import FleetSpec, Scenario, load_scenario
from firmware_sim.world import World
from locator.guidance import BY_CAR, ON_FOOT, TeamKind, guided_team, plan
from locator.link import LinkBudget
from locator.probmap import ProbMap, Sighting
from locator.tracker import LastKnown, Locator
from safetynet.angles import wrap_360
from safetynet.errors import ScenarioError
from safetynet.reports import Antenna, Bearing, Fix, Pulse, Silence, channel_center_hz

Strategy = Literal["guided", "square", "oracle"]
FOUND_M = 25.0
LISTEN_S = 10.0
STEP_S = 5.0
RETARGET_S = 60.0
CLOSE_IN_RETARGET_S = 15.0
# What a team hears against (dBm in 10 kHz). The receivers' own floor is −130 dBm; with it the
# simulator's suburb would let a handheld hear a worn bracelet 5 km away, three times the range
# the field reports (DOMAIN.md: about a mile on foot, a quarter of a mile from a moving cruiser).
# What the field has and the floor leaves out — man-made noise (ITU-R P.372: about 8 dB over
# thermal at 216 MHz in a residential area, more in a city), a Yagi swept by hand rather than
# held on the peak, a cruiser's own ignition and electronics and its few pulses per place — is
# taken as one level per kind of team, set so that the simulated suburb's 50 % detection ranges
# match the field's (measured by :func:`detection_range_m`: 1.6 km on foot, 0.5 km by car).
HANDHELD_NOISE_DBM = -111.0
VEHICLE_NOISE_DBM = -102.0
SNR_MIN_DB = -6.0
BEARING_SD_DEG = 6.0
DELAY_S = 45 * 60.0  # last seen → teams listening: the call, the dispatch, the drive
HOME_WATCH_S = 6 * 3600.0  # how long the walk is followed for the person to leave home's range


@dataclass
class Team:
    receiver_id: str
    vehicle: bool
    east: float
    north: float
    target: tuple[float, float] | None = None
    waypoints: list[tuple[float, float]] = field(default_factory=list)
    retarget_at: float = 0.0
    last_bearing: float | None = None
    heard_at: float = -1e9
    array: Any = None  # a trials.array_cruisers.SearchArray: bearings from a KrakenSDR
    heading_deg: float = 0.0

    @property
    def kind(self) -> TeamKind:
        return BY_CAR if self.vehicle else ON_FOOT

    @property
    def speed_mps(self) -> float:
        return self.kind.speed_mps

    @property
    def noise_dbm(self) -> float:
        return VEHICLE_NOISE_DBM if self.vehicle else HANDHELD_NOISE_DBM

    @property
    def antenna(self) -> Antenna:
        return self.kind.antenna

    @property
    def gain_dbi(self) -> float:
        return self.kind.gain_dbi

    def move(self, dt: float) -> None:
        if self.target is None:
            return
        de, dn = self.target[0] - self.east, self.target[1] - self.north
        dist = math.hypot(de, dn)
        step = self.speed_mps * dt
        if dist <= step:
            self.east, self.north = self.target
            self.target = self.waypoints.pop(0) if self.waypoints else None
        else:
            self.east += de / dist * step
            self.north += dn / dist * step


@dataclass
class SearchResult:
    scenario: str
    strategy: str
    seed: int
    first_detection_s: float | None
    fix_within_50m_s: float | None
    found_s: float | None
    log_score_map: float | None  # mean log10 density (per m²) of the truth under the map
    log_score_kalman: float | None  # the same under a Gaussian around the Kalman fix
    scores: int
    sighting_s: float | None = None  # the fleet's last sighting the map started from (None: none)

    def to_obj(self) -> dict[str, Any]:
        return asdict(self)


def expanding_square(
    east: float, north: float, spacing: float, turn: int, legs: int = 24
) -> list[tuple[float, float]]:
    """An expanding square from (east, north), the first leg ``turn`` quarter turns from north."""
    points, e, n = [], east, north
    for k in range(legs):
        length = spacing * (k // 2 + 1)
        heading = math.radians(90.0 * (k + turn))
        e, n = e + length * math.sin(heading), n + length * math.cos(heading)
        points.append((e, n))
    return points


def run_search(
    scenario: Scenario,
    strategy: Strategy,
    seed: int,
    max_s: float = 3600.0,
    category: str = "dementia",
    delay_s: float = DELAY_S,
    features: dict[str, Any] | None = None,
    sightings: Sequence[FleetSighting] | None = None,
    array_cruisers: bool = False,
) -> SearchResult:
    """One simulated search: the person walks away at the scenario's start; the teams start
    ``delay_s`` later (the call, the dispatch, the drive) from their routes' first points.
    ``features`` (a GeoJSON FeatureCollection) shapes the map's prior; the last of the fleet's
    ``sightings`` (:func:`fleet_sightings`) before the opening is its evidence. With
    ``array_cruisers`` every vehicle carries a KrakenSDR (as do vehicles whose scenario entry
    has an array): each pulse it hears in a listen gives an array bearing
    (:class:`trials.array_cruisers.SearchArray`, at most one per 2 s)."""
    scenario = scenario.model_copy(update={"seed": seed, "duration_s": delay_s + max_s})
    world = World(scenario)
    rng = np.random.default_rng([seed, 77])
    person = world.bracelets[0]
    eirp = person.bracelet.eirp_dbm
    link = LinkBudget(
        eirp_dbm=eirp,
        exponent=scenario.propagation.exponent,
        shadowing_db=max(scenario.propagation.shadowing_sigma_db, 3.0),
        noise_dbm=HANDHELD_NOISE_DBM,
        snr_min_db=SNR_MIN_DB,
    )
    seen = last_sighting(sightings or (), delay_s)
    grid = ProbMap.from_sighting(
        world.frame,
        category,
        last_seen=world.start,
        at=world.start + timedelta(seconds=delay_s),
        sighting=None if seen is None else seen.evidence(world.start),
        link=link,
    )
    if features is not None:
        grid.shape_geojson(features, category)
    origin = scenario.origin  # the person walks away from the last known point at the start
    locator = Locator(
        frame=world.frame,
        last_known=LastKnown(origin.lat_deg, origin.lon_deg, world.start, category),
    )
    teams = []
    for k, spec in enumerate(r for r in scenario.receivers if r.kind in ("handheld", "vehicle")):
        east, north = world.en(spec.route[0]) if spec.route else (0.0, 0.0)
        team = Team(spec.id, spec.kind == "vehicle", east, north)
        if team.vehicle and (array_cruisers or spec.array is not None):
            from firmware_sim.scenario import ArraySpec
            from trials.array_cruisers import SearchArray

            team.array = SearchArray.build(world, k, team.noise_dbm, spec.array or ArraySpec())
        if strategy == "square":
            team.waypoints = expanding_square(0.0, 0.0, 800.0 if team.vehicle else 300.0, k)
            team.target = (0.0, 0.0)  # first to the last known point
        teams.append(team)
    seq: dict[str, int] = {}
    channel = person.bracelet.channel
    bracelet_id = f"{person.bracelet.bracelet_id:04X}"
    first_detection = fix50 = found = None
    fix: Fix | None = None
    map_scores: list[float] = []
    kalman_scores: list[float] = []
    next_score = 0.0
    t = 0.0
    while t < max_s:
        now = world.start + timedelta(seconds=delay_s + t)
        pe, pn = person.position(delay_s + t)
        listen = (t % LISTEN_S) < STEP_S / 2
        for team in teams:
            if math.hypot(team.east - pe, team.north - pn) <= FOUND_M:
                found = t
            if not listen:
                continue
            seq[team.receiver_id] = seq.get(team.receiver_id, 0) + 1
            lat, lon = world.frame.to_lat_lon(team.east, team.north)
            heard, power, fades, strongest = _listen(
                world, team, (pe, pn), eirp, person.indoor, rng
            )
            base: dict[str, Any] = {
                "receiver_id": team.receiver_id,
                "t": now,
                "channel": channel,
                "lat_deg": lat,
                "lon_deg": lon,
            }
            reports: list[Any] = []
            if heard:
                first_detection = t if first_detection is None else first_detection
                team.heard_at = t
                rssi = power + float(np.median(fades))
                reports.append(
                    Pulse(
                        **base,
                        seq=seq[team.receiver_id],
                        freq_hz=channel_center_hz(channel),
                        bracelet_id=bracelet_id,
                        rssi_dbm=round(rssi, 1),
                        snr_db=round(rssi - team.noise_dbm, 1),
                        antenna=team.antenna,
                    )
                )
                if team.array is not None:
                    reports.extend(
                        _array_bearings(world, team, (pe, pn), delay_s + t, person.indoor, base,
                                        seq, bracelet_id)
                    )  # fmt: skip
                if not team.vehicle:
                    seq[team.receiver_id] += 1
                    measured = wrap_360(
                        strongest.arrival_bearing_deg + rng.normal(0, BEARING_SD_DEG)
                    )
                    team.last_bearing = float(measured)
                    reports.append(
                        Bearing(
                            **base,
                            seq=seq[team.receiver_id],
                            bracelet_id=bracelet_id,
                            bearing_deg=round(float(measured), 1) % 360.0,
                            sigma_deg=8.0,
                            method="sweep",
                            n_pulses=10,
                        )
                    )
            else:
                reports.append(
                    Silence(
                        **base,
                        seq=seq[team.receiver_id],
                        window_s=LISTEN_S,
                        noise_dbm=team.noise_dbm,
                        antenna=team.antenna,
                    )
                )
            for report in reports:
                grid.add(report)
                for f in locator.add(report):
                    fix = f
        if found is not None:
            break
        if fix is not None:
            fe, fn = world.frame.to_en(fix.lat_deg, fix.lon_deg)
            if fix50 is None and math.hypot(fe - pe, fn - pn) <= 50.0:
                fix50 = t
            if t >= next_score:
                next_score = t + 60.0
                grid.advance(now)
                map_scores.append(math.log10(max(grid.density_at(pe, pn), 1e-30)))
                cov = np.asarray(fix.cov_enu_m2)
                d = np.array([pe - fe, pn - fn])
                det = float(np.linalg.det(cov))
                dens = math.exp(-0.5 * float(d @ np.linalg.solve(cov, d))) / (
                    2 * math.pi * math.sqrt(det)
                )
                kalman_scores.append(math.log10(max(dens, 1e-30)))
        if strategy == "oracle":
            for team in teams:
                team.target, team.waypoints = (pe, pn), []
        else:
            _steer(teams, strategy, grid, fix, world, t, now)
        for team in teams:
            if team.target is not None:
                de, dn = team.target[0] - team.east, team.target[1] - team.north
                if math.hypot(de, dn) > 0:
                    team.heading_deg = float(wrap_360(math.degrees(math.atan2(de, dn))))
            team.move(STEP_S)
        t += STEP_S
    return SearchResult(
        scenario.name,
        strategy,
        seed,
        first_detection,
        fix50,
        found,
        float(np.mean(map_scores)) if map_scores else None,
        float(np.mean(kalman_scores)) if kalman_scores else None,
        len(map_scores),
        None if seen is None else seen.t_s,
    )


def _array_bearings(
    world: World,
    team: Team,
    person_en: tuple[float, float],
    t_s: float,
    indoor: bool,
    base: dict[str, Any],
    seq: dict[str, int],
    bracelet_id: str,
) -> list[Bearing]:
    """An array team's bearings of the person's pulses in this listen (method ``array``)."""
    person = world.bracelets[0]
    frames = [f for f in world.frames(t_s, t_s + LISTEN_S) if f.bracelet_index == 0]
    paths = world.propagation.paths(person_en, (team.east, team.north),
                                    person.bracelet.eirp_dbm, indoor)  # fmt: skip
    found = team.array.bearings([(f, paths) for f in frames], team.heading_deg,
                                moving=team.target is not None)  # fmt: skip
    out = []
    for frame, bearing_deg, sigma_deg in found:
        seq[team.receiver_id] += 1
        team.last_bearing = bearing_deg
        out.append(
            Bearing(
                **{**base, "t": world.time_of(frame.t_start_s)}, seq=seq[team.receiver_id],
                bracelet_id=bracelet_id, bearing_deg=round(bearing_deg, 2) % 360.0,
                sigma_deg=round(min(max(sigma_deg, 0.1), 90.0), 2), method="array", n_pulses=1,
            )
        )  # fmt: skip
    return out


def _steer(
    teams: list[Team],
    strategy: Strategy,
    grid: ProbMap,
    fix: Fix | None,
    world: World,
    t: float,
    now: Any,
) -> None:
    """Where each team goes next: home in when heard, else the fix, else the strategy."""
    fix_en = None if fix is None else world.frame.to_en(fix.lat_deg, fix.lon_deg)
    searching = []
    for team in teams:
        if t - team.heard_at <= LISTEN_S * 1.5 and team.last_bearing is not None:
            b = math.radians(team.last_bearing)
            step = 60.0 if not team.vehicle else 200.0
            team.target, team.waypoints = (
                (team.east + step * math.sin(b), team.north + step * math.cos(b)),
                [],
            )
        elif strategy == "guided":
            if team.target is None or t >= team.retarget_at:
                searching.append(team)  # the map holds every team's bearings, the fix's and more
        elif fix is not None and fix_en is not None and (now - fix.t).total_seconds() < 600:
            team.target, team.waypoints = fix_en, []  # as a dispatcher sends every unit
        elif team.target is None and not team.waypoints:
            team.waypoints = expanding_square(
                team.east, team.north, 800.0 if team.vehicle else 300.0, 0
            )
            team.target = team.waypoints.pop(0)
    if searching:
        grid.advance(now)
        reach = [
            guided_team(
                tm.receiver_id,
                tm.east,
                tm.north,
                tm.kind,
                hears=t - tm.heard_at <= LISTEN_S * 1.5,
                extra_noise_db=tm.noise_dbm - HANDHELD_NOISE_DBM,  # the map's link: a handheld's
            )
            for tm in searching
        ]
        for team, g in zip(searching, plan(grid, reach), strict=True):
            # Closing in follows the map as it sharpens; listening points hold for a minute.
            wait = RETARGET_S if g.mode == "listen" else CLOSE_IN_RETARGET_S
            team.target, team.retarget_at = (g.east_m, g.north_m), t + wait


def _listen(
    world: World,
    team: Team,
    person_en: tuple[float, float],
    eirp_dbm: float,
    indoor: bool,
    rng: np.random.Generator,
) -> tuple[bool, float, NDArray[np.float64], RadioPath]:
    """One listen of ``LISTEN_S`` pulses by ``team`` where it stands: (heard, mean received power
    in dBm with the antenna's gain, each pulse's Rayleigh fade in dB, the strongest path). Heard
    when the best pulse clears the detection threshold over the team's noise."""
    paths = world.propagation.paths(person_en, (team.east, team.north), eirp_dbm, indoor)
    strongest = max(paths, key=lambda p: p.power_dbm)
    power_dbm = 10 * math.log10(sum(10 ** (p.power_dbm / 10) for p in paths)) + team.gain_dbi
    fades_db = 10 * np.log10(rng.exponential(size=int(LISTEN_S)))
    heard = power_dbm + float(fades_db.max()) - team.noise_dbm >= SNR_MIN_DB
    return heard, power_dbm, fades_db, strongest


def detection_range_m(scenario: Scenario, vehicle: bool, trials: int = 400, seed: int = 5) -> float:
    """The distance at which a team hears the scenario's bracelet in half of its listens, by the
    very rule of :func:`run_search` (the world's paths with their shadowing, obstacles and
    reflections, the best of ten faded pulses), at random places and directions around the
    origin; found by bisection on the distance."""
    world = World(scenario)
    rng = np.random.default_rng(seed)
    person = world.bracelets[0]
    team = Team("R", vehicle, 0.0, 0.0)

    def share_heard(distance_m: float) -> float:
        heard = 0
        for _ in range(trials):
            team.east, team.north = float(rng.uniform(-2000, 2000)), float(rng.uniform(-2000, 2000))
            a = float(rng.uniform(0, 2 * math.pi))
            at = (team.east + distance_m * math.sin(a), team.north + distance_m * math.cos(a))
            heard += _listen(world, team, at, person.bracelet.eirp_dbm, False, rng)[0]
        return heard / trials

    low, high = 10.0, 20_000.0
    for _ in range(12):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if share_heard(mid) >= 0.5 else (low, mid)
    return math.sqrt(low * high)


def home_station_range_m(scenario: Scenario) -> float:
    """The 50 % range of a home station: an omni antenna with a noisy front end, as a car's
    roof station is (:func:`detection_range_m` by the car's rule)."""
    return detection_range_m(scenario, vehicle=True)


def left_home_s(
    scenario: Scenario, seed: int, range_m: float, max_s: float = HOME_WATCH_S
) -> float | None:
    """When the person (walking from the last known point, the home, at the scenario's start)
    first gets farther than ``range_m`` from it: seconds after the start (None: never, within
    ``max_s``)."""
    world = World(scenario.model_copy(update={"seed": seed, "duration_s": max_s}))
    person = world.bracelets[0]
    t = 0.0
    while t <= max_s:
        east, north = person.position(t)
        if math.hypot(east, north) > range_m:
            return t
        t += STEP_S
    return None


def home_alert_delay_s(scenario: Scenario, seed: int, minutes: float, range_m: float) -> float:
    """From last seen to the teams listening with a home station's wander alert: the person
    leaves the station's range, the alert comes ``minutes`` later and the search starts then
    (the dispatch and the drive start with it; nothing waits for a call)."""
    left = left_home_s(scenario, seed, range_m)
    if left is None:
        raise ScenarioError(
            f"the person never left the home station's range ({range_m:.0f} m) within "
            f"{HOME_WATCH_S / 3600:.0f} h: no alert would be raised"
        )
    return left + minutes * 60.0


@dataclass(frozen=True)
class FleetSighting:
    """One of the fleet's receivers heard the bracelet: ``t_s`` seconds after last seen, standing
    at ``east_m``/``north_m`` (the scenario's frame), at ``rssi_dbm`` through its omni antenna."""

    receiver_id: str
    t_s: float
    east_m: float
    north_m: float
    rssi_dbm: float

    def evidence(self, last_seen: datetime) -> Sighting:
        return Sighting(self.east_m, self.north_m, last_seen + timedelta(seconds=self.t_s),
                        self.rssi_dbm, BY_CAR.gain_dbi)  # fmt: skip


def _fleet_track(world: World, spec: FleetSpec, duration_s: float) -> PoseTrack:
    if spec.kind == "cruiser":
        waypoints = np.array([world.en(p) for p in spec.route])
        return moving_track(waypoints, spec.speed_mps, duration_s, spec.loop)
    assert spec.position is not None
    return fixed_track(*world.en(spec.position), 0.0, duration_s)


def fleet_sightings(scenario: Scenario, seed: int, until_s: float) -> list[FleetSighting]:
    """What the scenario's fleet hears of the person (walking away from the last known point at
    the start, as in :func:`run_search` with the same ``seed``) from the start until
    ``until_s`` seconds later: each receiver listens every ``LISTEN_S`` where it is, by the
    car's rule (an omni antenna, the cruiser's noise, the best of ten faded pulses over the
    world's paths), in time order."""
    if not scenario.fleet:
        return []
    world = World(scenario.model_copy(update={"seed": seed, "duration_s": until_s + LISTEN_S}))
    rng = np.random.default_rng([seed, 78])
    person = world.bracelets[0]
    eirp = person.bracelet.eirp_dbm
    tracks = [(spec.id, _fleet_track(world, spec, until_s + LISTEN_S)) for spec in scenario.fleet]
    out: list[FleetSighting] = []
    t = 0.0
    while t <= until_s:
        at = person.position(t)
        for receiver_id, track in tracks:
            team = Team(receiver_id, True, *track.position(t))
            heard, power, fades, _ = _listen(world, team, at, eirp, person.indoor, rng)
            if heard:
                rssi = round(power + float(np.median(fades)), 1)
                out.append(FleetSighting(receiver_id, t, team.east, team.north, rssi))
        t += LISTEN_S
    return out


def last_sighting(sightings: Sequence[FleetSighting], before_s: float) -> FleetSighting | None:
    """The newest sighting at or before ``before_s`` (the search's opening), as the sealed
    sightings give the map the newest one since last seen."""
    earlier = [s for s in sightings if 0.0 <= s.t_s <= before_s]
    return max(earlier, key=lambda s: s.t_s) if earlier else None


def run_file(path: Path, strategy: Strategy, seed: int, max_s: float) -> SearchResult:
    return run_search(load_scenario(path), strategy, seed, max_s)


def describe(result: SearchResult) -> str:
    def when(s: float | None) -> str:
        return "never" if s is None else f"{s / 60:.1f} min"

    return (
        f"{result.strategy:7s} seed {result.seed}: first detection "
        f"{when(result.first_detection_s)}, fix within 50 m {when(result.fix_within_50m_s)}, "
        f"found {when(result.found_s)}"
    )
