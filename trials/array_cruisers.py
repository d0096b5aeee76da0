"""Array cruisers in simulated searches: the array's bearing for every pulse a cruiser hears.

A cruiser with a KrakenSDR on its roof (:class:`~firmware_sim.scenario.ArraySpec`) hears each
frame as the report-level simulation says (:mod:`firmware_sim.report_mode`); for each pulse it
hears, this module renders the pulse's window on every element (:mod:`firmware_sim.array`:
the frame's paths with their reflections, the tuners' offsets, noise, 8 bits), removes the
offsets with a calibration frame rendered once per cruiser, estimates the direction with the
receiver's own code (:mod:`receiver.doa`), takes the heading from the cruiser's GPS course
or, stopped or turning, its compass (:class:`~receiver.array_bearings.HeadingTracker`) and
makes the ``bearing`` reports the receiver would send (:class:`~receiver.array_bearings.
ArrayBearings`: weak and multipath-flagged pulses dropped, and those the drive's other
bearings disagree with, thinned for the uplink).

:func:`drive` gives every pulse's estimate beside the simulator's truth, for the benchmark.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from firmware_sim.array import (
    ARRAY_SAMPLE_RATE_HZ,
    ArrayStream,
    ArrayTuners,
    amplitudes_of_paths,
    array_stream,
    render_calibration,
    render_pulse,
)
from firmware_sim.bracelet import TxFrame
from firmware_sim.frontend import AUTO_GAIN_DB, THERMAL_DBM_PER_HZ
from firmware_sim.propagation import Path as RadioPath
from firmware_sim.propagation import Propagation
from firmware_sim.scenario import ArraySpec
from firmware_sim.world import Link, ReceiverSim, World
from receiver.array_bearings import (
    CAL_SIGMA_DEG,
    MIN_ESN0_DB,
    THIN_S,
    ArrayBearings,
    ArrayDirectionFinder,
    HeadingFix,
    HeadingTracker,
)
from receiver.doa import DoaEstimate, calibration_weights
from safetynet.angles import bearing_of_enu, wrap_360
from safetynet.arrays import ArrayGeometry
from safetynet.reports import CHANNEL_SPACING_HZ, Bearing, Pulse, channel_center_hz
from safetynet.rtl import nearest_gain_db

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
    rx_east_m: float = 0.0  # where the cruiser's GPS put it (local frame of the world)
    rx_north_m: float = 0.0


@dataclass
class CruiserArray:
    """One cruiser's array: its stream (for rendering), finder, calibration and heading."""

    world: World
    receiver: ReceiverSim
    spec: ArraySpec
    stream: ArrayStream
    finder: ArrayDirectionFinder
    weights: NDArray[np.complex128]
    heading: HeadingTracker

    @classmethod
    def build(cls, world: World, receiver: ReceiverSim, spec: ArraySpec) -> CruiserArray:
        stream = array_stream(world, receiver, spec)
        cal, _ = stream.render(0.0, CAL_SAMPLES, calibration=True)
        finder = ArrayDirectionFinder(stream.geometry, stream.sample_rate_hz, stream.center_hz)
        heading = HeadingTracker(
            gps_sigma_m=max(_gps_sigma_m(world, receiver), 0.1), keep_s=math.inf
        )  # the whole drive is fed at once
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
        gps_east_m, gps_north_m = receiver.reported_position(frame.t_start_s)
        out.append(
            ArrayPulse(
                t_s=frame.t_start_s, estimate=est,
                heading=cruiser.heading.at(frame.t_start_s + 0.014),
                rx_east_m=gps_east_m, rx_north_m=gps_north_m,
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


@dataclass
class SearchArray:
    """A searching cruiser's array in :mod:`trials.search`, whose teams move by the search's
    own rules rather than a scenario's route: the pulse's paths from where the team is, its
    heading from its travel (the GPS course's sigma) or, standing, the compass's. It sees one
    listen at a time, without the positions of the pulses before, so the drive check of
    :mod:`receiver.drive_consistency` is not run here."""

    tuners: ArrayTuners
    finder: ArrayDirectionFinder
    weights: NDArray[np.complex128]
    rng: np.random.Generator
    thin_s: float = THIN_S

    @classmethod
    def build(cls, world: World, index: int, noise_dbm_10k: float, spec: ArraySpec) -> SearchArray:
        """``noise_dbm_10k``: what the team hears against in 10 kHz (the search's own level,
        man-made noise included), which sets the tuners' effective noise figure."""
        geometry = ArrayGeometry.named(spec.kind, spec.elements)
        rng = np.random.default_rng([world.seed, 12, index])
        drawn = ArrayTuners.draw(geometry.n, rng, spec.gain_sd_db)
        noise_figure_db = noise_dbm_10k - 40.0 - THERMAL_DBM_PER_HZ
        # The gain that keeps the noise (and the calibration source) where the 8 bits hold it.
        gain_db = nearest_gain_db(AUTO_GAIN_DB - max(noise_figure_db - 4.0, 0.0))
        tuners = ArrayTuners(
            drawn.gain_offset_db, drawn.phase_offset_deg, gain_db=gain_db,
            noise_figure_db=noise_figure_db,
        )  # fmt: skip
        first = world.bracelets[0].bracelet.channel
        center = spec.center_hz or channel_center_hz(first) - CHANNEL_SPACING_HZ / 2
        fs = float(ARRAY_SAMPLE_RATE_HZ)
        weights = calibration_weights(render_calibration(tuners, CAL_SAMPLES, fs, rng))
        return cls(tuners, ArrayDirectionFinder(geometry, fs, center), weights, rng)

    def bearings(
        self,
        pulses: list[tuple[TxFrame, list[RadioPath]]],
        heading_deg: float,
        moving: bool,
    ) -> list[tuple[TxFrame, float, float]]:
        """(frame, bearing_deg, sigma_deg) for the pulses of one listen (each with the paths it
        took), at most one per ``thin_s``: the best of each window. Weak and flagged pulses give
        none."""
        sigma_h = (
            HeadingTracker().course_sigma_deg(4.0, 40.0)
            if moving
            else HeadingTracker().compass_sigma_deg
        )
        measured_heading = heading_deg + float(self.rng.normal(0.0, sigma_h))
        finder, fs = self.finder, self.finder.sample_rate_hz
        before_s, length_s = finder.window_s
        kept: list[tuple[TxFrame, float, float]] = []
        for frame, paths in pulses:
            fades = Propagation.fading_with(paths, self.rng)
            v = amplitudes_of_paths(paths, fades, heading_deg, finder.geometry, frame.freq_rf_hz)
            x = render_pulse(v, frame, frame.t_start_s - before_s, round(length_s * fs),
                             self.tuners, fs, finder.center_hz, self.rng)  # fmt: skip
            x = (x * self.weights[:, None]).astype(np.complex64)
            est = finder.estimate(x, frame.freq_rf_hz)
            if est is None or est.multipath or est.esn0_db < MIN_ESN0_DB:
                continue
            sigma = math.sqrt(est.crb_sigma_deg**2 + sigma_h**2 + CAL_SIGMA_DEG**2)
            bearing = wrap_360(est.relative_bearing_deg + measured_heading)
            if kept and frame.t_start_s - kept[-1][0].t_start_s < self.thin_s:
                if sigma < kept[-1][2]:
                    kept[-1] = (kept[-1][0], bearing, sigma)
                continue
            kept.append((frame, bearing, sigma))
        return kept
