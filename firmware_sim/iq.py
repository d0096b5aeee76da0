"""I/Q as one RTL-SDR in the field would deliver it: cu8 bytes, chunk by chunk.

:class:`IqStream` renders a receiver's view of a :class:`~firmware_sim.world.World`: thermal
noise, every frame on the air (CPFSK bursts at the right time, frequency and power through the
propagation model, antenna and fading), and the front end's impairments and quantisation. The
front end's settings may change between chunks (the rtl_tcp server applies client commands), and
each chunk records what was on the air in it for the ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from firmware_sim.waveform import burst
from firmware_sim.world import Link, ReceiverSim, World
from safetynet.reports import channel_center_hz
from safetynet.sntx import FRAME_S, RAMP_S


@dataclass
class Heard:
    """A frame present in the rendered I/Q, with what the receiver should measure of it."""

    link: Link
    sample_index: float  # of the first bit's start, on the receiver's sample clock
    freq_offset_hz: float  # from the tuned centre, as the receiver's clock measures it
    power_dbm: float
    noise_dbm_per_hz: float
    gain_db: float
    clipped: bool

    @property
    def cn0_dbhz(self) -> float:
        return self.power_dbm - self.noise_dbm_per_hz


@dataclass
class IqStream:
    world: World
    receiver: ReceiverSim
    t_start_s: float = 0.0
    rng: np.random.Generator = field(init=False)
    samples_done: int = 0
    t_next_s: float = 0.0
    _z: NDArray[np.complex64] = field(default_factory=lambda: np.empty(0, np.complex64), repr=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.world.seed, 6, self.receiver.index])
        self.t_next_s = self.t_start_s

    @property
    def frontend(self) -> Any:
        return self.receiver.frontend

    def read(
        self, n_samples: int, out: NDArray[np.uint8] | None = None
    ) -> tuple[NDArray[np.uint8], bool, list[Heard]]:
        """The next ``n_samples`` as cu8 (2·n bytes), whether the ADC clipped, the frames heard."""
        fe = self.receiver.frontend
        if self._z.size < n_samples:
            self._z = np.empty(n_samples, np.complex64)
        z = self._z[:n_samples]
        z[:] = 0
        fs_true = fe.true_sample_rate_hz
        t0 = self.t_next_s
        t1 = t0 + n_samples / fs_true
        heard: list[Heard] = []
        scale = 10.0 ** (-fe.cal_dbm_at_fullscale / 20.0)
        for frame in self.world.frames(t0 - FRAME_S - 2 * RAMP_S, t1 + RAMP_S):
            on_s, off_s = frame.t_start_s - RAMP_S, frame.t_start_s + FRAME_S + RAMP_S
            if off_s <= t0 or on_s >= t1:
                continue
            offset_hz = frame.freq_rf_hz - fe.lo_hz
            if abs(offset_hz) > 0.5 * fe.sample_rate_hz - 5_000:
                continue
            link = self.world.link(frame, self.receiver)
            first = max(0, math.floor((on_s - t0) * fs_true))
            last = min(n_samples, math.ceil((off_s - t0) * fs_true) + 1)
            a = complex(link.amplitude_sqrt_mw) * scale
            seg = burst(
                frame.bits, fs_true, t0 + first / fs_true, frame.t_start_s, offset_hz, last - first
            )
            z[first:last] += (seg * a).astype(np.complex64)
            if t0 <= frame.t_start_s < t1:  # a frame counts in the chunk where its first bit starts
                heard.append(
                    Heard(
                        link=link,
                        sample_index=self.samples_done + (frame.t_start_s - t0) * fs_true,
                        freq_offset_hz=offset_hz / (1.0 + fe.residual_ppm * 1e-6),
                        power_dbm=link.power_dbm,
                        noise_dbm_per_hz=fe.noise_dbm_per_hz,
                        gain_db=fe.effective_gain_db,
                        clipped=abs(a) + abs(fe.dc_offset) > 1.0,
                    )
                )
        fe.add_noise(z, self.rng)
        cu8, clipped = fe.digitise(z, out)
        self.samples_done += n_samples
        self.t_next_s = t1
        return cu8, clipped, heard


def heard_record(
    world: World, receiver: ReceiverSim, heard: Heard, sample_rate_hz: float, center_hz: float
) -> dict[str, Any]:
    """Ground truth of one frame as received (a JSON object; ``kind`` = ``"rx"``)."""
    frame = heard.link.frame
    lat, lon = world.frame.to_lat_lon(heard.link.rx_east_m, heard.link.rx_north_m)
    return {
        "kind": "rx",
        "receiver_id": receiver.receiver_id,
        "bracelet_id": f"{frame.bracelet_id:04X}",
        "channel": frame.channel,
        "t_start_s": frame.t_start_s,
        "sample_index": heard.sample_index,
        "t_start_rx_s": heard.sample_index / sample_rate_hz,
        "status_byte": frame.status_byte,
        "freq_hz": center_hz + heard.freq_offset_hz,
        "channel_offset_hz": center_hz + heard.freq_offset_hz - channel_center_hz(frame.channel),
        "power_dbm": round(heard.power_dbm, 3),
        "mean_power_dbm": round(heard.link.mean_power_dbm, 3),
        "cn0_dbhz": round(heard.cn0_dbhz, 3),
        "snr10k_db": round(heard.cn0_dbhz - 40.0, 3),
        "gain_db": heard.gain_db,
        "clipped": heard.clipped,
        "rx_lat_deg": lat,
        "rx_lon_deg": lon,
        "rx_heading_deg": round(heard.link.heading_deg, 3),
    }
