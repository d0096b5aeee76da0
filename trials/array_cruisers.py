"""Array cruisers in simulated searches: the array's bearing for every pulse a cruiser hears.

A cruiser with a KrakenSDR on its roof (:class:`~firmware_sim.scenario.ArraySpec`) hears each
frame as the report-level simulation says (:mod:`firmware_sim.report_mode`); for each pulse it
hears, this module renders the pulse's window on every element (:mod:`firmware_sim.array`:
the frame's paths with their reflections, the tuners' offsets, noise, 8 bits), removes the
offsets with a calibration frame rendered once per cruiser, estimates the direction with the
receiver's own code (:mod:`receiver.doa`), takes the heading from the cruiser's GPS course
or, stopped or turning, its compass (:class:`~receiver.array_bearings.HeadingTracker`) and
makes the ``bearing`` reports the receiver would send (:class:`~receiver.array_bearings.
ArrayBearings`: weak and multipath-flagged pulses dropped, thinned for the uplink).

:func:`drive` gives every pulse's estimate beside the simulator's truth, for the benchmark.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from firmware_sim.array import ArrayStream, array_stream
from firmware_sim.bracelet import TxFrame
from firmware_sim.scenario import ArraySpec
from firmware_sim.world import Link, ReceiverSim, World
from receiver.array_bearings import (
    THIN_S,
    ArrayBearings,
    ArrayDirectionFinder,
    HeadingFix,
    HeadingTracker,
)
from receiver.doa import DoaEstimate, calibration_weights
from safetynet.angles import bearing_of_enu, wrap_360
from safetynet.reports import Bearing, Pulse

CAL_SAMPLES = 1 << 14
DETECT_SNR_DB = -3.0  # SNR in 10 kHz a cruiser's detector hears a pulse from (report mode)
GPS_EVERY_S = 1.0
COMPASS_EVERY_S = 0.1


@dataclass(frozen=True)
class ArrayPulse:
    """One heard pulse: the array's estimate, the heading used, and the truth."""

    t_s: float
    snr10k_db: float  # true, from the link budget
    estimate: DoaEstimate | None
    heading: HeadingFix | None
    true_relative_deg: float  # the direct path, in the array's frame (true heading)
    true_bearing_deg: float  # rx → bracelet (true positions)
    true_heading_deg: float
    reflected_share: float  # of this frame's received power (fades included), by reflections
    strongest_reflection_off_deg: float | None  # its direction minus the direct path's
    rival_db: float | None  # the strongest reflection against the direct path, this frame


@dataclass
class CruiserArray:
    """One cruiser's array: its stream (for rendering), finder, calibration and heading."""

    world: World
    receiver: ReceiverSim
    spec: ArraySpec
    stream: ArrayStream
    finder: ArrayDirectionFinder
    weights: np.ndarray
    heading: HeadingTracker

    @classmethod
    def build(cls, world: World, receiver: ReceiverSim, spec: ArraySpec) -> CruiserArray:
        stream = array_stream(world, receiver, spec)
        cal, _ = stream.render(0.0, CAL_SAMPLES, calibration=True)
        finder = ArrayDirectionFinder(stream.geometry, stream.sample_rate_hz, stream.center_hz)
        heading = HeadingTracker(gps_sigma_m=max(_gps_sigma_m(world, receiver), 0.1))
        for t in np.arange(receiver.start_s, world.duration_s + 1.0, COMPASS_EVERY_S):
            if round(t / COMPASS_EVERY_S) % round(GPS_EVERY_S / COMPASS_EVERY_S) == 0:
                heading.add_fix(float(t), *receiver.reported_position(float(t)))
            true = receiver.pose.heading_deg(float(t))
            heading.add_compass(float(t), wrap_360(true + receiver.errors.compass()))
        return cls(world, receiver, spec, stream, finder, calibration_weights(cal), heading)

    def estimate(self, frame: TxFrame) -> tuple[DoaEstimate | None, Link | None]:
        """The array's estimate of ``frame`` (its window rendered, calibrated, estimated)."""
        before_s, length_s = self.finder.window_s
        n = round(length_s * self.stream.sample_rate_hz)
        x, links = self.stream.render(frame.t_start_s - before_s, n)
        x = (x * self.weights[:, None]).astype(np.complex64)
        as_heard_hz = frame.freq_rf_hz - (self.stream.lo_hz - self.stream.center_hz)
        link = next((k for k in links if k.frame is frame), None)
        return self.finder.estimate(x, as_heard_hz), link


def _gps_sigma_m(world: World, receiver: ReceiverSim) -> float:
    spec = next(r for r in world.scenario.receivers if r.id == receiver.receiver_id)
    return spec.gps_sigma_m


def _truth(
    world: World, receiver: ReceiverSim, link: Link, frame: TxFrame, snr10k_db: float
) -> dict[str, object]:
    direct = link.paths[0]
    rng = np.random.default_rng([world.seed, 5, world.frame_number(frame), receiver.index])
    fades = world.propagation.fading_with(list(link.paths), rng)  # the draws of the rendering
    power = [abs(h) ** 2 * 10 ** (p.power_dbm / 10) for p, h in zip(link.paths, fades, strict=True)]
    total = sum(power)
    strongest = int(np.argmax(power[1:])) + 1 if len(power) > 1 else None
    off = (
        None
        if strongest is None
        else (link.paths[strongest].arrival_bearing_deg - direct.arrival_bearing_deg + 180.0)
        % 360.0
        - 180.0
    )
    rival = None if strongest is None else 10 * math.log10(power[strongest] / max(power[0], 1e-30))
    return {
        "snr10k_db": snr10k_db,
        "true_relative_deg": wrap_360(direct.arrival_bearing_deg - link.heading_deg),
        "true_bearing_deg": float(
            bearing_of_enu(link.tx_east_m - link.rx_east_m, link.tx_north_m - link.rx_north_m)
        ),
        "true_heading_deg": link.heading_deg,
        "reflected_share": sum(power[1:]) / total,
        "strongest_reflection_off_deg": off,
        "rival_db": rival,
    }


def heard_frames(
    world: World, receiver: ReceiverSim, noise_dbm_10k: float, detect_snr_db: float
) -> Iterator[tuple[TxFrame, float]]:
    """The frames ``receiver`` hears (SNR in 10 kHz over ``noise_dbm_10k`` at least
    ``detect_snr_db``, with the frame's fading), with their SNR."""
    for frame in world.frames(receiver.start_s):
        link = world.link(frame, receiver)
        snr = link.power_dbm - noise_dbm_10k
        if snr >= detect_snr_db:
            yield frame, snr


def drive(
    world: World, receiver: ReceiverSim, spec: ArraySpec, detect_snr_db: float = DETECT_SNR_DB
) -> list[ArrayPulse]:
    """Every pulse ``receiver`` hears on its drive, with the array's estimate and the truth."""
    cruiser = CruiserArray.build(world, receiver, spec)
    noise_10k = cruiser.stream.tuners.noise_dbm_per_hz + 40.0
    out = []
    for frame, snr in heard_frames(world, receiver, noise_10k, detect_snr_db):
        est, link = cruiser.estimate(frame)
        if link is None:
            continue
        out.append(
            ArrayPulse(
                t_s=frame.t_start_s, estimate=est,
                heading=cruiser.heading.at(frame.t_start_s + 0.014),
                **_truth(world, receiver, link, frame, snr),  # type: ignore[arg-type]
            )
        )  # fmt: skip
    return out


def array_bearings(
    world: World,
    receiver: ReceiverSim,
    spec: ArraySpec,
    pulses: list[Pulse],
    next_seq: Callable[[], int] | None = None,
    thin_s: float = THIN_S,
) -> list[Bearing]:
    """The bearings ``receiver``'s array sends for the ``pulses`` it reported (report mode)."""
    cruiser = CruiserArray.build(world, receiver, spec)
    seq = next_seq or itertools.count(10_000_000).__next__
    bearings = ArrayBearings(receiver.receiver_id, seq, thin_s)
    frames = {
        round((world.time_of(f.t_start_s) - world.start).total_seconds() * 1000): f
        for f in world.frames(receiver.start_s)
        if f.bracelet_index < len(world.bracelets)
    }
    out: list[Bearing] = []
    for pulse in sorted(pulses, key=lambda p: p.t):
        frame = frames.get(round((pulse.t - world.start).total_seconds() * 1000))
        if frame is None:
            continue
        est, _ = cruiser.estimate(frame)
        t_s = (pulse.t - world.start).total_seconds()
        out.extend(bearings.add(pulse, est, cruiser.heading.at(t_s + 0.014)))
    out.extend(bearings.flush())
    return out


def search_bearing(
    cruiser: CruiserArray, frame: TxFrame, rx_lat_lon: tuple[float, float], t: object
) -> tuple[float, float] | None:
    """(bearing_deg, sigma_deg) of one frame for a searching cruiser; None when the array
    gives none (weak, flagged, no heading)."""
    est, _ = cruiser.estimate(frame)
    heading = cruiser.heading.at(frame.t_start_s + 0.014)
    if est is None or heading is None or est.multipath:
        return None
    sigma = math.hypot(est.crb_sigma_deg, heading.sigma_deg)
    return wrap_360(est.relative_bearing_deg + heading.heading_deg), sigma
