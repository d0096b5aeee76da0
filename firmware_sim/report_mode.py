"""Report-level simulation: the reports a scenario's receivers would send, without I/Q.

For large scenarios (hours, many receivers) rendering I/Q is too slow; this mode draws, per
frame and receiver, what a receiver's detector would report, from the same link budget as the
I/Q path (:meth:`~firmware_sim.world.World.link`):

- ``pulse``: when the SNR in 10 kHz reaches the unit's detection threshold; decoded (ID and
  status) from its decoding threshold; RSSI and SNR with measurement noise; position with GPS
  error, heading with compass error;
- ``bearing``: at the end of each Yagi sweep that heard at least ``MIN_SWEEP_PULSES`` pulses,
  toward the strongest path (a reflector's direction where it dominates), with the compass bias
  and a Gaussian error whose standard deviation — reported as ``sigma_deg`` — shrinks with the
  number of pulses and their SNR;
- ``silence``: every ``SILENCE_WINDOW_S`` seconds without a pulse on a scenario's channel;
- ``status``: every 5 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from firmware_sim.world import ReceiverSim, World
from safetynet.angles import wrap_360
from safetynet.reports import (
    Bearing,
    FieldReport,
    Pulse,
    PulseStatus,
    Silence,
    Status,
)

MIN_SWEEP_PULSES = 5
SILENCE_WINDOW_S = 10.0
STATUS_EVERY_S = 5.0
SWEEP_SIGMA_FLOOR_DEG = 3.0


def sweep_sigma_deg(n_pulses: int, mean_snr_db: float) -> float:
    """One-sigma error of a sweep bearing from ``n_pulses`` at ``mean_snr_db`` (10 kHz).

    A pattern fit's error falls as 1/√(n·SNR) (amplitude-comparison direction finding); the
    floor stands for the operator's and the compass's own scatter.
    """
    snr_lin = 10.0 ** (max(mean_snr_db, -10.0) / 10.0)
    return float(math.hypot(SWEEP_SIGMA_FLOOR_DEG, 120.0 / math.sqrt(n_pulses * (1.0 + snr_lin))))


def simulate_reports(world: World) -> list[FieldReport]:
    """Every report of every receiver, in time order."""
    reports: list[FieldReport] = []
    for receiver in world.receivers:
        reports.extend(_receiver_reports(world, receiver))
    reports.sort(key=lambda r: (r.t, r.receiver_id, r.seq))
    return reports


def _receiver_reports(world: World, rx: ReceiverSim) -> Iterator[FieldReport]:
    rng = np.random.default_rng([world.seed, 8, rx.index])
    seq = 0
    channels = sorted({b.bracelet.channel for b in world.bracelets})
    noise_10k_dbm = rx.frontend.noise_dbm_per_hz + 40.0
    last_heard = dict.fromkeys(channels, rx.start_s)
    sweep: list[
        tuple[Pulse, float, float]
    ] = []  # pulse, SNR, true arrival bearing of its best path
    next_status = rx.start_s
    frames = world.frames(rx.start_s)
    ticks = np.arange(rx.start_s, world.duration_s, 1.0)
    fi = 0
    was_sweeping = False
    for tick in ticks:
        sweeping = rx.pose.is_sweeping(tick)
        if was_sweeping and not sweeping and sweep:
            bearing = _sweep_bearing(world, rx, sweep, tick, seq, rng)
            if bearing is not None:
                yield bearing
                seq += 1
            sweep = []
        if not sweeping:
            sweep = []
        was_sweeping = sweeping
        while fi < len(frames) and frames[fi].t_start_s < tick + 1.0:
            frame = frames[fi]
            fi += 1
            link = world.link(frame, rx)
            snr_db = link.power_dbm - noise_10k_dbm
            if snr_db < rx.unit.detect_snr_db:
                continue
            decoded = snr_db >= rx.unit.decode_snr_db
            lat, lon = _reported_lat_lon(world, rx, frame.t_start_s)
            heading = (
                wrap_360(link.heading_deg + rx.errors.compass())
                if rx.pattern.name != "omni"
                else None
            )
            pulse = Pulse(
                receiver_id=rx.receiver_id,
                seq=seq,
                t=world.time_of(frame.t_start_s),
                channel=frame.channel,
                freq_hz=round(frame.freq_rf_hz - (rx.frontend.lo_hz - rx.frontend.center_hz)),
                bracelet_id=f"{frame.bracelet_id:04X}" if decoded else None,
                status=PulseStatus.from_byte(frame.status_byte) if decoded else None,
                rssi_dbm=round(link.power_dbm + float(rng.normal(0, rx.unit.rssi_noise_db)), 1),
                snr_db=round(snr_db + float(rng.normal(0, rx.unit.rssi_noise_db)), 1),
                gain_db=rx.frontend.effective_gain_db,
                lat_deg=lat,
                lon_deg=lon,
                alt_m=rx.altitude_m if rx.altitude_m > 0 else None,
                heading_deg=None if heading is None else round(heading, 1) % 360.0,
                antenna=rx.pattern.name,
            )
            seq += 1
            yield pulse
            last_heard[frame.channel] = frame.t_start_s
            if sweeping:
                best = max(link.paths, key=lambda p: p.power_dbm)
                sweep.append((pulse, snr_db, best.arrival_bearing_deg))
        for ch in channels:
            if tick + 1.0 - last_heard[ch] >= SILENCE_WINDOW_S:
                lat, lon = _reported_lat_lon(world, rx, tick + 1.0)
                yield Silence(
                    receiver_id=rx.receiver_id, seq=seq, t=world.time_of(tick + 1.0), channel=ch,
                    lat_deg=lat, lon_deg=lon, window_s=SILENCE_WINDOW_S,
                    noise_dbm=round(noise_10k_dbm, 1),
                    antenna=rx.pattern.name,
                )  # fmt: skip
                seq += 1
                last_heard[ch] = tick + 1.0
        if tick >= next_status:
            lat, lon = _reported_lat_lon(world, rx, tick)
            yield Status(
                receiver_id=rx.receiver_id, seq=seq, t=world.time_of(tick),
                lat_deg=lat, lon_deg=lon,
                gps_fix=True, gain_db=rx.frontend.effective_gain_db,
                noise_dbm=round(noise_10k_dbm, 1), clipping=False,
                battery_v=3.9 if rx.kind == "handheld" else None,
                lo_error_ppm=None if rx.kind == "handheld" else round(rx.frontend.residual_ppm, 1),
            )  # fmt: skip
            seq += 1
            next_status += STATUS_EVERY_S


def _reported_lat_lon(world: World, rx: ReceiverSim, t_s: float) -> tuple[float, float]:
    lat, lon = world.frame.to_lat_lon(*rx.reported_position(t_s))
    return round(lat, 7), round(lon, 7)


def _sweep_bearing(
    world: World,
    rx: ReceiverSim,
    sweep: list[tuple[Pulse, float, float]],
    t_end_s: float,
    seq: int,
    rng: np.random.Generator,
) -> Bearing | None:
    by_bracelet: dict[str | None, list[tuple[Pulse, float, float]]] = {}
    for item in sweep:
        by_bracelet.setdefault(item[0].bracelet_id, []).append(item)
    key, items = max(by_bracelet.items(), key=lambda kv: len(kv[1]))
    if len(items) < MIN_SWEEP_PULSES:
        return None
    snrs = np.array([snr for _, snr, _ in items])
    sigma = sweep_sigma_deg(len(items), float(np.mean(snrs)))
    # The direction the loudest pulses came from: the strongest path of the pulse with the best SNR.
    arrival = items[int(np.argmax(snrs))][2]
    measured = wrap_360(arrival + rx.errors.compass_bias_deg + float(rng.normal(0, sigma)))
    first = items[0][0]
    assert first.lat_deg is not None
    assert first.lon_deg is not None
    return Bearing(
        receiver_id=rx.receiver_id, seq=seq, t=world.time_of(t_end_s), bracelet_id=key,
        channel=first.channel, lat_deg=first.lat_deg, lon_deg=first.lon_deg,
        bearing_deg=round(measured, 1) % 360.0,
        sigma_deg=round(math.hypot(sigma, rx.errors.compass_noise_deg), 1),
        method="sweep", n_pulses=len(items),
    )  # fmt: skip
