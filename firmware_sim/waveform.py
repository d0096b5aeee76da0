"""The SNTX-1 waveform: continuous-phase 2-FSK with raised-cosine ramps (spec §4).

Baseband around the receiver's tuning: bit 1 → ``f_off + 2 kHz``, bit 0 → ``f_off − 2 kHz``,
rectangular frequency pulses, the phase continuous across bits; the carrier ramps up over
0.5 ms on the first bit's tone before the first bit, and down over 0.5 ms on the last bit's tone
after it (29 ms on the air).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from safetynet.sntx import BIT_RATE_BPS, RAMP_S, TONE_DEVIATION_HZ


def burst(
    bits: NDArray[np.uint8],
    sample_rate_hz: float,
    t_first_sample_s: float,
    t_start_s: float,
    freq_offset_hz: float,
    n_samples: int,
    phase0_rad: float = 0.0,
) -> NDArray[np.complex64]:
    """Unit-amplitude burst sampled at ``t_first_sample_s + n/fs`` for ``n_samples`` samples.

    ``t_start_s`` is the start of the first bit; samples outside the ramps are zero. The phase is
    that of a carrier at ``freq_offset_hz`` referenced to ``t_start_s`` plus ``phase0_rad``.
    """
    t = t_first_sample_s + np.arange(n_samples) / sample_rate_hz - t_start_s  # s since first bit
    bit_s = 1.0 / BIT_RATE_BPS
    n_bits = bits.size
    index = np.clip(np.floor(t / bit_s).astype(np.int64), 0, n_bits - 1)
    symbols = 2.0 * bits.astype(np.float64) - 1.0
    # Phase accumulated by the FSK deviation at the start of each bit (continuous phase).
    phase_at_bit = np.concatenate(
        ([0.0], np.cumsum(symbols) * 2 * np.pi * TONE_DEVIATION_HZ * bit_s)
    )
    phase = (
        phase_at_bit[index]
        + 2 * np.pi * TONE_DEVIATION_HZ * symbols[index] * (t - index * bit_s)
        + 2 * np.pi * freq_offset_hz * t
        + phase0_rad
    )
    envelope = np.zeros_like(t)
    end_s = n_bits * bit_s
    body = (t >= 0) & (t < end_s)
    envelope[body] = 1.0
    up = (t >= -RAMP_S) & (t < 0)
    envelope[up] = 0.5 * (1 - np.cos(np.pi * (t[up] + RAMP_S) / RAMP_S))
    down = (t >= end_s) & (t < end_s + RAMP_S)
    envelope[down] = 0.5 * (1 + np.cos(np.pi * (t[down] - end_s) / RAMP_S))
    out: NDArray[np.complex64] = (envelope * np.exp(1j * phase)).astype(np.complex64)
    return out
