"""Detecting frames in the band spectrogram: noise floor per bin, a matched energy statistic,
an extreme-value threshold.

**Noise floor.** Each chunk's blocks are averaged in ten groups per bin; the median of the group
means (robust to a 29 ms pulse taking a few groups) is scaled to a mean, averaged over ±8 bins
and smoothed across chunks with a time constant of about two seconds.

**Statistic.** A frame puts its energy in a known spread of bins around its carrier for 28 ms.
With the spectrogram normalised by the floor (noise cells are then Exp(1), independent across
bins and blocks), the optimal detector for a weak signal is the energy weighted by the expected
signal share of each cell: ``D[b, k] = Σ_{j<28} Σ_m w_m · S[b + j, k + m] / floor[k + m]``, with
``w`` the frame's mean spectral profile in 1 kHz bins (computed, not guessed, in
:func:`frame_profile`). Under noise alone ``D`` has mean ``28·Σw`` and variance ``28·Σw²``; the
threshold is the gamma quantile with those moments at the false-alarm probability per cell that
gives the wanted false pulses per channel-hour.

**Peaks.** Cells above the threshold are kept; a frame is the largest of them with no larger one
within ±30 blocks and ±16 bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage
import scipy.stats
from numpy.typing import NDArray

from receiver.channelize import BIN_HZ
from safetynet.sntx import BIT_RATE_BPS, FRAME_BITS, RAMP_S, TONE_DEVIATION_HZ

WINDOW_BLOCKS = 28
PEAK_HALF_BLOCKS = 30
PEAK_HALF_BINS = 16  # a frame's energy spans ±8 kHz; its statistic has side peaks at ±4 kHz
PROFILE_HALF_BINS = 8
FLOOR_GROUPS = 10
FLOOR_TIME_CONSTANT_S = 2.0
FLOOR_SMOOTH_BINS = 17


def cpfsk_baseband(bits: NDArray[np.uint8], sample_rate_hz: float, lead_s: float = 0.0) -> NDArray[np.complex128]:
    """Unit-amplitude SNTX-1 burst at 0 Hz carrier, first bit at ``lead_s``, with its ramps."""
    n = int(round((lead_s + FRAME_BITS / BIT_RATE_BPS + RAMP_S + 1e-3) * sample_rate_hz))
    t = np.arange(n) / sample_rate_hz - lead_s
    bit_s = 1.0 / BIT_RATE_BPS
    index = np.clip(np.floor(t / bit_s).astype(int), 0, bits.size - 1)
    symbols = 2.0 * bits - 1.0
    phase_at_bit = np.concatenate(([0.0], np.cumsum(symbols) * 2 * np.pi * TONE_DEVIATION_HZ * bit_s))
    phase = phase_at_bit[index] + 2 * np.pi * TONE_DEVIATION_HZ * symbols[index] * (t - index * bit_s)
    end = bits.size * bit_s
    env = np.where((t >= 0) & (t < end), 1.0, 0.0)
    up = (t >= -RAMP_S) & (t < 0)
    env[up] = 0.5 * (1 - np.cos(np.pi * (t[up] + RAMP_S) / RAMP_S))
    down = (t >= end) & (t < end + RAMP_S)
    env[down] = 0.5 * (1 + np.cos(np.pi * (t[down] - end) / RAMP_S))
    return env * np.exp(1j * phase)


def frame_profile(sample_rate_hz: float, n_frames: int = 64, seed: int = 1) -> NDArray[np.float64]:
    """Mean share of a frame's energy per 1 kHz bin offset (−8..+8) from its carrier bin.

    Averaged over random payloads, carrier offsets within a bin and block alignments.
    """
    rng = np.random.default_rng(seed)
    n = round(sample_rate_hz / BIN_HZ)
    profile = np.zeros(2 * PROFILE_HALF_BINS + 1)
    for _ in range(n_frames):
        bits = np.unpackbits(np.array([0xAA, 0x2D, 0xD4, *rng.integers(0, 256, 4)], dtype=np.uint8))
        z = cpfsk_baseband(bits, sample_rate_hz, lead_s=float(rng.uniform(0.001, 0.002)))
        offset = float(rng.uniform(-0.5, 0.5)) * BIN_HZ
        z = z * np.exp(2j * np.pi * offset * np.arange(z.size) / sample_rate_hz)
        blocks = z[: (z.size // n) * n].reshape(-1, n)
        power = np.abs(np.fft.fft(blocks, axis=1)) ** 2
        energy = np.fft.fftshift(power.sum(axis=0))
        centre = n // 2
        profile += energy[centre - PROFILE_HALF_BINS : centre + PROFILE_HALF_BINS + 1]
    return profile / profile.sum()


@dataclass
class NoiseFloor:
    """Per-bin noise power (full-scale units per 1 kHz bin), tracked over time."""

    n_bins: int
    block_s: float = 1e-3
    floor: NDArray[np.float64] | None = None
    _group_bias: dict[int, float] = field(default_factory=dict)

    def update(self, power: NDArray[np.float32]) -> None:
        blocks = power.shape[0]
        group = max(1, blocks // FLOOR_GROUPS)
        groups = blocks // group
        if groups < 3:
            return
        means = power[: groups * group].reshape(groups, group, -1).mean(axis=1)
        estimate = np.median(means, axis=0) / self._bias(group, groups)
        # The floor is smooth in frequency (the tuner's passband): averaging ±8 bins cuts the
        # estimate's own noise fourfold. The zeroed DC bin takes its neighbours' level.
        zero = estimate <= 0
        if zero.any() and not zero.all():
            estimate[zero] = np.interp(np.flatnonzero(zero), np.flatnonzero(~zero), estimate[~zero])
        estimate = scipy.ndimage.uniform_filter1d(estimate, FLOOR_SMOOTH_BINS, mode="nearest")
        if self.floor is None:
            self.floor = estimate.astype(np.float64)
            return
        alpha = 1.0 - math.exp(-blocks * self.block_s / FLOOR_TIME_CONSTANT_S)
        self.floor += alpha * (estimate - self.floor)

    def _bias(self, group: int, groups: int) -> float:
        """Median of a mean of ``group`` Exp(1) cells (median over ``groups``), by simulation."""
        key = group * 1000 + groups
        if key not in self._group_bias:
            rng = np.random.default_rng(7)
            sims = rng.exponential(size=(4000, groups, group)).mean(axis=2)
            self._group_bias[key] = float(np.mean(np.median(sims, axis=1)))
        return self._group_bias[key]


@dataclass(frozen=True)
class Candidate:
    block: int  # absolute index of the statistic window's first block
    bin: int  # band index of the carrier bin
    statistic: float
    threshold: float


@dataclass
class Detector:
    """The matched energy statistic and its threshold; stateful across chunks."""

    profile: NDArray[np.float64]
    false_per_channel_hour: float = 1.0
    channel_bins: int = 25
    threshold: float = field(init=False)
    _f_tail: NDArray[np.float32] | None = None  # last WINDOW_BLOCKS−1 rows of F
    _pending: list[Candidate] = field(default_factory=list)

    def __post_init__(self) -> None:
        w = self.profile
        mean = WINDOW_BLOCKS * float(w.sum())
        var = WINDOW_BLOCKS * float((w * w).sum())
        # Cells per channel-hour, and how many of them are effectively independent: the window
        # spans 28 blocks and the profile a few bins, so neighbouring cells share most of their
        # energy. One false pulse per channel-hour is then a per-cell probability of about:
        cells = 3600.0 / 1e-3 * self.channel_bins
        independent = cells / (WINDOW_BLOCKS / 2.0) / 2.0
        pfa = self.false_per_channel_hour / independent
        shape, scale = mean * mean / var, var / mean
        self.threshold = float(scipy.stats.gamma.isf(pfa, shape, scale=scale))
        self.mean = mean

    def statistic(self, normalised: NDArray[np.float32]) -> NDArray[np.float32]:
        """``D`` for every window that ends within this chunk's blocks.

        Row ``i`` is the window that starts ``WINDOW_BLOCKS − 1 − i`` blocks before the chunk
        (windows reaching back into the previous chunk use its last rows, kept here).
        """
        f = scipy.ndimage.correlate1d(normalised, self.profile.astype(np.float32), axis=1, mode="constant")
        if self._f_tail is None:
            self._f_tail = np.zeros((WINDOW_BLOCKS - 1, f.shape[1]), np.float32)
        joined = np.concatenate((self._f_tail, f), axis=0)
        csum = np.cumsum(joined, axis=0, dtype=np.float64)
        csum = np.concatenate((np.zeros((1, f.shape[1])), csum), axis=0)
        d = (csum[WINDOW_BLOCKS:] - csum[: -WINDOW_BLOCKS]).astype(np.float32)
        self._f_tail = joined[-(WINDOW_BLOCKS - 1) :]
        return d

    def push(self, d: NDArray[np.float32], first_window_block: int, allowed: NDArray[np.bool_]) -> list[Candidate]:
        """Add the cells of ``d`` above threshold; return the candidates now final.

        ``first_window_block`` is the absolute block where row 0's window starts; ``allowed``
        masks the bins where a carrier may be (the searched channels).
        """
        rows, cols = np.nonzero((d > self.threshold) & allowed[None, :])
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            self._pending.append(Candidate(first_window_block + r, c, float(d[r, c]), self.threshold))
        return self._finalise(first_window_block + d.shape[0] - 1)

    def _finalise(self, last_block: int) -> list[Candidate]:
        """Greedy non-maximum suppression; peaks whose neighbourhood is complete are final."""
        if not self._pending:
            return []
        self._pending.sort(key=lambda c: -c.statistic)
        peaks: list[Candidate] = []
        for cand in self._pending:
            if not any(
                abs(p.block - cand.block) <= PEAK_HALF_BLOCKS
                and abs(p.bin - cand.bin) <= PEAK_HALF_BINS
                for p in peaks
            ):
                peaks.append(cand)
        final = [p for p in peaks if p.block + PEAK_HALF_BLOCKS <= last_block]
        self._pending = [p for p in peaks if p.block + PEAK_HALF_BLOCKS > last_block]
        final.sort(key=lambda c: c.block)
        return final
