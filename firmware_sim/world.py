"""The simulated field of one scenario: bracelets on walkers, receivers, and the radio between.

:class:`World` is built from a :class:`~firmware_sim.scenario.Scenario` and answers, for any
transmitted frame and receiver, what reaches that receiver's antenna port
(:meth:`World.link`). Every random draw is seeded from the scenario's seed and the identities of
what it concerns (frame number, receiver), so the I/Q, rtl_tcp, handheld and report outputs of
one scenario agree with each other and with the truth.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from firmware_sim.bracelet import Bracelet, TxFrame
from firmware_sim.field import (
    PoseTrack,
    SensorErrors,
    SweepParams,
    fixed_track,
    handheld_track,
    moving_track,
)
from firmware_sim.frontend import RtlFrontEnd
from firmware_sim.propagation import (
    Obstacle,
    Propagation,
    PropagationParams,
    Reflector,
    received_amplitude,
)
from firmware_sim.propagation import (
    Path as RadioPath,
)
from firmware_sim.scenario import ReceiverSpec, Scenario, UnitSpec
from firmware_sim.walker import Destination, Track, Walker, WalkerParams
from safetynet.antennas import PATTERNS, Pattern
from safetynet.errors import ScenarioError
from safetynet.geodesy import LocalFrame

SECONDS_PER_DAY = 86_400.0


@dataclass
class BraceletSim:
    bracelet: Bracelet
    track: Track
    indoor: bool

    def position(self, t_s: float) -> tuple[float, float]:
        east, north = self.track.position(t_s)
        return float(east), float(north)


@dataclass
class ReceiverSim:
    index: int
    receiver_id: str
    kind: str
    pattern: Pattern
    pose: PoseTrack
    errors: SensorErrors
    frontend: RtlFrontEnd
    unit: UnitSpec
    start_s: float
    altitude_m: float = 0.0

    def reported_position(self, t_s: float) -> tuple[float, float]:
        east, north = self.pose.position(t_s)
        de, dn = self.errors.gps(t_s)
        return east + de, north + dn


@dataclass(frozen=True)
class Link:
    """What one receiver gets of one frame."""

    frame: TxFrame
    receiver_index: int
    amplitude_sqrt_mw: complex  # at the antenna port, fading and antenna gain included
    mean_power_dbm: float  # the same without fading
    heading_deg: float
    rx_east_m: float
    rx_north_m: float
    tx_east_m: float
    tx_north_m: float
    paths: tuple[RadioPath, ...]

    @property
    def power_dbm(self) -> float:
        return 10.0 * math.log10(max(abs(self.amplitude_sqrt_mw) ** 2, 1e-30))


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.seed = scenario.seed
        self.frame = LocalFrame(scenario.origin.lat_deg, scenario.origin.lon_deg)
        self.start: datetime = scenario.start
        self.duration_s = scenario.duration_s
        self.propagation = Propagation(
            self._propagation_params(), np.random.default_rng([self.seed, 1])
        )
        self.bracelets = [self._bracelet(i) for i in range(len(scenario.bracelets))]
        self.receivers = [self._receiver(i, spec) for i, spec in enumerate(scenario.receivers)]
        self._frames = sorted(
            (f for b in self.bracelets for f in b.bracelet.frames(self.duration_s)),
            key=lambda f: f.t_start_s,
        )

    # --- building -----------------------------------------------------------------------------
    def en(self, lat_lon: list[float]) -> tuple[float, float]:
        return self.frame.to_en(lat_lon[0], lat_lon[1])

    def _propagation_params(self) -> PropagationParams:
        spec = self.scenario.propagation
        reflectors = tuple(
            Reflector(*self.en(r.position), loss_db=r.loss_db, radius_m=r.radius_m)
            for r in spec.reflectors
        )
        obstacles = tuple(
            Obstacle(np.array([self.en(p) for p in o.polygon]), o.loss_db) for o in spec.obstacles
        )
        return PropagationParams(
            ref_loss_db=spec.ref_loss_db, exponent=spec.exponent,
            shadowing_sigma_db=spec.shadowing_sigma_db, decorrelation_m=spec.decorrelation_m,
            rician_k_db=spec.rician_k_db, body_loss_db=spec.body_loss_db,
            indoor_loss_db=spec.indoor_loss_db, reflectors=reflectors, obstacles=obstacles,
        )  # fmt: skip

    def _bracelet(self, index: int) -> BraceletSim:
        spec = self.scenario.bracelets[index]
        rng = np.random.default_rng([self.seed, 2, index])
        bracelet = Bracelet(
            bracelet_id=int(spec.id, 16), channel=spec.channel, eirp_dbm=spec.eirp_dbm,
            carrier_error_ppm=spec.carrier_error_ppm, clock_error_ppm=spec.clock_error_ppm,
            battery_fraction=spec.battery_pct / 100.0,
            battery_drain_per_s=1.0 / (spec.battery_days * SECONDS_PER_DAY),
            strap_open_from_s=spec.strap_open_after_s, test_mode=spec.test_mode,
            first_seq=spec.first_seq, index=index, t0_s=float(rng.uniform(0, 1)), _rng=rng,
        )  # fmt: skip
        w = spec.walker
        start = self.en(w.start) if w.start else (0.0, 0.0)
        if w.stationary:
            n = int(self.duration_s) + 2
            track = Track(
                0.0, 1.0, np.full(n, start[0]), np.full(n, start[1]), np.zeros(n, dtype=bool)
            )
        else:
            walker = Walker(
                start_east_m=start[0], start_north_m=start[1], initial_heading_deg=w.heading_deg,
                params=WalkerParams(speed_mean_mps=w.speed_mean_mps),
                destinations=[Destination(d.name, *self.en(d.position)) for d in w.destinations],
                area=self._area(w.area) if w.area else None, start_stopped_s=w.stopped_s,
            )  # fmt: skip
            try:
                track = walker.walk(self.duration_s, np.random.default_rng([self.seed, 3, index]))
            except ValueError as err:
                raise ScenarioError(f"bracelet {spec.id}: {err}") from err
        return BraceletSim(bracelet, track, w.indoor)

    def _area(self, name: str) -> list[NDArray[np.float64]]:
        path = self.scenario.base_dir / name
        try:
            geo = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ScenarioError(f"walkable area {path}: cannot read GeoJSON: {err}") from err
        polygons: list[NDArray[np.float64]] = []
        features = geo.get("features", [geo]) if isinstance(geo, dict) else []
        for feature in features:
            geometry = feature.get("geometry", feature)
            kind, coords = geometry.get("type"), geometry.get("coordinates")
            rings = (
                [coords[0]]
                if kind == "Polygon"
                else [p[0] for p in coords]
                if kind == "MultiPolygon"
                else []
            )
            for ring in rings:  # GeoJSON orders [lon, lat]
                polygons.append(np.array([self.frame.to_en(lat, lon) for lon, lat, *_ in ring]))
        if not polygons:
            raise ScenarioError(f"walkable area {path}: no Polygon or MultiPolygon in it")
        return polygons

    def _receiver(self, index: int, spec: ReceiverSpec) -> ReceiverSim:
        rng = np.random.default_rng([self.seed, 4, index])
        duration = self.duration_s + 1.0
        if spec.kind == "fixed":
            assert spec.position is not None
            east, north = self.en(spec.position)
            pose = fixed_track(east, north, spec.heading_deg, duration)
        else:
            waypoints = np.array([self.en(p) for p in spec.route])
            if spec.kind in ("vehicle", "aircraft"):
                default_speed = 10.0 if spec.kind == "vehicle" else 40.0
                speed = spec.speed_mps or default_speed
                pose = moving_track(waypoints, speed, duration, spec.loop, spec.start_s)
            else:
                target = self.bracelets[0].position
                sweep = SweepParams(walk_s=spec.walk_s, sweep_s=spec.sweep_s)
                pose = handheld_track(
                    waypoints, spec.speed_mps or 1.2, duration, rng, sweep, target, spec.loop
                )
        errors = SensorErrors.draw(
            pose.east_m.size, rng, gps_sigma_m=spec.gps_sigma_m,
            compass_bias_sd_deg=spec.compass_bias_sd_deg, compass_noise_deg=spec.compass_noise_deg,
        )  # fmt: skip
        fe = spec.frontend
        frontend = RtlFrontEnd(
            sample_rate_hz=fe.sample_rate_hz, center_hz=fe.center_hz,
            gain_db=None if fe.gain_db == "auto" else fe.gain_db, ppm_error=fe.ppm_error,
            noise_figure_db=fe.noise_figure_db, cal_error_db=fe.cal_error_db,
        )  # fmt: skip
        return ReceiverSim(
            index,
            spec.id,
            spec.kind,
            PATTERNS[spec.antenna],
            pose,
            errors,
            frontend,
            spec.unit,
            spec.start_s,
            spec.altitude_m,
        )

    # --- queries ------------------------------------------------------------------------------
    def frames(self, t_from_s: float = 0.0, t_to_s: float | None = None) -> list[TxFrame]:
        """Transmitted frames starting in [t_from_s, t_to_s), in time order."""
        end = self.duration_s if t_to_s is None else t_to_s
        return [f for f in self._frames if t_from_s <= f.t_start_s < end]

    def frame_number(self, frame: TxFrame) -> int:
        return round(frame.t_start_s) * 64 + frame.bracelet_index

    def time_of(self, t_s: float) -> datetime:
        return self.start + timedelta(seconds=t_s)

    def link(self, frame: TxFrame, receiver: ReceiverSim) -> Link:
        """What ``receiver`` gets of ``frame`` (deterministic per frame and receiver)."""
        t_mid = frame.t_start_s + 0.014
        tx = self.bracelets[frame.bracelet_index].position(t_mid)
        rx = receiver.pose.position(t_mid)
        heading = receiver.pose.heading_deg(t_mid)
        indoor = self.bracelets[frame.bracelet_index].indoor
        paths = self.propagation.paths(tx, rx, frame.eirp_dbm, indoor, receiver.altitude_m)
        rng = np.random.default_rng([self.seed, 5, self.frame_number(frame), receiver.index])
        fades = self.propagation.fading_with(paths, rng)
        amplitude = received_amplitude(paths, fades, receiver.pattern, heading)
        mean = received_amplitude(paths, np.ones(len(paths), complex), receiver.pattern, heading)
        mean_dbm = 10 * math.log10(max(abs(mean) ** 2, 1e-30))
        return Link(
            frame,
            receiver.index,
            amplitude,
            mean_dbm,
            heading,
            rx[0],
            rx[1],
            tx[0],
            tx[1],
            tuple(paths),
        )
