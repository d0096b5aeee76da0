"""Seeded search cases: whole simulated searches the tracker was never tuned on.

:func:`generate_case` draws one search of a given kind from ``(seed, kind, index)`` alone, and
returns it as a :class:`~firmware_sim.scenario.Scenario` (validated like a scenario file), so it
runs through every output of the simulator — :func:`~firmware_sim.report_mode.simulate_reports`
above all. :func:`simulate_case` runs it and hands back the reports with the walker's truth.

What a case draws (figures from DOMAIN.md where it has them; the rest are stated inferences):

- **Where**: a last known point anywhere in the continental United States; the street grid's
  orientation at random (suburb and city), free ground in a park.
- **The person**: mean walking speed 0.3–1.4 m/s (legs drawn around it and clipped to 0.2–1.5 m/s
  by the walker, with short stops and long sit-downs, :mod:`firmware_sim.walker`), and one of
  four route styles — *straight* (persistent heading, the dementia pattern), *destination*
  (pulled towards one or two places 0.3–1.5 km away, a former home), *meander* (a loop of
  nearby places), *sitter* (sits down near the last known point for 10–30 minutes or for the
  whole search, sometimes inside a building).
- **The teams**, arriving one after another in the first ten minutes: one to three handheld Yagi
  teams walking street legs from points a few hundred metres from the last known point, stopping
  to sweep (city teams stop more often and sweep slower, to test for reflections); half of them
  close in on the person late in the search, as teams do once they hear him; cruisers with a
  roof omni on a loop of streets; sometimes a fixed rooftop station, and in parks and suburbs
  sometimes a helicopter pass.
- **The radio**: suburb — path-loss exponent 2.7–3.5, shadowing σ 4–8 dB (DOMAIN.md's outdoor
  suburban figures), a few houses and one or two reflectors; dense city — exponent 3.2–4.0,
  σ 7–10 dB with short decorrelation, buildings that block the direct path and several glass or
  concrete reflectors near the teams' streets, so that bearings there are consistently wrong;
  open park — exponent 2.2–2.9, σ 2.5–5 dB (inferred: fewer obstructions than a suburb), at most
  one reflecting rock face. Compass bias 1–4° per unit and GPS error 2–10 m by kind.

Every random draw comes from ``numpy.random.default_rng([seed, kind, index])``; a case's
identity does not depend on which other cases are generated with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import Scenario, parse_scenario
from firmware_sim.walker import Track
from firmware_sim.world import World
from safetynet.errors import InputError
from safetynet.geodesy import LocalFrame
from safetynet.reports import FieldReport

KINDS: tuple[str, ...] = ("suburb", "city", "park")
KIND_CODES = {"suburb": 1, "city": 2, "park": 3}
WALKER_STYLES = ("straight", "destination", "meander", "sitter")
WALKER_STYLE_P = (0.35, 0.30, 0.20, 0.15)
DURATION_S = (1200.0, 2700.0)
WALK_SPEED_MEAN_MPS = (0.3, 1.4)
VELOCITY_STEP_S = 2.0  # half-width of the central difference for the walker's velocity


@dataclass(frozen=True)
class KindProfile:
    """The ranges one kind of search draws from (uniform between the pair's ends)."""

    exponent: tuple[float, float]
    shadowing_sigma_db: tuple[float, float]
    decorrelation_m: tuple[float, float]
    rician_k_db: tuple[float, float]
    reflectors: tuple[int, int]  # count, inclusive
    reflector_loss_db: tuple[float, float]
    reflector_radius_m: tuple[float, float]
    obstacles: tuple[int, int]
    obstacle_loss_db: tuple[float, float]
    obstacle_side_m: tuple[float, float]
    street_grid: bool
    handhelds: tuple[int, int]
    vehicles: tuple[int, int]
    vehicle_speed_mps: tuple[float, float]
    fixed_probability: float
    aircraft_probability: float
    sweep_s: tuple[float, float]
    walk_s: tuple[float, float]
    gps_sigma_m: tuple[float, float]
    indoor_probability: float  # of a sitter


PROFILES: dict[str, KindProfile] = {
    "suburb": KindProfile(
        exponent=(2.7, 3.5), shadowing_sigma_db=(4.0, 8.0), decorrelation_m=(30.0, 80.0),
        rician_k_db=(3.0, 9.0), reflectors=(0, 2), reflector_loss_db=(3.0, 8.0),
        reflector_radius_m=(100.0, 250.0), obstacles=(0, 3), obstacle_loss_db=(8.0, 15.0),
        obstacle_side_m=(30.0, 80.0), street_grid=True, handhelds=(1, 3), vehicles=(0, 2),
        vehicle_speed_mps=(6.0, 12.0), fixed_probability=0.3, aircraft_probability=0.1,
        sweep_s=(5.0, 15.0), walk_s=(30.0, 90.0), gps_sigma_m=(3.0, 5.0),
        indoor_probability=0.3,
    ),
    "city": KindProfile(
        exponent=(3.2, 4.0), shadowing_sigma_db=(7.0, 10.0), decorrelation_m=(15.0, 40.0),
        rician_k_db=(-3.0, 3.0), reflectors=(2, 5), reflector_loss_db=(2.0, 6.0),
        reflector_radius_m=(150.0, 300.0), obstacles=(4, 9), obstacle_loss_db=(15.0, 25.0),
        obstacle_side_m=(40.0, 150.0), street_grid=True, handhelds=(1, 3), vehicles=(0, 1),
        vehicle_speed_mps=(4.0, 8.0), fixed_probability=0.4, aircraft_probability=0.0,
        sweep_s=(10.0, 15.0), walk_s=(20.0, 45.0), gps_sigma_m=(5.0, 10.0),
        indoor_probability=0.4,
    ),
    "park": KindProfile(
        exponent=(2.2, 2.9), shadowing_sigma_db=(2.5, 5.0), decorrelation_m=(60.0, 150.0),
        rician_k_db=(6.0, 12.0), reflectors=(0, 1), reflector_loss_db=(6.0, 10.0),
        reflector_radius_m=(100.0, 200.0), obstacles=(0, 0), obstacle_loss_db=(0.0, 0.0),
        obstacle_side_m=(0.0, 0.0), street_grid=False, handhelds=(1, 3), vehicles=(0, 1),
        vehicle_speed_mps=(5.0, 10.0), fixed_probability=0.3, aircraft_probability=0.25,
        sweep_s=(5.0, 15.0), walk_s=(40.0, 120.0), gps_sigma_m=(2.0, 4.0),
        indoor_probability=0.0,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class SearchCase:
    """One generated search: its kind, identity, the walker's route style and the scenario."""

    kind: str
    seed: int
    index: int
    walker_style: str
    scenario: Scenario

    @property
    def name(self) -> str:
        return self.scenario.name


@dataclass(frozen=True)
class Truth:
    """Where the walker (bracelet ``bracelet_index`` of the world) is, every moment.

    Positions are local east/north metres in the world's frame (origin: the last known point).
    """

    track: Track
    bracelet_id: str

    def position_en(self, t_s: float | NDArray[np.float64]) -> NDArray[np.float64]:
        """(east_m, north_m) at ``t_s`` seconds since the scenario's start; shape (2,) or (2, N)."""
        east, north = self.track.position(t_s)
        return np.array([east, north], dtype=float)

    def is_moving(self, t_s: float) -> bool:
        """Whether the walker is walking (not stopped or sitting) at ``t_s``."""
        return self.track.is_moving(t_s)

    def velocity_enu_mps(self, t_s: float) -> NDArray[np.float64]:
        """Velocity (east, north m/s) by a central difference over ±``VELOCITY_STEP_S``."""
        ahead = self.position_en(t_s + VELOCITY_STEP_S)
        behind = self.position_en(t_s - VELOCITY_STEP_S)
        return (ahead - behind) / (2.0 * VELOCITY_STEP_S)


def check_kinds(kinds: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The kinds, validated: each one of :data:`KINDS`, at least one, no repeats."""
    if not kinds:
        raise InputError(f"at least one kind is needed; valid kinds: {', '.join(KINDS)}")
    for kind in kinds:
        if kind not in PROFILES:
            raise InputError(f"unknown search kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise InputError(f"kinds must not repeat, got {list(kinds)}")
    return tuple(kinds)


def generate_cases(
    n_cases: int, seed: int, kinds: list[str] | tuple[str, ...] = KINDS
) -> list[SearchCase]:
    """``n_cases`` cases, the kinds taken in turn (case i is kind ``kinds[i % len(kinds)]``)."""
    kinds = check_kinds(kinds)
    if n_cases < 1:
        raise InputError(f"the number of cases must be at least 1, got {n_cases}")
    return [generate_case(seed, kinds[i % len(kinds)], i // len(kinds)) for i in range(n_cases)]


def generate_case(seed: int, kind: str, index: int) -> SearchCase:
    """The ``index``-th case of ``kind`` for ``seed`` (deterministic)."""
    check_kinds([kind])
    if index < 0:
        raise InputError(f"a case index must be 0 or more, got {index}")
    if not 0 <= seed < 2**63:
        raise InputError(f"the seed must be within 0..2**63-1, got {seed}")
    rng = np.random.default_rng([seed, KIND_CODES[kind], index])
    return _Draw(kind, PROFILES[kind], rng, seed, index).case()


def with_array_cruisers(case: SearchCase, n: int) -> SearchCase:
    """The same search with ``n`` more cruisers (``KR-1`` …) carrying a KrakenSDR, on loops
    drawn as the case's own cruisers are but from a draw of their own, so that the walker,
    the radio and the other teams stay exactly as they were. They arrive within ten minutes
    of the first team, never before it (the search's clock starts with the first arrival)."""
    if not 0 <= n <= 8:
        raise InputError(f"array cruisers must be within 0..8, got {n}")
    if n == 0:
        return case
    code = KIND_CODES[case.kind]
    first_draws = np.random.default_rng([case.seed, code, case.index])  # the frame, the grid
    draw = _Draw(case.kind, PROFILES[case.kind], first_draws, case.seed, case.index)
    draw.rng = np.random.default_rng([case.seed, code, case.index, 0xA77A])
    first = min((r.start_s for r in case.scenario.receivers), default=0.0)
    extra = []
    for k in range(n):
        cruiser = draw.vehicle(f"KR-{k + 1}", first + draw.u((0.0, 600.0)))
        extra.append({**cruiser, "array": {"kind": "uca", "elements": 5}})
    data = case.scenario.model_dump(mode="json", exclude={"base_dir"})
    data["receivers"] = [*data["receivers"], *extra]
    scenario = parse_scenario(data, case.scenario.base_dir, source=case.scenario.name)
    return SearchCase(case.kind, case.seed, case.index, case.walker_style, scenario)


def simulate_case(case: SearchCase) -> tuple[World, list[FieldReport], Truth]:
    """Run a case: the simulated world, every report its receivers send, and the walker's truth.

    A receiver with an array also sends an array bearing for the pulses it reports
    (:func:`trials.array_cruisers.array_bearings`)."""
    world = World(case.scenario)
    reports = simulate_reports(world)
    specs = zip(world.receivers, case.scenario.receivers, strict=True)
    arrays = [(rx, spec.array) for rx, spec in specs if spec.array is not None]
    if arrays:
        from safetynet.reports import Pulse
        from trials.array_cruisers import array_bearings

        for rx, array in arrays:
            pulses = [
                r for r in reports if isinstance(r, Pulse) and r.receiver_id == rx.receiver_id
            ]
            reports.extend(array_bearings(world, rx, array, pulses))
        reports.sort(key=lambda r: (r.t, r.receiver_id, r.seq))
    return world, reports, truth_of(world)


def truth_of(world: World, bracelet_index: int = 0) -> Truth:
    """The truth of one bracelet's wearer in ``world``."""
    sim = world.bracelets[bracelet_index]
    return Truth(sim.track, f"{sim.bracelet.bracelet_id:04X}")


class _Draw:
    """The draws of one case, in a fixed order (so that a case depends on its seed alone)."""

    def __init__(
        self, kind: str, profile: KindProfile, rng: np.random.Generator, seed: int, index: int
    ) -> None:
        self.kind, self.p, self.rng, self.seed, self.index = kind, profile, rng, seed, index
        lat = float(rng.uniform(28.0, 48.0))
        lon = float(rng.uniform(-122.0, -72.0))
        self.frame = LocalFrame(lat, lon)
        grid = float(rng.uniform(0.0, math.pi / 2))
        self.axes = (
            np.array([math.cos(grid), math.sin(grid)]),
            np.array([-math.sin(grid), math.cos(grid)]),
        )

    def u(self, pair: tuple[float, float]) -> float:
        return float(self.rng.uniform(*pair))

    def ll(self, en: NDArray[np.float64] | tuple[float, float]) -> list[float]:
        lat, lon = self.frame.to_lat_lon(float(en[0]), float(en[1]))
        return [round(lat, 7), round(lon, 7)]

    def around(
        self, r_min_m: float, r_max_m: float, centre: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        r = self.u((r_min_m, r_max_m))
        a = self.u((0.0, 2 * math.pi))
        return centre + r * np.array([math.sin(a), math.cos(a)])

    def case(self) -> SearchCase:
        rng, p = self.rng, self.p
        duration_s = round(self.u(DURATION_S))
        style = str(rng.choice(WALKER_STYLES, p=WALKER_STYLE_P))
        walker = self.walker(style)
        bracelet = {
            "id": f"{int(rng.integers(1, 0xFFFF)):04X}",
            "channel": int(rng.integers(1, 41)),
            "eirp_dbm": round(self.u((-14.0, -6.0)), 1),
            "carrier_error_ppm": round(self.u((-2.0, 2.0)), 2),
            "clock_error_ppm": round(self.u((-30.0, 30.0)), 1),
            "battery_pct": round(self.u((20.0, 100.0))),
            "walker": walker,
        }
        propagation: dict[str, Any] = {
            "exponent": round(self.u(p.exponent), 2),
            "shadowing_sigma_db": round(self.u(p.shadowing_sigma_db), 2),
            "decorrelation_m": round(self.u(p.decorrelation_m), 1),
            "rician_k_db": round(self.u(p.rician_k_db), 1),
            "body_loss_db": round(self.u((2.0, 5.0)), 1),
            "indoor_loss_db": round(self.u((8.0, 16.0)), 1),
        }
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
            minutes=int(rng.integers(0, 365 * 24 * 60))
        )
        data: dict[str, Any] = {
            "name": f"{self.kind} {self.index} (seed {self.seed}, {style} walker)",
            "description": f"generated {self.kind} search; walker style {style}",
            "seed": int(rng.integers(0, 2**31 - 1)),
            "start": start,
            "duration_s": float(duration_s),
            "origin": {"lat_deg": self.frame.lat0_deg, "lon_deg": self.frame.lon0_deg},
            "propagation": propagation,
            "bracelets": [bracelet],
        }
        # The walker's track does not depend on the receivers: walk it first, so that teams
        # that close in late can be routed towards where he will be.
        track = World(parse_scenario(data, source=data["name"])).bracelets[0].track
        receivers = self.receivers(track, float(duration_s))
        propagation["reflectors"] = self.reflectors(receivers)
        propagation["obstacles"] = self.obstacles()
        data["receivers"] = receivers
        scenario = parse_scenario(data, source=data["name"])
        return SearchCase(self.kind, self.seed, self.index, style, scenario)

    # --- the person ---------------------------------------------------------------------------
    def walker(self, style: str) -> dict[str, Any]:
        rng = self.rng
        walker: dict[str, Any] = {
            "heading_deg": round(self.u((0.0, 359.9)), 1),
            "speed_mean_mps": round(self.u(WALK_SPEED_MEAN_MPS), 2),
        }
        origin = np.zeros(2)
        if rng.random() < 0.5:
            walker["stopped_s"] = round(self.u((0.0, 300.0)))
        if style == "destination":
            walker["destinations"] = [
                {"name": f"place {k + 1}", "position": self.ll(self.around(300.0, 1500.0, origin))}
                for k in range(int(rng.integers(1, 3)))
            ]
        elif style == "meander":
            places, here = [], origin
            for k in range(int(rng.integers(3, 6))):
                here = self.around(150.0, 400.0, here)
                places.append({"name": f"corner {k + 1}", "position": self.ll(here)})
            walker["destinations"] = places
        elif style == "sitter":
            if rng.random() < 0.4:
                walker["stationary"] = True
            else:
                walker["stopped_s"] = round(self.u((600.0, 1800.0)))
            walker["indoor"] = bool(rng.random() < self.p.indoor_probability)
        return walker

    # --- the teams ----------------------------------------------------------------------------
    def receivers(self, track: Track, duration_s: float) -> list[dict[str, Any]]:
        rng, p = self.rng, self.p
        arrivals = np.cumsum(rng.uniform(0.0, 200.0, size=8))
        arrivals = np.minimum(arrivals, 600.0)
        out: list[dict[str, Any]] = []
        for k in range(int(rng.integers(p.handhelds[0], p.handhelds[1] + 1))):
            out.append(
                self.handheld(f"HH-{k + 1:02d}", float(arrivals[len(out)]), track, duration_s)
            )
        for k in range(int(rng.integers(p.vehicles[0], p.vehicles[1] + 1))):
            out.append(self.vehicle(f"CAR-{k + 1}", float(arrivals[len(out)])))
        if rng.random() < p.fixed_probability:
            out.append(
                {
                    "id": "ROOF-1", "kind": "fixed", "antenna": "omni",
                    "position": self.ll(self.around(200.0, 1000.0, np.zeros(2))),
                    "gps_sigma_m": 0.5,
                }
            )  # fmt: skip
        if rng.random() < p.aircraft_probability and duration_s > 900.0:
            a = self.u((0.0, 2 * math.pi))
            ahead = np.array([math.sin(a), math.cos(a)])
            side = self.around(0.0, 500.0, np.zeros(2))
            out.append(
                {
                    "id": "HELI-1", "kind": "aircraft", "altitude_m": round(self.u((150.0, 400.0))),
                    "route": [self.ll(side - 3000.0 * ahead), self.ll(side + 3000.0 * ahead)],
                    "speed_mps": round(self.u((35.0, 50.0)), 1),
                    "start_s": round(self.u((600.0, min(1500.0, duration_s - 300.0)))),
                }
            )  # fmt: skip
        return out

    def handheld(
        self, rx_id: str, start_s: float, track: Track, duration_s: float
    ) -> dict[str, Any]:
        rng, p = self.rng, self.p
        here = self.around(150.0, 700.0, np.zeros(2))
        route = [here]
        homing = rng.random() < 0.5
        t_goal = self.u((0.6, 0.9)) * duration_s
        goal_e, goal_n = track.position(t_goal)
        goal = self.around(30.0, 150.0, np.array([float(goal_e), float(goal_n)]))
        for _ in range(int(rng.integers(3, 7))):
            length = self.u((80.0, 400.0))
            step = self.leg_direction(goal - here if homing else None) * length
            here = here + step
            route.append(here)
        if homing:
            route.append(goal)
        return {
            "id": rx_id, "kind": "handheld", "start_s": round(start_s),
            "route": [self.ll(w) for w in route],
            "speed_mps": round(self.u((1.0, 1.4)), 2),
            "sweep_s": list(p.sweep_s), "walk_s": list(p.walk_s),
            "gps_sigma_m": round(self.u(p.gps_sigma_m), 1),
            "compass_bias_sd_deg": round(self.u((1.0, 4.0)), 1),
            "compass_noise_deg": round(self.u((1.0, 3.0)), 1),
            "frontend": {"ppm_error": round(self.u((-40.0, 40.0)), 1)},
        }  # fmt: skip

    def leg_direction(self, towards: NDArray[np.float64] | None) -> NDArray[np.float64]:
        """A unit vector for the next leg: along a street (grid kinds) or free (park);
        towards ``towards`` more often than not when it is given."""
        rng = self.rng
        if not self.p.street_grid:
            a = self.u((0.0, 2 * math.pi))
            free = np.array([math.sin(a), math.cos(a)])
            if towards is None or rng.random() < 0.3 or not np.any(towards):
                return free
            return np.asarray(towards / np.linalg.norm(towards), dtype=float)
        choices = [s * axis for axis in self.axes for s in (1.0, -1.0)]
        if towards is not None and rng.random() < 0.7:
            return max(choices, key=lambda c: float(c @ towards))
        return choices[int(rng.integers(0, 4))]

    def vehicle(self, rx_id: str, start_s: float) -> dict[str, Any]:
        centre = self.around(0.0, 400.0, np.zeros(2))
        half_a, half_b = self.u((300.0, 1200.0)), self.u((300.0, 1200.0))
        a, b = self.axes
        corners = [centre + sa * half_a * a + sb * half_b * b
                   for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))]  # fmt: skip
        return {
            "id": rx_id, "kind": "vehicle", "loop": True, "start_s": round(start_s),
            "route": [self.ll(c) for c in corners],
            "speed_mps": round(self.u(self.p.vehicle_speed_mps), 1),
            "gps_sigma_m": round(self.u(self.p.gps_sigma_m), 1),
            "frontend": {"ppm_error": round(self.u((-40.0, 40.0)), 1)},
        }  # fmt: skip

    # --- the radio ----------------------------------------------------------------------------
    def reflectors(self, receivers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Reflectors near the handheld teams' streets, where they turn bearings."""
        p, rng = self.p, self.rng
        points = [w for r in receivers if r["kind"] == "handheld" for w in r["route"]]
        out = []
        for _ in range(int(rng.integers(p.reflectors[0], p.reflectors[1] + 1))):
            lat, lon = points[int(rng.integers(0, len(points)))]
            near = self.around(50.0, 250.0, np.array(self.frame.to_en(lat, lon)))
            out.append(
                {
                    "position": self.ll(near),
                    "loss_db": round(self.u(p.reflector_loss_db), 1),
                    "radius_m": round(self.u(p.reflector_radius_m)),
                }
            )
        return out

    def obstacles(self) -> list[dict[str, Any]]:
        """Building footprints (rectangles along the street grid) within 800 m of the start."""
        p, rng = self.p, self.rng
        a, b = self.axes
        out = []
        for _ in range(int(rng.integers(p.obstacles[0], p.obstacles[1] + 1))):
            centre = self.around(50.0, 800.0, np.zeros(2))
            half_a, half_b = self.u(p.obstacle_side_m) / 2, self.u(p.obstacle_side_m) / 2
            corners = [centre + sa * half_a * a + sb * half_b * b
                       for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))]  # fmt: skip
            out.append(
                {
                    "polygon": [self.ll(c) for c in corners],
                    "loss_db": round(self.u(p.obstacle_loss_db), 1),
                }
            )
        return out
