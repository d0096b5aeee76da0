"""Sensitivity, timing and the cadence search, against the simulator's truth and the spec vectors.

Each test renders a few seconds of I/Q at 1.024 MS/s with bracelets placed (free space, no
fading) at the C/N0 they need, runs the real receiver and compares with the frames the simulator
put on the air.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from firmware_sim.iq import Heard, IqStream
from firmware_sim.propagation import free_space_loss_1m_db
from firmware_sim.scenario import parse_scenario
from firmware_sim.world import World
from receiver.attribution import CadenceTracker
from receiver.demod import decode_bits
from receiver.samples import Chunk
from receiver.sdr import ReceiverConfig, SdrReceiver
from safetynet.geodesy import forward
from safetynet.reports import Pulse
from tests.conftest import VECTORS_DIR

FS = 1_024_000
ORIGIN = (42.30206, -71.05761)
NOISE_DBM_PER_HZ = -170.0  # thermal noise and the simulated dongle's 4 dB noise figure


def world(cn0s: list[float], seconds: float, ppm: float, seed: int = 7) -> World:
    """One fixed receiver; bracelet ``i`` on channel ``4 + 4·i`` at ``cn0s[i]`` dB-Hz."""
    bracelets = []
    for i, cn0 in enumerate(cn0s):
        loss_db = -10.0 - (cn0 + NOISE_DBM_PER_HZ)
        metres = 10 ** ((loss_db - free_space_loss_1m_db(216.5e6)) / 20)
        lat, lon = forward(ORIGIN[0], ORIGIN[1], 0.0, metres)
        bracelets.append(
            {"id": f"{0x4100 + i:04X}", "channel": 4 + 4 * i,
             "carrier_error_ppm": 1.1 * (i % 3 - 1),
             "walker": {"stationary": True, "start": [lat, lon]}}
        )  # fmt: skip
    data: dict[str, Any] = {
        "name": "t", "seed": seed, "start": "2026-11-28T14:00:00Z", "duration_s": seconds + 1,
        "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]}, "propagation": {"exponent": 2.0},
        "bracelets": bracelets,
        "receivers": [{"id": "FIX", "kind": "fixed", "position": list(ORIGIN), "gps_sigma_m": 0.0,
                       "frontend": {"sample_rate_hz": FS, "ppm_error": ppm, "gain_db": 40.2}}],
    }  # fmt: skip
    return World(parse_scenario(data))


@dataclasses.dataclass
class Source:
    """The simulator's stream as a sample source, keeping the truth of what it rendered."""

    world: World
    seconds: float
    sample_rate_hz: float = FS
    center_hz: float = 216_500_000
    position: tuple[float, float, float] | None = None
    live: bool = False

    def __post_init__(self) -> None:
        self.start_time = self.world.start
        self.stream = IqStream(self.world, self.world.receivers[0])
        self.truth: list[Heard] = []
        self.done = 0

    def read(self, n: int) -> Chunk | None:
        if self.done >= self.seconds * FS:
            return None
        cu8, _, heard = self.stream.read(n)
        self.truth += heard
        fe = self.world.receivers[0].frontend
        chunk = Chunk(self.done, cu8=cu8.copy(), gain_db=40.2,
                      cal_dbm_at_fullscale=fe.cal_dbm_at_fullscale)  # fmt: skip
        self.done += n
        return chunk

    def set_gain(self, gain_db: float | None) -> bool:
        return False

    def close(self) -> None:
        pass


def hear(w: World, seconds: float, **config: Any) -> tuple[list[Pulse], list[Heard]]:
    source = Source(w, seconds)
    receiver = SdrReceiver(source, ReceiverConfig(**config))
    pulses = [r for r in receiver.run() if isinstance(r, Pulse)]
    # Frames whose first bit lies in the samples rendered, clear of the floor's first second.
    truth = [h for h in source.truth if 1.2 < h.sample_index / FS < seconds - 0.1]
    return pulses, truth


def paired(pulses: list[Pulse], truth: list[Heard], w: World) -> list[tuple[Heard, Pulse | None]]:
    """Each true frame with the pulse on its channel within 15 ms of it (None if none)."""
    out = []
    for h in truth:
        t = h.sample_index / FS
        near = [
            p for p in pulses
            if p.channel == h.link.frame.channel
            and abs((p.t - w.start).total_seconds() - t) < 0.015
        ]  # fmt: skip
        out.append((h, near[0] if near else None))
    return out


def test_strong_frames_reported_once_on_their_channel_with_unbiased_start_times() -> None:
    """Five bracelets at 50–58 dB-Hz, a dongle 40 ppm off: every frame once, on its own channel,
    its start within a few µs of the truth (median; the old estimate was 15 µs late)."""
    w = world([50.0, 52.0, 54.0, 56.0, 58.0], 6.0, ppm=40.0)
    pulses, truth = hear(w, 6.0)
    pairs = paired(pulses, truth, w)
    assert all(p is not None for _, p in pairs)
    inside = [p for p in pulses if 1.15 < (p.t - w.start).total_seconds() < 5.9]
    assert len(inside) == len(truth)  # none twice, none in a neighbouring channel, none astray
    errors_us = np.array(
        [((p.t - w.start).total_seconds() - h.sample_index / FS) * 1e6 for h, p in pairs if p]
    )
    assert abs(np.median(errors_us)) < 3.0
    assert np.percentile(np.abs(errors_us), 90) < 10.0
    assert all(p.bracelet_id == f"{h.link.frame.bracelet_id:04X}" for h, p in pairs if p)


def test_weak_frames_detected_and_decoded_near_the_limits() -> None:
    """At 36 dB-Hz (−4 dB in 10 kHz, 0.5 dB above the energy detector's single-frame limit of
    bench/receiver_detection.py) nine frames in ten are detected; at 42 dB-Hz (+2 dB) four in
    five decode, against the simulator's IDs and status bytes. No other ID is ever reported."""
    w = world([36.0, 36.0, 42.0, 42.0], 12.0, ppm=-33.0)
    pulses, truth = hear(w, 12.0, cadence=False)
    pairs = paired(pulses, truth, w)
    weak = [(h, p) for h, p in pairs if h.cn0_dbhz < 39]
    decodable = [(h, p) for h, p in pairs if h.cn0_dbhz > 39]
    assert sum(p is not None for _, p in weak) >= 0.85 * len(weak)
    right = [
        p is not None and p.bracelet_id == f"{h.link.frame.bracelet_id:04X}"
        and p.status is not None and p.status.byte == h.link.frame.status_byte
        for h, p in decodable
    ]  # fmt: skip
    assert sum(right) >= 0.75 * len(decodable)
    sent = {f"{h.link.frame.bracelet_id:04X}" for h in truth}
    assert {p.bracelet_id for p in pulses if p.bracelet_id} <= sent


def test_cadence_search_finds_frames_below_the_single_frame_threshold() -> None:
    """A bracelet heard at 50 dB-Hz for 3 s, then at 31 dB-Hz (4 dB below the single-frame 90 %
    point): the cadence search finds most of its frames, at their true times; without it, the
    receiver hears almost none."""
    w = world([50.0, 50.0], 14.0, ppm=12.0)
    frames = w.frames

    def into_the_basement(t_from_s: float = 0.0, t_to_s: float | None = None) -> list[Any]:
        return [
            dataclasses.replace(f, eirp_dbm=f.eirp_dbm - 19.0) if f.t_start_s > 3.0 else f
            for f in frames(t_from_s, t_to_s)
        ]

    w.frames = into_the_basement  # type: ignore[method-assign]
    found = {}
    for cadence in (True, False):
        pulses, truth = hear(w, 14.0, cadence=cadence)
        weak = [(h, p) for h, p in paired(pulses, truth, w) if h.sample_index / FS > 4.0]
        assert all(abs(h.cn0_dbhz - 31.0) < 0.1 for h, _ in weak)
        found[cadence] = sum(p is not None for _, p in weak) / len(weak)
        # Undecoded, they are attributed by the channel's cadence to the bracelet that sent them.
        tracker = CadenceTracker()
        owner = {id(p): tracker.observe(p) for p in sorted(pulses, key=lambda p: p.t)}
        assert all(owner[id(p)] == f"{h.link.frame.bracelet_id:04X}" for h, p in weak if p)
        # Every pulse on the bracelets' channels is one of their frames (no false finds).
        inside = [
            p for p in pulses
            if p.channel in (4, 8) and 1.25 < (p.t - w.start).total_seconds() < 13.8
        ]  # fmt: skip
        heard = [h for h, p in paired(pulses, truth, w) if p and 1.25 < h.sample_index / FS < 13.8]
        assert len(inside) == len(heard)
    assert found[True] >= 0.7
    assert found[False] <= 0.2


@pytest.mark.parametrize("flips", [0, 1, 2])
def test_coherent_decisions_correct_one_weak_bit_and_never_two(flips: int) -> None:
    """The spec's frames as ideal tone-filter outputs: the frame decodes as itself with no error
    or with its least reliable payload bit wrong (the CRC finds and mends it); with two errors it
    does not decode at all, never as another ID."""
    vectors = json.loads((VECTORS_DIR / "frames.json").read_text())["frames"]
    rng = np.random.default_rng(flips)
    for frame in vectors:
        bits = np.array([int(c) for c in frame["bits"]], np.uint8)
        phase = np.exp(1j * rng.uniform(0, 2 * np.pi))
        z1 = np.where(bits == 1, 1.0, 0.0) * phase + 0.01 * rng.standard_normal(56)
        z0 = np.where(bits == 0, 1.0, 0.0) * phase + 0.01 * rng.standard_normal(56)
        wrong = rng.choice(np.arange(24, 56), size=flips, replace=False)
        for b in wrong:  # the bit barely on the wrong side
            z1[b], z0[b] = (0.45, 0.55) if bits[b] else (0.55, 0.45)
            z1[b] *= phase
            z0[b] *= phase
        _, bracelet_id, status = decode_bits(z1, z0)
        if flips < 2:
            assert bracelet_id == int(frame["bracelet_id"], 16)
            assert status == int(frame["status_byte"], 16)
        else:
            assert bracelet_id is None


def test_weak_frames_found_off_their_start_or_carrier_are_reported_at_their_own() -> None:
    """Three bracelets on adjacent channels, fading, a dongle 25 ppm off: a generated recording
    in which two frames of ch 3, at 35 and 36 dB-Hz, were reported off their frames — that of
    6.03 s 10 ms late (its spectrogram window started 5.4 ms after it, out of the header
    search's reach, which found payload bits lined up with the header's), that of 7.04 s
    5.9 ms late and 3.9 kHz low (nominated on its statistic's side peak, 3.75 kHz below its
    carrier, where the header's tone-swapped copy was the best cell). Against the simulator's
    truth, every pulse is a frame's, on its channel, at its start and carrier, and both are
    heard."""
    bracelets = [
        (2, 0.7516887, 42.66310370), (3, -0.8614190, 43.56233907), (4, 0.9610926, 42.61394380)
    ]  # fmt: skip
    data: dict[str, Any] = {
        "name": "t", "seed": 3012, "start": "2026-11-28T14:00:00Z", "duration_s": 9.0,
        "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]},
        "propagation": {"exponent": 2.0, "rician_k_db": 10.2856795},
        "bracelets": [
            {"id": f"{0x3000 + i:04X}", "channel": channel, "carrier_error_ppm": ppm,
             "walker": {"stationary": True, "start": [lat, ORIGIN[1]]}}
            for i, (channel, ppm, lat) in enumerate(bracelets)
        ],
        "receivers": [{"id": "FIX", "kind": "fixed", "position": list(ORIGIN), "gps_sigma_m": 0.0,
                       "frontend": {"sample_rate_hz": FS, "ppm_error": -25.1672174,
                                    "gain_db": 40.2}}],
    }  # fmt: skip
    w = World(parse_scenario(data))
    pulses, truth = hear(w, 8.0, cadence=False)
    weak = [h for h in truth if h.link.frame.channel == 3 and 6.0 < h.sample_index / FS < 7.1]
    assert [round(h.sample_index / FS, 2) for h in weak] == [6.03, 7.04]
    assert all(h.cn0_dbhz < 37.0 for h in weak)
    for p in pulses:
        t = (p.t - w.start).total_seconds()
        if not 1.2 < t < 7.9:
            continue
        h = min(truth, key=lambda h: abs(h.sample_index / FS - t))
        assert p.channel == h.link.frame.channel, t
        assert abs(t - h.sample_index / FS) < 20e-6, t
        assert abs(p.freq_hz - (216_500_000 + h.freq_offset_hz)) < 300.0, t
    for h in weak:
        assert any(
            abs((p.t - w.start).total_seconds() - h.sample_index / FS) < 20e-6 for p in pulses
        )
