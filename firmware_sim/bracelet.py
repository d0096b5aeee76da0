"""Bracelet firmware: when each SNTX-1 frame goes on the air, and with what bits.

A bracelet starts at ``t0_s`` and sends frame ``k`` at ``t0 + k·T + j_k``, where ``T`` is 1 s
scaled by its clock error (within ±100 ppm) and ``j_k`` is uniform in ±25 ms, independent per
frame. The 5-bit ``seq`` counts frames; the status bits follow the modelled battery (low below
10 %), the strap, and the caregiver's test mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from safetynet.reports import channel_center_hz
from safetynet.sntx import FRAME_JITTER_S, FRAME_PERIOD_S, frame_bits

LOW_BATTERY_FRACTION = 0.10


@dataclass(frozen=True)
class TxFrame:
    """One transmitted frame: what and when, for the waveform and for the truth."""

    bracelet_index: int
    bracelet_id: int
    channel: int
    t_start_s: float  # start of the first preamble bit; the ramp-up begins 0.5 ms earlier
    seq: int
    status_byte: int
    freq_rf_hz: float  # carrier on the air, including the bracelet's own error
    eirp_dbm: float

    @property
    def bits(self) -> np.ndarray:
        return frame_bits(self.bracelet_id, self.status_byte)


@dataclass
class Bracelet:
    """A worn bracelet. Battery in fraction of capacity, drained linearly per second."""

    bracelet_id: int
    channel: int
    eirp_dbm: float = -10.0
    carrier_error_ppm: float = 0.0
    clock_error_ppm: float = 0.0
    battery_fraction: float = 0.8
    battery_drain_per_s: float = 0.0
    strap_open_from_s: float | None = None
    test_mode: bool = False
    first_seq: int = 0
    index: int = 0
    t0_s: float = 0.0
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def __post_init__(self) -> None:
        if not 0 < self.bracelet_id < 0xFFFF:
            raise ValueError(f"bracelet ID must be within 0001..FFFE, got {self.bracelet_id:04X}")
        channel_center_hz(self.channel)  # validates the channel
        if abs(self.carrier_error_ppm) > 2.5:
            raise ValueError(f"carrier error must be within ±2.5 ppm, got {self.carrier_error_ppm}")
        if abs(self.clock_error_ppm) > 100:
            raise ValueError(f"clock error must be within ±100 ppm, got {self.clock_error_ppm}")

    @property
    def freq_rf_hz(self) -> float:
        return channel_center_hz(self.channel) * (1.0 + self.carrier_error_ppm * 1e-6)

    def status_byte(self, k: int, t_s: float) -> int:
        battery = self.battery_fraction - self.battery_drain_per_s * (t_s - self.t0_s)
        low = battery < LOW_BATTERY_FRACTION
        strap = self.strap_open_from_s is not None and t_s >= self.strap_open_from_s
        seq = (self.first_seq + k) % 32
        return int(seq * 8 + self.test_mode * 4 + strap * 2 + bool(low))

    def frames(self, t_end_s: float) -> list[TxFrame]:
        """Every frame that starts before ``t_end_s`` (deterministic for a given generator)."""
        period_s = FRAME_PERIOD_S * (1.0 + self.clock_error_ppm * 1e-6)
        n = max(0, int(np.ceil((t_end_s - self.t0_s) / period_s)) + 1)
        jitter = self._rng.uniform(-FRAME_JITTER_S, FRAME_JITTER_S, size=n)
        frames = []
        for k in range(n):
            t = self.t0_s + k * period_s + jitter[k]
            if t >= t_end_s:
                break
            if t < 0:
                continue
            status = self.status_byte(k, t)
            frames.append(
                TxFrame(
                    self.index, self.bracelet_id, self.channel, t, status >> 3, status,
                    self.freq_rf_hz, self.eirp_dbm,
                )
            )  # fmt: skip
        return frames
